"""The Azure SDK's `upload_blob` of one file: the put-azure scenario's SDK row.

    python azure_upload.py FILE CONTAINER BLOB STREAMS [md5]

Run by the Python of the benchmark's venv (bench/peers.py installs azure-storage-blob there),
with the account in AZURE_STORAGE_CONNECTION_STRING, as laden's row gets it. STREAMS blocks at
once (`max_concurrency`); everything else is the SDK's default (4 MiB blocks, staged and then
committed as a list; a file under 64 MiB would go in one Put Blob). By default the SDK sends no
checksum at all; with `md5` it sends each block's MD5 (`validate_content=True`), which the
service checks, as laden does: the like-for-like row. (laden also stores the whole file's MD5
at the commit, which the SDK does not compute for a staged upload.)
"""

from __future__ import annotations

import os
import sys

from azure.storage.blob import BlobClient


def main() -> None:
    path, container, name, streams = sys.argv[1:5]
    md5 = sys.argv[5:6] == ["md5"]
    blob = BlobClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"],
                                             container, name)
    with open(path, "rb") as f:
        blob.upload_blob(f, overwrite=True, max_concurrency=int(streams),
                         validate_content=md5)


if __name__ == "__main__":
    main()
