"""`laden get -i FILE`: plain URL lists and aria2's input-file form (aria2c(1), "Input File")."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from laden.cli import main
from laden.cli.input_file import read_input_file
from laden.core.errors import InputError


def test_plain_list_with_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text("# my list\nhttps://a.example/1.iso\n\n\thttps://ignored-option-line\n"
                    "https://b.example/2.iso\r\n")
    with pytest.raises(InputError, match="line 4: expected name=value"):
        read_input_file(str(path))
    path.write_text("# my list\nhttps://a.example/1.iso\n\nhttps://b.example/2.iso\r\n")
    assert read_input_file(str(path)) == [("https://a.example/1.iso", {}),
                                          ("https://b.example/2.iso", {})]


def test_aria2_options(tmp_path: Path) -> None:
    digest = "a" * 64
    path = tmp_path / "aria2.txt"
    path.write_text(
        "http://server/file.iso\thttp://mirror/file.iso\n"
        "  dir=/iso_images\n"
        "  out=file.img\n"
        f"  checksum=sha-256={digest}\n"
        "  split=8\n"
        "  max-connection-per-server=4\n"
        "  header=X-A: b78\n"
        "\theader=X-B: 9J1\n"
        "  user-agent=tool/1\n"
        "  max-download-limit=1M\n"
        "  continue=true\n"
        "  bt-tracker=udp://ignored\n"
        "ftp://host/pub/x.bin\n"
        "  ftp-user=me\n"
        "  ftp-passwd=pw\n"
        "  http-user=not-for-ftp\n"
        "  out=sub/dir/x.bin\n"
    )
    (iso, iso_fields), (ftp, ftp_fields) = read_input_file(str(path), default_dir="/downloads")
    assert iso == "http://server/file.iso"  # the first of the mirrors
    assert iso_fields == {
        "dest": "/iso_images/", "filename": "file.img", "checksum": f"sha-256:{digest}",
        "connections": 4, "headers": {"X-A": "b78", "X-B": "9J1", "User-Agent": "tool/1"},
        "limit_rate": 1024 * 1024, "conflict": "resume"}
    assert ftp == "ftp://host/pub/x.bin"
    # out is relative to dir (here the -o folder) and may name subfolders.
    assert ftp_fields == {"username": "me", "password": "pw", "filename": "x.bin",
                          "dest": os.path.join("/downloads", "sub", "dir") + os.sep}


@pytest.mark.parametrize(("lines", "expected"), [
    ("  out=x\nhttp://a/b\n", "line 1: an option line before any URL"),
    ("http://a/b\n  checksum=sha-256=nothex\n", "line 2: checksum:"),
    ("http://a/b\n  split=0\n", "line 2: split: must be a number from 1 to 32"),
    ("http://a/b\n  max-download-limit=fast\n", "line 2: max-download-limit:"),
    ("http://a/b\n  out=../../etc/passwd\n", "must stay inside the download folder"),
    ("http://a/b\n  all-proxy=nonsense\n", "line 2: all-proxy: the proxy must be an address"),
    # Refused by the options themselves: named by the line of the entry's address.
    ("# list\nhttp://a/b\n  http-user=a\x7fb\n", "in.txt, line 2: the user name holds"),
])
def test_bad_lines_are_named(tmp_path: Path, lines: str, expected: str) -> None:
    path = tmp_path / "in.txt"
    path.write_text(lines)
    with pytest.raises(InputError, match=expected):
        read_input_file(str(path))


def test_gzip_compressed_input_file(tmp_path: Path) -> None:
    path = tmp_path / "in.txt.gz"
    path.write_bytes(gzip.compress(b"https://a.example/x\n  out=y\n"))
    assert read_input_file(str(path)) == [("https://a.example/x", {"filename": "y"})]


def test_get_with_an_aria2_input_file(http_server: Any, downloads: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    one, two = b"one" * 1000, b"two" * 1000
    url_one = http_server.add_file("/one.bin", one)
    url_two = http_server.add_file("/two.bin", two)
    listing = downloads.parent / "list.txt"
    listing.write_text(
        f"{url_one}\n  out=renamed.bin\n  checksum=sha-256={hashlib.sha256(one).hexdigest()}\n"
        f"# a comment\n{url_two}\n  dir={downloads / 'other'}\n")
    code = main(["get", "-q", "-o", str(downloads), "-i", str(listing)])
    assert code == 0, capsys.readouterr().err
    assert (downloads / "renamed.bin").read_bytes() == one
    assert (downloads / "other" / "two.bin").read_bytes() == two


def test_an_empty_all_proxy_means_no_proxy(http_server: Any, downloads: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # aria2 takes `all-proxy=` (empty) as "no proxy for this file": the environment's proxy
    # (a closed port here) is not used, and the file comes straight from the server.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = http_server.add_file("/direct.bin", b"direct" * 1000)
    listing = downloads.parent / "list.txt"
    listing.write_text(f"{url}\n  all-proxy=\n")
    assert read_input_file(str(listing)) == [(url, {"proxy": ""})]
    code = main(["get", "-q", "--retries", "0", "-o", str(downloads), "-i", str(listing)])
    assert code == 0, capsys.readouterr().err
    assert (downloads / "direct.bin").read_bytes() == b"direct" * 1000
