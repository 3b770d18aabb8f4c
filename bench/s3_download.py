"""boto3's `download_file` of one object from an anonymous S3 endpoint: the s3 scenario's boto3 row.

    python s3_download.py ENDPOINT BUCKET KEY DEST STREAMS

Run by the Python of the benchmark's venv (bench/peers.py installs boto3 there). Unsigned
requests, path-style addressing, and STREAMS parts at once on as many pooled connections.
"""

from __future__ import annotations

import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config


def main() -> None:
    endpoint, bucket, key, dest, streams = sys.argv[1:6]
    n = int(streams)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(
        signature_version=UNSIGNED, s3={"addressing_style": "path"}, max_pool_connections=n))
    client.download_file(bucket, key, dest, Config=TransferConfig(max_concurrency=n))


if __name__ == "__main__":
    main()
