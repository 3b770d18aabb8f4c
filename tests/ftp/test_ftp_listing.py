"""Old servers (no MLSD, REST or MDTM), and the pieces of FTP listing and glob handling."""

from __future__ import annotations

import ftplib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.helpers import FAST, manager, sha256
from laden.core.options import DownloadOptions
from laden.core.states import State
from laden.sources import listing
from laden.sources.ftp_protocol import entries, parse_list_line, split_glob
from laden.sources.listing import may_match_below
from servers.fixtures import random_bytes
from servers.ftp import FTPTestServer

from .conftest import CommandLog


@pytest.fixture(scope="module")
def server_without_mlsd() -> Iterator[FTPTestServer]:
    """pyftpdlib answering MLSD, MLST, MDTM and REST with 500, like servers older than
    RFC 3659 (FEAT then lists no REST STREAM either)."""
    with FTPTestServer() as server:
        handler = server._server.handler  # this server's own handler class
        handler.proto_cmds = {k: v for k, v in handler.proto_cmds.items()
                              if k not in ("MLSD", "MLST", "MDTM", "REST")}
        yield server


def test_server_without_rest_gives_one_stream(server_without_mlsd: FTPTestServer,
                                              downloads: Path, ftp_commands: CommandLog) -> None:
    data = random_bytes(700_000, seed=7)
    server_without_mlsd.write_file("norest/n.bin", data)
    with manager(FAST.replace(connections=4)) as m:
        info = m.wait(m.add(f"{server_without_mlsd.url}/norest/n.bin", str(downloads)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert ftp_commands.named("RETR") == ["norest/n.bin"]  # one stream, from the start
    assert not ftp_commands.named("REST")
    assert info.last_modified is None  # no MDTM: nothing to prove the file unchanged


def test_folder_on_a_server_without_mlsd_is_listed_with_list(
    server_without_mlsd: FTPTestServer, downloads: Path
) -> None:
    for name in ("x.txt", "dir with space/y.txt", "dir with space/z.bin"):
        server_without_mlsd.write_file(f"old/{name}", name.encode())
    with manager() as m:
        ids = m.add_all(f"{server_without_mlsd.url}/old/", str(downloads) + "/",
                        source_settings={"glob": "*.txt"})
        infos = [m.wait(i) for i in ids]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    assert (downloads / "x.txt").read_bytes() == b"x.txt"
    assert (downloads / "dir with space" / "y.txt").read_bytes() == b"dir with space/y.txt"
    assert not (downloads / "dir with space" / "z.bin").exists()


def test_unix_list_lines() -> None:
    assert parse_list_line("-rw-r--r--   1 ftp ftp  1234 Jan 01 12:00 a file.txt") == (
        "a file.txt", False, 1234)
    assert parse_list_line("drwxr-xr-x   2 ftp ftp  4096 Jan 01  2024 sub") == ("sub", True, 4096)
    assert parse_list_line("lrwxrwxrwx   1 ftp ftp     7 Jan 01 12:00 l -> target") == (
        "l", False, 7)
    assert parse_list_line("01-01-24  12:00PM       <DIR>          Windows") is None
    assert parse_list_line("total 12") is None


class _WindowsStyleServer:
    """Just enough of ftplib.FTP for `entries`: no MLSD, an IIS-style LIST, NLST and SIZE."""

    def __init__(self, sizes: dict[str, int | None]) -> None:
        self.sizes = sizes

    def mlsd(self, path: str, facts: list[str]) -> Iterator[tuple[str, dict[str, str]]]:
        raise ftplib.error_perm("502 MLSD not implemented")

    def retrlines(self, command: str, callback: Callable[[str], None]) -> None:
        for name, size in self.sizes.items():
            callback(f"01-01-24  12:00PM  {'<DIR>' if size is None else size}  {name}")

    def nlst(self, path: str) -> list[str]:
        return [f"{path}/{name}" for name in self.sizes]

    def sendcmd(self, command: str) -> str:
        size = self.sizes[command.split("/")[-1]]
        if size is None:
            raise ftplib.error_perm("550 not a plain file")
        return f"213 {size}"

    def voidcmd(self, command: str) -> str:
        return "200 ok"


def test_listing_falls_back_to_names_and_sizes() -> None:
    server = _WindowsStyleServer({"a.bin": 10, "folder": None, "..": None})
    assert entries(server, "pub") == [("a.bin", False, 10), ("folder", True, None)]  # type: ignore[arg-type]


def test_glob_helpers() -> None:
    assert split_glob("pub/iso/*.iso") == ("pub/iso", "*.iso")
    assert split_glob("pub/*/x.bin") == ("pub", "*/x.bin")
    assert split_glob("pub/file.bin") == ("pub/file.bin", None)
    assert may_match_below("sub/*.txt", "sub")
    assert not may_match_below("sub/*.txt", "other")
    assert not may_match_below("*.txt", "sub")  # anchored: only the folder's own files
    assert may_match_below("**/*.txt", "a/b/c")
    assert may_match_below("a/**/x", "a/b")


def test_walk_skips_only_folders_that_cannot_hold_a_wanted_file() -> None:
    def chosen(key: str, **settings: object) -> listing.Selection:
        return listing.selection(key, DownloadOptions(source_settings=settings))

    assert not chosen("pub/*.iso").may_hold("sub")  # the address's glob: only pub's own files
    assert chosen("pub/**/*.iso").may_hold("a/b")
    assert chosen("pub/", glob="*.iso").may_hold("a/b")  # a bare name: any depth
    assert not chosen("pub/", glob="iso/*.iso").may_hold("other")
    assert chosen("pub/", include=["iso/*", "img/*"]).may_hold("img")
    assert not chosen("pub/", include=["iso/*", "img/*"]).may_hold("doc")
    assert chosen("pub/", include=["iso/*", "*.txt"]).may_hold("doc")  # *.txt: any depth
    assert chosen("pub/", exclude=["doc/*"]).may_hold("doc")  # doc/x/y is not excluded
