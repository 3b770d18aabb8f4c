"""Small helpers shared by the engine tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from laden.core.config import Config
from laden.engine.manager import DownloadManager
from servers.fixtures import wait_for as wait_for  # shared with the other test folders

# Small segments so that a few MB already exercise many connections and splits.
FAST = Config(min_segment_size=64 * 1024, connect_timeout=5, stall_timeout=5,
              checkpoint_interval=0.2)


def sha256(data: bytes | Path | str) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    with open(data, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def manager(config: Config = FAST, **kwargs: object) -> DownloadManager:
    return DownloadManager(config, **kwargs)  # type: ignore[arg-type]


def run_laden(
    *args: str, timeout: float = 60, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess (the environment carries the test folders)."""
    return subprocess.run(
        [sys.executable, "-m", "laden", *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "COLUMNS": "120"}, **kwargs,  # type: ignore[arg-type]
    )


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.laden-part"))


def journalled_bytes(state: Path, name: str | None = None) -> int:
    """Bytes the journal in `state` records as done (of downloads whose record mentions
    `name`), read without disturbing a laden that is running; 0 while there is none yet."""
    import json
    import sqlite3

    path = state / "journal.sqlite3"
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            rows = db.execute("SELECT done_ranges, data FROM downloads").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return 0
    return sum(end - start for ranges, data in rows if name is None or name in data
               for start, end in json.loads(ranges))
