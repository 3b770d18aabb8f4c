"""The journal is never the reason laden cannot start: a broken one is set aside with a visible
message and a fresh one started; a healthy one that merely cannot be opened right now (disk
full, busy) is left exactly where it is."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from engine.helpers import run_laden
from laden.core.errors import JournalError
from laden.store.journal import Journal, Record
from servers.http_server import FileServer

JOURNAL = "journal.sqlite3"


def _healthy_journal(state: Path, count: int = 3) -> bytes:
    journal = Journal(str(state))
    for number in range(count):
        journal.insert(Record(url=f"http://127.0.0.1:9/{number}", source="http",
                              dest_dir="/tmp", state="paused"))
    journal.close()
    for suffix in ("-wal", "-shm"):  # closing the last connection checkpoints the WAL
        assert not (state / (JOURNAL + suffix)).exists()
    return (state / JOURNAL).read_bytes()


BREAKAGES = {
    "garbage": lambda good: b"this is not a database\n" * 200,
    "truncated": lambda good: good[: len(good) // 2],
    "empty header": lambda good: b"\0" * 100 + good[100:],
    # A valid SQLite file that is not a journal laden can use. Rows laden cannot read cost only
    # themselves (test_journal_shapes.py); this costs the file.
    "downloads is a view": None,
}


def _break(state: Path, how: str) -> bytes:
    good = _healthy_journal(state)
    path = state / JOURNAL
    breaker = BREAKAGES[how]
    if breaker is None:
        db = sqlite3.connect(path)
        db.executescript("ALTER TABLE downloads RENAME TO kept; "
                         "CREATE VIEW downloads AS SELECT * FROM kept;")
        db.close()
    else:
        path.write_bytes(breaker(good))
    return path.read_bytes()


@pytest.mark.parametrize("how", list(BREAKAGES))
def test_cli_says_the_journal_was_set_aside(how: str, http_server: FileServer, downloads: Path,
                                            laden_dirs: dict[str, Path]) -> None:
    state = laden_dirs["state"]
    broken = _break(state, how)
    url = http_server.add_file("/after.bin", b"a" * 50_000)
    result = run_laden("get", "-q", "-o", str(downloads), url)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "could not be read" in lines[0], result.stderr
    asides = sorted(state.glob(JOURNAL + ".broken-*"))
    asides = [p for p in asides if not p.name.endswith(("-wal", "-shm"))]
    assert len(asides) == 1 and str(asides[0]) in lines[0]
    assert asides[0].read_bytes() == broken, "the copy kept aside must be the file as it was"
    assert (downloads / "after.bin").read_bytes() == b"a" * 50_000
    # The fresh journal works: it knows the new download, and says nothing more next time.
    listing = run_laden("list")
    assert listing.returncode == 0 and "after.bin" in listing.stdout
    assert listing.stderr == ""


def test_list_says_so_too(laden_dirs: dict[str, Path]) -> None:
    _break(laden_dirs["state"], "garbage")
    result = run_laden("list", "--json")
    assert result.returncode == 0
    assert "could not be read" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_two_recoveries_keep_both_copies(tmp_path: Path) -> None:
    copies = set()
    for round_ in range(2):
        (tmp_path / JOURNAL).write_bytes(f"garbage {round_}".encode() * 100)
        journal = Journal(str(tmp_path))
        assert journal.recovered_from
        copies.add(Path(journal.recovered_from).read_bytes())
        journal.close()
    assert len(copies) == 2, "a second recovery in the same second replaced the first copy"


def test_a_busy_journal_is_not_mistaken_for_a_broken_one(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's operational errors (locked, busy, disk full, read-only) say nothing about the
    file; moving a good journal aside for one would make every download vanish from the list."""
    good = _healthy_journal(tmp_path)

    def locked(self: Journal) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Journal, "_open", locked)
    with pytest.raises(JournalError, match="database is locked"):
        Journal(str(tmp_path))
    assert (tmp_path / JOURNAL).read_bytes() == good
    assert not list(tmp_path.glob("*.broken-*"))


