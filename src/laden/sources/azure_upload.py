"""Uploads to Azure Blob Storage, through azure-storage-blob and `AzureBlobSource`'s clients.

A file of one part goes in one Put Blob (`upload_blob`) carrying its Content-MD5, which the
service checks and keeps. A larger one is staged block by block (`stage_block`) and committed
with `commit_block_list`:

- Block ids are laden's own, of a fixed width (Azure refuses ids of different lengths among a
  blob's uncommitted blocks: `BLOCK_ID_LENGTH`), derived from the file's pin and the block's
  number: `laden-<file tag>-<number>`. The upload id is that prefix, so "begin" asks nothing
  of the service, a resume finds the journalled blocks in the uncommitted block list by their
  names, and blocks staged from another version of the file never match. (The SDK's own
  `upload_blob` names blocks afresh on every call, which is why it cannot resume.)
- Each block carries its MD5 (`Content-MD5`), which the service checks before it keeps
  the block. Azure also offers CRC64 (`x-ms-content-crc64`), but Azurite answers it with
  FeatureNotSupported, and MD5 is what both check.
- The commit names the blocks as uncommitted ones and stores the whole file's MD5 as the blob's
  Content-MD5 (Azure keeps it; it does not compute one for a block list, so the engine's MD5 of
  the file is what it stores, and the per-block checks are what the service verified).
- "Never overwrite" is the service's decision at the commit: `If-None-Match: *` on Put Blob and
  on Put Block List (409 BlobAlreadyExists when the name is taken).
- Azure has no call to drop uncommitted blocks: it deletes them itself a week after the last
  block was staged, or when the blob is next committed. `abort` therefore does nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Any

from ..core.errors import DestinationExists, InputError, LadenError, Retryable
from .azure import BlobAddress, azure_rows, parse_address
from .foreign_errors import ErrorTable, first_line
from .requests_log import logged_request
from .statuses import Later, Wording
from .uploads import SentPart, StoredObject

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from .azure import AzureBlobSource

MiB = 1024 * 1024
MAX_BLOCK = 4000 * MiB
"""The largest block Azure takes (service version 2019-12-12 on)."""
MAX_BLOCKS = 50_000
"""The most blocks one blob can be committed from."""
BLOCK_ID_LENGTH = 48
"""Characters in every block id laden stages: the length azure-storage-blob's own `upload_blob`
uses. Azure refuses a block whose id differs in length from the blob's other uncommitted ones,
so with another length, blocks a cancelled laden upload left would stop the SDK from uploading
to the same name for a week, and the SDK's leftovers would stop laden."""

_REFUSED = ("Azure refused access to {url}: the connection string, key or SAS is wrong or does "
            "not allow writing it ({said})")
_WORDING = Wording(
    slow_down="Azure asks for fewer requests ({said})",
    server_error="Azure error {said} for {url}",
    refused="Azure refused the upload to {url}: {said} {first_line}",
    statuses={401: _REFUSED, 403: _REFUSED, 404: "Azure has no {url} ({said})"},
    code_lines={"ContainerNotFound": "no such Azure container: {container}"},
    codes={"ContainerNotFound": 404, "AuthenticationFailed": 403,
           "AuthorizationFailure": 403, "AuthorizationPermissionMismatch": 403,
           "InvalidAuthenticationInfo": 403, "NoAuthenticationInformation": 403,
           "ServerBusy": 503, "OperationTimedOut": 503,
           # The bytes arrived other than they left: send them again.
           "Md5Mismatch": 500, "Crc64Mismatch": 500},
)


