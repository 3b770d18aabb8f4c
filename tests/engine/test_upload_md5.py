"""The whole file's MD5 an upload computes for a service that keeps one (Azure's Content-MD5):
hashed in order along with the upload's done prefix, whatever order the parts go in."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from laden.core.errors import LocalFileChanged
from laden.engine.uploading import whole_md5
from laden.engine.uploading.local import LocalFile, pin
from servers.fixtures import random_bytes


def test_it_waits_for_the_done_prefix_and_ends_with_the_files_md5(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whole_md5, "AHEAD", 0)  # exactly the prefix, to see it wait
    data = random_bytes(3 * whole_md5.READ_SIZE + 5, seed=1)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    done = [0]
    lock = threading.Lock()

    def prefix() -> int:
        with lock:
            return done[0]

    hasher = whole_md5.TrailingMd5(str(path), pin(str(path)), prefix)
    try:
        with lock:
            done[0] = 1000
        deadline = 200
        while hasher.hashed < 1000 and deadline:
            threading.Event().wait(0.01)
            deadline -= 1
        threading.Event().wait(0.1)
        assert hasher.hashed == 1000  # not a byte past the prefix
        assert hasher.digest() == hashlib.md5(data).hexdigest()  # the rest at the commit
    finally:
        hasher.close()


def test_a_file_changed_before_the_hash_began_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    pinned = pin(str(path))
    path.write_bytes(b"two!")
    hasher = whole_md5.TrailingMd5(str(path), pinned, lambda: 0)
    with pytest.raises(LocalFileChanged):
        hasher.digest()


def test_of_file_and_the_attempts_that_keep_it(tmp_path: Path) -> None:
    data = random_bytes(1_000_003, seed=2)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    local = LocalFile(str(path), pin(str(path)))

    class Azure:
        whole_checksum = "md5"

    class S3:
        whole_checksum = "crc32c"

    try:
        assert whole_md5.of_file(local) == hashlib.md5(data).hexdigest()
        assert whole_md5.follow(None, S3(), local, lambda: 0) is None  # type: ignore[arg-type]
        first = whole_md5.follow(None, Azure(), local, lambda: 0)  # type: ignore[arg-type]
        assert first is not None
        again = whole_md5.follow(first, Azure(), local, lambda: 0)  # type: ignore[arg-type]
        assert again is first  # the next attempt, the file unchanged: the hash goes on
        os.utime(path, ns=(1, 1))
        changed = LocalFile(str(path), pin(str(path)))
        other = whole_md5.follow(first, Azure(), changed, lambda: 0)  # type: ignore[arg-type]
        assert other is not first and other is not None
        assert other.digest() == hashlib.md5(data).hexdigest()
        other.close()
        changed.close()
    finally:
        local.close()
