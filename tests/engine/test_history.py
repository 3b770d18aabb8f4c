"""Finished downloads of earlier sessions: kept and reachable, without a start-up paying for them.

A start-up holds only the unfinished downloads; a finished one is read from the journal when it
is listed, looked up, verified, moved or removed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from laden.core.errors import UnknownDownload
from laden.core.states import State
from laden.store.journal import Journal, Record
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import manager, run_laden, sha256


def _finished(http_server, downloads: Path, count: int) -> list[int]:
    with manager() as m:
        ids = [m.add(http_server.add_file(f"/h{n}.bin", random_bytes(20_000, seed=n)),
                     str(downloads)) for n in range(count)]
        assert all(m.wait(i).state is State.DONE for i in ids)
    return ids


def _held(m: Any) -> set[int]:
    """The ids of the downloads the manager holds (the others stay in the journal)."""
    return {d.id for d in m.queue.in_order()}


def test_a_start_holds_only_unfinished_downloads(http_server, downloads: Path) -> None:
    ids = _finished(http_server, downloads, 3)
    slow = http_server.add_file("/slow.bin", random_bytes(2_000_000, seed=9),
                                faults=Faults(rate_per_connection=100_000))
    with manager() as m:
        paused = m.add(slow, str(downloads))
        m.pause(paused)
        m.wait(paused)
    with manager() as m:
        assert _held(m) == {paused}
        listed = m.list()
        assert [i.id for i in listed] == [*ids, paused]  # queue order, finished ones included
        assert [i.state for i in listed[:3]] == [State.DONE] * 3
        assert [i.id for i in m.list(done=False)] == [paused]
        assert _held(m) == {paused}, "listing must not hold the finished ones"
        # Asked for by id, a finished one is read and held from then on; by path, found.
        first = m.get(ids[0])
        assert first.state is State.DONE and sha256(Path(first.dest)) == sha256(
            random_bytes(20_000, seed=0))
        assert m.find(str(downloads / "h1.bin")).id == ids[1]
        assert m.verify(ids[2]).ok
        assert _held(m) == {paused, ids[0], ids[2]}
        with pytest.raises(UnknownDownload):
            m.get(paused + 1000)


def test_new_downloads_queue_after_the_finished_ones(http_server, downloads: Path) -> None:
    ids = _finished(http_server, downloads, 2)
    with manager() as m:
        new = m.add(http_server.add_file("/after.bin", b"x" * 1000), str(downloads))
        m.wait(new)
        assert [i.id for i in m.list()] == [*ids, new]
        m.move(new, -1)  # swaps places with a finished download that was never held
        assert [i.id for i in m.list()] == [ids[0], new, ids[1]]
    with manager() as m:
        assert [i.id for i in m.list()] == [ids[0], new, ids[1]]


def test_a_finished_download_of_an_earlier_session_can_be_removed(http_server,
                                                                  downloads: Path) -> None:
    ids = _finished(http_server, downloads, 2)
    with manager() as m:
        m.remove(ids[0], delete_file=True)
        assert [i.id for i in m.list()] == [ids[1]]
        assert not (downloads / "h0.bin").exists()
    result = run_laden("list", "--json")
    assert result.returncode == 0 and "h0.bin" not in result.stdout and "h1.bin" in result.stdout


def test_a_broken_finished_record_costs_only_itself(http_server, downloads: Path,
                                                    laden_dirs) -> None:
    """A finished record is parsed only when asked for, so one broken by hand is left out
    (with a line in the log) instead of setting the whole journal aside."""
    ids = _finished(http_server, downloads, 3)
    db = sqlite3.connect(laden_dirs["state"] / "journal.sqlite3")
    db.execute("UPDATE downloads SET data = '{not json' WHERE id = ?", (ids[1],))
    db.commit()
    db.close()
    with manager() as m:
        assert m.journal.recovered_from is None
        assert [i.id for i in m.list()] == [ids[0], ids[2]]
        with pytest.raises(UnknownDownload):
            m.get(ids[1])
    result = run_laden("list")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "h2.bin" in result.stdout


def test_a_version_1_journal_is_brought_up_to_date(tmp_path: Path) -> None:
    """Journals written before the state column: every record's state and position are copied
    into their columns once, and nothing is lost."""
    done = Record(url="http://127.0.0.1:9/a", source="http", dest_dir="/tmp", state="done",
                  position=1.0)
    paused = Record(url="http://127.0.0.1:9/b", source="http", dest_dir="/tmp", state="paused",
                    position=2.0)
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    db.executescript("""
        CREATE TABLE downloads (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL,
            done_ranges TEXT NOT NULL DEFAULT '[]', updated REAL NOT NULL);
        PRAGMA user_version=1;
    """)
    for record in (done, paused):
        db.execute("INSERT INTO downloads (data, done_ranges, updated) VALUES (?, '[]', 0)",
                   (record.to_json(),))
    db.commit()
    db.close()
    journal = Journal(str(tmp_path))
    try:
        assert journal.recovered_from is None
        assert [r.url for r in journal.load_unfinished()] == [paused.url]
        assert [r.url for r in journal.load_done()] == [done.url]
        assert journal.last_position() == 2.0
    finally:
        journal.close()
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
