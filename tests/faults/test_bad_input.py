"""Bad input across every way in: the command line, the settings file, manifests (`laden run`),
hostile environments, and the app's add dialog. Each gets its message and exit code, and never a
traceback.

This table extends tests/cli/test_bad_input.py (whose 30 command-line cases run there, in
subprocesses); these run `laden.cli.main` in-process, where a traceback would be an exception
escaping `main`, so the table stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from laden.cli import main

from . import figures

URL = "http://127.0.0.1:9/x.bin"


@dataclass
class Bad:
    argv: list[str]
    code: int
    words: str
    settings: str | bytes | None = None  # config.toml contents
    manifest: str | bytes | None = None  # written to MANIFEST, which argv may name
    env: dict[str, str] = field(default_factory=dict)  # {LADEN_STATE_DIR: "FILE/x"}, ...
    one_line: bool = True


def _m(text: str) -> Bad:
    return Bad(["run", "MANIFEST"], 2, "", manifest=text)


CASES: dict[str, Bad] = {
    # -- the command line, beyond tests/cli/test_bad_input.py ----------------------------
    "port out of range": Bad(["get", "http://127.0.0.1:99999/x"], 2, "Port out of range"),
    "empty host with a user": Bad(["get", "http://user@:9/x"], 2, "no host name"),
    "IPv6 bracket not closed": Bad(["get", "http://[::1/x"], 2, "Invalid IPv6 URL"),
    "file: scheme": Bad(["get", "file:///etc/passwd"], 2, "unsupported address scheme 'file'"),
    "javascript: address": Bad(["get", "javascript:alert(1)"], 2, "malformed address"),
    "one slash after the scheme": Bad(["get", "http:/127.0.0.1/x"], 2, "malformed address"),
    "ftp without host": Bad(["get", "ftp://"], 2, "no host"),
    "s3 without bucket": Bad(["get", "s3://"], 2, "no host or bucket"),
    "address with a newline": Bad(["get", "http://127.0.0.1:9/a\nb"], 2, "control characters"),
    "address with NUL": Bad(["get", "http://127.0.0.1:9/a\x00b"], 2, "control characters"),
    "empty address": Bad(["get", ""], 2, "the address is empty"),
    "fractional connections": Bad(["get", "-c", "1.5", URL], 2, "invalid int value"),
    "md5 of the wrong length": Bad(["get", "--checksum", "md5:abc", URL], 2, "32 hex digits"),
    "checksum with nothing after the colon": Bad(["get", "--checksum", "sha256:", URL], 2,
                                                 "sha256"),
    "header without a name": Bad(["get", "-H", ": v", URL], 2, "Name: value"),
    "header name with a space": Bad(["get", "-H", "Bad Name: v", URL], 2, "invalid header"),
    "header with CR LF injection": Bad(["get", "-H", "X: a\r\nInjected: b", URL], 2,
                                       "invalid header"),
    "file name that is a separator": Bad(["get", "--name", "/", URL], 2,
                                         "cannot be used as a file name"),
    "file name '..'": Bad(["get", "--name", "..", URL], 2, "cannot be used as a file name"),
    "output folder under a file": Bad(["get", "-o", "/dev/null/sub", URL], 2,
                                      "cannot use /dev/null/sub"),
    "proxy that is not an address": Bad(["get", "--proxy", "notaurl", URL], 2,
                                        "the proxy must be an address"),
    "secret key file missing": Bad(["get", "--s3-secret-key-file", "/nonexistent/k",
                                    "s3://b/k"], 2, "no such file"),
    "input file is a folder": Bad(["get", "-i", "/"], 2, "cannot read /"),
    "retries too many": Bad(["get", "--retries", "1001", URL], 2, "retries must be between"),
    "negative max-active": Bad(["get", "--max-active", "-1", URL], 2, "max_active"),
    "resume with a word": Bad(["resume", "abc"], 2, "not a download id"),
    "resume unknown id": Bad(["resume", "99"], 2, "no download with id 99"),
    "list with an unknown option": Bad(["list", "--bogus"], 2, "unrecognized arguments"),
    "verify with an unknown option": Bad(["verify", "--bogus", "1"], 2,
                                         "unrecognized arguments"),
    # -- a hostile environment ---------------------------------------------------------
    "state folder under a file": Bad(["get", URL], 1, "cannot use the state folder",
                                     env={"LADEN_STATE_DIR": "FILE/state"}),
    "settings folder is a file": Bad(["get", URL], 2, "cannot read the settings file",
                                     env={"LADEN_CONFIG_DIR": "FILE"}),
    # -- the settings file -------------------------------------------------------------
    "settings: connections 0": Bad(["get", URL], 2, "line 1: connections must be between",
                                   settings="connections = 0\n"),
    "settings: rate limit a word": Bad(["get", URL], 2, "line 2: limit_rate",
                                       settings="retries = 2\nlimit_rate = \"fast\"\n"),
    "settings: verify a string": Bad(["get", URL], 2, "verify must be true or false",
                                     settings='verify = "yes"\n'),
    "settings: negative stall timeout": Bad(["get", URL], 2, "stall_timeout must be a positive",
                                            settings="stall_timeout = -1\n"),
    "settings: download_dir a number": Bad(["get", URL], 2, "download_dir must be a folder",
                                           settings="download_dir = 5\n"),
    "settings: fractional retries": Bad(["get", URL], 2, "retries must be a whole number",
                                        settings="retries = 1.5\n"),
    "settings: a table for a number": Bad(["get", URL], 2, "connections must be a whole number",
                                          settings="[connections]\nx = 1\n"),
    "settings: a boolean for a number": Bad(["get", URL], 2, "max_active must be a whole number",
                                            settings="max_active = true\n"),
    "settings: segment size too small": Bad(["get", URL], 2, "min_segment_size",
                                            settings='min_segment_size = "1K"\n'),
    "settings: not TOML": Bad(["get", URL], 2, "not valid TOML",
                              settings="connections = = 8\n"),
    "settings: not UTF-8": Bad(["settings"], 2, "config.toml",
                               settings=b"\xff\xfe\x00garbage"),
    "settings: conflict policy unknown": Bad(["get", URL], 2, "conflict must be one of",
                                             settings='conflict = "merge"\n'),
    # -- manifests (laden run) ---------------------------------------------------------
    "manifest missing": Bad(["run", "/nonexistent/manifest.yaml"], 2, "cannot read the manifest"),
    "manifest is a folder": Bad(["run", "/"], 2, "cannot read the manifest"),
    "manifest: empty list": _m("download_items: []\n"),
    "manifest: not YAML": _m(": : :\n"),
    "manifest: not TOML": Bad(["run", "MANIFEST.toml"], 2, "not valid TOML",
                              manifest="download_items = [\n"),
    "manifest: not UTF-8": _m("\udcff"),
    "manifest: a list at the top": _m("- just a list\n"),
    "manifest: items not a list": Bad(["run", "MANIFEST"], 2, "expected a list",
                                      manifest="download_items: 5\n", one_line=False),
    "manifest: unknown type": _m("download_items:\n  - type: gopher\n    url: x\n"),
    "manifest: url missing": _m("download_items:\n  - type: http\n    target_path: a\n"),
    "manifest: url not an address": _m("download_items:\n  - type: http\n    url: nope\n"
                                       "    target_path: a.bin\n"),
    "manifest: connections 99": _m(f"download_items:\n  - type: http\n    url: {URL}\n"
                                   "    target_path: a.bin\n    connections: 99\n"),
    "manifest: rate limit a word": _m(f"download_items:\n  - type: http\n    url: {URL}\n"
                                      "    target_path: a.bin\n    limit_rate: fast\n"),
    "manifest: file and folder at once": _m(
        "download_items:\n  - type: s3\n    buckets:\n      - name: b\n        items:\n"
        "          - file: a\n            folder: b\n            target_path: x\n"),
    "manifest: target outside the root": _m(f"download_items:\n  - type: http\n    url: {URL}\n"
                                            "    target_path: ../../escape.bin\n"),
    "manifest: max-workers 0": Bad(["run", "--max-workers", "0", "MANIFEST"], 2, "max",
                                   manifest=f"download_items:\n  - type: http\n    url: {URL}\n"
                                            "    target_path: a.bin\n"),
}

_WORDS = {
    "manifest: empty list": "is empty", "manifest: not YAML": "not valid YAML",
    "manifest: not UTF-8": "not a UTF-8 text file", "manifest: a list at the top": "mapping",
    "manifest: unknown type": "not a known type", "manifest: url missing": "is missing",
    "manifest: url not an address": "needs a http or https address",
    "manifest: connections 99": "connections", "manifest: rate limit a word": "limit_rate",
    "manifest: file and folder at once": "either file or folder",
    "manifest: target outside the root": "outside download_root",
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, tmp_path: Path, laden_dirs: dict[str, Path],
                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    figures.FIGURES["bad inputs tried"] += 1
    words = case.words or _WORDS[name]
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.replace("FILE", str(blocker)))
    if case.settings is not None:
        path = laden_dirs["config"] / "config.toml"
        if isinstance(case.settings, bytes):
            path.write_bytes(case.settings)
        else:
            path.write_text(case.settings)
    argv = list(case.argv)
    if case.manifest is not None:
        suffix = ".toml" if "MANIFEST.toml" in argv else ".yaml"
        manifest = tmp_path / f"manifest{suffix}"
        if case.manifest == "\udcff":
            manifest.write_bytes(b"download_items:\n  - \xff\xfe\n")
        else:
            manifest.write_text(case.manifest)
        argv = [str(manifest) if a.startswith("MANIFEST") else a for a in argv]
    monkeypatch.chdir(laden_dirs["downloads"])
    try:
        code = main(argv)  # an exception escaping here is a traceback for the user
    except SystemExit as exc:  # argparse's own errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert code == case.code, f"exit {code}: {err}"
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("laden: "), err
    if case.one_line:
        assert len(lines) == 1, err
    assert words in err, err


# -- the add dialog ------------------------------------------------------------------------

DIALOG_CASES = [
    # (address, folder, connections, words in the dialog's error)
    ("", "", "", "Enter the address"),
    ("not-a-url", "", "", "malformed address"),
    ("gopher://example/x", "", "", "unsupported address scheme"),
    ("http://", "", "", "no host"),
    ("http://exa mple.com/x", "", "", "spaces"),
    ("http://127.0.0.1:99999/x", "", "", "Port out of range"),
    (URL, "/dev/null/sub", "", "cannot use /dev/null"),
    (URL, "", "0", "connections must be"),
    (URL, "", "99", "connections must be"),
    (URL, "", "-3", "connections must be"),
    (URL, "", "many", "whole number"),
    ("s3://", "", "", "no host or bucket"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("address", "folder", "connections", "words"), DIALOG_CASES)
async def test_bad_input_in_the_add_dialog(address: str, folder: str, connections: str,
                                           words: str, laden_dirs: dict[str, Path]) -> None:
    pytest.importorskip("textual")
    from textual.widgets import Input, Static

    from laden.tui.app import open_app
    from laden.tui.screens.add_modal import AddModal

    figures.FIGURES["bad inputs tried"] += 1
    (laden_dirs["config"] / "config.toml").write_text(
        f'download_dir = "{laden_dirs["downloads"]}"\n')
    app = open_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, AddModal)
        app.screen.query_one("#add-url", Input).value = address
        app.screen.query_one("#add-dest", Input).value = folder
        app.screen.query_one("#add-connections", Input).value = connections
        await pilot.press("enter")
        error = app.screen.query_one("#add-error", Static)
        for _ in range(100):
            text = str(error.content)
            if text and text != "Adding…":
                break
            await pilot.pause(0.05)
        assert words.lower() in str(error.content).lower(), str(error.content)
        assert "Traceback" not in str(error.content)
        assert isinstance(app.screen, AddModal), "the dialog must stay open to fix the input"
        assert not app.downloads
