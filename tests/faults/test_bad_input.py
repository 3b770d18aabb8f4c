"""Bad input across every way in: the command line, the settings file, manifests (`laden run`),
hostile environments, and the app's add dialog. Each gets its message and exit code, and never a
traceback.

This table extends tests/cli/test_bad_input.py (whose 30 command-line cases run there, in
subprocesses); these run `laden.cli.main` in-process, where a traceback would be an exception
escaping `main`, so the table stays fast.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from laden.cli import main
from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from . import figures
from .helpers import laden_command

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
    hidden: str = ""  # must not appear in the output or the log (a password)
    files: dict[str, Callable[[], bytes]] = field(default_factory=dict)  # written to TMP/name


def _m(text: str, suffix: str = "") -> Bad:
    return Bad(["run", "MANIFEST" + suffix], 2, "", manifest=text)


def _http_item(**fields: str) -> str:
    """A manifest of one http item with `fields` added (as YAML text, written as given)."""
    extra = "".join(f"    {key}: {value}\n" for key, value in fields.items())
    return f"download_items:\n  - type: http\n    url: {URL}\n    target_path: a.bin\n{extra}"


def _laughs(merge: bool = False) -> str:
    """The "billion laughs": ten lines whose aliases expand to 10**9 values."""
    lines = ['a0: &a0 {"l": 1}' if merge else 'a0: &a0 ["lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} " + (f"{{<<: [{refs}]}}" if merge else f"[{refs}]"))
    return "\n".join(lines) + "\n" + _http_item(headers="*a9")


DEEP = 100_000
ZEROS = "1" + "0" * 400  # "1 followed by 400 zeros": 10**400 bytes


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
    # -- addresses: checked completely once, the password never repeated (issue 16) -----
    "IDN label over 63 characters": Bad(["get", "http://" + "ä" * 64 + ".example/x"], 2,
                                        "longer than 63 characters"),
    "ASCII label over 63 characters": Bad(["get", "http://" + "a" * 64 + ".example/x"], 2,
                                          "longer than 63 characters"),
    "empty label after a snowman": Bad(["get", "http://☃..example/x"], 2,
                                       "empty part between dots"),
    "host IDNA 2008 refuses": Bad(["get", "http://☃.example/x"], 2, "cannot be encoded for DNS"),
    "punycode that does not decode": Bad(["get", "http://xn--a.example/x"], 2,
                                         "cannot be encoded for DNS"),
    "host not encodable at all": Bad(["get", "http://a\udcffb.example/x"], 2, "not usable"),
    "IPv6 with a second closing bracket": Bad(["get", "http://[::1]]/x"], 2,
                                              "[address]:port"),
    "bracket inside a host name": Bad(["get", "http://a[::1]/x"], 2, "brackets belong only"),
    "IPv4 address out of range": Bad(["get", "http://999.1.1.1/x"], 2, "not an IPv4 address"),
    "port out of range, with a password": Bad(["get", "http://user:s3cret@127.0.0.1:99999/x"],
                                              2, "Port out of range", hidden="s3cret"),
    "IPv6 not closed, with a password": Bad(["get", "http://user:s3cret@[::1/x"], 2,
                                            "Invalid IPv6 URL", hidden="s3cret"),
    "no scheme, with a password": Bad(["get", "user:s3cret@example.com/x"], 2,
                                      "expected something like", hidden="s3cret"),
    "a megabyte of host name": Bad(["get", "http://" + "h" * 1_000_000 + "/x"], 2,
                                   "longer than 63 characters"),
    "a megabyte of scheme": Bad(["get", "s" * 1_000_000 + "://x/y"], 2,
                                "unsupported address scheme"),
    # -- sizes and rates: bounded (issue 16) -----------------------------------------------
    "rate of 1 and 400 zeros": Bad(["get", "--limit-rate", ZEROS, URL], 2, "too large"),
    "rate of 1 and 400 zeros in K": Bad(["get", "--limit-rate", ZEROS + "K", URL], 2,
                                        "at most 4611686018427387904 bytes"),
    "rate of a megabyte of text": Bad(["get", "--limit-rate", "9" * 1_000_000 + "x", URL], 2,
                                      "must be a number"),
    "settings: rate of 1 and 400 zeros": Bad(["get", URL], 2, "too large",
                                             settings=f'limit_rate = "{ZEROS}"\n'),
    "settings: rate of 1e400 (infinity)": Bad(["get", URL], 2, "must be a number like 5M",
                                              settings="limit_rate = 1e400\n"),
    "settings: segment size of 10**400": Bad(["get", URL], 2, "min_segment_size is too large",
                                             settings=f"min_segment_size = {ZEROS}\n"),
    "settings: buffer of a billion terabytes": Bad(["get", URL], 2, "too large",
                                                   settings='buffer_size = "999999999999T"\n'),
    "input file: rate of 1 and 400 zeros": Bad(
        ["get", "-i", "MANIFEST"], 2, "too large",
        manifest=f"{URL}\n  max-download-limit={ZEROS}\n"),
    "input file: out= escaping, with a password": Bad(
        ["get", "-i", "MANIFEST"], 2, "must stay inside", hidden="s3cret",
        manifest="http://user:s3cret@127.0.0.1:9/x\n  out=../../x\n"),
    "input file: /dev/zero": Bad(["get", "-i", "/dev/zero"], 2, "larger than 64 MiB"),
    "input file: a gzip bomb": Bad(["get", "-i", "TMP/bomb.gz"], 2, "larger than 64 MiB",
                                   files={"bomb.gz": lambda: gzip.compress(bytes(65 << 20))}),
    "input file: gzip cut short": Bad(["get", "-i", "TMP/cut.gz"], 2, "ends early",
                                      files={"cut.gz": lambda: gzip.compress(b"x" * 99)[:20]}),
    # -- secret files: bounded, regular files only (issue 16) ------------------------------
    "manifest: password file /dev/zero": _m(_http_item(username="u",
                                                       password_file="/dev/zero")),
    "manifest: token file /dev/urandom": _m(_http_item(bearer_token_file="/dev/urandom")),
    "manifest: password file a folder": _m(_http_item(username="u", password_file="/")),
    "manifest: password file of a megabyte": Bad(
        ["run", "MANIFEST"], 2, "larger than 64 KiB",
        manifest=_http_item(username="u", password_file="TMP/big"),
        files={"big": lambda: b"p" * (1 << 20)}),
    "manifest: password file of two lines": Bad(
        ["run", "MANIFEST"], 2, "more than one line", hidden="s3cret",
        manifest=_http_item(username="u", password_file="TMP/two"),
        files={"two": lambda: b"s3cret\nmore\n"}),
    "command line: S3 secret key file /dev/zero": Bad(
        ["get", "--s3-secret-key-file", "/dev/zero", "s3://bucket/key"], 2,
        "not a regular file"),
    "command line: GCS credentials file a folder": Bad(
        ["get", "--gcs-credentials-file", "/", "gs://bucket/key"], 2, "not a regular file"),
    "settings: GCS credentials file /dev/zero": Bad(
        ["get", "gs://bucket/key"], 1, "not a regular file",
        settings='gcs_credentials_file = "/dev/zero"\n'),
    "settings: S3 secret key file /dev/zero": Bad(
        ["get", "s3://bucket/key"], 1, "not a regular file",
        settings='s3_secret_key_file = "/dev/zero"\ns3_endpoint_url = "http://127.0.0.1:9"\n'),
    # -- manifests: bounded documents, short messages (issue 16) ---------------------------
    "manifest: billion laughs": _m(_laughs()),
    "manifest: billion laughs through merge keys": _m(_laughs(merge=True)),
    "manifest: an alias inside itself": _m("a: &a [*a]\ndownload_items: *a\n"),
    "manifest: 100,000-deep YAML lists": _m("download_items: " + "[" * DEEP + "]" * DEEP),
    "manifest: 100,000-deep YAML mappings": _m("download_items: " + "{a: " * DEEP + "1"
                                               + "}" * DEEP),
    "manifest: 100,000-deep JSON": _m('{"download_items": ' + "[" * DEEP + "]" * DEEP + "}",
                                      ".json"),
    "manifest: 100,000-deep TOML": _m("download_items = " + "[" * DEEP + "]" * DEEP, ".toml"),
    "manifest: 150-deep lists": _m("download_items: " + "[" * 150 + "]" * 150),
    "manifest: 300,000 values as written": _m("download_items: [" + "1," * 300_000 + "]"),
    "manifest: larger than 16 MiB": _m("#" * (17 << 20)),
    "manifest: /dev/zero": Bad(["run", "/dev/zero"], 2, "larger than 16 MiB"),
    "manifest: a number of 5,000 digits": _m(_http_item(connections="9" * 5000)),
    "manifest: TOML number of 5,000 digits": _m("download_items = " + "9" * 5000, ".toml"),
    "manifest: a date that does not exist": _m(_http_item(name="2024-13-45")),
    "manifest: connections of 4,000 digits": _m(_http_item(connections="9" * 4000)),
    "manifest: a megabyte of type": _m("download_items:\n  - type: " + "t" * 1_000_000 + "\n"),
    "manifest: ten thousand unknown fields": _m(_http_item(
        **{f"field{n}": "x" for n in range(10_000)})),
    "manifest: five thousand broken items": Bad(
        ["run", "MANIFEST"], 2, "and 4980 more", one_line=False,
        manifest="download_items:\n" + "  - type: gopher\n" * 5000),
    "manifest: rate of 1 and 400 zeros": _m(_http_item(limit_rate=ZEROS)),
    "manifest: rate of .inf": _m(_http_item(limit_rate=".inf")),
    "manifest: malformed url with a password": Bad(
        ["run", "MANIFEST"], 2, "Invalid IPv6 URL", hidden="s3cret",
        manifest="download_items:\n  - type: http\n    url: http://u:s3cret@[::1/x\n"
                 "    target_path: a.bin\n"),
    "manifest: url with an empty label": _m(
        "download_items:\n  - type: http\n    url: http://☃..example/x\n"
        "    target_path: a.bin\n"),
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
    "manifest: password file /dev/zero": "not a regular file",
    "manifest: token file /dev/urandom": "not a regular file",
    "manifest: password file a folder": "not a regular file",
    "manifest: billion laughs": "expands to more than 250,000 values",
    "manifest: billion laughs through merge keys": "expands to more than 250,000 values",
    "manifest: an alias inside itself": "refers to itself",
    "manifest: 100,000-deep YAML lists": "nests too deeply",
    "manifest: 100,000-deep YAML mappings": "nests too deeply",
    "manifest: 100,000-deep JSON": "nests too deeply",
    "manifest: 100,000-deep TOML": "nests too deeply",
    "manifest: 150-deep lists": "nests too deeply",
    "manifest: 300,000 values as written": "has more than 250,000 values",
    "manifest: larger than 16 MiB": "larger than 16 MiB",
    "manifest: a number of 5,000 digits": "cannot be read",
    "manifest: TOML number of 5,000 digits": "cannot be read",
    "manifest: a date that does not exist": "cannot be read",
    "manifest: connections of 4,000 digits": "connections: must be a whole number",
    "manifest: a megabyte of type": "is not a known type",
    "manifest: ten thousand unknown fields": "and 9995 more",
    "manifest: rate of 1 and 400 zeros": "too large",
    "manifest: rate of .inf": "must be a number like 5M",
    "manifest: url with an empty label": "empty part between dots",
}
LONGEST_LINE = 600
"""Characters a one-line message may have: a whole address or path, never a repeated value."""


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
    for name, make in case.files.items():
        (tmp_path / name).write_bytes(make())
    argv = [a.replace("TMP/", f"{tmp_path}/") for a in case.argv]
    if case.manifest is not None:
        placeholder = next(a for a in argv if a.startswith("MANIFEST"))
        manifest = tmp_path / f"manifest{Path(placeholder).suffix or '.yaml'}"
        if case.manifest == "\udcff":
            manifest.write_bytes(b"download_items:\n  - \xff\xfe\n")
        else:
            manifest.write_text(case.manifest.replace("TMP/", f"{tmp_path}/"))
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
        assert len(lines[0]) <= LONGEST_LINE, f"{len(lines[0])} characters: {lines[0][:500]}"
    else:
        assert len(lines) <= 25, f"{len(lines)} lines"
    assert words in err, err[:2000]
    if case.hidden:
        assert case.hidden not in out + err
        for log in laden_dirs["logs"].rglob("*"):
            assert not log.is_file() or case.hidden not in log.read_text(errors="replace")


# -- what a table row cannot hold: a FIFO, a server's header ----------------------------------


def _run_laden(*args: str) -> subprocess.CompletedProcess[str]:
    """`laden ARGS` as a user runs it; a FIFO that hangs laden fails the test, not the suite."""
    try:
        return subprocess.run(laden_command(*args), capture_output=True, text=True, timeout=60,
                              env={**os.environ, "COLUMNS": "120"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"laden {' '.join(args)} hung on its input")


@pytest.mark.parametrize("where", ["manifest", "settings"])
def test_secret_file_that_is_a_fifo_is_refused_not_waited_on(
        where: str, tmp_path: Path, laden_dirs: dict[str, Path]) -> None:
    figures.FIGURES["bad inputs tried"] += 1
    fifo = tmp_path / "secret-fifo"
    os.mkfifo(fifo)  # nobody ever writes to it: reading it would wait forever
    if where == "manifest":
        manifest = tmp_path / "manifest.yaml"
        manifest.write_text(_http_item(username="u", password_file=str(fifo)))
        done, code = _run_laden("run", str(manifest)), 2
    else:
        (laden_dirs["config"] / "config.toml").write_text(
            f'hf_token_file = "{fifo}"\nhf_endpoint = "http://127.0.0.1:9"\n')
        # Read when the download starts: that download fails, with the reason.
        done, code = _run_laden("get", "-o", str(laden_dirs["downloads"]), "hf://o/r/f"), 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "not a regular file" in lines[0] and str(fifo) in lines[0], lines[0]


def test_unusable_retry_after_is_ignored_and_the_download_finishes(
        http_server: FileServer, laden_dirs: dict[str, Path]) -> None:
    figures.FIGURES["bad inputs tried"] += 1
    data = random_bytes(300_000, seed=16)
    # "²" and "٣" pass str.isdigit() but not float(); the date is past the year 9999.
    faults = Faults(status_sequence=[(503, {"Retry-After": "²"}), (429, {"Retry-After": "٣"}),
                                     (503, {"Retry-After": "Fri, 31 Dec 99999 23:59:59 GMT"})])
    url = http_server.add_file("/retry.bin", data, faults=faults)
    done = _run_laden("get", "-c", "1", "--retries", "5", "-o", str(laden_dirs["downloads"]), url)
    assert done.returncode == 0, done.stderr
    assert (laden_dirs["downloads"] / "retry.bin").read_bytes() == data
    assert "internal error" not in done.stdout + done.stderr


def test_retry_after_of_400_digits_is_a_long_wait_not_an_overflow(
        http_server: FileServer, laden_dirs: dict[str, Path]) -> None:
    figures.FIGURES["bad inputs tried"] += 1
    data = random_bytes(200_000, seed=400)
    # Leading zeros make it one second; the next answer asks for 10**400 seconds, which is
    # more than any policy waits, so with no retries left laden says why and stops.
    faults = Faults(status_sequence=[(503, {"Retry-After": "0" * 400 + "1"})])
    url = http_server.add_file("/wait.bin", data, faults=faults)
    began = time.monotonic()
    done = _run_laden("get", "-c", "1", "-o", str(laden_dirs["downloads"]), url)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began >= 0.9, "a Retry-After of 000...1 is one second"
    assert (laden_dirs["downloads"] / "wait.bin").read_bytes() == data
    http_server.set_faults("/wait.bin", Faults(status_sequence=[(503, {"Retry-After": ZEROS})]))
    (laden_dirs["downloads"] / "wait.bin").unlink()
    done = _run_laden("get", "-c", "1", "--retries", "0", "-o", str(laden_dirs["downloads"]),
                      url)
    assert done.returncode == 1, done.stderr
    assert "503" in done.stderr and "internal error" not in done.stderr, done.stderr


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
