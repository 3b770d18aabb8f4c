"""boto3's `upload_file` of one file to an S3 endpoint: the put-s3 scenario's boto3 row.

    python s3_upload.py ENDPOINT BUCKET KEY FILE STREAMS

Run by the Python of the benchmark's venv (bench/peers.py installs boto3 there). The keys come
from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), as for every tool in the
scenario. Path-style addressing, and STREAMS parts at once (s3transfer's `max_concurrency`) on
as many pooled connections; everything else is s3transfer's default (8 MiB parts).
"""

from __future__ import annotations

import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def main() -> None:
    endpoint, bucket, key, path, streams = sys.argv[1:6]
    n = int(streams)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(
        s3={"addressing_style": "path"}, max_pool_connections=n))
    client.upload_file(path, bucket, key, Config=TransferConfig(max_concurrency=n))


if __name__ == "__main__":
    main()
