"""Checksums: yours and the server's are verified before the file gets its final name."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from laden.core.states import State
from servers.fixtures import random_bytes

from .helpers import manager, part_files, sha256


def test_your_checksum_is_verified(http_server, downloads: Path) -> None:
    data = random_bytes(1_500_000, seed=40)
    url = http_server.add_file("/ok.bin", data)
    with manager() as m:
        info = m.wait(m.add(url, str(downloads), checksum=f"sha256:{sha256(data)}"))
    assert info.state is State.DONE
    assert [c.verified for c in info.checksums] == [True]


def test_mismatch_fails_and_never_takes_the_final_name(http_server, downloads: Path) -> None:
    url = http_server.add_file("/bad.bin", random_bytes(500_000, seed=41))
    with manager() as m:
        info = m.wait(m.add(url, str(downloads), checksum="md5:" + "0" * 32))
    assert info.state is State.FAILED
    assert "md5 checksum mismatch" in info.message
    assert not (downloads / "bad.bin").exists()


def test_published_repr_digest_is_verified(http_server, downloads: Path) -> None:
    data = random_bytes(300_000, seed=42)
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    ok = http_server.add_file("/ok", data, headers={"Repr-Digest": f"sha-256=:{good}:"})
    bad = http_server.add_file("/bad", data, headers={"Repr-Digest": f"sha-256=:{wrong}:"})
    with manager() as m:
        first = m.wait(m.add(ok, str(downloads)))
        second = m.wait(m.add(bad, str(downloads)))
    assert first.state is State.DONE
    assert first.checksums[0].origin == "Repr-Digest" and first.checksums[0].verified
    assert second.state is State.FAILED and "Repr-Digest" in second.message


def test_verify_later_detects_a_changed_file(http_server, downloads: Path) -> None:
    data = random_bytes(200_000, seed=43)
    url = http_server.add_file("/v.bin", data)
    with manager() as m:
        download_id = m.add(url, str(downloads))
        info = m.wait(download_id)
        first = m.verify(download_id)  # nothing known yet: records a sha256
        assert first.ok and first.actual == sha256(data)
        Path(info.dest).write_bytes(b"X" + data[1:])
        second = m.verify(download_id)
    assert not second.ok and "mismatch" in second.message
    assert part_files(downloads) == []
