"""With a checksum to check, pieces go in order and the hash is computed during the download."""

from __future__ import annotations

from pathlib import Path

import pytest

from laden.engine import transfer
from laden.engine.states import State
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, sha256

SIZE = 20 * 1024 * 1024


@pytest.fixture
def no_second_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the file was hashed again after the download")

    monkeypatch.setattr(transfer, "hash_file", refuse)
    monkeypatch.setattr(transfer, "IN_ORDER_PIECE", 1 << 20)


@pytest.mark.parametrize("faults", [
    Faults(), Faults(drop_after=700_000, drop_every_other=True),
], ids=["clean", "drops"])
def test_hash_is_ready_when_the_download_ends(http_server, downloads: Path, no_second_pass,
                                              faults) -> None:
    data = random_bytes(SIZE, seed=80)
    url = http_server.add_file("/h.bin", data, faults=faults)
    with manager(FAST.replace(connections=4)) as m:
        info = m.wait(m.add(url, str(downloads), checksum=f"sha256:{sha256(data)}"))
    assert info.state is State.DONE, info.message
    assert [c.verified for c in info.checksums] == [True]
    assert sha256(Path(info.dest)) == sha256(data)
    starts = sorted(int(r.range.split("=")[1].split("-")[0])
                    for r in http_server.ranged_requests("/h.bin") if r.range != "bytes=0-0")
    assert len(starts) >= SIZE // (1 << 20), "pieces of 1 MiB, front to back"


def test_mismatch_found_during_the_download(http_server, downloads: Path,
                                            no_second_pass) -> None:
    data = random_bytes(SIZE, seed=81)
    url = http_server.add_file("/m.bin", data)
    with manager(FAST.replace(connections=4)) as m:
        info = m.wait(m.add(url, str(downloads), checksum="sha256:" + "ab" * 32))
    assert info.state is State.FAILED and "mismatch" in info.message
    assert not (downloads / "m.bin").exists()
