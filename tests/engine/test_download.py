"""Downloads over HTTP end to end: the bytes a user gets are the bytes the server has."""

from __future__ import annotations

from pathlib import Path

import pytest

from laden.core.errors import InputError, StateDirBusy
from laden.core.states import State
from laden.engine.manager import DownloadManager
from laden.sources.http import PROBE_RANGE
from servers.http_server import Faults

from .helpers import FAST, manager, part_files, sha256


def test_multipart_download_has_the_right_bytes(http_server, downloads: Path) -> None:
    from servers.fixtures import random_bytes

    data = random_bytes(8 * 1024 * 1024 + 123)
    url = http_server.add_file("/big.bin", data)
    with manager(FAST.replace(connections=8)) as m:
        info = m.wait(m.add(url, str(downloads) + "/"))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert info.dest == str(downloads / "big.bin")
    assert part_files(downloads) == []
    ranged = http_server.ranged_requests("/big.bin")
    assert len({r.client_port for r in ranged}) >= 4, "expected several connections"


def test_one_connection_and_empty_file(http_server, downloads: Path) -> None:
    url = http_server.add_file("/one.bin", b"x" * 300_000)
    empty = http_server.add_file("/empty.txt", b"")
    with manager(FAST.replace(connections=1)) as m:
        first, second = m.add(url, str(downloads)), m.add(empty, str(downloads))
        assert m.wait(first).state is State.DONE
        assert m.wait(second).state is State.DONE
    assert (downloads / "one.bin").read_bytes() == b"x" * 300_000
    assert (downloads / "empty.txt").read_bytes() == b""


def test_name_from_content_disposition_and_redirect(http_server, downloads: Path) -> None:
    http_server.add_file(
        "/files/7", b"hello",
        content_disposition="attachment; filename=\"plain.txt\"; filename*=UTF-8''na%C3%AFve.txt",
    )
    url = http_server.add_redirect("/latest", "/files/7")
    with manager() as m:
        info = m.wait(m.add(url, str(downloads)))
    assert info.state is State.DONE
    assert Path(info.dest).name == "naïve.txt"
    assert info.url.endswith("/latest") and info.final_url.endswith("/files/7")


def test_hostile_content_disposition_stays_in_the_folder(http_server, downloads: Path) -> None:
    http_server.add_file("/x", b"data", content_disposition='attachment; filename="../../evil.sh"')
    with manager() as m:
        info = m.wait(m.add(http_server.base_url + "/x", str(downloads)))
    assert Path(info.dest) == downloads / "evil.sh"


def test_server_without_ranges_gets_one_connection(http_server, downloads: Path) -> None:
    from servers.fixtures import random_bytes

    data = random_bytes(3 * 1024 * 1024, seed=2)
    url = http_server.add_file("/norange.bin", data, faults=Faults(ignore_range=True))
    with manager() as m:
        info = m.wait(m.add(url, str(downloads)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    gets = [r for r in http_server.requests if r.method == "GET" and r.range is None]
    assert len(gets) == 1


def test_no_content_length_and_chunked(http_server, downloads: Path) -> None:
    from servers.fixtures import random_bytes

    data = random_bytes(2 * 1024 * 1024, seed=3)
    a = http_server.add_file("/a.bin", data, faults=Faults(no_content_length=True,
                                                             ignore_range=True))
    b = http_server.add_file("/b.bin", data, faults=Faults(chunked=True, ignore_range=True))
    with manager() as m:
        ids = [m.add(a, str(downloads)), m.add(b, str(downloads))]
        infos = [m.wait(i) for i in ids]
    for info in infos:
        assert info.state is State.DONE, info.message
        assert sha256(Path(info.dest)) == sha256(data)


def test_existing_file_is_not_overwritten(http_server, downloads: Path) -> None:
    url = http_server.add_file("/report.pdf", b"new")
    (downloads / "report.pdf").write_bytes(b"mine")
    with manager() as m:
        renamed = m.wait(m.add(url, str(downloads)))
        skipped = m.wait(m.add(url, str(downloads / "report.pdf"), conflict="skip"))
    assert (downloads / "report.pdf").read_bytes() == b"mine"
    assert Path(renamed.dest).name == "report.1.pdf"
    assert Path(renamed.dest).read_bytes() == b"new"
    assert skipped.state is State.DONE and "skipped" in skipped.message


def test_overwrite_and_resume_policies(http_server, downloads: Path) -> None:
    data = b"0123456789" * 150_000  # more than the probe carries: the rest is asked for
    url = http_server.add_file("/data.bin", data)
    (downloads / "data.bin").write_bytes(b"old")
    (downloads / "more").mkdir()
    (downloads / "more" / "data.bin").write_bytes(data[:400_000])
    with manager() as m:
        over = m.wait(m.add(url, str(downloads), conflict="overwrite"))
        http_server.clear_log()
        # A file laden did not write is continued only when a checksum will prove the result.
        refused = m.wait(m.add(url, str(downloads / "more"), conflict="resume"))
        assert refused.state is State.FAILED and "checksum" in refused.message
        assert (downloads / "more" / "data.bin").read_bytes() == data[:400_000]
        resumed = m.wait(m.add(url, str(downloads / "more"), conflict="resume",
                               checksum=f"sha256:{sha256(data)}"))
    assert Path(over.dest).read_bytes() == data
    assert Path(resumed.dest) == downloads / "more" / "data.bin"
    assert Path(resumed.dest).read_bytes() == data
    starts = [int(r.range.split("=")[1].split("-")[0]) for r in http_server.ranged_requests(
        "/data.bin") if r.range and r.range != PROBE_RANGE]
    assert min(starts) >= 400_000, "resume must not fetch the bytes already there"


def test_second_instance_is_refused(laden_dirs) -> None:
    with DownloadManager(FAST), pytest.raises(StateDirBusy, match="another laden is using"):
        DownloadManager(FAST)


def test_bad_input_is_rejected_before_anything_starts(downloads: Path) -> None:
    with manager() as m:
        for url in ("not a url", "gopher://x/y", "http://", "", "http://exa mple.com/x"):
            with pytest.raises(InputError):
                m.add(url, str(downloads))
        with pytest.raises(InputError, match="connections"):
            m.add("http://127.0.0.1:9/x", str(downloads), connections=0)
        with pytest.raises(InputError, match="checksum"):
            m.add("http://127.0.0.1:9/x", str(downloads), checksum="sha256:xyz")
        assert m.list() == []
