"""Names that come from the other side (Content-Disposition, the address, object keys, folder
listings, manifests) never put a file outside the download folder: they are sanitised to one
safe component, or refused with a clear message.

Every test snapshots the whole temporary tree before and after, so a file written anywhere
outside the download folder is caught, not just the ones a test thought of.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import manager, run_laden
from laden.core.errors import LadenError
from laden.core.names import (
    MAX_NAME_BYTES,
    filename_from_content_disposition,
    filename_from_url,
    sanitize_filename,
)
from laden.core.states import State
from servers.http_server import FileServer

BODY = b"hostile but harmless\n"


def _tree(root: Path) -> set[str]:
    """Every path under `root` but laden's own state, settings and log folders."""
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.relative_to(root).parts[0] not in ("state", "config", "logs")}


def _assert_contained(root: Path, before: set[str], folder: Path) -> list[Path]:
    """Everything new under `root` is inside `folder`, and every name in it is one safe
    component; returns the new files."""
    new = _tree(root) - before
    folder_rel = str(folder.relative_to(root))
    outside = [p for p in new if not (p == folder_rel or p.startswith(folder_rel + os.sep))]
    assert not outside, f"written outside the download folder: {outside}"
    files = [root / p for p in new if (root / p).is_file()]
    for path in files:
        assert path.resolve().is_relative_to(folder.resolve()), path
        assert "\x00" not in path.name and path.name not in (".", "..")
        assert len(path.name.encode()) <= MAX_NAME_BYTES
    return files


CONTENT_DISPOSITIONS = [
    'attachment; filename="../../escape.sh"',
    'attachment; filename="/etc/cron.d/escape"',
    "attachment; filename*=UTF-8''..%2F..%2Fescape.txt",
    "attachment; filename*=UTF-8''%2Fabs%2Fescape.txt",
    'attachment; filename="..\\\\..\\\\escape.dll"',
    'attachment; filename="C:\\\\Windows\\\\System32\\\\escape.dll"',
    'attachment; filename=".."',
    'attachment; filename="..."',
    'attachment; filename="."',
    'attachment; filename="' + "x" * 400 + '.bin"',
    "attachment; filename*=UTF-8''" + "%C3%A9" * 200 + ".txt",  # 400 bytes of é
    'attachment; filename="\x1b[31mred\x1b[0m.txt"',  # a terminal escape sequence
    'attachment; filename="tab\there.txt"',
    'attachment; filename="   "',
    'attachment; filename="~/.bashrc"',
    "attachment; filename*=UTF-8''%00nul.txt",
]


@pytest.mark.parametrize("header", CONTENT_DISPOSITIONS)
def test_content_disposition_names_stay_inside(header: str, http_server: FileServer,
                                               tmp_path: Path) -> None:
    folder = tmp_path / "downloads" / "inside"
    folder.mkdir()
    url = http_server.add_file("/served/download.php", BODY, content_disposition=header)
    before = _tree(tmp_path)
    with manager() as m:
        info = m.wait(m.add(url, str(folder) + "/"))
    files = _assert_contained(tmp_path, before, folder)
    if info.state is State.DONE:
        assert [p.read_bytes() for p in files] == [BODY]
        assert "\x1b" not in Path(info.dest).name and "\t" not in Path(info.dest).name
    else:  # refusing is fine too, as long as it says why
        assert info.message and not files


URL_PATHS = [
    "/files/..%2F..%2Fescape.bin",
    "/files/%2e%2e",
    "/files/%2E%2E%2F%2E%2E%2Fescape",
    "/files/a%00b.bin",
    "/files/%2Fetc%2Fpasswd",
    "/files/" + "y" * 300 + ".iso",
    "/files/...",
    "/files/..%5C..%5Cescape.exe",
    "/files/%1b%5b2Jclear.txt",
]


@pytest.mark.parametrize("path", URL_PATHS)
def test_names_from_the_address_stay_inside(path: str, http_server: FileServer,
                                            tmp_path: Path) -> None:
    folder = tmp_path / "downloads" / "inside"
    folder.mkdir()
    url = http_server.add_file(path, BODY)
    before = _tree(tmp_path)
    with manager() as m:
        info = m.wait(m.add(url, str(folder) + "/"))
    files = _assert_contained(tmp_path, before, folder)
    assert info.state is State.DONE, info.message
    assert [p.read_bytes() for p in files] == [BODY]


@pytest.mark.parametrize(("name", "expected"), [
    ("con", "_con"), ("CON", "_CON"), ("Con.txt", "_Con.txt"), ("nul", "_nul"),
    ("NUL.tar.gz", "_NUL.tar.gz"), ("com1", "_com1"), ("LPT9.log", "_LPT9.log"),
    ("aux.", "_aux"), ("prn ", "_prn"), ("a<b>c.txt", "a_b_c.txt"),
    ('q"uote|d*.t?t', "q_uote_d_.t_t"),
    ("trailing.dots...", "trailing.dots"), ("..\\..\\win.ini", "win.ini"), ("C:evil", "C_evil"),
])
def test_windows_reserved_and_forbidden_names(name: str, expected: str) -> None:
    assert sanitize_filename(name, windows=True) == expected


