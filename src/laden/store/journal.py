"""The session journal: every download, what is known about it, and which bytes are on disk.

SQLite in WAL mode: each write is one atomic transaction, so a crash at any moment leaves either
the old or the new record, never half of one. A file that is not a laden journal (truncated,
overwritten by hand, or a database of other tables, views or triggers) is moved aside with a
timestamp and a fresh one started; `recovered_from` tells the UI so it can say so. A file that
merely cannot be used right now (busy, read-only, disk full) stays where it is.

Every row is read as untrusted input (`records`): a row that does not make a `Record` is left
out with a line in the log, costs that download alone, and is never written over, so a later
laden may read it again.

Finished downloads stay in the journal for good, so a start-up reads only the unfinished ones
(`load_unfinished`, through an index on the state column); finished ones are read when asked
for. Before, every start parsed every download ever made: 4,400 of them cost `laden get`
110 ms and 30 MiB.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core.errors import JournalError
from .records import MAX_NUMBER, Record, boot_id, cut, encode_json, trusted_ranges

__all__ = ["Journal", "Record", "boot_id", "trusted_ranges"]

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


class Journal:
    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "journal.sqlite3")
        self.recovered_from: str | None = None
        self.left_out: set[int] = set()
        """Ids of the records that cannot be read: left out of every answer, never written."""
        self._opened: list[Record] | None = None
        self._lock = threading.Lock()
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if _says_nothing_about_the_file(exc):
                    # The file may be perfectly good, so it stays where it is.
                    raise JournalError(f"cannot open the journal {self.path}: {exc}") from None
                self.recovered_from = self._move_aside(str(exc))
                log.warning("the journal %s is not one laden can use (%s); it was moved to %s",
                            self.path, cut(str(exc)), self.recovered_from)
                try:
                    self._db = self._open()
                except sqlite3.DatabaseError as again:
                    raise JournalError(f"cannot open the journal {self.path}: {again}") from None
        except OSError as exc:
            raise JournalError(f"cannot use the state folder {folder}: {exc.strerror or exc}") \
                from None

    def _open(self) -> sqlite3.Connection:
        _owner_only(self.path)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=10)
        try:
            # Checked before anything is written, so a file set aside is kept as it was found.
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise _NotAJournal("integrity check failed")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.path} was written by a newer laden; upgrade laden"
                )
            _check_shape(db)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a crash of laden loses nothing; a power cut may lose the last
            # checkpoint, which only means re-downloading a second of data, never trusting it.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            if "state" not in _columns(db):
                _add_columns(db, self.left_out)
            db.executescript(_INDEXES)
            if version != SCHEMA_VERSION:  # `laden list` beside a running laden: no write
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            # Kept for `load_unfinished`, so they are not parsed twice at start-up.
            self._opened = _readable(db.execute(
                f"SELECT {_COLUMNS} FROM downloads WHERE state != 'done' ORDER BY id"
            ).fetchall(), self.left_out)
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
        return _readable(rows, self.left_out)

    def load(self, download_id: int) -> Record | None:
        """One download, or None when there is none with this id (or it cannot be read)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM downloads WHERE id = ?",
                                    (download_id,)).fetchall()
        return next(iter(_readable(rows, self.left_out)), None)

    def load_done(self, leave_out: Container[int] = ()) -> list[Record]:
        """The finished downloads, but those in `leave_out`."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM downloads WHERE state = 'done' ORDER BY id"
            ).fetchall()
        return _readable((row for row in rows if row[0] not in leave_out), self.left_out)

    def finished_places(self) -> list[tuple[int, object, object]] | None:
        """(id, address, folder) of every finished download, read by SQLite's JSON functions
        without decoding the records: a check of one address against 5,000 finished downloads
        took 150 ms when each was read whole. Values are as the rows hold them (a damaged row's
        may be anything); `load_many` reads the records of those that match. None where this
        SQLite has no JSON functions (`load_done` then)."""
        try:
            with self._lock:
                # As bytes: see `_extracted`.
                self._db.text_factory = bytes
                try:
                    rows = self._db.execute(
                        "SELECT id, json_extract(data, '$.url'), json_extract(data, '$.dest_dir') "
                        "FROM downloads WHERE state = 'done' AND json_valid(data) ORDER BY id"
                    ).fetchall()
                finally:
                    self._db.text_factory = str
        except sqlite3.OperationalError as exc:
            if "no such function" not in str(exc):
                raise
            return None
        return [(row_id, _extracted(url), _extracted(folder)) for row_id, url, folder in rows]

    def load_many(self, ids: Iterable[int]) -> list[Record]:
        """The records of these downloads that exist and can be read, by id."""
        wanted = sorted(set(ids))
        with self._lock:
            rows = [row for start in range(0, len(wanted), 500)
                    for row in self._db.execute(
                        f"SELECT {_COLUMNS} FROM downloads WHERE id IN "
                        f"({','.join('?' * len(wanted[start:start + 500]))}) ORDER BY id",
                        wanted[start:start + 500]).fetchall()]
        return _readable(rows, self.left_out)

    def load_all(self) -> list[Record]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM downloads ORDER BY id").fetchall()
        return _readable(rows, self.left_out)

    def last_position(self) -> float:
        """The highest queue position given so far: a new download goes after it."""
        with self._lock:
            highest = self._db.execute("SELECT max(position) FROM downloads").fetchone()[0]
            if not isinstance(highest, int | float) or not math.isfinite(highest):
                # Text sorts above every number, and inf above every finite one: a row edited
                # by hand must not push every new download to an infinite position.
                highest = self._db.execute(
                    "SELECT max(position) FROM downloads WHERE typeof(position) IN "
                    "('integer', 'real') AND position BETWEEN ? AND ?",
                    (-MAX_NUMBER, MAX_NUMBER),
                ).fetchone()[0]
        return float(highest or 0.0)

    def insert(self, record: Record) -> int:
        with self._lock, self._writing():
            cursor = self._db.execute(
                "INSERT INTO downloads (data, done_ranges, updated, state, position) "
                "VALUES (?, ?, ?, ?, ?)",
                (record.to_json(), encode_json(record.done_ranges), time.time(), record.state,
                 record.position),
            )
            record.id = int(cursor.lastrowid or 0)
        return record.id

    def update(self, record: Record) -> None:
        with self._lock, self._writing():
            self._db.execute(
                "UPDATE downloads SET data = ?, done_ranges = ?, updated = ?, state = ?, "
                "position = ? WHERE id = ?",
                (record.to_json(), encode_json(record.done_ranges), time.time(), record.state,
                 record.position, record.id),
            )

    def save_progress(self, download_id: int, done_ranges: list[tuple[int, int]]) -> None:
        """Record bytes that are already flushed to the partial file."""
        with self._lock, self._writing():
            self._db.execute(
                "UPDATE downloads SET done_ranges = ?, updated = ? WHERE id = ?",
                (encode_json(done_ranges), time.time(), download_id),
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


def _extracted(value: object) -> object:
    """A text json_extract returned, as the record holds it. A folder whose name is not UTF-8
    is held with lone surrogates, which the record's JSON escapes; json_extract writes each as
    the surrogate's own three bytes, which only "surrogatepass" reads back (and which made
    sqlite3's own decoding fail: a rerun into such a folder stopped with a traceback)."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return value  # a damaged row's: it matches no address asked for


