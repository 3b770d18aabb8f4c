"""Uploads to FTP and FTPS (pyftpdlib): a temporary name beside the target, renamed at the
commit; resumed from the temporary file's SIZE after a pause or a kill -9; the conflict
policies, with FTP's limits said."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import manager
from laden.core.states import State
from laden.engine.uploading.parts import MiB
from servers.fixtures import random_bytes
from servers.ftp import FTPTestServer

from .conftest import CommandLog

SLOW = 2_000_000  # bytes per second the slow server takes


@pytest.fixture(scope="module")
def slow_upload_server() -> Iterator[FTPTestServer]:
    with FTPTestServer(upload_limit=SLOW) as server:
        yield server


def _file(folder: Path, name: str, size: int, seed: int) -> tuple[Path, bytes]:
    data = random_bytes(size, seed=seed)
    path = folder / name
    path.write_bytes(data)
    return path, data


def _login(server: FTPTestServer) -> dict[str, Any]:
    options: dict[str, Any] = {"username": server.user, "password": server.password}
    if server.tls:
        options["ca_bundle"] = str(server.ca_cert_path)
    return options


def _address(server: FTPTestServer, path: str) -> str:
    return f"{'ftps' if server.tls else 'ftp'}://127.0.0.1:{server.port}/{path}"


def _cli(server: FTPTestServer) -> list[str]:
    flags = ["-u", f"{server.user}:{server.password}"]
    return flags + (["--ca-bundle", str(server.ca_cert_path)] if server.tls else [])


def _laden(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "laden", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "120"})


def _temporary(folder: Path, name: str, timeout: float = 30) -> Path:
    """The upload's temporary file beside `name` in `folder`, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(f".{name}.*laden-upload"))
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no temporary file for {name} in {folder}")


def _refuse(reply: str) -> Any:
    def refuse(self: Any, line: str) -> None:
        self.respond(reply)

    return refuse