class AzureBlobUploader:
    """Azure Blob's `sources.uploads.Uploader`."""

    min_part = 1  # Azure takes blocks of any size; the engine's parts are 8 MiB or more
    max_parts = MAX_BLOCKS
    whole_checksum = "md5"

    def __init__(self, source: AzureBlobSource) -> None:
        self._source = source

    def stored(self, url: str, options: DownloadOptions) -> StoredObject | None:
        blob = self._blob(url, options)
        try:
            with logged_request("HEAD", url) as answer:
                props = blob.get_blob_properties()
                answer.status = 200
        except Exception as exc:  # noqa: BLE001 - translated below
            if getattr(exc, "status_code", None) == 404 and _code(exc) != "ContainerNotFound":
                return None
            raise _translated(exc, url) from None
        md5 = props.content_settings.content_md5
        return StoredObject(int(props.size), None,
                            bytes(md5).hex() if md5 and len(md5) == 16 else None)

    def put(self, url: str, body: bytes | bytearray, crc32c: str, options: DownloadOptions, *,
            only_new: bool) -> None:
        from azure.storage.blob import BlobType, ContentSettings

        blob = self._blob(url, options)
        md5 = hashlib.md5(body).digest()
        # overwrite=False is the SDK's way of sending If-None-Match: *. The one MD5 is both
        # the request's (Content-MD5, which the service checks) and the blob's to keep:
        # validate_content would hash the body a second time.
        self._call("PutBlob", url, blob.upload_blob, bytes(body), length=len(body),
                   blob_type=BlobType.BLOCKBLOB, overwrite=not only_new, max_concurrency=1,
                   headers={"Content-MD5": base64.b64encode(md5).decode("ascii")},
                   content_settings=ContentSettings(content_md5=bytearray(md5)),
                   start=0, end=len(body))

    def begin(self, url: str, options: DownloadOptions, *, file_tag: str) -> str:
        _address(url)  # refuses an address that names no blob before anything is staged
        return self.begin_id(file_tag)

    @staticmethod
    def begin_id(file_tag: str) -> str:
        """The upload id, which is its blocks' prefix: nothing is asked of Azure to begin."""
        return f"laden-{file_tag or secrets.token_hex(8)}"

    def send_part(self, url: str, upload_id: str, number: int, body: bytes | bytearray,
                  crc32c: str,
                  options: DownloadOptions, start: int) -> str:
        blob = self._blob(url, options)
        block_id = block_name(upload_id, number)
        # Its MD5 as a header rather than the SDK's validate_content, which takes bytes only
        # and so would copy the part once more.
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")
        self._call("PutBlock", url, blob.stage_block, block_id, body, length=len(body),
                   headers={"Content-MD5": md5}, start=start, end=start + len(body))
        return _tag(block_id, len(body))

    def parts(self, url: str, upload_id: str, options: DownloadOptions) -> dict[int, str]:
        blob = self._blob(url, options)
        try:
            with logged_request("GetBlockList", url) as answer:
                _committed, uncommitted = blob.get_block_list("uncommitted")
                answer.status = 200
        except Exception as exc:  # noqa: BLE001 - translated below
            if getattr(exc, "status_code", None) == 404 and _code(exc) == "BlobNotFound":
                return {}  # no block staged (or Azure deleted them after a week)
            raise _translated(exc, url) from None
        width = BLOCK_ID_LENGTH - len(upload_id) - 1
        ours = re.compile(re.escape(upload_id) + rf"-(\d{{{width}}})")
        found: dict[int, str] = {}
        for block in uncommitted:
            matched = ours.fullmatch(str(block.id))
            if matched:
                found[int(matched.group(1))] = _tag(str(block.id), int(block.size))
        return found

    def complete(self, url: str, upload_id: str, parts: list[SentPart], crc32c: str,
                 options: DownloadOptions, *, only_new: bool, md5: str | None) -> None:
        from azure.core import MatchConditions
        from azure.storage.blob import BlobBlock, BlockState, ContentSettings

        blob = self._blob(url, options)
        blocks = [BlobBlock(p.etag.partition(":")[0], BlockState.UNCOMMITTED)
                  for p in sorted(parts, key=lambda p: p.number)]
        settings = ContentSettings(content_md5=bytearray.fromhex(md5) if md5 else None)
        conditions: dict[str, Any] = (
            {"match_condition": MatchConditions.IfMissing} if only_new else {})
        self._call("PutBlockList", url, blob.commit_block_list, blocks,
                   content_settings=settings, **conditions)

    def committed_parts(self, url: str, options: DownloadOptions) -> list[str]:
        """The blob's committed blocks, in order, as the journal keeps a part (id:size): what
        the upload direction checks after a commit, for Azure keeps the Content-MD5 given
        with it and never computes one (`engine.uploading.given_md5`)."""
        blob = self._blob(url, options)
        committed, _uncommitted = self._call("GetBlockList", url, blob.get_block_list,
                                             "committed")
        return [_tag(str(block.id), int(block.size)) for block in committed]

    def abort(self, url: str, upload_id: str, options: DownloadOptions) -> None:
        """Nothing to do, and nothing that could be done: Azure has no call that drops
        uncommitted blocks (committing an empty list would create an empty blob, which is
        worse). They are no blob anyone can read, and Azure deletes them a week after the last
        one was staged, or at the blob's next commit."""

    # -- the calls ---------------------------------------------------------------------------

    def _blob(self, url: str, options: DownloadOptions) -> Any:
        address = _address(url)
        return self._source.service(address, options).get_blob_client(address.container,
                                                                      address.blob)

    def _call(self, operation: str, url: str, method: Any, *args: Any,
              start: int | None = None, end: int | None = None, **kwargs: Any) -> Any:
        try:
            with logged_request(operation, url, start, end) as answer:
                result = method(*args, **kwargs)
                answer.status = "ok"
                return result
        except Exception as exc:  # noqa: BLE001 - translated by the table
            raise _translated(exc, url) from None


def block_name(upload_id: str, number: int) -> str:
    """Block `number`'s id: BLOCK_ID_LENGTH characters for every block of every upload."""
    return f"{upload_id}-{number:0{BLOCK_ID_LENGTH - len(upload_id) - 1}d}"


def _tag(block_id: str, size: int) -> str:
    """What the journal keeps of a staged block: its id and size (a block of another size
    under the same id is not the part laden sent)."""
    return f"{block_id}:{size}"


def _address(url: str) -> BlobAddress:
    address = parse_address(url)
    if not address.container or not address.blob or address.blob.endswith("/"):
        raise InputError(f"{url} does not name a blob to upload to (az://container/blob)")
    return address


def _code(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _translated(exc: Exception, url: str) -> BaseException:
    address = parse_address(url)
    shown = address.url_for(address.blob).split("?", 1)[0]  # never a SAS
    return ERRORS.translate(exc, url=shown, container=address.container)


def _response_error(exc: Any, facts: Any) -> LadenError:
    code = _code(exc)
    status = exc.status_code or 0
    if code in ("BlobAlreadyExists", "ConditionNotMet") or status == 412:
        return DestinationExists(f"{facts['url']} exists already, and the conflict policy is "
                                 "fail (Azure refused to replace it)")
    if status == 400 and "md5" in str(exc).lower():
        # Azurite words a block whose bytes do not match its MD5 as InvalidOperation.
        return Retryable(f"Azure received a block of {facts['url']} other than laden sent "
                         "(its MD5 did not match); sending it again", status=status)
    return _WORDING.error(status, code=code, url=facts["url"], container=facts["container"],
                          first_line=Later(lambda: first_line(exc)))


ERRORS = ErrorTable(lambda: azure_rows(_response_error, "invalid Azure request for {url}: "
                                                        "{first_line}"))
"""azure-core's exceptions during an upload. Facts: `url` (without a SAS), `container`."""
