"""The upload scenarios' server, run by the benchmark venv's Python: moto or Azurite, started as
the tests start them (tests/servers/s3.py, tests/servers/azure_blob.py), on 127.0.0.1.

    python upload_servers.py s3|azure

bench.py (stdlib only) drives it with one line per request on stdin, and reads one JSON line
per answer on stdout:

    fresh                 an empty bucket (moto reset) or container (a new Azurite): before
                          every run, outside its time; answers {"endpoint": ..., ...}
    check NAME SIZE SHA   the uploaded object: its size, then the sha256 of a GET of it;
                          answers {"error": ""} or {"error": "why not"}

The server lives in this process (moto) or its child (Azurite), never in the timed client's
process tree, so a client's CPU seconds are its own. Azurite is started again for every run:
in memory it frees a deleted blob's blocks only every 10 minutes, so five rounds of 1 GiB
uploads would pile up. The process ends when its stdin closes.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.servers

CONTAINER = "bench"  # the bucket or container every upload goes to
MiB = 1 << 20


def sha256_of(chunks: Any) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for chunk in chunks:
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


class S3Host:
    def __init__(self) -> None:
        from tests.servers.s3 import S3Server

        # Real S3's 5 MiB minimum part, not the tests' 1 byte.
        self.server = S3Server(min_part_size=5 * MiB).start()
        self.client = self.server.client()
        import crc32c  # what moto computes CRC32C with (tests/servers/s3.py may have shimmed it)

        self.crc32c = ("the `crc32c` package" if getattr(crc32c, "__file__", None)
                       else "google-crc32c, through tests/servers/s3.py's shim (no `crc32c` "
                            "package)")

    def fresh(self) -> dict[str, str]:
        self.server.reset()  # moto disposes of every key's and part's temporary file
        self.client.create_bucket(Bucket=CONTAINER)
        return {"endpoint": self.server.endpoint_url, "bucket": CONTAINER,
                "crc32c": self.crc32c}

    def check(self, name: str, size: int, sha: str) -> str:
        head = self.client.head_object(Bucket=CONTAINER, Key=name)
        if head["ContentLength"] != size:
            return f"{name} has {head['ContentLength']} bytes, not {size}"
        body = self.client.get_object(Bucket=CONTAINER, Key=name)["Body"]
        got, digest = sha256_of(body.iter_chunks(8 * MiB))
        return "" if (got, digest) == (size, sha) else f"sha256 mismatch for {name} ({got} bytes)"

    def stop(self) -> None:
        self.server.stop()


class AzureHost:
    def __init__(self) -> None:
        self.server: Any = None

    def fresh(self) -> dict[str, str]:
        from tests.servers.azure_blob import AzuriteServer

        if self.server is not None:
            self.server.stop()
        # Room for one 1 GiB blob and a retried block or two; a fresh Azurite per run.
        self.server = AzuriteServer(extent_memory_mib=3072).start()
        self.server.create_container(CONTAINER)
        return {"endpoint": self.server.account_url, "container": CONTAINER,
                "connection_string": self.server.connection_string}

    def check(self, name: str, size: int, sha: str) -> str:
        blob = self.server.service_client().get_blob_client(CONTAINER, name)
        found = blob.get_blob_properties().size
        if found != size:
            return f"{name} has {found} bytes, not {size}"
        got, digest = sha256_of(blob.download_blob(max_concurrency=4).chunks())
        return "" if (got, digest) == (size, sha) else f"sha256 mismatch for {name} ({got} bytes)"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def main() -> None:
    # If bench.py dies without closing our stdin, go too (Linux: PR_SET_PDEATHSIG).
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    host = S3Host() if sys.argv[1] == "s3" else AzureHost()
    try:
        for line in sys.stdin:
            words = line.split()
            try:
                if words[0] == "fresh":
                    answer: dict[str, str] = host.fresh()
                elif words[0] == "check":
                    answer = {"error": host.check(words[1], int(words[2]), words[3])}
                else:
                    answer = {"error": f"unknown request {words[0]!r}"}
            except Exception as exc:  # noqa: BLE001 - told to bench.py, which says it
                answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            print(json.dumps(answer), flush=True)
    finally:
        host.stop()


if __name__ == "__main__":
    main()