@pytest.mark.parametrize("name", ["", ".", "..", "...", "/", "\\", "\x00", " . ", "a/..", "\x00/"])
def test_names_with_nothing_usable_left_are_refused(name: str) -> None:
    result = sanitize_filename(name, windows=False)
    assert result is None or (result not in (".", "..") and "/" not in result), result
    assert sanitize_filename(name, windows=True) is None or "/" not in str(
        sanitize_filename(name, windows=True))


def test_unit_functions_never_return_a_path() -> None:
    for header in CONTENT_DISPOSITIONS:
        name = filename_from_content_disposition(header)
        assert name is None or ("/" not in name and "\x00" not in name and name.strip(".")), name
    for path in URL_PATHS:
        name = filename_from_url("http://h" + path)
        assert name is None or ("/" not in name and "\x00" not in name and name.strip(".")), name


# -- object keys -----------------------------------------------------------------------------

HOSTILE_KEYS = [
    "hostile/../../escape.bin",
    "hostile/sub/../../../escape2.bin",
    "hostile//abs-looking.bin",
    "hostile/back\\..\\..\\escape3.bin",
    "hostile/ctrl\x1b[31m.bin",
]


def test_object_keys_from_a_listing_never_escape(s3_server: Any, s3_bucket: str,
                                                 tmp_path: Path) -> None:
    client = s3_server.client()
    for key in [*HOSTILE_KEYS, "hostile/fine.bin"]:
        client.put_object(Bucket=s3_bucket, Key=key, Body=BODY)
    folder = tmp_path / "downloads" / "inside"
    folder.mkdir()
    before = _tree(tmp_path)
    result = run_laden("get", "-q", "-o", str(folder), "--s3-endpoint-url",
                       s3_server.endpoint_url, f"s3://{s3_bucket}/hostile/")
    _assert_contained(tmp_path, before, folder)
    assert "Traceback" not in result.stderr
    if result.returncode != 0:  # refusing the listing as a whole is the documented choice
        assert "refusing" in result.stderr or "outside" in result.stderr, result.stderr


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_a_single_hostile_key_becomes_a_safe_name(key: str, s3_server: Any, s3_bucket: str,
                                                  tmp_path: Path) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=BODY)
    folder = tmp_path / "downloads" / "inside"
    folder.mkdir()
    before = _tree(tmp_path)
    from urllib.parse import quote

    with manager() as m:
        info = m.wait(m.add(f"s3://{s3_bucket}/{quote(key)}", str(folder) + "/",
                            source_settings={"s3_endpoint_url": s3_server.endpoint_url}))
    files = _assert_contained(tmp_path, before, folder)
    if info.state is State.DONE:
        assert [p.read_bytes() for p in files] == [BODY]
    else:
        assert info.message and not files


def test_listed_names_are_checked_by_the_engine_too(http_server: FileServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a source's listing says, the manager places files inside the folder only: a
    last line of defence for sources that check less (a hostile FTP server's names, say)."""
    from laden.sources.base import ListedObject
    from laden.sources.http import HttpSource

    url = http_server.add_file("/listing/ok.bin", BODY)
    names = ["../escape.bin", "/abs/escape.bin", "a/../../escape.bin", "nul\x00.bin",
             "..\\escape.bin"]
    folder = tmp_path / "downloads" / "inside"
    folder.mkdir()
    before = _tree(tmp_path)
    for name in names:
        monkeypatch.setattr(HttpSource, "SUPPORTS_LISTING", True, raising=False)
        monkeypatch.setattr(HttpSource, "is_folder", lambda self, u, o: True, raising=False)
        monkeypatch.setattr(HttpSource, "list",
                            lambda self, u, o, n=name: iter([ListedObject(url, n)]),
                            raising=False)
        with manager() as m:
            try:
                ids = m.add_all(http_server.base_url + "/listing/", str(folder) + "/")
            except LadenError as exc:  # refused: the message must say why
                assert "outside" in str(exc) or "cannot be used" in str(exc), exc
                continue
            for download_id in ids:
                m.wait(download_id)
    _assert_contained(tmp_path, before, folder)


# -- manifests -------------------------------------------------------------------------------


def _manifest(tmp_path: Path, target: str, url: str) -> Path:
    root = tmp_path / "downloads" / "root"
    root.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "manifest.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"download_root": str(root), "download_items": [
        {"type": "http", "url": url, "target_path": target}]}))
    return path


@pytest.mark.parametrize("target", [
    "../escape.bin", "../../escape.bin", "sub/../../escape.bin", "nul\x00.bin", "",
])
def test_manifest_target_paths_that_escape_are_refused(target: str, http_server: FileServer,
                                                       tmp_path: Path) -> None:
    url = http_server.add_file("/m.bin", BODY)
    manifest = _manifest(tmp_path, target, url)
    before = _tree(tmp_path)
    result = run_laden("run", "-q", str(manifest))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert "target_path" in result.stderr
    assert _tree(tmp_path) == before, "a refused manifest must not write anything"


def test_manifest_absolute_target_stands_as_given(http_server: FileServer,
                                                  tmp_path: Path) -> None:
    # Kaiwo's format (issue 5): relative target paths stay under download_root, absolute ones
    # stand as the operator wrote them. A manifest is the operator's own file, not input from
    # a server, so an absolute path there is a choice, not an escape.
    url = http_server.add_file("/abs.bin", BODY)
    manifest = _manifest(tmp_path, str(tmp_path / "elsewhere" / "abs.bin"), url)
    result = run_laden("run", "-q", str(manifest))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "abs.bin").read_bytes() == BODY