"""Credentials in the shapes a hostile probe used: headers under names nobody can guess, a
token with a line break in it, a redirect to an address with a password, a signed address.
None of them may be written to the journal, the log, the screen or `--json`; a header that was
not kept is asked for again by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.helpers import run_laden

from . import figures
from .hostile import HostileServer, Reply, Request, ranged
from .test_network import scenario

BODY = b"private bytes\n" * 5000


def _everything(laden_dirs: dict[str, Path], *texts: str) -> str:
    """Every file laden keeps, and everything it printed, as one text to search."""
    found = list(texts)
    for name in ("state", "config", "logs"):
        for path in laden_dirs[name].rglob("*"):
            if path.is_file():
                found.append(path.read_bytes().decode("latin-1"))
    return "\n".join(found)


def _needs_header(name: str, value: str) -> HostileServer:
    def answer(request: Request, reply: Reply) -> None:
        if request.headers.get(name.lower()) != value:
            reply.send(401, {"Content-Type": "text/plain"}, b"who are you?")
            return
        status, headers, body = ranged(BODY, request, {"ETag": '"b"'})
        reply.send(status, headers, body)

    return HostileServer(answer)


@pytest.mark.parametrize("name", ["X-JFrog-Art-Api", "X-Session", "X-Amz-Whatever",
                                  "Private-Token"])
def test_headers_of_any_name_are_not_written_down(laden_dirs: dict[str, Path], name: str
                                                  ) -> None:
    secret = f"s3cr3t-{name.lower()}-77"
    with scenario(f"header {name} kept out"), _needs_header(name, secret) as server:
        done = run_laden("get", "-q", "-o", str(laden_dirs["downloads"]), "-H",
                         f"{name}: {secret}", "-H", "Accept: application/x-thing",
                         server.url("/f.bin"), "--log-level", "debug")
        assert done.returncode == 0, done.stderr
        listing = run_laden("list", "--json")
        text = _everything(laden_dirs, done.stdout, done.stderr, listing.stdout)
        figures.FIGURES["secret values checked"] += 1
        found = secret in text
        figures.FIGURES["secrets found"] += int(found)
        assert not found
        record = json.loads(listing.stdout.splitlines()[0])
        assert record["state"] == "done"


def test_a_header_not_kept_is_asked_for_again(laden_dirs: dict[str, Path]) -> None:
    """Interrupted in one session, resumed in the next without the header: the message names
    it; the same command run again gives it, and the download finishes."""
    secret = "session-4242"
    downloads = laden_dirs["downloads"]
    served = [0]
    big = BODY * 30  # more than the probe carries: a second request is made

    def answer(request: Request, reply: Reply) -> None:
        served[0] += 1
        if request.headers.get("x-session") != secret or served[0] == 2:
            reply.send(401, {}, b"no")  # the second request: as if the session ended
            return
        status, headers, body = ranged(big, request, {"ETag": '"b"'})
        reply.send(status, headers, body)

    with scenario("a header not kept is asked for again"), HostileServer(answer) as server:
        url = server.url("/f.bin")
        first = run_laden("get", "-q", "-c", "1", "-o", str(downloads), "-H",
                          f"X-Session: {secret}", url)
        assert first.returncode == 1
        again = run_laden("resume", "--all")
        assert again.returncode == 1
        assert "X-Session" in again.stderr and "run the same laden get command" in again.stderr
        assert secret not in again.stderr
        rerun = run_laden("get", "-q", "-o", str(downloads), "-H", f"X-Session: {secret}", url)
        assert rerun.returncode == 0, rerun.stderr
        assert (downloads / "f.bin").read_bytes() == big


@pytest.mark.parametrize("flag,value", [
    ("--bearer", "tok-1234\r\nX-Injected: yes"),
    ("--bearer", "tok-1234\nmore"),
    ("-u", "alice:pa\r\nss-1234"),
    ("-H", "X-Key: val-1234\r\nInjected: 1"),
])
def test_a_credential_with_a_line_break_is_refused_unrepeated(
        laden_dirs: dict[str, Path], flag: str, value: str) -> None:
    with scenario(f"{flag} with a line break"), _needs_header("X-Key", "x") as server:
        done = run_laden("get", "-q", "-o", str(laden_dirs["downloads"]), flag, value,
                         server.url("/f.bin"), "--log-level", "debug")
        figures.FIGURES["bad inputs tried"] += 1
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "1234" not in _everything(laden_dirs, done.stdout, done.stderr)
        assert server.requests == []


def test_a_redirect_to_an_address_with_a_password(laden_dirs: dict[str, Path]) -> None:
    password = "redir-pw-9911"

    def answer(request: Request, reply: Reply) -> None:
        if request.path == "/start.bin":
            reply.send(302, {"Location": f"http://user:{password}@127.0.0.1:"
                                         f"{server.port}/final.bin"})
            return
        status, headers, body = ranged(BODY, request, {"ETag": '"b"'})
        reply.send(status, headers, body)

    with scenario("a redirect to user:password@"), HostileServer(answer) as server:
        done = run_laden("get", "-q", "-o", str(laden_dirs["downloads"]),
                         server.url("/start.bin"), "--log-level", "debug")
        assert done.returncode == 0, done.stderr
        listing = run_laden("list", "--json")
        figures.FIGURES["secret values checked"] += 1
        assert password not in _everything(laden_dirs, done.stdout, done.stderr,
                                           listing.stdout)


def test_a_signed_address_is_shown_without_its_signature(laden_dirs: dict[str, Path]) -> None:
    signature = "c2lnbmF0dXJlLTU1NTU"

    def answer(request: Request, reply: Reply) -> None:
        if "Signature=" + signature not in request.path:
            reply.send(403, {}, b"bad signature")
            return
        status, headers, body = ranged(BODY, request, {"ETag": '"b"'})
        reply.send(status, headers, body)

    with scenario("a signed address"), HostileServer(answer) as server:
        url = server.url(f"/f.bin?X-Amz-Expires=60&X-Amz-Signature={signature}")
        done = run_laden("get", "-o", str(laden_dirs["downloads"]), url, "--log-level",
                         "debug")
        assert done.returncode == 0, done.stderr
        shown = [run_laden("list").stdout, run_laden("list", "--json").stdout]
        figures.FIGURES["secret values checked"] += 1
        assert "X-Amz-Signature=REDACTED" in shown[1]
        logs = "".join(p.read_text() for p in laden_dirs["logs"].rglob("*.log"))
        assert signature not in done.stdout + done.stderr + "".join(shown) + logs


def test_a_gcs_upload_session_is_shown_without_its_id() -> None:
    # The session URI is the upload's id in the journal; it lets anyone write the object for a
    # week. The uploader never words it into a message, and were one to, it is cut here.
    from laden.core.printable import printable

    session = ("https://storage.googleapis.com/upload/storage/v1/b/b/o?uploadType=resumable"
               "&upload_id=ADPycdsSeSsIoNtOkEn-77")
    shown = printable(f"PUT {session} failed")
    figures.FIGURES["secret values checked"] += 1
    assert "ADPycdsSeSsIoNtOkEn-77" not in shown and "upload_id=REDACTED" in shown