def test_a_full_disk_does_not_cost_the_journal(small_disk: Path) -> None:
    """On a full disk the journal cannot even be opened for writing: laden must say so and
    leave it alone, not declare it broken and start an empty one."""
    state = small_disk / "state"
    state.mkdir()
    good = _healthy_journal(state)
    _fill(small_disk)
    with pytest.raises(JournalError, match="full"):
        Journal(str(state))
    assert (state / JOURNAL).read_bytes() == good
    assert not list(state.glob("*.broken-*"))


def test_a_full_disk_fails_the_command_cleanly(small_disk: Path, laden_dirs: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    state = small_disk / "state"
    state.mkdir()
    _healthy_journal(state)
    _fill(small_disk)
    monkeypatch.setenv("LADEN_STATE_DIR", str(state))
    result = run_laden("get", "-o", str(laden_dirs["downloads"]), "http://127.0.0.1:9/x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot open the journal" in result.stderr and "full" in result.stderr


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\xff" * 65536)
                handle.flush()
        except OSError:
            pass
    # tmpfs keeps a few pages for small writes: take them too.
    number = 0
    while True:
        try:
            (folder / f"crumb{number}").write_bytes(b"x" * 4096)
        except OSError:
            break
        number += 1


def test_unusable_state_folder_is_one_clear_line(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LADEN_STATE_DIR", str(blocker / "state"))
    result = run_laden("get", "-o", str(tmp_path), "http://127.0.0.1:9/x")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(blocker) in result.stderr


def test_the_journal_survives_kills_at_every_stage(http_server: FileServer, downloads: Path,
                                                   laden_dirs: dict[str, Path]) -> None:
    """Covered at scale by test_crash.py (the journal is opened after every kill); here the
    sharpest case: a kill while the journal is being created for the very first time."""
    from faults.helpers import journal_opens_cleanly, start_laden, wait_for

    url = http_server.add_file("/first.bin", b"f" * 100_000)
    state = laden_dirs["state"]
    for _ in range(3):
        for path in state.glob(JOURNAL + "*"):
            path.unlink()
        process = start_laden("get", "-q", "-o", str(downloads), url)
        wait_for(lambda p=process: (state / JOURNAL).exists() or p.poll() is not None,
                 step=0.0005)
        process.kill()
        process.wait()
        journal_opens_cleanly(state)
    assert os.path.exists(state / JOURNAL)


@pytest.mark.anyio
async def test_the_app_says_the_journal_was_set_aside(laden_dirs: dict[str, Path]) -> None:
    from laden.tui.app import open_app

    _break(laden_dirs["state"], "garbage")
    app = open_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause(0.3)
        shown = [f"{n.title} {n.message}" for n in app._notifications]
        assert any("journal" in text.lower() for text in shown), shown


def test_a_folder_whose_name_is_not_utf8(http_server: FileServer, downloads: Path,
                                         laden_dirs: dict[str, Path]) -> None:
    """Linux names are bytes: a folder's that are not UTF-8 reach Python as lone surrogates,
    which the journal must keep as they are (its JSON encoder refuses them)."""
    folder = Path(os.fsdecode(os.fsencode(str(downloads)) + b"/caf\xe9"))
    url = http_server.add_file("/latin1.bin", b"l" * 30_000)
    result = run_laden("get", "-q", "-o", str(folder) + "/", url)
    assert result.returncode == 0, result.stderr
    assert (folder / "latin1.bin").read_bytes() == b"l" * 30_000
    record = Journal(str(laden_dirs["state"])).load_done()[0]
    assert record.dest_dir == str(folder) and record.state == "done"
    again = run_laden("get", "-q", "-o", str(folder) + "/", url)  # known, finished: kept
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["latin1.bin"]
