"""A journal edited or damaged by anything but laden (issue 16): rows that are valid JSON of the
wrong shape cost only their own download, and a database that is not laden's journal is set
aside like a corrupt file. Never a traceback, never a command that stops working for good.

Each hostile row goes into a real journal with sqlite3, then laden runs as a user runs it:
`laden list`, `laden list --json`, `laden get` of a served file, and the Python API.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import FAST, run_laden
from laden.cli import main
from laden.cli.logs import setup_logging
from laden.core.errors import JournalError, UnknownDownload
from laden.core.states import State
from laden.store.journal import Journal, Record
from servers.http_server import FileServer

from . import figures

JOURNAL = "journal.sqlite3"
SIZE = 1000
"""The size every hostile record claims, so ranges beyond it can be tried."""
LONG = 200_000
"""A value this long must never reach the log or the screen in full."""


def _base() -> dict[str, Any]:
    record = Record(url="http://127.0.0.1:9/hostile.bin", source="http", dest_dir="/tmp",
                    state="paused", size=SIZE, filename="hostile.bin",
                    options={"connections": 2, "headers": {"X-Kind": "test"}},
                    checksums=[{"algorithm": "sha256", "expected": "ab" * 32, "origin": "you"}],
                    errors=[{"time": 1.0, "message": "earlier"}], flushed_ranges=[(0, 10)])
    return json.loads(record.to_json())


def _with(key: str, raw: str) -> str:
    """The JSON of a good record, with `key` set to the JSON text `raw` (which may be what
    Python's json writes but no other reader takes: NaN, 1e400)."""
    values = _base()
    values.pop(key, None)
    return json.dumps(values)[:-1] + f', "{key}": {raw}}}'


DATA_SHAPES: dict[str, str | bytes] = {
    "an empty list": "[]",
    "null": "null",
    "a string": '"a record"',
    "a number": "42",
    "an empty object": "{}",
    "not JSON": "{not json",
    "empty text": "",
    "invalid UTF-8": b"\xff\xfe{",
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "a number of 5,000 digits": _with("size", "1" * 5000),
    "size 1e400": _with("size", "1e400"),
    "size as text": _with("size", '"1000"'),
    "size below zero": _with("size", "-1"),
    "size past 2**63": _with("size", str(2**64)),
    "size true": _with("size", "true"),
    "an unknown state": _with("state", '"exploded"'),
    "a state of 200,000 characters": _with("state", json.dumps("z" * LONG)),
    "state null": _with("state", "null"),
    "no url": json.dumps({k: v for k, v in _base().items() if k != "url"}),
    "url a number": _with("url", "5"),
    "url with an open bracket": _with("url", '"http://[::1/x"'),
    "dest_dir a list": _with("dest_dir", "[]"),
    "options a list": _with("options", "[]"),
    "options null": _with("options", "null"),
    "connections 0": _with("options", '{"connections": 0}'),
    "connections as text": _with("options", '{"connections": "4"}'),
    "headers a list": _with("options", '{"headers": ["X: y"]}'),
    "a header value a number": _with("options", '{"headers": {"X": 5}}'),
    "a header with CR LF": _with("options", '{"headers": {"X": "a\\r\\nB: c"}}'),
    "a proxy of 200,000 characters": _with("options", json.dumps({"proxy": "p" * LONG})),
    "a checksum that is a number": _with("checksums", "[5]"),
    "a checksum without expected": _with("checksums", '[{"algorithm": "sha256"}]'),
    "a checksum of no known algorithm": _with(
        "checksums", '[{"algorithm": "rot13", "expected": "x", "origin": "you"}]'),
    "checksums a mapping": _with("checksums", '{"sha256": "ab"}'),
    "errors a string": _with("errors", '"boom"'),
    "an error without time": _with("errors", '[{"message": "x"}]'),
    "an error at time 1e400": _with("errors", '[{"time": 1e400, "message": "x"}]'),
    "position NaN": _with("position", "NaN"),
    "position 1e400": _with("position", "1e400"),
    "position as text": _with("position", '"first"'),
    "created as text": _with("created", '"yesterday"'),
    "finished -Infinity": _with("finished", "-Infinity"),
    "retries below zero": _with("retries", "-1"),
    "retries 1.5": _with("retries", "1.5"),
    "flushed ranges backwards": _with("flushed_ranges", "[[10, 5]]"),
    "flushed ranges past the size": _with("flushed_ranges", f"[[0, {SIZE + 1}]]"),
    "flushed ranges a mapping": _with("flushed_ranges", '{"0": 10}'),
    "extra a list": _with("extra", "[]"),
    "message a number": _with("message", "5"),
    "supports_ranges as text": _with("supports_ranges", '"yes"'),
    "boot_id a list": _with("boot_id", "[]"),
}

DONE_SHAPES: dict[str, str | bytes] = {
    "an object": "{}",
    "null": "null",
    "a string": '"0-100"',
    "a number": "7",
    "not JSON": "[[0, 1",
    "an end of 1e400": "[[0, 1e400]]",
    "a range of one number": "[[0]]",
    "a range of three numbers": "[[0, 1, 2]]",
    "a start below zero": "[[-5, 10]]",
    "backwards": "[[10, 5]]",
    "empty": "[[5, 5]]",
    "past the size": f"[[0, {SIZE + 1}]]",
    "numbers as text": '[["0", "10"]]',
    "fractions": "[[0.5, 10]]",
    "booleans": "[[false, true]]",
    "a range that is an object": '[{"start": 0, "end": 10}]',
}

SHAPES = [("data", name, value) for name, value in DATA_SHAPES.items()] + [
    ("done_ranges", name, value) for name, value in DONE_SHAPES.items()]
SHAPE_IDS = [f"{column}: {name}" for column, name, _ in SHAPES]


def _journal(state: Path, url: str = "http://127.0.0.1:9/good.bin",
             dest_dir: str = "/tmp") -> list[int]:
    """A journal of four downloads: a good paused one (1), two laden will find hostile, one
    unfinished (2) and one finished (3), and a good finished one (4)."""
    journal = Journal(str(state))
    ids = []
    for number, (name, kind) in enumerate([("good.bin", "paused"), ("hostile.bin", "paused"),
                                           ("hostile.bin", "done"), ("old.bin", "done")]):
        record = Record(url=url if number == 0 else f"http://127.0.0.1:9/{name}",
                        source="http", dest_dir=dest_dir, state=kind, position=float(number),
                        size=SIZE, filename=f"{number}-{name}",
                        dest=f"{dest_dir}/{number}-{name}")
        if kind == "done":
            record.done_ranges = [(0, SIZE)]
        ids.append(journal.insert(record))
    journal.close()
    return ids


def _spoil(state: Path, column: str, value: str | bytes, ids: tuple[int, ...] = (2, 3)) -> dict:
    """Write `value` into `column` of the rows `ids`; returns the rows as written."""
    db = sqlite3.connect(state / JOURNAL)
    with db:
        for row_id in ids:
            db.execute(f"UPDATE downloads SET {column} = ? WHERE id = ?", (value, row_id))
    rows = _rows(state, db)
    db.close()
    return rows


def _rows(state: Path, db: sqlite3.Connection | None = None) -> dict[int, tuple[Any, Any]]:
    own = db is None
    db = db or sqlite3.connect(state / JOURNAL)
    try:
        return {row[0]: (row[1], row[2]) for row in
                db.execute("SELECT id, data, done_ranges FROM downloads ORDER BY id")}
    finally:
        if own:
            db.close()


def _log(laden_dirs: dict[str, Path]) -> str:
    path = laden_dirs["logs"] / "laden.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _besides_left_out(stderr: str) -> list[str]:
    """The lines of `stderr` but the notes of left-out records (commands that keep no log file
    print them), which must each be one short line."""
    lines = []
    for line in stderr.splitlines():
        if "cannot be read and is left out" in line:
            assert len(line) < 400, "a hostile value reached the screen in full"
        elif line.strip():
            lines.append(line)
    return lines


def _assert_told_once_and_short(log: str, ids: tuple[int, ...] = (2, 3)) -> None:
    for row_id in ids:
        lines = [line for line in log.splitlines()
                 if f"download {row_id} cannot be read and is left out" in line]
        assert len(lines) == 1, log[-2000:]
        assert len(lines[0]) < 400, "a hostile value reached the log in full"


@pytest.mark.parametrize(("column", "name", "value"), SHAPES, ids=SHAPE_IDS)
def test_list_leaves_out_a_record_of_the_wrong_shape(
        column: str, name: str, value: str | bytes, laden_dirs: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    figures.FIGURES["bad inputs tried"] += 1
    state = laden_dirs["state"]
    _journal(state)
    written = _spoil(state, column, value)
    setup_logging(None)  # `laden list` logs nowhere of its own; this test reads the log

    assert main(["list"]) == 0  # an exception escaping here is a traceback for the user
    out, err = capsys.readouterr()
    assert err == ""
    names = [line.split()[-1] for line in out.splitlines()[1:]]
    assert names == ["0-good.bin", "3-old.bin"], out
    _assert_told_once_and_short(_log(laden_dirs))

    assert main(["list", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(d["id"], d["state"]) for d in listed] == [(1, "paused"), (4, "done")]
    assert _rows(state) == written, "laden wrote over a row it could not read"
    assert not list(state.glob(JOURNAL + ".broken-*")), "one bad row cost the whole journal"


@pytest.mark.parametrize(("column", "name", "value"), SHAPES, ids=SHAPE_IDS)
def test_the_python_api_works_beside_a_record_of_the_wrong_shape(
        column: str, name: str, value: str | bytes, http_server: FileServer, downloads: Path,
        laden_dirs: dict[str, Path]) -> None:
    """The engine holds the good unfinished download and resumes it; the hostile ones are
    unknown to it, and it neither rewrites nor deletes their rows."""
    from laden import DownloadManager

    figures.FIGURES["bad inputs tried"] += 1
    state = laden_dirs["state"]
    url = http_server.add_file("/good.bin", b"g" * SIZE)
    _journal(state, url, str(downloads))
    written = _spoil(state, column, value)

    with DownloadManager(FAST) as manager:
        assert manager.journal is not None and manager.journal.recovered_from is None
        assert [i.id for i in manager.list()] == [1, 4]
        for left_out in (2, 3):
            with pytest.raises(UnknownDownload):
                manager.get(left_out)
            with pytest.raises(UnknownDownload):
                manager.remove(left_out)
        manager.resume(1)
        assert manager.wait(1, timeout=30).state is State.DONE
        new = manager.add(http_server.add_file("/new.bin", b"n" * 500), str(downloads))
        assert manager.wait(new, timeout=30).state is State.DONE
        assert new == 5
    assert (downloads / "0-good.bin").read_bytes() == b"g" * SIZE
    assert (downloads / "new.bin").read_bytes() == b"n" * 500
    after = _rows(state)
    assert {i: after[i] for i in (2, 3)} == {i: written[i] for i in (2, 3)}


GET_SHAPES = ["data: an empty list", "data: size 1e400", "data: options a list",
              "data: a checksum that is a number", "data: an unknown state",
              "data: a state of 200,000 characters", "done_ranges: an end of 1e400"]


@pytest.mark.parametrize("shape", GET_SHAPES)
def test_laden_get_and_list_work_beside_a_record_of_the_wrong_shape(
        shape: str, http_server: FileServer, downloads: Path,
        laden_dirs: dict[str, Path]) -> None:
    """The commands as a user runs them, each in its own process."""
    figures.FIGURES["bad inputs tried"] += 1
    column, name, value = SHAPES[SHAPE_IDS.index(shape)]
    state = laden_dirs["state"]
    _journal(state)
    written = _spoil(state, column, value)
    url = http_server.add_file("/fresh.bin", b"f" * 30_000)

    result = run_laden("get", "-q", "-o", str(downloads), url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (downloads / "fresh.bin").read_bytes() == b"f" * 30_000
    _assert_told_once_and_short(_log(laden_dirs), ids=(2,))  # `get` reads only unfinished ones

    listing = run_laden("list")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    assert "fresh.bin" in listing.stdout and "0-good.bin" in listing.stdout
    assert "hostile" not in listing.stdout
    assert _besides_left_out(listing.stderr) == []

    for command in (["resume", "2"], ["remove", "3"]):
        refused = run_laden(*command)
        assert refused.returncode == 2, refused.stderr
        lines = _besides_left_out(refused.stderr)
        assert len(lines) == 1 and f"no download with id {command[1]}" in lines[0], lines
    assert {i: _rows(state)[i] for i in (2, 3)} == {i: written[i] for i in (2, 3)}


def test_a_version_1_journal_with_a_hostile_record_is_brought_up_to_date(
        tmp_path: Path) -> None:
    """Before, a record that did not parse made the whole old journal unreadable."""
    figures.FIGURES["bad inputs tried"] += 1
    good = Record(url="http://127.0.0.1:9/a", source="http", dest_dir="/tmp", state="paused",
                  position=1.0)
    db = sqlite3.connect(tmp_path / JOURNAL)
    db.executescript("""
        CREATE TABLE downloads (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL,
            done_ranges TEXT NOT NULL DEFAULT '[]', updated REAL NOT NULL);
        PRAGMA user_version=1;
    """)
    for data in (good.to_json(), DATA_SHAPES["options a list"], good.to_json()):
        db.execute("INSERT INTO downloads (data, done_ranges, updated) VALUES (?, '[]', 0)",
                   (data,))
    db.commit()
    db.close()
    journal = Journal(str(tmp_path))
    try:
        assert journal.recovered_from is None
        assert [r.id for r in journal.load_unfinished()] == [1, 3]
        assert journal.left_out == {2}
        assert journal.load(2) is None
    finally:
        journal.close()


def test_records_laden_wrote_still_read() -> None:
    """The checks keep out what laden never writes, and nothing it does: every field set,
    keys of a newer laden, and the bare minimum of an old one."""
    full = Record(url="s3://bucket/key", source="s3", dest_dir="/d", state="failed",
                  filename="key", dest="/d/key", size=10, final_url="https://h/key",
                  etag='"e"', last_modified="Mon", version="v1", supports_ranges=True,
                  done_ranges=[(0, 4), (6, 10)], options={"connections": 3, "limit_rate": 5,
                  "headers": {"X": "y"}, "proxy": "http://127.0.0.1:3128", "netrc": False,
                  "source_settings": {"region": "eu"}},
                  checksums=[{"algorithm": "s3-etag-8388608", "expected": "x", "origin": "S3",
                              "actual": None, "verified": None}],
                  errors=[{"time": 2.5, "message": "timeout"}], message="m", retries=3,
                  position=-2.0, created=1.0, finished=3, extra={"any": [1, {"x": None}]},
                  group="g", flushed_ranges=[(0, 4)], boot_id="b", id=7)
    read = Record.from_row(7, full.to_json(), json.dumps(full.done_ranges))
    assert read == full, "a field of Record is missing from the journal's schema"
    newer = json.dumps({**json.loads(full.to_json()), "added_by_a_newer_laden": [1, 2]})
    assert Record.from_row(7, newer, "[]").url == full.url
    bare = Record.from_row(1, '{"url": "http://h/f", "source": "http", "dest_dir": "/d", '
                              '"state": "queued"}', "[]")
    assert bare.size is None and bare.options == {} and bare.checksums == []


# -- databases that are not laden's journal --------------------------------------------------

_LADEN_TABLE = """CREATE TABLE downloads (id INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT NOT NULL, done_ranges TEXT NOT NULL DEFAULT '[]', updated REAL NOT NULL,
    state TEXT NOT NULL DEFAULT '', position REAL NOT NULL DEFAULT 0)"""

DATABASES = {
    "downloads is a view": "CREATE TABLE kept (id INTEGER PRIMARY KEY, data TEXT, "
                           "done_ranges TEXT, updated REAL, state TEXT, position REAL); "
                           "CREATE VIEW downloads AS SELECT * FROM kept;",
    "downloads is an index": "CREATE TABLE t (x); CREATE INDEX downloads ON t(x);",
    "another program's downloads table": "CREATE TABLE downloads (id INTEGER PRIMARY KEY, "
                                         "url TEXT, path TEXT);",
    "no done_ranges column": "CREATE TABLE downloads (id INTEGER PRIMARY KEY, data TEXT, "
                             "updated REAL);",
    "a column laden cannot fill": _LADEN_TABLE[:-1] + ", owner TEXT NOT NULL);",
    "a trigger that refuses writes": _LADEN_TABLE + "; CREATE TRIGGER no BEFORE INSERT ON "
                                     "downloads BEGIN SELECT RAISE(ABORT, 'read only'); END;",
    "a trigger that deletes": _LADEN_TABLE + "; CREATE TRIGGER gone AFTER UPDATE ON downloads "
                              "BEGIN DELETE FROM downloads; END;",
    "only another program's tables": "CREATE TABLE songs (title TEXT); "
                                     "INSERT INTO songs VALUES ('kept');",
    "a text id": _LADEN_TABLE.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT PRIMARY KEY"),
    "a table without rowid": _LADEN_TABLE.replace(" AUTOINCREMENT", "") + " WITHOUT ROWID;",
    "a unique index": _LADEN_TABLE + "; CREATE UNIQUE INDEX one ON downloads(state);",
    "state without position": _LADEN_TABLE.replace(", position REAL NOT NULL DEFAULT 0", ""),
    "a computed data column": _LADEN_TABLE.replace("data TEXT NOT NULL",
                                                   "data TEXT AS ('{}')"),
}


def _database(state: Path, script: str) -> bytes:
    db = sqlite3.connect(state / JOURNAL)
    db.executescript(script)
    db.close()
    return (state / JOURNAL).read_bytes()


def _asides(state: Path) -> list[Path]:
    return [p for p in sorted(state.glob(JOURNAL + ".broken-*"))
            if not p.name.endswith(("-wal", "-shm"))]


@pytest.mark.parametrize("how", list(DATABASES))
def test_a_database_that_is_not_a_laden_journal_is_set_aside(
        how: str, laden_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    figures.FIGURES["bad inputs tried"] += 1
    state = laden_dirs["state"]
    original = _database(state, DATABASES[how])

    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "could not be read" in lines[0], err
    asides = _asides(state)
    assert len(asides) == 1 and str(asides[0]) in lines[0]
    assert asides[0].read_bytes() == original, "the copy kept aside must be the file as found"
    assert out.strip() == "no downloads yet"

    journal = Journal(str(state))  # the fresh journal works, and says nothing more
    try:
        assert journal.recovered_from is None
        new = journal.insert(Record(url="http://127.0.0.1:9/x", source="http", dest_dir="/tmp",
                                    state="paused"))
        record = journal.load(new)
        assert record is not None
        record.state = "queued"
        journal.update(record)
        assert [r.state for r in journal.load_all()] == ["queued"]
    finally:
        journal.close()


@pytest.mark.parametrize("how", ["downloads is a view", "a trigger that refuses writes",
                                 "another program's downloads table"])
def test_laden_get_sets_aside_a_database_that_is_not_a_journal(
        how: str, http_server: FileServer, downloads: Path,
        laden_dirs: dict[str, Path]) -> None:
    """Before, each of these was exit 1 on every command, and the file never moved."""
    figures.FIGURES["bad inputs tried"] += 1
    state = laden_dirs["state"]
    _database(state, DATABASES[how])
    url = http_server.add_file("/after.bin", b"a" * 20_000)
    result = run_laden("get", "-q", "-o", str(downloads), url)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not be read" in lines[0], result.stderr
    assert (downloads / "after.bin").read_bytes() == b"a" * 20_000
    again = run_laden("get", "-q", "-o", str(downloads), url)
    assert again.returncode == 0 and again.stderr == ""
    assert len(_asides(state)) == 1


def test_the_python_api_says_the_journal_was_set_aside(laden_dirs: dict[str, Path]) -> None:
    from laden import DownloadManager

    figures.FIGURES["bad inputs tried"] += 1
    _database(laden_dirs["state"], DATABASES["downloads is a view"])
    with DownloadManager(FAST) as manager:
        assert manager.journal is not None and manager.journal.recovered_from
        assert manager.list() == []


def test_a_journal_that_cannot_be_opened_stays_where_it_is(tmp_path: Path) -> None:
    """SQLite's "unable to open" says nothing about the file: nothing is moved aside."""
    figures.FIGURES["bad inputs tried"] += 1
    (tmp_path / JOURNAL).mkdir()
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(str(tmp_path))
    assert (tmp_path / JOURNAL).is_dir()
    assert not _asides(tmp_path)


def test_a_newer_laden_journal_of_another_shape_is_not_set_aside(tmp_path: Path) -> None:
    """A journal of a newer laden may have changed shape: the shape is judged only after the
    version, so upgrading laden gets it back whole."""
    figures.FIGURES["bad inputs tried"] += 1
    original = _database(tmp_path, "CREATE TABLE downloads (id INTEGER PRIMARY KEY, v3 TEXT); "
                                   "PRAGMA user_version=3;")
    with pytest.raises(JournalError, match="newer laden"):
        Journal(str(tmp_path))
    assert (tmp_path / JOURNAL).read_bytes() == original
    assert not _asides(tmp_path)


def _real_error(tmp_path: Path, kind: str) -> sqlite3.DatabaseError:
    """An error as SQLite itself raises it, code and all."""
    path = tmp_path / f"{kind}.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("SELECT * FROM t" if kind == "busy" else "SELECT nothing FROM nowhere")
    except sqlite3.DatabaseError as exc:
        return exc
    finally:
        other.close()
        holder.close()
    raise AssertionError("SQLite raised nothing")


@pytest.mark.parametrize(("kind", "moved"), [("busy", False), ("not laden's", True)])
def test_sqlite_errors_are_told_apart_by_their_code(kind: str, moved: bool, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Both are OperationalError; only the code says whether the file is to blame."""
    figures.FIGURES["bad inputs tried"] += 1
    error = _real_error(tmp_path, "busy" if kind == "busy" else "other")
    assert isinstance(error, sqlite3.OperationalError) and error.sqlite_errorcode
    state = tmp_path / "journal-folder"
    journal = Journal(str(state))
    journal.close()
    good = (state / JOURNAL).read_bytes()
    opened = Journal._open
    calls = []

    def failing_once(self: Journal) -> sqlite3.Connection:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return opened(self)

    monkeypatch.setattr(Journal, "_open", failing_once)
    if not moved:
        with pytest.raises(JournalError, match="cannot open the journal"):
            Journal(str(state))
        assert (state / JOURNAL).read_bytes() == good and not _asides(state)
        return
    journal = Journal(str(state))
    journal.close()
    assert journal.recovered_from and _asides(state)
    assert Path(journal.recovered_from).read_bytes() == good
