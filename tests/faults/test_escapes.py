"""Nothing a server or a user supplies reaches the terminal raw (issue 16): ETags holding
`ESC ] 0;title BEL` or `ESC [2J`, C1 controls (U+009B, the one-byte CSI), bidi overrides and
zero-width characters in names and addresses. Every face shows them as visible escapes
(`\\x1b`, `\\u202e`): `laden get` and `laden list` in plain lines, in a terminal and as JSON,
`laden run`, the log file and the app. Saved file names drop them altogether.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from laden.cli import main
from laden.core.names import sanitize_filename
from laden.core.printable import printable
from laden.core.states import State
from servers.http_server import Faults, FileServer

from . import figures

BODY = b"harmless bytes\n" * 20_000
BIG = BODY * 16
"""More than laden's first request asks for, so later ranged requests see the ETag change."""
ETAG = '"v1\x1b]0;pwned\x07\x1b[2J\x9b31m"'
"""Sent as is: ESC and BEL are legal header bytes, and U+009B goes out as the byte 0x9b."""
ETAG_SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m"
BIDI_NAME_HEADER = "attachment; filename*=UTF-8''" + quote("invoice\u202egpj.exe")
HIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u200b", "\ufeff")


def _raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on or that reorder or hide text; newlines excepted."""
    return [c for c in text if c != "\n" and not c.isprintable()
            and unicodedata.category(c) != "Zs"]


def _assert_shown_safely(data: bytes | str, where: str) -> str:
    """`data` holds no escape, C1, bidi or zero-width character; returns it as text."""
    if isinstance(data, bytes):
        assert b"\x1b" not in data and b"\x9b" not in data, f"{where}: {data!r}"
        data = data.decode("utf-8")  # strict: laden writes UTF-8 or nothing
    bad = _raw_controls(data)
    assert not bad, f"{where} shows {bad!r} raw: {data!r}"
    return data


def _laden(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    figures.FIGURES["bad inputs tried"] += 1
    return subprocess.run([sys.executable, "-m", "laden", *args], capture_output=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "120"})


def _changing_file(server: FileServer, path: str = "/changing.bin", **extra: str) -> str:
    """A file whose ETag (hostile) and Last-Modified change on every answer: `laden get`
    restarts, then gives up with "the remote file changed (ETag ... -> ...)"."""
    return server.add_file(path, BIG, etag=ETAG, faults=Faults(change_every_request=True),
                           **extra)  # type: ignore[arg-type]


# -- printable itself ----------------------------------------------------------------------

HOSTILE = {
    "\x1b": "\\x1b", "\x07": "\\x07", "\x00": "\\x00", "\x7f": "\\x7f", "\x08": "\\x08",
    "\r": "\\r", "\t": "\\t", "\n": "\\n", "\x9b": "\\x9b", "\x85": "\\x85", "\x9d": "\\x9d",
    "\u202a": "\\u202a", "\u202b": "\\u202b", "\u202c": "\\u202c", "\u202d": "\\u202d",
    "\u202e": "\\u202e", "\u2066": "\\u2066", "\u2067": "\\u2067", "\u2068": "\\u2068",
    "\u2069": "\\u2069", "\u200e": "\\u200e", "\u200f": "\\u200f", "\u061c": "\\u061c",
    "\u200b": "\\u200b", "\u200c": "\\u200c", "\u200d": "\\u200d", "\u2060": "\\u2060",
    "\ufeff": "\\ufeff", "\u00ad": "\\xad", "\u2028": "\\u2028", "\u2029": "\\u2029",
    "\u3164": "\\u3164", "\ud800": "\\ud800", "\U000e0041": "\\U000e0041",
}


@pytest.mark.parametrize("char", list(HOSTILE), ids=[f"U+{ord(c):04X}" for c in HOSTILE])
def test_printable_shows_each_hidden_character_as_an_escape(char: str) -> None:
    figures.FIGURES["bad inputs tried"] += 1
    assert printable(f"a{char}b") == f"a{HOSTILE[char]}b"


@pytest.mark.parametrize("text", ["plain.iso", "café über.txt", "日本語 ファイル", "emoji 😀.png",
                                  "no\u00a0break space", "x" * 1000])
def test_printable_leaves_ordinary_text_alone(text: str) -> None:
    assert printable(text) == text
    if text.isprintable():
        assert printable(text) is text  # the fast path: not even a copy


def test_printable_keeps_newlines_only_when_asked() -> None:
    text = "line one\x1b[2J\nline two\u202e\n"
    assert printable(text, newlines=True) == "line one\\x1b[2J\nline two\\u202e\n"
    assert printable(text) == "line one\\x1b[2J\\nline two\\u202e\\n"


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_printable_output_never_holds_a_control(text: str) -> None:
    shown = printable(text)
    assert not _raw_controls(shown.replace("\n", "\\n")), repr(shown)
    assert "\n" not in shown
    assert printable(shown) == shown  # already safe: a second pass changes nothing


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list(HOSTILE))))
def test_printable_multiline_output_is_printable_line_by_line(text: str) -> None:
    shown = printable(text, newlines=True)
    assert shown.count("\n") == text.count("\n")
    for line in shown.split("\n"):
        assert not _raw_controls(line), repr(line)


# -- file names ----------------------------------------------------------------------------

NAMES = {
    "invoice\u202egpj.exe": "invoicegpj.exe",  # shows as invoiceexe.jpg
    "a\x9b[2Jb.txt": "a[2Jb.txt",
    "\u2066evil\u2069.txt": "evil.txt",
    "report\u200f\u200e.pdf": "report.pdf",
    "\u061carabic.txt": "arabic.txt",
    "x\u200b\u200c\u200d.pdf": "x.pdf",
    "pic\u2060.png\ufeff": "pic.png",
    "\ufeffbom.txt": "bom.txt",
    "two\u2028lines.txt": "twolines.txt",
    "a\x85b\x7f.txt": "ab.txt",
    "\u202e\u200b": None,
}


@pytest.mark.parametrize("name", list(NAMES))
def test_saved_names_drop_hidden_characters(name: str) -> None:
    figures.FIGURES["bad inputs tried"] += 1
    assert sanitize_filename(name, windows=False) == NAMES[name]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list(HOSTILE))))
def test_no_saved_name_holds_a_control_or_format_character(name: str) -> None:
    safe = sanitize_filename(name, windows=False)
    if safe is not None:
        hidden = [c for c in safe if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
        assert not hidden, repr(safe)


# -- laden get, laden list: a hostile ETag -------------------------------------------------


def test_a_changed_etag_is_shown_escaped_by_get_and_list(http_server: FileServer,
                                                        downloads: Path) -> None:
    url = _changing_file(http_server)
    done = _laden("get", "-o", f"{downloads}/", url)
    assert done.returncode == 1, done.stderr
    out = _assert_shown_safely(done.stdout, "laden get's progress lines")
    err = _assert_shown_safely(done.stderr, "laden get's error line")
    assert "the remote file changed (ETag" in err and ETAG_SHOWN in err, err
    assert ETAG_SHOWN in out  # the plain line of the failed download
    listed = _laden("list")
    shown = _assert_shown_safely(listed.stdout, "laden list")
    assert ETAG_SHOWN in shown and len(shown.splitlines()) == 2, shown


def test_json_output_escapes_every_hidden_character(http_server: FileServer,
                                                   downloads: Path) -> None:
    url = _changing_file(http_server, "/named.php", content_disposition=BIDI_NAME_HEADER)
    address = url + "?\u202e=\u2066"
    for output in (_laden("get", "--json", "-o", f"{downloads}/", address).stdout,
                   _laden("list", "--json").stdout):
        assert output.isascii(), output  # json.dumps escapes controls and bidi alike
        events = [json.loads(line) for line in output.decode().splitlines()]
        # JSON keeps the data exact for programs: the raw characters come back on parsing.
        assert any("\x1b]0;pwned" in (e.get("message") or "") for e in events), events
        assert any("\u202e" in (e.get("url") or "") for e in events), events


def test_the_progress_display_in_a_terminal_stays_safe(http_server: FileServer,
                                                      downloads: Path) -> None:
    """With a terminal on stdout laden draws rich's progress bars: its own escapes get
    through, the server's never do."""
    url = _changing_file(http_server, "/named.php", content_disposition=BIDI_NAME_HEADER)
    figures.FIGURES["bad inputs tried"] += 1
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "laden", "get", "-o", f"{downloads}/", url],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
        env={**os.environ, "COLUMNS": "120", "LINES": "30", "TERM": "xterm-256color"})
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=30) == 1, seen
    assert b"\x1b[" in seen, "rich's display did not draw at all"
    for raw in (b"\x1b]0;pwned", b"\x1b[2J", b"\x07", b"\xc2\x9b", "\u202e".encode()):
        assert raw not in seen, f"{raw!r} reached the terminal: {seen!r}"
    assert ETAG_SHOWN.encode() in seen
    assert b"invoicegpj.exe" in seen


