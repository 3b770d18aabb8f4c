"""`uploading.comparing`: the one loop that reads a pinned local file to hash it, and the one
answer to "is the object at the service this file"."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from laden.core.errors import Cancelled, LocalFileChanged
from laden.engine.uploading import comparing, crc32c, whole_md5
from laden.engine.uploading.local import LocalFile, pin
from laden.sources.uploads import StoredObject


def _file(tmp_path: Path, data: bytes) -> tuple[str, LocalFile]:
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    return str(path), LocalFile(str(path), pin(str(path)))


def test_one_reading_gives_every_digest_asked_for(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000
    path, local = _file(tmp_path, data)
    try:
        found = comparing.digests(local, local.pinned, ["crc32c", "md5", "sha256", "git-sha1"])
        assert found == {
            "crc32c": f"{crc32c.of(data):08x}", "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "git-sha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
        assert comparing.digests(path, local.pinned, ["md5"]) == {"md5": found["md5"]}
        assert whole_md5.of_file(local) == found["md5"]  # the same loop, the file left open
        local.check()
    finally:
        local.close()


def test_a_stop_or_a_change_ends_the_reading(tmp_path: Path) -> None:
    path, local = _file(tmp_path, b"x" * (comparing.READ_SIZE + 10))
    stop = threading.Event()
    stop.set()
    try:
        with pytest.raises(Cancelled):
            comparing.digests(local, local.pinned, ["sha256"], stop)
        Path(path).write_bytes(b"y" * 5)
        with pytest.raises(LocalFileChanged):
            comparing.digests(local, local.pinned, ["md5"])
    finally:
        local.close()


def test_matches_needs_every_checksum_the_service_keeps_and_one_at_least() -> None:
    data = b"hello"
    md5 = hashlib.md5(data).hexdigest()
    crc = f"{crc32c.of(data):08x}"
    both = StoredObject(5, crc32c.encoded(crc32c.of(data)), md5)
    assert comparing.matches(both, {"crc32c": crc, "md5": md5})
    assert not comparing.matches(both, {"crc32c": crc, "md5": "0" * 32})
    assert comparing.first_difference(both, {"crc32c": crc, "md5": "0" * 32}) == "md5"
    assert not comparing.matches(StoredObject(5, None), {"crc32c": crc})  # nothing to compare
