"""HTTP folders: the files a folder page links to, with `--glob`, `--include` or `--exclude`.

Against Python's own `http.server` (a folder index nobody here wrote, with its redirect from
`/dir` to `/dir/`) and the fault-injecting server for pages written to be hostile.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.helpers import manager
from laden.cli import main
from laden.core.errors import Permanent
from laden.core.options import DownloadOptions
from laden.core.states import State
from laden.sources import http_folders
from laden.sources.base import ListedObject
from laden.sources.http import HttpSource
from servers.http_server import FileServer

TREE = {"a.txt": b"a" * 10, "b.md": b"b" * 20, "with space.txt": b"s" * 30,
        "sub/c.txt": b"c" * 40, "sub/deep/d.txt": b"d" * 50, "other/e.bin": b"e" * 60}


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[str]:
    """`python -m http.server` on 127.0.0.1 serving TREE under /tree/."""
    root = tmp_path / "served"
    for name, data in TREE.items():
        (root / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "tree" / name).write_bytes(data)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _walk(url: str, glob: str = "**", **options: object) -> list[ListedObject]:
    """The files the HTTP source lists under `url` with this glob and these options."""
    source = HttpSource()
    try:
        return list(source.list(url, DownloadOptions(source_settings={"glob": glob},
                                                     **options)))  # type: ignore[arg-type]
    finally:
        source.close()


def _fetched(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_folder_index_with_a_glob_downloads_the_files_it_links_to(
        index_server: str, downloads: Path) -> None:
    def fetch(url: str, folder: str, **settings: str) -> dict[str, bytes]:
        with manager() as m:
            ids = m.add_all(url, str(downloads / folder) + "/", source_settings=settings)
            infos = [m.wait(i) for i in ids]
        assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
        return _fetched(downloads / folder)

    everything = fetch(f"{index_server}/tree/", "all", glob="**")
    assert everything == TREE  # nested folders walked, names with spaces decoded
    assert set(fetch(f"{index_server}/tree/", "txt", glob="*.txt")) == {
        "a.txt", "with space.txt", "sub/c.txt", "sub/deep/d.txt"}
    assert set(fetch(f"{index_server}/tree/", "anchored", glob="sub/*.txt")) == {"sub/c.txt"}
    # Without the slash the server redirects to the folder, as nginx and Apache do.
    assert set(fetch(f"{index_server}/tree", "redirected", include="*.md")) == {"b.md"}
    assert set(fetch(f"{index_server}/tree/", "excluded", glob="**", exclude="sub/**")) == {
        "a.txt", "b.md", "with space.txt", "other/e.bin"}


def test_without_a_glob_a_folder_address_is_the_page_it_always_was(
        index_server: str, downloads: Path) -> None:
    with manager() as m:
        ids = m.add_all(f"{index_server}/tree/", str(downloads) + "/")
        infos = [m.wait(i) for i in ids]
    assert len(infos) == 1 and infos[0].state is State.DONE
    assert b"a.txt" in Path(infos[0].dest).read_bytes()


HOSTILE = """<!DOCTYPE html><html><body>
<a href="../">Parent</a> <a href="?C=N;O=D">Name</a> <a href="/">home</a>
<a href="one.bin">one</a> <a href="one.bin#again">one again</a>
<a href="http://elsewhere.invalid/pages/two.bin">other host</a>
<a href="//elsewhere.invalid/pages/three.bin">other host, no scheme</a>
<a href="https://127.0.0.1:{port}/pages/four.bin">other scheme</a>
<a href="/pages/five.bin">absolute path</a> <a href="/outside.bin">outside</a>
<a href="six.bin?download=1">with a query</a> <a href="mailto:a@b.c">mail</a>
<a href="javascript:alert(1)">script</a> <a>no href</a> <a href="">empty</a>
<a href="caf%C3%A9.bin">encoded</a> <a href="deeper/seven.bin">deeper, no page of its own</a>
<a href="sub/">a folder</a> <a href="http://[bad">broken</a>
<a href="../pages/eight.bin">back in</a>
</body></html>"""


def test_only_links_under_the_folder_on_the_same_origin_are_taken(http_server: FileServer) -> None:
    page = HOSTILE.replace("{port}", str(http_server.port)).encode()
    url = http_server.add_file("/pages/", page, content_type="text/html; charset=utf-8")
    http_server.add_file("/pages/sub/", b'<a href="nine.bin">9</a><a href="../one.bin">1</a>',
                         content_type="text/html")
    listed = _walk(url)
    base = url.rstrip("/")
    assert {(i.relative_path, i.url) for i in listed} == {
        ("one.bin", f"{base}/one.bin"), ("five.bin", f"{base}/five.bin"),
        ("café.bin", f"{base}/caf%C3%A9.bin"), ("deeper/seven.bin", f"{base}/deeper/seven.bin"),
        ("eight.bin", f"{base}/eight.bin"), ("sub/nine.bin", f"{base}/sub/nine.bin")}
    assert all(i.size is None for i in listed)


def test_a_base_href_is_where_relative_links_start(http_server: FileServer) -> None:
    folder = http_server.add_file("/based/", b'<base href="/based/files/"><a href="x.bin">x</a>',
                                  content_type="text/html")
    assert [i.relative_path for i in _walk(folder)] == ["files/x.bin"]


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"\0\1binary", "application/octet-stream", "is not a folder page (application/octet-stream)"),
    (b"<a href='x.bin'>x</a>", "text/html", "nothing to download"),
])
def test_what_is_not_a_folder_says_so(http_server: FileServer, body: bytes, content_type: str,
                                      message: str) -> None:
    url = http_server.add_file("/notes/", body, content_type=content_type)
    with pytest.raises(Permanent, match=message.replace("(", r"\(").replace(")", r"\)")):
        _walk(url, "*.csv")


def test_a_folder_page_that_is_missing_is_the_status_it_got(http_server: FileServer) -> None:
    with pytest.raises(Permanent, match="no such file"):
        _walk(f"{http_server.base_url}/missing/", "*")


def test_links_that_loop_stop_at_the_page_limit(http_server: FileServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A symbolic link to a parent folder makes an index that never ends: a/, a/a/, a/a/a/ ...
    for depth in range(6):
        http_server.add_file("/loop/" + "a/" * depth, b'<a href="a/">a</a><a href="f">f</a>',
                             content_type="text/html")
    monkeypatch.setattr(http_folders, "MAX_PAGES", 4)
    with pytest.raises(Permanent, match="more than 4 folder pages"):
        _walk(f"{http_server.base_url}/loop/")


def test_a_page_of_too_many_links_is_refused(http_server: FileServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    links = "".join(f'<a href="f{n}.bin">f</a>' for n in range(6))
    http_server.add_file("/many/", links.encode(), content_type="text/html")
    monkeypatch.setattr(http_folders, "MAX_FILES", 5)
    with pytest.raises(Permanent, match="more than 5 files"):
        _walk(f"{http_server.base_url}/many/", "*")


def test_a_folder_whose_name_holds_glob_characters(http_server: FileServer,
                                                   downloads: Path) -> None:
    http_server.add_file("/pub/data[1]?/", b'<a href="x.csv">x</a><a href="y.txt">y</a>',
                         content_type="text/html")
    http_server.add_file("/pub/data[1]?/x.csv", b"x" * 100)
    url = f"{http_server.base_url}/pub/data%5B1%5D%3F/"
    with manager() as m:
        ids = m.add_all(url, str(downloads) + "/", source_settings={"glob": "*.csv"})
        infos = [m.wait(i) for i in ids]
    assert [i.state for i in infos] == [State.DONE], [i.message for i in infos]
    assert (downloads / "x.csv").read_bytes() == b"x" * 100


def test_a_folder_moved_to_another_server_is_walked_there_without_credentials(
        http_server: FileServer, downloads: Path) -> None:
    with FileServer() as mirror:
        mirror.add_file("/data/", b'<a href="m.bin">m</a>', content_type="text/html")
        mirror.add_file("/data/m.bin", b"m" * 500)
        http_server.add_redirect("/data/", f"{mirror.base_url}/data/")
        url = f"{http_server.base_url}/data/"
        with manager() as m:
            ids = m.add_all(url, str(downloads) + "/", source_settings={"glob": "*.bin"})
            infos = [m.wait(i) for i in ids]
        assert [i.url for i in infos] == [f"{mirror.base_url}/data/m.bin"]
        assert (downloads / "m.bin").read_bytes() == b"m" * 500
        for given in ({"username": "u", "password": "secret"}, {"bearer_token": "t0ken"},
                      {"headers": {"X-Api-Key": "k"}}):
            with pytest.raises(Permanent, match="another server: laden does not send"):
                _walk(url, "*", **given)
        assert all("authorization" not in r.headers for r in mirror.requests)


def test_a_file_given_as_a_folder_is_refused_before_its_bytes(http_server: FileServer) -> None:
    big = b"\0" * (3 << 20)
    url = http_server.add_file("/big.iso", big)
    with pytest.raises(Permanent, match=r"is not a folder page \(application/octet-stream\)"):
        _walk(url, "*")
    assert len(http_server.requests) == 1  # one answer, closed after its headers


def test_a_protected_folder_and_its_files_get_the_credentials(http_server: FileServer,
                                                              downloads: Path) -> None:
    token = "Basic dXNlcjpzZWNyZXQ="  # user:secret
    http_server.add_file("/private/", b'<a href="p.bin">p</a>', content_type="text/html")
    http_server.add_file("/private/p.bin", b"p" * 1000)
    http_server.require_auth("/private/", token)
    http_server.require_auth("/private/p.bin", token)
    url = http_server.base_url.replace("://", "://user:secret@") + "/private/"
    with manager() as m:
        ids = m.add_all(url, str(downloads) + "/", source_settings={"glob": "*.bin"})
        infos = [m.wait(i) for i in ids]
        assert [i.state for i in infos] == [State.DONE], [i.message for i in infos]
        assert "secret" not in infos[0].url
    assert (downloads / "p.bin").read_bytes() == b"p" * 1000


def test_a_folder_from_the_command_line(index_server: str, downloads: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["get", "-q", "--glob", "*.txt", "-o", str(downloads), f"{index_server}/tree/"])
    assert code == 0, capsys.readouterr().err
    assert set(_fetched(downloads)) == {"a.txt", "with space.txt", "sub/c.txt", "sub/deep/d.txt"}


def test_a_file_given_as_a_folder_is_one_clear_line(http_server: FileServer, downloads: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = http_server.add_file("/blob.bin", b"\0" * 100)
    code = main(["get", "-q", "--glob", "*.txt", "-o", str(downloads), url])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "is not a folder page" in err, err
    assert not any(downloads.iterdir())