# -- names from Content-Disposition and addresses ------------------------------------------

DISPOSITIONS = {
    BIDI_NAME_HEADER: "invoicegpj.exe",
    "attachment; filename=\"a\x9b[2Jb.txt\"": "a[2Jb.txt",  # the byte 0x9b: U+009B
    "attachment; filename*=UTF-8''" + quote("\u2066\u202b\u200breport\u200f.pdf"): "report.pdf",
    "attachment; filename*=UTF-8''" + quote("\ufeffnotes\u2060.txt\u061c"): "notes.txt",
    "attachment; filename*=UTF-8''" + quote("x\x9d0;t\x9c.bin"): "x0;t.bin",  # C1 OSC ... ST
}


@pytest.mark.parametrize("header", list(DISPOSITIONS))
def test_content_disposition_names_are_saved_and_listed_clean(header: str,
                                                              http_server: FileServer,
                                                              downloads: Path) -> None:
    url = http_server.add_file("/get.php", BODY, content_disposition=header)
    done = _laden("get", "-o", f"{downloads}/", url)
    assert done.returncode == 0, done.stderr
    name = DISPOSITIONS[header]
    assert [p.name for p in downloads.iterdir()] == [name]
    assert (downloads / name).read_bytes() == BODY
    out = _assert_shown_safely(done.stdout, "laden get")
    assert f"saved {downloads / name} " in out
    listed = _assert_shown_safely(_laden("list").stdout, "laden list")
    assert listed.splitlines()[1].endswith(f"  {name}"), listed