def _add_columns(db: sqlite3.Connection, left_out: set[int]) -> None:
    """Bring a version 1 journal to version 2: every record's state and position copied into
    their columns, in one transaction. A record that cannot be read keeps the columns'
    defaults: an unfinished state, so every start says in the log that it is left out."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("ALTER TABLE downloads ADD COLUMN state TEXT NOT NULL DEFAULT ''")
        db.execute("ALTER TABLE downloads ADD COLUMN position REAL NOT NULL DEFAULT 0")
        rows = db.execute(f"SELECT {_COLUMNS} FROM downloads").fetchall()
        for record in _readable(rows, left_out):
            db.execute("UPDATE downloads SET state = ?, position = ? WHERE id = ?",
                       (record.state, record.position, record.id))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _readable(rows: Iterable[tuple[int, str, str]], left_out: set[int]) -> list[Record]:
    """The records of `rows` that can be read. One that cannot costs that download alone: it
    is added to `left_out` with a line in the log (once per journal), and its row stays as it
    is, for a later laden that may read it."""
    records = []
    for row in rows:
        try:
            records.append(Record.from_row(*row))
        except ValueError as exc:
            if row[0] not in left_out:
                left_out.add(row[0])
                log.warning("the journal's download %s cannot be read and is left out: %s",
                            row[0], exc)
    return records


class _NotAJournal(sqlite3.DatabaseError):
    """The file is an SQLite database, but not a journal laden can use as it is."""


_REQUIRED = ("id", "data", "done_ranges", "updated")
_ADDED = ("state", "position")
"""Columns of version 2, added to a version 1 journal when it is opened."""
_NOT_ABOUT_THE_FILE = frozenset({
    sqlite3.SQLITE_PERM, sqlite3.SQLITE_ABORT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_SCHEMA,
    sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_AUTH,
})
"""Primary result codes of SQLite that are about this moment, the disk or the permissions;
every other one (SQLITE_ERROR "no such column", SQLITE_CORRUPT, SQLITE_NOTADB) is about what
the file holds."""


def _says_nothing_about_the_file(exc: sqlite3.DatabaseError) -> bool:
    """Whether `exc` leaves the file as good as it was: then it must stay where it is, or every
    download would vanish from the list for a lock another laden held for a moment."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by Python, not SQLite: only an operational one may be passing
        return isinstance(exc, sqlite3.OperationalError)
    return code & 0xFF in _NOT_ABOUT_THE_FILE


