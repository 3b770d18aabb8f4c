"""Uploads to Azure ML datastores: `laden put LOCAL azureml://.../datastores/NAME/paths/PATH`.

The address resolves as for downloads (`azureml`): Resource Manager names the datastore's
account and container and hands out its key or SAS, or your own Azure credential signs in.
Every call is then the Azure Blob uploader's (`azure_upload`) on the blob it resolves to, with
its staged blocks, MD5s and conditional commit. The journal keeps the `azureml://` address
only: a resume in another process resolves it again, so an expired SAS is asked for afresh
rather than failing, and a refusal of a secret taken a while ago is resolved and tried once
more (`AzureMLSource.in_storage`). Job outputs are a job's to write, not laden's: they are
refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.errors import InputError
from .azure_upload import AzureBlobUploader
from .azureml_addresses import parse_address

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from .azureml import AzureMLSource
    from .uploads import SentPart, StoredObject

T = TypeVar("T")


class AzureMLUploader:
    """Azure ML datastores' `sources.uploads.Uploader`."""

    min_part = AzureBlobUploader.min_part
    max_parts = AzureBlobUploader.max_parts
    whole_checksum = AzureBlobUploader.whole_checksum

    def __init__(self, source: AzureMLSource) -> None:
        self._source = source

    def stored(self, url: str, options: DownloadOptions) -> StoredObject | None:
        return self._on_blob(url, options, lambda blobs, blob, o: blobs.stored(blob, o))

    def put(self, url: str, body: bytes | bytearray, crc32c: str, options: DownloadOptions, *,
            only_new: bool) -> None:
        self._on_blob(url, options, lambda blobs, blob, o: blobs.put(
            blob, body, crc32c, o, only_new=only_new))

    def begin(self, url: str, options: DownloadOptions, *, file_tag: str) -> str:
        # Nothing is asked of the service to begin: the address is only checked.
        _datastore_path(url)
        return AzureBlobUploader.begin_id(file_tag)

    def send_part(self, url: str, upload_id: str, number: int, body: bytes | bytearray,
                  crc32c: str,
                  options: DownloadOptions, start: int) -> str:
        return self._on_blob(url, options, lambda blobs, blob, o: blobs.send_part(
            blob, upload_id, number, body, crc32c, o, start))

    def parts(self, url: str, upload_id: str, options: DownloadOptions) -> dict[int, str]:
        return self._on_blob(url, options, lambda blobs, blob, o: blobs.parts(blob, upload_id, o))

    def complete(self, url: str, upload_id: str, parts: list[SentPart], crc32c: str,
                 options: DownloadOptions, *, only_new: bool, md5: str | None) -> None:
        self._on_blob(url, options, lambda blobs, blob, o: blobs.complete(
            blob, upload_id, parts, crc32c, o, only_new=only_new, md5=md5))

    def committed_parts(self, url: str, options: DownloadOptions) -> list[str]:
        """See `AzureBlobUploader.committed_parts`."""
        return self._on_blob(url, options, lambda blobs, blob, o: blobs.committed_parts(blob, o))

    def abort(self, url: str, upload_id: str, options: DownloadOptions) -> None:
        """Nothing to do: see `AzureBlobUploader.abort`."""

    def _on_blob(self, url: str, options: DownloadOptions,
                 work: Callable[[AzureBlobUploader, str, DownloadOptions], T]) -> T:
        _datastore_path(url)

        def call(blob_source: Any, blob_url: str, blob_options: DownloadOptions) -> T:
            return work(AzureBlobUploader(blob_source), blob_url, blob_options)

        return self._source.in_storage(url, options, call)


def _datastore_path(url: str) -> None:
    address = parse_address(url)
    if address.datastore is None:
        raise InputError(f"{url} is a job's output: laden uploads to datastore paths "
                         "(azureml://datastores/NAME/paths/PATH)")
    if not address.path or address.path.endswith("/"):
        raise InputError(f"{url} names a folder of datastore {address.datastore}, not a file "
                         "to upload to")