ADDRESSES = {
    # Served, so the name comes from the address: it is saved without the hidden characters.
    "/\u202egpj.exe": ("gpj.exe", 0),
    "/pic\u2066.png\u2069": ("pic.png", 0),
    # Not served: the failure names the address, escaped.
    "/gone\x1b]0;pwned\x07\x1b[2J.bin": (None, 1),
    "/gone\u202e\x9b.bin": (None, 1),
}


@pytest.mark.parametrize("path", list(ADDRESSES))
def test_addresses_with_escapes_are_shown_escaped(path: str, http_server: FileServer,
                                                  downloads: Path) -> None:
    saved, code = ADDRESSES[path]
    if saved is not None:
        http_server.add_file(path, BODY)
    address = http_server.base_url + path  # as typed: the characters raw in the address
    done = _laden("get", "-o", f"{downloads}/", address)
    assert done.returncode == code, done.stderr
    _assert_shown_safely(done.stdout, "laden get")
    err = _assert_shown_safely(done.stderr, "laden get's errors")
    listed = _assert_shown_safely(_laden("list").stdout, "laden list")
    if saved is not None:
        assert [p.name for p in downloads.iterdir()] == [saved]
        assert saved in listed
    else:
        assert err.startswith("laden: ") and len(err.splitlines()) == 1, err
        assert not list(downloads.iterdir())


IN_PROCESS = {
    "output folder named with escapes": ["get", "-o", "/dev/null/\x1b]0;pwned\x07\u202e",
                                         "http://127.0.0.1:9/x"],
    "unknown option with escapes": ["list", "--\x1b[2J\x9b"],
    "app option with escapes": ["--\x1b]0;pwned\x07"],
    "verify target with escapes": ["verify", "\x1b[2Jgpj.exe\u202e"],
    "CA bundle path with escapes": ["get", "--ca-bundle", "/nonexistent/\x1b[2J\u2066",
                                    "http://127.0.0.1:9/x"],
}


@pytest.mark.parametrize("name", list(IN_PROCESS))
def test_error_lines_are_printable(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every message of the command line goes through one funnel, argparse's own included."""
    figures.FIGURES["bad inputs tried"] += 1
    try:
        code = main(IN_PROCESS[name])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert code == 2, err
    _assert_shown_safely(out, "stdout")
    _assert_shown_safely(err, "the error line")
    assert len(err.splitlines()) == 1 and err.startswith("laden: "), err
    assert "\\x1b" in err or "\\u2066" in err, err


# -- laden run and the log file ------------------------------------------------------------


def test_laden_run_and_its_log_show_item_names_escaped(http_server: FileServer,
                                                      tmp_path: Path,
                                                      laden_dirs: dict[str, Path]) -> None:
    url = http_server.add_file("/ok.bin", BODY)
    title = "evil\x1b]0;pwned\x07\x1b[2J\u202egpj.exe\x9b"
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"download_root": str(tmp_path / "root"),
                                        "download_items": [{"type": "http", "name": title,
                                                            "url": url,
                                                            "target_path": "ok.bin"}]}))
    done = _laden("--log-level", "info", "run", str(manifest))
    assert done.returncode == 0, done.stderr
    out = _assert_shown_safely(done.stdout, "laden run's summary")
    assert printable(title) in out, out
    log = (laden_dirs["logs"] / "laden.log").read_bytes()
    text = _assert_shown_safely(log, "laden.log")
    assert f"manifest item {printable(title)}: 1 files" in text, text


