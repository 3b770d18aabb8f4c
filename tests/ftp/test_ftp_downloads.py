"""FTP and FTPS downloads through the engine, against pyftpdlib on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.helpers import FAST, manager, part_files, sha256
from laden.core.options import DownloadOptions
from laden.core.states import State
from servers.fixtures import random_bytes
from servers.ftp import FTPTestServer

from .conftest import CommandLog, wait_for


def test_plain_file_with_credentials_in_the_address(ftp_server: FTPTestServer,
                                                    downloads: Path) -> None:
    data = random_bytes(300_000, seed=1)
    ftp_server.write_file("plain/one.bin", data)
    with manager() as m:
        info = m.wait(m.add(f"{ftp_server.url}/plain/one.bin", str(downloads)))
    assert info.state is State.DONE, info.message
    assert Path(info.dest) == downloads / "one.bin"
    assert sha256(Path(info.dest)) == sha256(data)
    assert info.source == "ftp"
    assert info.url == f"ftp://127.0.0.1:{ftp_server.port}/plain/one.bin"  # no password


def test_parallel_segments_each_read_their_range_and_stop(
    ftp_server: FTPTestServer, downloads: Path, ftp_commands: CommandLog
) -> None:
    data = random_bytes(3 * 1024 * 1024, seed=2)
    ftp_server.write_file("parallel/big.bin", data)
    with manager(FAST.replace(connections=4)) as m:
        info = m.wait(m.add(f"{ftp_server.url}/parallel/big.bin", str(downloads)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    offsets = {int(a) for a in ftp_commands.named("REST")}
    assert len(ftp_commands.named("RETR")) >= 4
    assert len(offsets - {0}) >= 3  # ranges started at different offsets
    # A range that ends before the end of the file is stopped with ABOR, and control
    # connections are used again: the probe's carries a range, so no more logins than
    # connections at once.
    assert ftp_commands.named("ABOR")
    assert len(ftp_commands.named("USER")) <= 4
    assert ftp_commands.named("MDTM") and ftp_commands.named("SIZE")


def test_ftps_verifies_the_certificate_and_accepts_a_ca_bundle(
    ftps_server: FTPTestServer, downloads: Path
) -> None:
    data = random_bytes(1024 * 1024, seed=3)
    ftps_server.write_file("tls/secure.bin", data)
    url = f"{ftps_server.url}/tls/secure.bin"
    with manager(FAST.replace(connections=3)) as m:
        untrusted = m.wait(m.add(url, str(downloads / "a") + "/"))
        trusted = m.wait(m.add(url, str(downloads / "b") + "/",
                               options=DownloadOptions(ca_bundle=str(ftps_server.ca_cert_path))))
    assert untrusted.state is State.FAILED
    assert "certificate" in untrusted.message and "--ca-bundle" in untrusted.message
    assert trusted.state is State.DONE, trusted.message
    assert sha256(Path(trusted.dest)) == sha256(data)


def test_file_changed_between_sessions_starts_again(
    slow_ftp_server: FTPTestServer, downloads: Path
) -> None:
    old, new = random_bytes(700_000, seed=4), random_bytes(700_000, seed=5)
    slow_ftp_server.write_file("change/size.bin", old)
    slow_ftp_server.write_file("change/mtime.bin", old)
    slow_ftp_server.set_mtime("change/mtime.bin", 1_700_000_000)
    urls = [f"{slow_ftp_server.url}/change/{name}" for name in ("size.bin", "mtime.bin")]
    with manager(FAST.replace(connections=1)) as m:
        ids = [m.add(url, str(downloads)) for url in urls]
        wait_for(lambda: all(m.get(i).done > 100_000 for i in ids))
    assert part_files(downloads)  # the first session stopped midway
    slow_ftp_server.write_file("change/size.bin", new + b"longer")
    slow_ftp_server.write_file("change/mtime.bin", new)  # same size, other bytes and time
    slow_ftp_server.set_mtime("change/mtime.bin", 1_700_000_100)
    with manager(FAST.replace(connections=1)) as m:
        # The same command again: the password is never stored, the address brings it back.
        assert [m.add(url, str(downloads)) for url in urls] == ids
        size_info, mtime_info = (m.wait(i, timeout=30) for i in ids)
    assert size_info.state is State.DONE, size_info.message
    assert mtime_info.state is State.DONE, mtime_info.message
    assert sha256(Path(size_info.dest)) == sha256(new + b"longer")
    assert sha256(Path(mtime_info.dest)) == sha256(new)
    assert any("changed size" in e.message for e in size_info.errors)
    assert any("Last-Modified" in e.message for e in mtime_info.errors)


def test_folder_with_glob(ftp_server: FTPTestServer, downloads: Path) -> None:
    files = {"a.txt": b"a", "b.md": b"b", "sub/c.txt": b"c", "sub/deep/d.txt": b"d",
             "other/e.bin": b"e"}
    for name, data in files.items():
        ftp_server.write_file(f"tree/{name}", data)
    base = f"{ftp_server.url}/tree"

    def fetch(url: str, folder: str, **settings: str) -> set[str]:
        with manager() as m:
            ids = m.add_all(url, str(downloads / folder) + "/", source_settings=settings)
            infos = [m.wait(i) for i in ids]
        assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
        found = {str(p.relative_to(downloads / folder)) for p in (downloads / folder).rglob("*")
                 if p.is_file()}
        for name in found:
            assert (downloads / folder / name).read_bytes() == files[name]
        return found

    # A bare pattern matches at any depth, as for the cloud sources; one in the address or
    # one with a slash is anchored at the folder.
    assert fetch(f"{base}/", "any", glob="*.txt") == {"a.txt", "sub/c.txt", "sub/deep/d.txt"}
    assert fetch(f"{base}/*.txt", "address") == {"a.txt"}
    assert fetch(f"{base}/", "anchored", glob="sub/*.txt") == {"sub/c.txt"}
    assert fetch(f"{base}/", "all") == set(files)
    assert fetch(base, "no-slash", glob="**/*.md") == {"b.md"}  # a folder without the slash


def test_credentials_are_never_journalled_or_logged(
    ftp_server: FTPTestServer, downloads: Path, laden_dirs: dict[str, Path]
) -> None:
    ftp_server.write_file("secret/s.bin", b"x" * 1000)
    with manager(persist=True) as m:
        info = m.wait(m.add(f"{ftp_server.url}/secret/s.bin", str(downloads)))
    assert info.state is State.DONE
    assert ftp_server.password not in str(info.options)
    journal = sqlite3.connect(laden_dirs["state"] / "journal.sqlite3")
    rows = " ".join(str(r) for r in journal.execute("SELECT data FROM downloads"))
    journal.close()
    assert "ftp://127.0.0.1" in rows
    assert ftp_server.password not in rows


def test_netrc_supplies_the_login(ftp_server: FTPTestServer, downloads: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  ftp_commands: CommandLog) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {ftp_server.user} "
                     f"password {ftp_server.password}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    ftp_server.write_file("netrc/n.bin", b"n" * 100)
    with manager() as m:
        info = m.wait(m.add(f"ftp://127.0.0.1:{ftp_server.port}/netrc/n.bin", str(downloads)))
    assert info.state is State.DONE, info.message
    assert ftp_commands.named("USER") and set(ftp_commands.named("USER")) == {ftp_server.user}


def test_anonymous_login_when_no_credentials_are_known(
    ftp_server: FTPTestServer, downloads: Path, ftp_commands: CommandLog
) -> None:
    ftp_server.write_file("public/p.bin", b"p" * 10)
    with manager() as m:
        info = m.wait(m.add(f"ftp://127.0.0.1:{ftp_server.port}/public/p.bin", str(downloads)))
    assert info.state is State.DONE, info.message
    assert set(ftp_commands.named("USER")) == {"anonymous"}


def test_connections_judged_too_slow_are_replaced_without_harm(
    slow_ftp_server: FTPTestServer, downloads: Path
) -> None:
    """Every data connection runs at 400 KB/s, under a lowest speed of 1 MiB/s: each is closed
    (ABOR) and its range asked for again, a few times at most, and the file is still right."""
    data = random_bytes(3 << 20, seed=77)
    slow_ftp_server.write_file("slow/judged.bin", data)
    config = FAST.replace(lowest_speed=1 << 20, stall_timeout=2.0, min_segment_size=1 << 20)
    with manager(config) as m:
        info = m.wait(m.add(f"{slow_ftp_server.url}/slow/judged.bin", str(downloads),
                            connections=2), timeout=120)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert any("too slow" in e.message for e in info.errors)
