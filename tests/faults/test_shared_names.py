"""One partial file belongs to one download, whatever the conflict policy and across processes;
the policy only decides what happens to a file already at the final name, and that file is
replaced or continued only when it is a regular file (and, to be continued, only when a
checksum will prove the result).
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from engine.helpers import FAST, manager, run_laden, sha256
from laden.core.states import State
from servers.http_server import Faults

from .helpers import laden_command
from .test_network import scenario

SIZE = 1 << 20
A = bytes([1]) * SIZE
B = bytes([2]) * SIZE


def _saved(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("policy", ["overwrite", "skip", "resume"])
def test_two_downloads_of_one_name_never_share_a_partial_file(
        http_server, downloads: Path, policy: str) -> None:
    first = http_server.add_file("/a/data.bin", A, faults=Faults(rate_per_connection=2 << 20))
    second = http_server.add_file("/b/data.bin", B)
    with scenario(f"two downloads, one name ({policy})"), manager() as m:
        ids = [m.add(first, str(downloads), conflict=policy),
               m.add(second, str(downloads), conflict=policy)]
        infos = [m.wait(i, timeout=60) for i in ids]
    states = sorted(info.state.value for info in infos)
    assert states == ["done", "failed"], [(i.state, i.message) for i in infos]
    failed = next(i for i in infos if i.state is State.FAILED)
    assert "another download is already saving to" in failed.message
    assert _saved(downloads)["data.bin"] in (A, B)
    assert not list(downloads.glob("*.laden-part"))


def test_a_name_like_another_downloads_partial_file(http_server, downloads: Path) -> None:
    """A server name that is another download's partial file name is not taken as one."""
    first = http_server.add_file("/x/f.bin", A, faults=Faults(rate_per_connection=2 << 20))
    second = http_server.add_file("/y/f.bin.laden-part", B)
    with scenario("a name ending in .laden-part"), manager() as m:
        infos = [m.wait(m.add(url, str(downloads), conflict="overwrite"), timeout=60)
                 for url in (first, second)]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    assert _saved(downloads) == {"f.bin": A, "f.bin.laden-part_": B}


def test_a_chosen_name_equal_to_another_items_server_name(http_server, downloads: Path) -> None:
    """A manifest's target name that equals another item's name from the server."""
    first = http_server.add_file("/data.bin", A, faults=Faults(rate_per_connection=2 << 20))
    second = http_server.add_file("/other.bin", B)
    with scenario("a chosen name equal to a server name"), manager() as m:
        infos = [m.wait(m.add(first, str(downloads)), timeout=60),
                 m.wait(m.add(second, str(downloads), filename="data.bin"), timeout=60)]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    assert sorted(_saved(downloads).values()) == [A, B]


@pytest.mark.parametrize("policy", ["overwrite", "rename"])
def test_two_processes_with_their_own_state_never_mix_one_file(
        http_server, downloads: Path, tmp_path: Path, policy: str) -> None:
    """Two laden processes with different state folders save the same name at once."""
    first = http_server.add_file("/p1/data.bin", A, faults=Faults(rate_per_connection=1 << 20))
    second = http_server.add_file("/p2/data.bin", B, faults=Faults(rate_per_connection=1 << 20))
    procs = []
    for number, url in enumerate((first, second)):
        state = tmp_path / f"state{number}"
        state.mkdir()
        procs.append(subprocess.Popen(
            laden_command("get", "-q", "-c", "2", "--conflict", policy, "-o", str(downloads),
                          url),
            env={**os.environ, "LADEN_STATE_DIR": str(state)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
        time.sleep(0.2)
    with scenario(f"two processes, one name ({policy})"):
        results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        saved = _saved(downloads)
        for data in saved.values():
            assert data in (A, B), "a file mixed from two downloads"
        if policy == "rename":
            assert [code for code, _ in results] == [0, 0], results
            assert sorted(saved.values()) == [A, B]
        else:
            assert sorted(code for code, _ in results) == [0, 1], results
            assert any("another laden process" in err or "belongs to another download" in err
                       for _, err in results), results


# -- conflict resume: a file laden did not write ---------------------------------------------

def test_resume_from_an_unrelated_file_is_refused_without_a_checksum(
        http_server, downloads: Path) -> None:
    url = http_server.add_file("/notes.bin", A)
    (downloads / "notes.bin").write_bytes(b"my notes\n")
    with scenario("resume from an unrelated file, no checksum"):
        done = run_laden("get", "-q", "--conflict", "resume", "-o", str(downloads), url)
        assert done.returncode == 1
        assert "without a checksum" in done.stderr and len(done.stderr.splitlines()) == 1
        assert (downloads / "notes.bin").read_bytes() == b"my notes\n"


def test_resume_from_an_unrelated_file_with_a_checksum_ends_right(
        http_server, downloads: Path) -> None:
    """The checksum catches the unrelated start, and the download begins again from zero."""
    url = http_server.add_file("/notes.bin", A)
    (downloads / "notes.bin").write_bytes(b"my notes\n")
    with scenario("resume from an unrelated file, with a checksum"), manager() as m:
        info = m.wait(m.add(url, str(downloads), conflict="resume",
                            checksum=f"sha256:{sha256(A)}"), timeout=60)
    assert info.state is State.DONE, info.message
    assert _saved(downloads) == {"notes.bin": A}
    assert any("not the start of this download" in e.message for e in info.errors)


def test_resume_from_a_true_start_with_a_checksum_fetches_only_the_rest(
        http_server, downloads: Path) -> None:
    url = http_server.add_file("/big.bin", A)
    (downloads / "big.bin").write_bytes(A[:600_000])
    with scenario("resume from a true start, with a checksum"), manager() as m:
        info = m.wait(m.add(url, str(downloads), conflict="resume",
                            checksum=f"sha256:{sha256(A)}"), timeout=60)
    assert info.state is State.DONE, info.message
    assert _saved(downloads) == {"big.bin": A}
    ranges = [r.range for r in http_server.ranged_requests("/big.bin") if r.range]
    assert all(int(r.split("=")[1].split("-")[0]) >= 600_000 for r in ranges[1:]), ranges


# -- only regular files are replaced ---------------------------------------------------------

def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "named pipe"


def _device(path: Path) -> str:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # the null device, as root
    return "device"


def _link(path: Path) -> str:
    target = path.parent / "target.txt"
    target.write_bytes(b"keep me")
    path.symlink_to(target)
    return "symbolic link"


def _folder(path: Path) -> str:
    path.mkdir()
    (path / "inside").write_bytes(b"keep me")
    return "folder"


@pytest.mark.parametrize("make", [_fifo, _device, _link, _folder],
                         ids=["fifo", "device", "symlink", "folder"])
@pytest.mark.parametrize("policy", ["overwrite", "resume"])
def test_only_regular_files_are_replaced(http_server, downloads: Path, make, policy: str
                                         ) -> None:
    url = http_server.add_file("/thing.bin", A)
    place = downloads / "thing.bin"
    if make is _device and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    kind = make(place)
    before = os.lstat(place)
    with scenario(f"{policy} onto a {kind}"), manager(FAST) as m:
        info = m.wait(m.add(url, str(downloads), conflict=policy), timeout=60)
        assert info.state is State.FAILED
        assert "not a regular file" in info.message
        after = os.lstat(place)
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
        assert not list(downloads.glob("*.laden-part"))