def test_every_log_record_is_one_printable_line(laden_dirs: dict[str, Path]) -> None:
    from laden.cli.logs import setup_logging

    laden_logger = logging.getLogger("laden")
    before = list(laden_logger.handlers), laden_logger.level, laden_logger.propagate
    path = setup_logging("debug")
    assert path is not None
    logger = logging.getLogger("laden.test_escapes")
    try:
        logger.warning("ETag %s from %s", ETAG, "http://127.0.0.1:9/\u202egpj.exe")
        logger.warning("forged\n2026-01-01 00:00:00,000 ERROR laden: all is lost")
        try:
            raise ValueError("boom\x1b[2J")
        except ValueError:
            logger.exception("failed with \x9b")
    finally:
        for handler in laden_logger.handlers:
            handler.close()
        # As it was: a logger left not propagating, with no handler, sends the next test's
        # warnings to stderr through logging's last resort.
        laden_logger.handlers[:] = before[0]
        laden_logger.setLevel(before[1])
        laden_logger.propagate = before[2]
    figures.FIGURES["bad inputs tried"] += 3
    text = _assert_shown_safely(Path(path).read_bytes(), "laden.log")
    assert ETAG_SHOWN in text and "\\u202egpj.exe" in text
    lines = text.splitlines()
    # The forged record stays on its own line; only a traceback spans several.
    assert sum(" WARNING " in line or " ERROR " in line for line in lines) == 3, text
    assert "forged\\n2026-01-01" in text
    assert "ValueError: boom\\x1b[2J" in text and "Traceback" in text


# -- the app -------------------------------------------------------------------------------


def _screen_text(app: object) -> str:
    """What the app shows right now, as its own screenshot has it."""
    return app.export_screenshot()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.anyio
async def test_the_app_shows_names_etags_and_toasts_escaped(http_server: FileServer,
                                                            laden_dirs: dict[str, Path]) -> None:
    pytest.importorskip("textual")
    from rich.console import Console
    from textual.widgets import Static

    from laden.tui.app import open_app
    from laden.tui.screens.detail import DetailScreen
    from laden.tui.widgets.download_facts import DownloadFacts
    from tui.helpers import cell, notifications, state_of, wait_for, write_settings

    # A download folder whose own name holds an escape: the header bar shows it.
    folder = laden_dirs["downloads"] / "in\x1b[2Jhere"
    folder.mkdir()
    write_settings(laden_dirs, download_dir=str(folder))
    url = _changing_file(http_server, "/named.php", content_disposition=BIDI_NAME_HEADER)
    figures.FIGURES["bad inputs tried"] += 1
    app = open_app([url + "?\u202e"])
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.downloads) == 1, what="the download is added")
        (download_id,) = app.downloads
        await wait_for(pilot, lambda: state_of(app, download_id) is State.FAILED,
                       timeout=30, what="the download fails")
        await wait_for(pilot, lambda: any("pwned" in n for n in notifications(app)),
                       what="the failure toast")
        await pilot.pause(0.6)  # a header tick
        assert cell(app, download_id, "name") == "invoicegpj.exe"
        toasts = notifications(app)
        for toast in toasts:
            _assert_shown_safely(toast, "a toast")
        assert any(ETAG_SHOWN in toast for toast in toasts), toasts
        header = str(app.queue_screen.query_one("HeaderBar").render())
        assert "in\\x1b[2Jhere" in header, header
        _assert_shown_safely(_screen_text(app), "the queue screen")

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="details")
        await pilot.pause(0.2)
        title = str(app.screen.query_one("#detail-title", Static).content)
        assert title.startswith("invoicegpj.exe"), title
        console = Console(width=200, file=io.StringIO(), color_system=None)
        console.print(app.screen.query_one(DownloadFacts).render())
        facts = _assert_shown_safely(console.file.getvalue(), "the download's facts")
        assert ETAG_SHOWN in facts and "named.php?\\u202e" in facts, facts
        _assert_shown_safely(_screen_text(app), "the detail screen")


@pytest.mark.anyio
async def test_the_add_dialog_shows_a_hostile_folder_escaped(laden_dirs: dict[str, Path]) -> None:
    """The engine's message quotes the folder typed; it is shown as text, not markup."""
    pytest.importorskip("textual")
    from textual.widgets import Input, Static

    from laden.tui.app import open_app
    from laden.tui.screens.add_modal import AddModal
    from tui.helpers import wait_for, write_settings

    write_settings(laden_dirs, download_dir=str(laden_dirs["downloads"]))
    figures.FIGURES["bad inputs tried"] += 1
    app = open_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, AddModal)
        app.screen.query_one("#add-url", Input).value = "http://127.0.0.1:9/x.bin"
        app.screen.query_one("#add-dest", Input).value = "/dev/null/\x1b]0;pwned\x07[b]\u202e/"
        await pilot.press("enter")
        error = app.screen.query_one("#add-error", Static)
        await wait_for(pilot, lambda: "cannot use" in str(error.content), what="the error")
        shown = _assert_shown_safely(str(error.content), "the add dialog's error")
        assert "/dev/null/\\x1b]0;pwned\\x07[b]\\u202e" in shown, shown
