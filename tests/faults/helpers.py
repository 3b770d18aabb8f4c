"""Shared pieces of the trust suite: running laden as a user would, and reading what it left
on disk (the journal, the partial file) to check the promises after every fault."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from servers.fixtures import wait_for as wait_for  # shared with the other test folders

PART = ".laden-part"


def laden_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "laden", *args]


def start_laden(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """`laden ARGS` in the background, with the test's folders (from the environment)."""
    return subprocess.Popen(laden_command(*args), env={**os.environ, "COLUMNS": "120"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def journal_records(state_dir: Path) -> list[dict[str, Any]]:
    """The journal's rows, read the way `laden list --json` reads them, without taking the
    state lock and without writing (a read-only SQLite connection)."""
    path = state_dir / "journal.sqlite3"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT id, data, done_ranges FROM downloads ORDER BY id").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # laden is creating the journal at this very moment
        raise
    finally:
        db.close()
    records = []
    for row_id, data, done in rows:
        record = json.loads(data)
        record["id"] = row_id
        record["done_ranges"] = [tuple(r) for r in json.loads(done)]
        records.append(record)
    return records


def journal_opens_cleanly(state_dir: Path) -> list[Any]:
    """Open the journal as laden does; it must never need to be moved aside after a crash."""
    from laden.store.journal import Journal

    journal = Journal(str(state_dir))
    try:
        assert journal.recovered_from is None, f"the journal was unreadable after a crash: " \
                                               f"moved to {journal.recovered_from}"
        return journal.load_all()
    finally:
        journal.close()


def check_recorded_bytes(part: Path, data: bytes, done_ranges: list[tuple[int, int]]) -> None:
    """Every range the journal calls done must hold the source's bytes in the partial file:
    progress is recorded only after a flush, so a kill can never make it lie."""
    if not done_ranges:
        return
    assert part.exists(), f"the journal records bytes {done_ranges} but {part} is missing"
    with open(part, "rb") as handle:
        for start, end in done_ranges:
            handle.seek(start)
            chunk = handle.read(end - start)
            assert chunk == data[start:end], f"recorded bytes {start}-{end} are not the source's"


def finished_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(PART))


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*" + PART))
