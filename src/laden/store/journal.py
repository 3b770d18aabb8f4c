"""The session journal: every download, what is known about it, and which bytes are on disk.

SQLite in WAL mode: each write is one atomic transaction, so a crash at any moment leaves either
the old or the new record, never half of one. A journal that still cannot be read (truncated or
overwritten by hand) is moved aside with a timestamp and a fresh one started; `recovered_from`
tells the UI so it can say so.

Finished downloads stay in the journal for good, so a start-up reads only the unfinished ones
(`load_unfinished`, through an index on the state column); finished ones are read when asked
for. Before, every start parsed every download ever made: 4,400 of them cost `laden get`
110 ms and 30 MiB.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from ..engine.errors import JournalError

log = logging.getLogger("laden")

SCHEMA_VERSION = 2
"""2: `state` and `position` columns beside the record, copied from it on every write."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT NOT NULL,
    done_ranges TEXT NOT NULL DEFAULT '[]',
    updated REAL NOT NULL,
    state TEXT NOT NULL DEFAULT '',
    position REAL NOT NULL DEFAULT 0
);
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS downloads_unfinished ON downloads(id) WHERE state != 'done';
CREATE INDEX IF NOT EXISTS downloads_position ON downloads(position);
"""
_COLUMNS = "id, data, done_ranges"


@dataclass
class Record:
    """One download as the journal keeps it. Never holds credentials."""

    url: str
    source: str
    dest_dir: str
    state: str
    filename: str | None = None
    dest: str | None = None
    size: int | None = None
    final_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    version: str | None = None
    supports_ranges: bool | None = None
    done_ranges: list[tuple[int, int]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    checksums: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    retries: int = 0
    position: float = 0.0
    created: float = field(default_factory=time.time)
    finished: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    flushed_ranges: list[tuple[int, int]] = field(default_factory=list)
    """Ranges last forced to disk: all that survives a power cut."""
    boot_id: str | None = None
    """The kernel boot during which `done_ranges` were written (see `trusted_ranges`)."""
    id: int = 0

    def to_json(self) -> str:
        # Not dataclasses.asdict: its deep copy was a sixth of the CPU per small file, and the
        # values are plain JSON already (the caller holds the download's lock).
        data = dict(vars(self))
        data.pop("id")
        data.pop("done_ranges")
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_row(cls, row_id: int, data: str, done: str) -> Record:
        values = json.loads(data)
        record = cls(**{k: v for k, v in values.items() if k in _RECORD_FIELDS})
        record.id = row_id
        record.done_ranges = [(int(s), int(e)) for s, e in json.loads(done)]
        return record


_RECORD_FIELDS = frozenset(f.name for f in fields(Record))
"""Looked up once: per record, `fields()` was 7 % of opening a journal of 5,000 downloads."""


def boot_id() -> str | None:
    """This boot of the machine (Linux); None where the system does not say."""
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
                _BOOT_ID = handle.read().strip()
        except OSError:
            _BOOT_ID = ""
    return _BOOT_ID or None


_BOOT_ID: str | None = None


def trusted_ranges(record: Record) -> list[tuple[int, int]]:
    """The ranges a resume may trust. Written bytes outlive a crash or `kill -9` of laden in the
    page cache, but not a power cut or an OS crash: after a reboot only flushed ones count."""
    current = boot_id()
    if current is not None and record.boot_id == current:
        return record.done_ranges
    return [tuple(r) for r in record.flushed_ranges]  # type: ignore[misc]


class Journal:
    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "journal.sqlite3")
        self.recovered_from: str | None = None
        self._opened: list[Record] | None = None
        self._lock = threading.Lock()
        try:
            os.makedirs(folder, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.OperationalError as exc:
                # Busy, locked, disk full, read-only, unreachable: says nothing about the file,
                # which may be perfectly good, so it stays where it is.
                raise JournalError(f"cannot open the journal {self.path}: {exc}") from None
            except sqlite3.DatabaseError as exc:
                self.recovered_from = self._move_aside(str(exc))
                try:
                    self._db = self._open()
                except sqlite3.DatabaseError as again:
                    raise JournalError(f"cannot open the journal {self.path}: {again}") from None
        except OSError as exc:
            raise JournalError(f"cannot use the state folder {folder}: {exc.strerror or exc}") \
                from None

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=10)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a crash of laden loses nothing; a power cut may lose the last
            # checkpoint, which only means re-downloading a second of data, never trusting it.
            db.execute("PRAGMA synchronous=NORMAL")
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            db.executescript(_SCHEMA)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.path} was written by a newer laden; upgrade laden"
                )
            if "state" not in {row[1] for row in db.execute("PRAGMA table_info(downloads)")}:
                _add_columns(db)
            db.executescript(_INDEXES)
            if version != SCHEMA_VERSION:  # `laden list` beside a running laden: no write
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            # Every unfinished row must parse, or the journal is unreadable; they are kept for
            # `load_unfinished`, so they are not parsed twice at start-up.
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM downloads WHERE state != 'done' ORDER BY id"
            ).fetchall()
            self._opened = [Record.from_row(*row) for row in rows]
        except sqlite3.OperationalError:
            db.close()
            raise
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
            db.close()
            raise sqlite3.DatabaseError(str(exc)) from None
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, reason: str) -> str:
        aside = base = f"{self.path}.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        number = 1
        while os.path.lexists(aside):  # never replace a copy kept from an earlier recovery
            number += 1
            aside = f"{base}-{number}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)
        return aside

    def load_unfinished(self) -> list[Record]:
        """Every download that is not done, in the order they were added."""
        with self._lock:
            opened, self._opened = self._opened, None
            if opened is not None:
                return opened
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM downloads WHERE state != 'done' ORDER BY id"
            ).fetchall()
        return [Record.from_row(*row) for row in rows]

    def load(self, download_id: int) -> Record | None:
        """One download, or None when there is none with this id (or it cannot be read)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM downloads WHERE id = ?",
                                    (download_id,)).fetchall()
        return next(iter(_readable(rows)), None)

    def load_done(self, leave_out: Container[int] = ()) -> list[Record]:
        """The finished downloads, but those in `leave_out`."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM downloads WHERE state = 'done' ORDER BY id"
            ).fetchall()
        return _readable(row for row in rows if row[0] not in leave_out)

    def load_all(self) -> list[Record]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM downloads ORDER BY id").fetchall()
        return _readable(rows)

    def last_position(self) -> float:
        """The highest queue position given so far: a new download goes after it."""
        with self._lock:
            return float(self._db.execute("SELECT max(position) FROM downloads").fetchone()[0]
                         or 0.0)

    def insert(self, record: Record) -> int:
        with self._lock, self._writing():
            cursor = self._db.execute(
                "INSERT INTO downloads (data, done_ranges, updated, state, position) "
                "VALUES (?, ?, ?, ?, ?)",
                (record.to_json(), json.dumps(record.done_ranges), time.time(), record.state,
                 record.position),
            )
            record.id = int(cursor.lastrowid or 0)
        return record.id

    def update(self, record: Record) -> None:
        with self._lock, self._writing():
            self._db.execute(
                "UPDATE downloads SET data = ?, done_ranges = ?, updated = ?, state = ?, "
                "position = ? WHERE id = ?",
                (record.to_json(), json.dumps(record.done_ranges), time.time(), record.state,
                 record.position, record.id),
            )

    def save_progress(self, download_id: int, done_ranges: list[tuple[int, int]]) -> None:
        """Record bytes that are already flushed to the partial file."""
        with self._lock, self._writing():
            self._db.execute(
                "UPDATE downloads SET done_ranges = ?, updated = ? WHERE id = ?",
                (json.dumps(done_ranges), time.time(), download_id),
            )

    def delete(self, download_id: int) -> None:
        with self._lock, self._writing():
            self._db.execute("DELETE FROM downloads WHERE id = ?", (download_id,))

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A failed write (disk full, I/O error) is a JournalError the engine can act on; the
        transaction rolled back, so the journal still holds the previous, true record."""
        try:
            yield
        except sqlite3.Error as exc:
            full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            raise JournalError(f"cannot write the journal {self.path}: {exc}",
                               no_space=full) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _add_columns(db: sqlite3.Connection) -> None:
    """Bring a version 1 journal to version 2: every record's state and position copied into
    their columns, in one transaction. A record that does not parse makes it unreadable."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("ALTER TABLE downloads ADD COLUMN state TEXT NOT NULL DEFAULT ''")
        db.execute("ALTER TABLE downloads ADD COLUMN position REAL NOT NULL DEFAULT 0")
        for row in db.execute(f"SELECT {_COLUMNS} FROM downloads").fetchall():
            record = Record.from_row(*row)
            db.execute("UPDATE downloads SET state = ?, position = ? WHERE id = ?",
                       (record.state, record.position, record.id))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _readable(rows: Iterable[tuple[int, str, str]]) -> list[Record]:
    """The records of `rows` that parse. A finished download's row is read only when asked for,
    so one broken by hand costs that download alone, with a line in the log."""
    records = []
    for row in rows:
        try:
            records.append(Record.from_row(*row))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("the journal's download %s cannot be read and is left out: %s",
                        row[0], exc)
    return records