def _columns(db: sqlite3.Connection) -> dict[str, tuple[Any, ...]]:
    """The columns of `downloads` by lower-case name, generated ones included (table_xinfo)."""
    return {str(row[1]).lower(): row for row in db.execute("PRAGMA table_xinfo(downloads)")}


def _check_shape(db: sqlite3.Connection) -> None:
    """Raise _NotAJournal unless every write laden makes will work on this database and
    touch nothing of anyone else's. Read-only: nothing is written before this passes."""
    objects = db.execute("SELECT type, name FROM sqlite_master").fetchall()
    triggers = [name for kind, name in objects if kind == "trigger"]
    if triggers:  # laden never makes one, and one can refuse or change any write
        raise _NotAJournal(f"it has a trigger ({cut(triggers[0], 40)}), which laden never makes")
    kind = next((kind for kind, name in objects if str(name).lower() == "downloads"), None)
    if kind is None:
        others = [name for kind, name in objects
                  if kind == "table" and not str(name).startswith("sqlite_")]
        if others:  # another program's database: laden's table does not belong in it
            raise _NotAJournal(f"it holds other tables ({cut(', '.join(others), 60)}) and no "
                               "downloads")
        return  # new, or a first start was stopped before its table was made
    if kind != "table":
        raise _NotAJournal(f"its downloads is {'an' if kind == 'index' else 'a'} {kind}, "
                           "not a table")
    columns = _columns(db)
    missing = [name for name in _REQUIRED if name not in columns]
    present = [name for name in _ADDED if name in columns]
    if missing or len(present) == 1:
        lacking = missing or [name for name in _ADDED if name not in columns]
        raise _NotAJournal(f"its downloads table has no column {', '.join(lacking)}")
    for name, row in columns.items():
        generated = row[6] != 0
        if name in _REQUIRED + _ADDED and generated:
            raise _NotAJournal(f"its downloads column {name} is computed, so laden cannot "
                               "write it")
        if name not in _REQUIRED + _ADDED and row[3] and row[4] is None and not generated:
            raise _NotAJournal(f"its downloads table needs a value for the column "
                               f"{cut(name, 40)}, which laden does not have")
    id_column = columns["id"]
    if str(id_column[2]).upper() != "INTEGER" or id_column[5] != 1 or sum(
        1 for row in columns.values() if row[5]
    ) != 1 or _without_rowid(db):
        # Only an INTEGER PRIMARY KEY of a rowid table numbers new rows by itself.
        raise _NotAJournal("its downloads table does not number its rows by itself")
    if any(row[2] and row[3] != "pk" for row in db.execute("PRAGMA index_list(downloads)")):
        raise _NotAJournal("its downloads table has a unique index, which laden never makes")


def _without_rowid(db: sqlite3.Connection) -> bool:
    # PRAGMA table_list is SQLite 3.37 or later; an older one answers no rows.
    rows = db.execute("PRAGMA table_list(downloads)").fetchall()
    return bool(rows) and bool(rows[0][4])


def _owner_only(path: str) -> None:
    """The journal readable by its owner only (a new state folder is too): an upload's record
    names the service's unfinished upload, for some services a capability to write to it."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))  # empty: a new one
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)  # a journal written before laden kept it private
    except OSError:
        return  # not a file laden can use: opening it says why
