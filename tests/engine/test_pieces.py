"""Piece hashes: recorded while a file downloads, naming damaged ranges, repairing only those."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from laden.core.states import State
from laden.engine import pieces
from laden.engine.pieces import PIECE_SIZE, PieceRecorder
from laden.sources.http import PROBE_RANGE
from laden.store.records import Record
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, sha256

SIZE = 6 * PIECE_SIZE + 12_345  # seven pieces, the last one short
DAMAGED = 3 * PIECE_SIZE + 1_000  # a byte inside the fourth piece


def piece_digests(data: bytes) -> list[bytes]:
    return [xxhash.xxh3_64_digest(data[i : i + PIECE_SIZE])
            for i in range(0, len(data), PIECE_SIZE)]


def recorded(info_or_record: Record) -> list[bytes]:
    hashes = pieces.PieceHashes.from_journal(info_or_record.pieces or {}, info_or_record.size)
    return [hashes.digest(i) for i in range(hashes.count)]


def damage(path: Path, offset: int, length: int = 100) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        original = handle.read(length)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in original))


def fetched_ranges(server, path: str) -> list[str]:
    return [r.range for r in server.ranged_requests(path) if r.range != PROBE_RANGE]


# -- the recorder, alone -------------------------------------------------------------------------


@pytest.mark.parametrize(("runs", "read_back"), [
    ([(0, SIZE)], 0),
    ([(0, 5_000_000), (5_000_000, SIZE)], 0),  # a split inside the second piece
    ([(0, 65_536), (65_536, 3 * PIECE_SIZE), (3 * PIECE_SIZE, SIZE)], 0),
    ([(PIECE_SIZE + 7, SIZE), (0, PIECE_SIZE + 7)], 0),
    ([(0, 5_000), (9_000, 20_000), (5_000, 9_000), (20_000, SIZE)], 0),  # cut three times
    ([(0, 5_000_000), (6_000_000, SIZE)], 1),  # bytes written another way (splice)
], ids=["one run", "split mid-piece", "short first run", "out of order", "cut three times",
        "a gap"])
def test_recorder_hashes_runs_and_reads_back_the_rest(tmp_path: Path, runs, read_back) -> None:
    data = random_bytes(SIZE, seed=300)
    path = tmp_path / "f"
    path.write_bytes(data)
    recorder = PieceRecorder(SIZE)
    for start, end in runs:
        stream = recorder.stream()
        for at in range(start, end, 1 << 20):  # reads of up to 1 MiB, as a connection does
            stream.feed(at, memoryview(data)[at : min(end, at + (1 << 20))])
        stream.close()
    assert len(recorder.missing()) == read_back, "pieces cut between runs are joined"
    hashes = recorder.complete(str(path))
    assert [hashes.digest(i) for i in range(hashes.count)] == piece_digests(data)


def test_bytes_kept_for_joins_are_bounded_and_never_kept_for_a_piece_begun_before(
        tmp_path: Path) -> None:
    """A resumed download's gaps begin inside pieces whose first bytes came in an earlier
    attempt: nothing would join those, so they are read back instead of kept in memory; and
    what one download keeps for joins is bounded."""
    data = random_bytes(SIZE, seed=303)
    path = tmp_path / "f"
    path.write_bytes(data)
    recorder = PieceRecorder(SIZE, done=[(0, 5_000_000)])  # into the second piece
    assert not recorder.keep(1, 1000) and recorder.keep(2, 1000)
    recorder.let_go(1000)
    assert not recorder.keep(3, pieces.HELD_AT_MOST + 1)
    stream = recorder.stream()
    stream.feed(5_000_000, memoryview(data)[5_000_000:])
    stream.close()
    assert recorder.missing() == [0, 1]  # read back at the end
    hashes = recorder.complete(str(path))
    assert [hashes.digest(i) for i in range(hashes.count)] == piece_digests(data)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 5_000), cuts=st.sets(st.integers(1, 4_999), max_size=12),
       order=st.randoms(use_true_random=False), read=st.integers(1, 700),
       ended=st.sets(st.integers(0, 12), max_size=3))
def test_joined_pieces_are_the_pieces_hashes(size, cuts, order, read, ended) -> None:
    """Runs in any order, cut anywhere, some ending early (a failed connection; the bytes left
    are then never fed): every piece noted is the hash of its bytes."""
    data = random_bytes(size, seed=size)
    bounds = [0, *sorted(c for c in cuts if c < size), size]
    runs = list(zip(bounds, bounds[1:], strict=False))
    order.shuffle(runs)
    recorder = PieceRecorder(size, piece_size=1000)
    for number, (start, end) in enumerate(runs):
        stream = recorder.stream()
        stop = (start + end) // 2 if number in ended else end
        for at in range(start, stop, read):
            stream.feed(at, memoryview(data)[at : min(stop, at + read)])
        stream.close()
    if not ended:
        assert recorder.missing() == []
    # The pieces noted are not read back: a wrong one would stay wrong.
    with tempfile.NamedTemporaryFile() as whole:
        whole.write(data)
        whole.flush()
        hashes = recorder.complete(whole.name)
    assert [hashes.digest(i) for i in range(hashes.count)] == [
        xxhash.xxh3_64_digest(data[i : i + 1000]) for i in range(0, size, 1000)]


def test_a_gap_in_a_run_never_gives_a_wrong_hash(tmp_path: Path) -> None:
    data = random_bytes(2 * PIECE_SIZE, seed=301)
    recorder = PieceRecorder(len(data))
    stream = recorder.stream()
    stream.feed(0, memoryview(data)[:1000])
    stream.feed(2000, memoryview(data)[2000:PIECE_SIZE])  # bytes 1000-1999 came another way
    assert recorder.missing() == [0, 1]


# -- during a download ---------------------------------------------------------------------------


@pytest.mark.parametrize("checksum", [False, True], ids=["no checksum", "checksum"])
def test_a_download_records_every_piece(http_server, downloads: Path, checksum: bool) -> None:
    data = random_bytes(SIZE, seed=302)
    url = http_server.add_file("/p.bin", data)
    extra = {"checksum": f"sha256:{sha256(data)}"} if checksum else {}
    with manager(FAST.replace(connections=4)) as m:
        download_id = m.add(url, str(downloads), **extra)
        assert m.wait(download_id).state is State.DONE
    with manager() as m:  # from the journal, as a later session reads it
        assert recorded(m._get(download_id).record) == piece_digests(data)


def test_connections_hash_the_pieces_they_write(http_server, downloads: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    read_back: list[int] = []
    complete = PieceRecorder.complete

    def counting(self: PieceRecorder, path: str, body: bytes | None = None):  # type: ignore[no-untyped-def]
        read_back.append(len(self.missing()))
        return complete(self, path, body)

    monkeypatch.setattr(PieceRecorder, "complete", counting)
    data = random_bytes(SIZE, seed=314)
    url = http_server.add_file("/d.bin", data)
    # Direct writes: the bytes pass through the connections' buffers (splice would skip them).
    with manager(FAST.replace(connections=2, direct_io="on")) as m:
        download_id = m.add(url, str(downloads))
        assert m.wait(download_id).state is State.DONE
        assert recorded(m._get(download_id).record) == piece_digests(data)
    assert read_back and read_back[0] < 7, "most pieces were hashed as they were written"


def test_a_small_file_that_came_with_the_probe_has_its_piece(http_server, downloads) -> None:
    data = random_bytes(5000, seed=303)
    url = http_server.add_file("/s.bin", data)
    with manager() as m:
        download_id = m.add(url, str(downloads))
        m.wait(download_id)
        assert recorded(m._get(download_id).record) == piece_digests(data)


# -- verify and repair ---------------------------------------------------------------------------


def downloaded(http_server, downloads: Path, name: str, data: bytes, **extra) -> int:
    url = http_server.add_file(f"/{name}", data, faults=extra.pop("faults", None))
    with manager(FAST.replace(connections=4)) as m:
        download_id = m.add(url, str(downloads), **extra)
        assert m.wait(download_id).state is State.DONE
    return download_id


@pytest.mark.parametrize("checksum", [False, True], ids=["piece hashes only", "sha256"])
def test_verify_names_the_damaged_range_and_repair_fetches_only_it(
    http_server, downloads: Path, checksum: bool
) -> None:
    data = random_bytes(SIZE, seed=304)
    extra = {"checksum": f"sha256:{sha256(data)}"} if checksum else {}
    download_id = downloaded(http_server, downloads, "r.bin", data, **extra)
    damage(downloads / "r.bin", DAMAGED)
    piece = (3 * PIECE_SIZE, 4 * PIECE_SIZE)
    with manager() as m:
        found = m.verify(download_id)
        assert not found.ok and found.damaged == (piece,)
        assert f"1 of 7 pieces damaged: bytes {piece[0]}-{piece[1] - 1}" in found.message
        assert m.state(download_id) is State.FAILED
        http_server.clear_log()
        result = m.repair(download_id)
        assert result.ok, result.message
        assert result.damaged == (piece,) and result.fetched == (piece,)
        assert m.state(download_id) is State.DONE
        assert m.verify(download_id).ok
    assert fetched_ranges(http_server, "/r.bin") == [f"bytes={piece[0]}-{piece[1] - 1}"]
    assert (downloads / "r.bin").read_bytes() == data


def test_repair_of_the_short_last_piece_and_of_two_neighbours(http_server, downloads) -> None:
    data = random_bytes(SIZE, seed=305)
    download_id = downloaded(http_server, downloads, "t.bin", data)
    damage(downloads / "t.bin", SIZE - 10, 10)
    damage(downloads / "t.bin", PIECE_SIZE - 50, 100)  # across pieces one and two
    http_server.clear_log()
    with manager() as m:
        result = m.repair(download_id)
    assert result.ok, result.message
    assert result.damaged == ((0, 2 * PIECE_SIZE), (6 * PIECE_SIZE, SIZE))
    assert sorted(fetched_ranges(http_server, "/t.bin")) == sorted([
        f"bytes=0-{PIECE_SIZE - 1}", f"bytes={PIECE_SIZE}-{2 * PIECE_SIZE - 1}",
        f"bytes={6 * PIECE_SIZE}-{SIZE - 1}"])
    assert (downloads / "t.bin").read_bytes() == data


def test_nothing_damaged_fetches_nothing(http_server, downloads: Path) -> None:
    data = random_bytes(SIZE, seed=306)
    download_id = downloaded(http_server, downloads, "n.bin", data)
    http_server.clear_log()
    with manager() as m:
        result = m.repair(download_id)
    assert result.ok and not result.fetched and "nothing was damaged" in result.message
    assert http_server.requests == []


def test_a_changed_remote_refuses_repair(http_server, downloads: Path) -> None:
    data = random_bytes(SIZE, seed=307)
    download_id = downloaded(http_server, downloads, "c.bin", data)
    damage(downloads / "c.bin", DAMAGED)
    damaged_bytes = (downloads / "c.bin").read_bytes()
    http_server.set_content("/c.bin", random_bytes(SIZE, seed=308))
    http_server.clear_log()
    with manager() as m:
        result = m.repair(download_id)
        assert m.state(download_id) is State.FAILED
    assert not result.ok and result.damaged == ((3 * PIECE_SIZE, 4 * PIECE_SIZE),)
    assert "the remote file changed" in result.message and "ETag" in result.message
    assert "laden get --force" in result.message
    assert fetched_ranges(http_server, "/c.bin") == []
    assert (downloads / "c.bin").read_bytes() == damaged_bytes


def test_other_bytes_without_validators_are_never_written(http_server, downloads) -> None:
    data = random_bytes(SIZE, seed=309)
    download_id = downloaded(http_server, downloads, "v.bin", data, faults=Faults(no_etag=True))
    damage(downloads / "v.bin", DAMAGED)
    damaged_bytes = (downloads / "v.bin").read_bytes()
    http_server.set_content("/v.bin", random_bytes(SIZE, seed=310))  # same size, no validators
    with manager() as m:
        result = m.repair(download_id)
    assert not result.ok and not result.fetched
    assert "the server sent other bytes" in result.message
    assert (downloads / "v.bin").read_bytes() == damaged_bytes


def forget_pieces(state: Path) -> None:
    """Make the journal's records look like an older laden's: no piece hashes."""
    db = sqlite3.connect(state / "journal.sqlite3")
    try:
        rows = db.execute("SELECT id, data FROM downloads").fetchall()
        for row_id, text in rows:
            data = json.loads(text)
            data.pop("pieces", None)
            db.execute("UPDATE downloads SET data = ? WHERE id = ?", (json.dumps(data), row_id))
        db.commit()
    finally:
        db.close()


def test_a_download_journalled_without_piece_hashes_cannot_be_repaired(
    http_server, downloads: Path, laden_dirs
) -> None:
    data = random_bytes(SIZE, seed=311)
    download_id = downloaded(http_server, downloads, "o.bin", data)
    damage(downloads / "o.bin", DAMAGED)
    forget_pieces(laden_dirs["state"])
    http_server.clear_log()
    with manager() as m:
        result = m.repair(download_id)
        assert m.state(download_id) is State.DONE, "refused before looking: state unchanged"
    assert not result.ok and not result.checked
    assert "no piece hashes" in result.message and "older" in result.message
    assert http_server.requests == []


def test_piece_hashes_that_do_not_fit_the_file_keep_the_record(
    http_server, downloads: Path, laden_dirs
) -> None:
    data = random_bytes(SIZE, seed=312)
    download_id = downloaded(http_server, downloads, "b.bin", data)
    db = sqlite3.connect(laden_dirs["state"] / "journal.sqlite3")
    text = db.execute("SELECT data FROM downloads").fetchone()[0]
    stored = json.loads(text)
    stored["pieces"]["digests"] = stored["pieces"]["digests"][:12]
    db.execute("UPDATE downloads SET data = ?", (json.dumps(stored),))
    db.commit()
    db.close()
    with manager() as m:
        assert m.get(download_id).state is State.DONE
        result = m.repair(download_id)
    assert not result.ok and "bytes of piece hashes do not fit a file of" in result.message


def test_the_record_field_is_checked_when_read() -> None:
    base = {"url": "http://127.0.0.1/x", "source": "http", "dest_dir": "/tmp", "state": "done"}
    good = {"algorithm": "xxh3_64", "piece_size": PIECE_SIZE, "digests": "AAAAAAAAAAA="}
    assert Record.from_row(1, json.dumps({**base, "pieces": good}), "[]").pieces == good
    for bad in ({**good, "piece_size": 0}, {**good, "digests": 5}, {"algorithm": "x"}):
        with pytest.raises(ValueError, match="pieces"):
            Record.from_row(1, json.dumps({**base, "pieces": bad}), "[]")
    assert Record.from_row(1, json.dumps(base), "[]").pieces is None  # an older laden's


def test_the_file_is_written_in_place(http_server, downloads: Path) -> None:
    data = random_bytes(SIZE, seed=313)
    download_id = downloaded(http_server, downloads, "i.bin", data)
    damage(downloads / "i.bin", DAMAGED)
    inode = os.stat(downloads / "i.bin").st_ino
    with manager() as m:
        assert m.repair(download_id).ok
    assert os.stat(downloads / "i.bin").st_ino == inode