def _wait_size(path: Path, at_least: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= at_least:
            return path.stat().st_size
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {at_least} bytes")


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
@pytest.mark.parametrize("size", [0, 300_000, 20 * MiB + 17], ids=["empty", "small", "large"])
def test_a_file_lands_whole_under_its_name_and_nothing_else(
        ftp_server: FTPTestServer, ftps_server: FTPTestServer, tmp_path: Path, tls: bool,
        size: int) -> None:
    server = ftps_server if tls else ftp_server
    path, data = _file(tmp_path, "f.bin", size, seed=1)
    folder = f"up-{tls}-{size}/deeper"
    with manager() as m:
        info = m.wait(m.add_upload(str(path), _address(server, f"{folder}/f.bin"),
                                   **_login(server)))
    assert info.state is State.DONE, info.message
    assert (server.root / folder / "f.bin").read_bytes() == data
    assert sorted(os.listdir(server.root / folder)) == ["f.bin"]  # the temporary name is gone
    assert info.url == _address(server, f"{folder}/f.bin")  # no password kept


def test_a_folder_keeps_its_layout(ftp_server: FTPTestServer, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_bytes(b"a" * 10)
    (folder / "sub" / "b.csv").write_bytes(b"b" * 20)
    (folder / "skip.txt").write_bytes(b"no")
    result = _laden("put", *_cli(ftp_server), "--glob", "**/*.csv", str(folder),
                    _address(ftp_server, "tree/"))
    assert result.returncode == 0, result.stderr
    assert (ftp_server.root / "tree/a.csv").read_bytes() == b"a" * 10
    assert (ftp_server.root / "tree/sub/b.csv").read_bytes() == b"b" * 20
    assert not (ftp_server.root / "tree/skip.txt").exists()


# -- resuming --------------------------------------------------------------------------------

def test_pause_then_resume_goes_on_from_the_servers_size(
        slow_upload_server: FTPTestServer, tmp_path: Path, ftp_commands: CommandLog) -> None:
    server = slow_upload_server
    path, data = _file(tmp_path, "paused.bin", 12 * MiB, seed=2)
    with manager() as m:
        upload = m.add_upload(str(path), _address(server, "paused.bin"), **_login(server))
        temporary = _temporary(server.root, "paused.bin")
        _wait_size(temporary, 3 * MiB)
        m.pause(upload)
        assert m.wait(upload).state is State.PAUSED
        time.sleep(0.3)  # the server writes what the closed data connection still held
        held = temporary.stat().st_size
        assert 0 < held < len(data)
        assert not (server.root / "paused.bin").exists()  # readers never see half a file
        m.resume(upload)
        info = m.wait(upload, timeout=60)
    assert info.state is State.DONE, info.message
    assert (server.root / "paused.bin").read_bytes() == data
    assert not temporary.exists()
    assert ftp_commands.named("REST") == [str(held)]


def test_kill_9_then_the_same_command_again_finishes_it(
        slow_upload_server: FTPTestServer, tmp_path: Path, ftp_commands: CommandLog) -> None:
    server = slow_upload_server
    path, data = _file(tmp_path, "killed.bin", 12 * MiB, seed=3)
    command = ["put", *_cli(server), str(path), _address(server, "killed.bin")]
    process = subprocess.Popen([sys.executable, "-m", "laden", *command],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        temporary = _temporary(server.root, "killed.bin")
        _wait_size(temporary, 3 * MiB)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    time.sleep(0.3)
    held = temporary.stat().st_size
    assert not (server.root / "killed.bin").exists()
    result = _laden(*command)
    assert result.returncode == 0, result.stderr
    assert (server.root / "killed.bin").read_bytes() == data
    assert not temporary.exists()
    rests = [int(argument) for argument in ftp_commands.named("REST")]
    assert rests == [held]  # the rerun sent only what the server lacked


@pytest.mark.parametrize("reply", ["502 Command not implemented.", "550 Permission denied."],
                         ids=["not implemented", "denied as vsftpd's cmds_denied does"])
def test_a_server_that_cannot_continue_a_file_starts_again_and_says_why(
        slow_upload_server: FTPTestServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, reply: str) -> None:
    from pyftpdlib.handlers import FTPHandler

    def refuse(self: Any, line: str) -> None:
        self.respond(reply)

    server = slow_upload_server
    name = f"again-{reply[:3]}.bin"
    path, data = _file(tmp_path, name, 12 * MiB, seed=4)
    with manager() as m:
        upload = m.add_upload(str(path), _address(server, name), **_login(server))
        temporary = _temporary(server.root, name)
        _wait_size(temporary, 2 * MiB)
        m.pause(upload)
        m.wait(upload)
        monkeypatch.setattr(FTPHandler, "ftp_REST", refuse)
        monkeypatch.setattr(FTPHandler, "ftp_APPE", refuse)
        m.resume(upload)
        info = m.wait(upload, timeout=90)
    assert info.state is State.DONE, info.message
    assert (server.root / name).read_bytes() == data
    assert any("can continue no file" in e.message
               and "starting again from the first byte" in e.message for e in info.errors)


def test_a_failed_last_reply_asks_the_server_again_and_never_commits_bytes_twice(
        slow_upload_server: FTPTestServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # No REST: a resume APPEs. The SIZE after the last byte fails once (as a 226 reply that
    # timed out would): the server has every byte, and the next try must ask it, not APPE the
    # rest again from where the resume began.
    from pyftpdlib.handlers import FTPHandler

    server = slow_upload_server
    path, data = _file(tmp_path, "twice.bin", 9 * MiB, seed=12)
    failed: list[str] = []
    size_of = FTPHandler.ftp_SIZE

    def size(self: Any, where: str) -> None:
        if not failed and where.endswith("laden-upload") and os.path.exists(where) \
                and os.path.getsize(where) >= len(data):
            failed.append(where)
            self.respond("451 Requested action aborted: local error in processing.")
            return
        size_of(self, where)

    with manager() as m:
        upload = m.add_upload(str(path), _address(server, "twice.bin"), **_login(server))
        _wait_size(_temporary(server.root, "twice.bin"), 2 * MiB)
        m.pause(upload)
        m.wait(upload)
        monkeypatch.setattr(FTPHandler, "ftp_REST", _refuse("502 Command not implemented."))
        monkeypatch.setattr(FTPHandler, "ftp_SIZE", size)
        m.resume(upload)
        info = m.wait(upload, timeout=90)
    assert failed
    assert info.state is State.DONE, info.message
    assert (server.root / "twice.bin").read_bytes() == data


def test_another_upload_to_the_same_name_is_never_continued(
        slow_upload_server: FTPTestServer, tmp_path: Path) -> None:
    # Another machine's laden sends its own version of the file to the same name while ours
    # is paused: each has a temporary file of its own, so ours goes on from its own bytes.
    server = slow_upload_server
    path, data = _file(tmp_path, "shared.bin", 9 * MiB, seed=13)
    (tmp_path / "elsewhere").mkdir()
    theirs, their_data = _file(tmp_path / "elsewhere", "shared.bin", 9 * MiB, seed=14)
    other_state = tmp_path / "other-state"
    other_state.mkdir()

    def sent_by_the_other(ours: Path) -> int:
        sizes = [0]
        for found in server.root.glob(".shared.bin.*laden-upload"):
            with contextlib.suppress(FileNotFoundError):  # renamed as it finished
                sizes += [found.stat().st_size] if found != ours else []
        return max(sizes)

    with manager() as m:
        upload = m.add_upload(str(path), _address(server, "shared.bin"), **_login(server))
        ours = _temporary(server.root, "shared.bin")
        _wait_size(ours, 2 * MiB)
        m.pause(upload)
        m.wait(upload)
        said = tmp_path / "other.err"
        with said.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "laden", "put", *_cli(server), str(theirs),
                 _address(server, "shared.bin")], stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "LADEN_STATE_DIR": str(other_state)})
        try:
            # Generous: a loaded machine (the whole suite on two cores) starts Python slowly.
            # Until it sent 2 MiB into a temporary file of its own, or finished: the name then
            # holds its version, and ours must still end as ours, from its own bytes.
            deadline = time.monotonic() + 90
            while sent_by_the_other(ours) < 2 * MiB:
                if process.poll() == 0:
                    assert (server.root / "shared.bin").read_bytes() == their_data
                    break
                assert time.monotonic() < deadline and process.poll() is None, \
                    f"the other upload sent too little: exit {process.poll()}, " \
                    f"{said.read_text()!r}"
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        m.resume(upload)
        info = m.wait(upload, timeout=90)
    assert info.state is State.DONE, info.message
    assert (server.root / "shared.bin").read_bytes() == data


@pytest.mark.parametrize("reply", ["550", "451"], ids=["refused", "failed"])
def test_a_temporary_file_gone_at_the_rename_is_sent_again_never_taken_as_done(
        ftp_server: FTPTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        reply: str) -> None:
    # Someone removes the temporary file right before the rename, and an older file of the
    # same size has the name. 550: the refused rename must not delete that file; 451: the
    # next try (the rename's answer lost, as when laden stops during it) cannot tell, with no
    # checksum, whether the file there is this one, so it sends it again rather than take it
    # as done.
    from pyftpdlib.handlers import FTPHandler

    path, data = _file(tmp_path, "f.bin", 9 * MiB, seed=15)
    folder = f"gone-{reply}"
    ftp_server.write_file(f"{folder}/f.bin", random_bytes(len(data), seed=16))
    removed: list[str] = []
    rename_from = FTPHandler.ftp_RNFR

    def vanish(self: Any, where: str) -> None:
        if not removed and where.endswith("laden-upload"):
            removed.append(where)
            os.remove(where)
            if reply == "451":
                self.respond("451 Requested action aborted: local error in processing.")
                return
        rename_from(self, where)

    monkeypatch.setattr(FTPHandler, "ftp_RNFR", vanish)
    with manager() as m:
        upload = m.add_upload(str(path), _address(ftp_server, f"{folder}/f.bin"),
                              **_login(ftp_server))
        info = m.wait(upload, timeout=60)
        if reply == "451":  # a failed commit ends the attempt; the next one looks first
            assert info.state is State.FAILED and "451" in info.message
            m.resume(upload)
            info = m.wait(upload, timeout=60)
    assert removed
    assert info.state is State.DONE, info.message
    assert (ftp_server.root / folder / "f.bin").read_bytes() == data
    said = "gone from the server" if reply == "550" else "cannot be told"
    assert any(said in e.message for e in info.errors), [e.message for e in info.errors]


# -- conflicts -------------------------------------------------------------------------------

def test_conflict_overwrite_replaces(ftp_server: FTPTestServer, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "f.bin", 10 * MiB, seed=5)
    ftp_server.write_file("over/taken.bin", b"theirs")
    result = _laden("put", "-q", *_cli(ftp_server), str(path),
                    _address(ftp_server, "over/taken.bin"))
    assert result.returncode == 0, result.stderr
    assert (ftp_server.root / "over/taken.bin").read_bytes() == data


def test_conflict_skip_compares_the_size_alone_and_says_so(ftp_server: FTPTestServer,
                                                           tmp_path: Path) -> None:
    path, data = _file(tmp_path, "same.bin", 5000, seed=6)
    ftp_server.write_file("skip/same.bin", data)
    ftp_server.write_file("skip/other.bin", b"x" * 10)
    with manager() as m:
        same = m.wait(m.add_upload(str(path), _address(ftp_server, "skip/same.bin"),
                                   conflict="skip", **_login(ftp_server)))
        other = m.wait(m.add_upload(str(path), _address(ftp_server, "skip/other.bin"),
                                    conflict="skip", **_login(ftp_server)))
    assert same.state is State.DONE and same.skipped, same.message
    assert "size already (size only: the service offers no checksum" in same.message
    assert other.state is State.DONE and not other.skipped
    assert (ftp_server.root / "skip/other.bin").read_bytes() == data
    again = _laden("put", "--conflict", "skip", *_cli(ftp_server), str(path),
                   _address(ftp_server, "skip/same.bin"))
    assert again.returncode == 0, again.stderr
    assert f"skipped {path}: " in again.stdout and "(size only:" in again.stdout


@pytest.mark.parametrize("size", [5000, 10 * MiB], ids=["small", "large"])
def test_conflict_fail_checks_the_name(ftp_server: FTPTestServer,
                                                         tmp_path: Path, size: int) -> None:
    path, _ = _file(tmp_path, "f.bin", size, seed=7)
    folder = f"fail-{size}"
    ftp_server.write_file(f"{folder}/taken.bin", b"theirs")
    result = _laden("put", "--conflict", "fail", *_cli(ftp_server), str(path),
                    _address(ftp_server, f"{folder}/taken.bin"))
    assert result.returncode == 1, result.stderr
    assert "exists already, and the conflict policy is fail" in result.stderr
    if size < 8 * MiB:  # one STOR: the check is the one right before the rename
        assert "FTP cannot make the check and the rename one step" in result.stderr
    else:  # streamed: looked at first too, so that nothing is sent
        assert "nothing was sent" in result.stderr
    assert "Traceback" not in result.stderr
    assert (ftp_server.root / folder / "taken.bin").read_bytes() == b"theirs"
    assert sorted(os.listdir(ftp_server.root / folder)) == ["taken.bin"]  # no temporary left


def test_conflict_fail_looks_again_right_before_the_rename(
        slow_upload_server: FTPTestServer, tmp_path: Path) -> None:
    server = slow_upload_server
    path, _ = _file(tmp_path, "f.bin", 10 * MiB, seed=8)
    with manager() as m:
        upload = m.add_upload(str(path), _address(server, "race.bin"), conflict="fail",
                              **_login(server))
        temporary = _temporary(server.root, "race.bin")
        _wait_size(temporary, 1 * MiB)
        server.write_file("race.bin", b"someone else's")  # after laden looked
        info = m.wait(upload, timeout=60)
    assert info.state is State.FAILED
    assert "FTP cannot make the check and the rename one step" in info.message
    assert (server.root / "race.bin").read_bytes() == b"someone else's"
    assert not temporary.exists()


def test_cancel_removes_the_temporary_file(slow_upload_server: FTPTestServer,
                                           tmp_path: Path) -> None:
    server = slow_upload_server
    path, _ = _file(tmp_path, "gone.bin", 12 * MiB, seed=9)
    with manager() as m:
        upload = m.add_upload(str(path), _address(server, "gone.bin"), **_login(server))
        temporary = _temporary(server.root, "gone.bin")
        _wait_size(temporary, 1 * MiB)
        m.cancel(upload)
        m.wait(upload)
        time.sleep(0.3)
    assert not temporary.exists() and not (server.root / "gone.bin").exists()
    assert path.exists()  # an upload's file is never laden's to delete


@pytest.fixture
def xmd5(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyftpdlib offering XMD5 (as FileZilla Server and others do), listed in FEAT."""
    import hashlib

    from pyftpdlib.handlers import FTPHandler

    def ftp_XMD5(self: Any, path: str) -> None:  # noqa: N802 - pyftpdlib's naming
        try:
            with open(path, "rb") as handle:
                digest = hashlib.md5(handle.read()).hexdigest().upper()
        except OSError:
            self.respond("550 No such file.")
            return
        self.respond(f"250 {digest}")

    commands = dict(FTPHandler.proto_cmds)
    commands["XMD5"] = {"perm": "r", "auth": True, "arg": True, "help": "XMD5 <path>"}
    monkeypatch.setattr(FTPHandler, "proto_cmds", commands)
    monkeypatch.setattr(FTPHandler, "ftp_XMD5", ftp_XMD5, raising=False)
    started = FTPHandler.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        started(self, *args, **kwargs)
        self._extra_feats.append("XMD5")

    monkeypatch.setattr(FTPHandler, "__init__", init)


def test_a_server_with_xmd5_has_the_object_checked_by_md5(
        ftp_server: FTPTestServer, tmp_path: Path, xmd5: None) -> None:
    path, data = _file(tmp_path, "f.bin", 10 * MiB + 3, seed=10)
    ftp_server.write_file("md5/same.bin", data)
    with manager() as m:
        done = m.wait(m.add_upload(str(path), _address(ftp_server, "md5/f.bin"),
                                   **_login(ftp_server)))
        same = m.wait(m.add_upload(str(path), _address(ftp_server, "md5/same.bin"),
                                   conflict="skip", **_login(ftp_server)))
    assert done.state is State.DONE, done.message
    assert [(c.algorithm, c.verified) for c in done.checksums] == [("md5", True)]
    assert same.skipped and "size and MD5 already" in same.message


def test_a_password_in_the_address_is_used_and_never_kept(
        ftp_server: FTPTestServer, tmp_path: Path, laden_dirs: dict[str, Path]) -> None:
    path, data = _file(tmp_path, "p.bin", 1000, seed=11)
    address = (f"ftp://{ftp_server.user}:{ftp_server.password}@127.0.0.1:{ftp_server.port}"
               "/secret/")
    result = _laden("--log-level", "debug", "put", "--json", str(path), address)
    assert result.returncode == 0, result.stderr
    assert (ftp_server.root / "secret/p.bin").read_bytes() == data
    listed = _laden("list", "--json").stdout
    kept = [p.read_bytes().decode("latin-1") for folder in ("state", "logs")
            for p in laden_dirs[folder].rglob("*") if p.is_file()]
    for text in [result.stdout, result.stderr, listed, *kept]:
        assert ftp_server.password not in text
