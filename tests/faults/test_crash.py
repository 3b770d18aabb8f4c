"""kill -9 at random moments, then run the same command again: the file must come out
byte-identical, and the journal must never lie about what is on disk.

The moments are drawn from a seeded RNG; the seed is printed (and named in every failure) so a
failing run can be repeated with LADEN_CRASH_SEED=N. After every kill the suite checks what a
user could check: the journal opens without being moved aside, every byte range it calls done
holds the source's bytes in the partial file, and a file under the final name is complete and
correct or absent. Kills land during start-up, preallocation, the download, verification and
around the final rename.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from servers.fixtures import random_bytes
from servers.http_server import Faults, FileServer

from . import figures
from .helpers import (
    check_recorded_bytes,
    finished_files,
    journal_opens_cleanly,
    journal_records,
    laden_command,
    part_files,
    start_laden,
    wait_for,
)

SEED = int(os.environ.get("LADEN_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
figures.NOTES.append(f"crash seed: {SEED} (repeat with LADEN_CRASH_SEED={SEED})")


def _rng(salt: int) -> random.Random:
    return random.Random(SEED * 1000 + salt)


def _kill(process: subprocess.Popen[bytes]) -> None:
    figures.kill_made()
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _check_after_kill(state: Path, folder: Path, data: bytes, name: str) -> None:
    """The promises that must hold at any moment a crash can pick."""
    journal_opens_cleanly(state)
    finished = finished_files(folder)
    for path in finished:
        assert path.name == name, f"unexpected file {path} after a kill (seed {SEED})"
        assert path.read_bytes() == data, f"{path} is under its final name but wrong (seed {SEED})"
    parts = part_files(folder)
    assert len(parts) <= 1, parts
    for record in journal_records(state):
        dest = Path(record.get("dest") or "/nonexistent")
        # Killed between the rename and the journal's record of it: the bytes the journal
        # counts are under the final name now, checked above.
        renamed = dest.exists() and not Path(f"{dest}.laden-part").exists()
        if dest.parent == folder and record["state"] != "done" and not renamed:
            check_recorded_bytes(Path(record["dest"] + ".laden-part"), data,
                                 record["done_ranges"])
    figures.kill_survived()


def _finish(command: list[str], folder: Path, data: bytes, name: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{done.stderr} (seed {SEED})"
    assert "Traceback" not in done.stderr
    assert [p.name for p in finished_files(folder)] == [name], f"seed {SEED}"
    assert hashlib.sha256((folder / name).read_bytes()).digest() == \
        hashlib.sha256(data).digest(), f"final file differs from the source (seed {SEED})"
    assert part_files(folder) == []


def _kill_loop(args: list[str], folder: Path, state: Path, data: bytes, name: str,
               kills: int, rng: random.Random, *, window: tuple[float, float]) -> None:
    """Start `laden ARGS`, kill it at a random moment, check, repeat. The first kill of each
    loop lands as the partial file appears, which is when it is being preallocated."""
    for number in range(kills):
        process = start_laden(*args)
        if number == 0:
            wait_for(lambda p=process: part_files(folder) or p.poll() is not None, step=0.001,
                     what="the partial file")
        else:
            delay = rng.uniform(*window)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.005)
        assert process.poll() is None, (
            f"laden finished before kill {number + 1}; "
            f"stderr: {process.stderr.read().decode() if process.stderr else ''} (seed {SEED})")
        _kill(process)
        _check_after_kill(state, folder, data, name)


@pytest.mark.slow
def test_kill_9_during_http_download(http_server: FileServer, downloads: Path,
                                     laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(32 << 20, seed=701)
    # 8 connections at 300 kB/s each: about 13 s for the whole file, far more than 20 kills
    # at up to 1.2 s each can download, so every kill interrupts a live transfer.
    url = http_server.add_file("/crash.bin", data, faults=Faults(rate_per_connection=300_000))
    args = ["get", "-q", "-o", str(downloads), url]
    _kill_loop(args, downloads, laden_dirs["state"], data, "crash.bin", 20, _rng(1),
               window=(0.05, 1.2))
    http_server.set_faults("/crash.bin", Faults())
    _finish(laden_command(*args), downloads, data, "crash.bin")


@pytest.mark.slow
def test_kill_9_during_s3_download(s3_server, s3_bucket: str, downloads: Path,
                                   laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(24 << 20, seed=702)
    s3_server.put_object(s3_bucket, "crash/object.bin", data)
    # moto has no per-connection cap, so laden's own limit keeps each run short of the end.
    common = ["get", "-q", "-o", str(downloads), "--s3-endpoint-url", s3_server.endpoint_url,
              f"s3://{s3_bucket}/crash/object.bin"]
    _kill_loop([*common, "--limit-rate", "2M"], downloads, laden_dirs["state"], data,
               "object.bin", 10, _rng(2), window=(0.3, 1.6))
    _finish(laden_command(*common), downloads, data, "object.bin")


@pytest.mark.slow
def test_kill_9_during_s3_upload(s3_server, s3_bucket: str, tmp_path: Path,
                                 laden_dirs: dict[str, Path]) -> None:
    """Killed while parts are in flight, an upload leaves no object, and its journal never
    claims a part the store lacks; the rerun sends only the parts the journal does not hold,
    which are at most those that were in flight, and the object comes out byte-identical."""
    part = 8 << 20
    data = random_bytes(9 * part + 4321, seed=703)  # ten parts
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    state, client = laden_dirs["state"], s3_server.client()
    common = ["put", "-q", "-c", "2", "--s3-endpoint-url", s3_server.endpoint_url, str(path),
              f"s3://{s3_bucket}/crash/up.bin"]
    rng = _rng(3)
    journalled: dict[str, list[str]] = {}
    held: dict[int, str] = {}
    kills = 0
    for _ in range(3):
        # Two parts at once at 4 MB/s each: a part is acknowledged every second or so.
        process = start_laden(*common, "--limit-rate", "8M")
        deadline = time.monotonic() + rng.uniform(0.8, 3.0)
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
        if process.poll() is not None:
            break  # it finished: the check below still holds
        _kill(process)
        kills += 1
        journal_opens_cleanly(state)
        listed = client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
        assert listed == [], f"an object appeared before the commit (seed {SEED})"
        records = list(journal_records(state))
        if not records:  # killed before the upload was added: nothing to check yet
            figures.kill_survived()
            continue
        upload = records[0]["upload"]
        journalled = upload["parts"]
        held = {}
        if upload["upload_id"]:
            answer = client.list_parts(Bucket=s3_bucket, Key="crash/up.bin",
                                       UploadId=upload["upload_id"])
            held = {p["PartNumber"]: p["ETag"] for p in answer.get("Parts", ())}
        for number, (etag, _crc) in journalled.items():
            assert held.get(int(number)) == etag, f"part {number} journalled, not held " \
                                                  f"(seed {SEED})"
        # Acknowledged but not journalled yet: at most the two in flight.
        assert len(set(held) - {int(n) for n in journalled}) <= 2, f"seed {SEED}"
        figures.kill_survived()
    log = laden_dirs["logs"] / "laden.log"
    before = log.read_text().count("UploadPart ") if log.exists() else 0
    done = subprocess.run(laden_command("--log-level", "debug", *common), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"{done.stderr} (seed {SEED})"
    assert "Traceback" not in done.stderr
    sent = log.read_text().count("UploadPart ") - before
    in_flight = len(set(held) - {int(n) for n in journalled})
    figures.NOTES.append(f"S3 upload after {kills} kills: the rerun sent "
                         f"{sent} of 10 parts; the journal held {len(journalled)}, the store "
                         f"{len(held)} ({in_flight} acknowledged but not journalled)")
    assert sent == 10 - len(journalled), f"sent {sent} parts, the journal held " \
                                         f"{len(journalled)} of 10 (seed {SEED})"
    body = client.get_object(Bucket=s3_bucket, Key="crash/up.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), f"seed {SEED}"
    # A kill between CreateMultipartUpload and the journal's record of its id leaves an upload
    # laden does not know (`laden list --unfinished-uploads --at` shows it): empty, since no
    # part is sent before the id is journalled. Any other one left is a leak.
    for left in client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []):
        parts = client.list_parts(Bucket=s3_bucket, Key=left["Key"], UploadId=left["UploadId"])
        assert not parts.get("Parts"), f"an unfinished upload with parts was left (seed {SEED})"


@pytest.mark.slow
def test_kill_9_around_the_final_rename(http_server: FileServer, tmp_path: Path,
                                        laden_dirs: dict[str, Path]) -> None:
    """Kills near the end of fast downloads: half the moment the final name appears (between
    the rename, the directory sync and the journal's record of it), half at random."""
    data = random_bytes(3 << 20, seed=703)
    url = http_server.add_file("/end.bin", data)
    rng = _rng(3)
    began = time.monotonic()
    reference = tmp_path / "reference"
    _finish(laden_command("get", "-q", "-o", str(reference), url), reference, data, "end.bin")
    took = time.monotonic() - began
    for number in range(10):
        folder = tmp_path / f"run{number}"
        process = start_laden("get", "-q", "-o", str(folder), url)
        if number % 2 == 0:
            wait_for(lambda f=folder, p=process: (f / "end.bin").exists() or p.poll() is not None,
                     step=0.0005, what="the final name")
        else:
            time.sleep(rng.uniform(0.6 * took, 1.05 * took))
        if process.poll() is None:
            _kill(process)
            _check_after_kill(laden_dirs["state"], folder, data, "end.bin")
        finished = [r for r in journal_records(laden_dirs["state"])
                    if r["dest_dir"] == str(folder) and r["state"] == "done"]
        if finished:
            # It was all over but the exit: the file is complete and the journal knows it
            # (running the command again keeps it: "already downloaded").
            assert [p.name for p in finished_files(folder)] == ["end.bin"]
            assert (folder / "end.bin").read_bytes() == data and part_files(folder) == []
            continue
        # Any earlier moment: the same command again ends with exactly one right file, even
        # when the kill came between the rename and the journal's record of it.
        _finish(laden_command("get", "-q", "-o", str(folder), url), folder, data, "end.bin")


@pytest.mark.slow
def test_kill_9_during_verification(http_server: FileServer, downloads: Path,
                                    laden_dirs: dict[str, Path]) -> None:
    data = random_bytes(96 << 20, seed=704)
    url = http_server.add_file("/verify.bin", data)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    args = ["get", "-q", "-o", str(downloads), "--checksum", checksum, url]
    state = laden_dirs["state"]
    for _ in range(2):
        process = start_laden(*args)

        def verifying() -> bool:
            records = journal_records(state)
            return bool(records) and records[-1]["state"] == "verifying"

        wait_for(lambda p=process: verifying() or p.poll() is not None, step=0.002,
                 what="the verifying state")
        assert process.poll() is None, f"finished before it could be killed (seed {SEED})"
        _kill(process)
        _check_after_kill(state, downloads, data, "verify.bin")
        assert not (downloads / "verify.bin").exists(), "renamed before it was verified"
    _finish(laden_command(*args), downloads, data, "verify.bin")


def _journal_snapshot(state: Path, into: Path) -> None:
    into.mkdir(exist_ok=True)
    for path in state.glob("journal.sqlite3*"):
        (into / path.name).write_bytes(path.read_bytes())


def _restore_snapshot(state: Path, snapshot: Path) -> None:
    for path in state.glob("journal.sqlite3*"):
        path.unlink()
    for path in snapshot.iterdir():
        (state / path.name).write_bytes(path.read_bytes())


@pytest.mark.parametrize(("moment", "size"), [
    ("after the hard link", 1 << 20), ("after the rename", 1 << 20),
    ("after the link", 64 << 10)], ids=["after the hard link", "after the rename",
                                        "whole with the probe, after the link"])
def test_crash_inside_the_final_rename(moment: str, size: int, http_server: FileServer,
                                       downloads: Path, laden_dirs: dict[str, Path],
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact moments random kills seldom hit: the disk and the journal are copied as they
    are at that instant (the partial file linked to its final name but not yet unlinked; or
    renamed, with the journal not yet told), then laden starts from that copy. A small file
    comes whole with the probe into a file with no name (see `engine.unnamed`): its one
    moment is the link to its final name, with the journal not yet told."""
    from engine.helpers import manager
    from laden.engine import partfile
    from laden.engine.unnamed import UnnamedFile

    data = random_bytes(size, seed=705)
    url = http_server.add_file("/moment.bin", data)
    state, snapshot = laden_dirs["state"], tmp_path / "snapshot"
    real_finish, real_link = partfile.finish, UnnamedFile.name_as

    def finish_then_freeze(part: str, dest: str, *, overwrite: bool, durable: bool) -> None:
        if moment == "after the hard link":
            os.link(part, dest)
            _journal_snapshot(state, snapshot)
            os.unlink(dest)  # this session goes on normally; the snapshot is the crash
        real_finish(part, dest, overwrite=overwrite, durable=durable)
        if moment == "after the rename":
            _journal_snapshot(state, snapshot)

    def link_then_freeze(self: UnnamedFile, dest: str, **how: bool) -> None:
        real_link(self, dest, **how)
        _journal_snapshot(state, snapshot)

    monkeypatch.setattr(partfile, "finish", finish_then_freeze)
    monkeypatch.setattr(UnnamedFile, "name_as", link_then_freeze)
    with manager() as m:
        assert m.wait(m.add(url, str(downloads))).state.value == "done"
    assert snapshot.exists(), "the moment was not reached"
    monkeypatch.setattr(partfile, "finish", real_finish)
    monkeypatch.setattr(UnnamedFile, "name_as", real_link)
    _restore_snapshot(state, snapshot)
    if moment == "after the hard link":  # put the disk back as it was at that instant too
        os.link(downloads / "moment.bin", downloads / "moment.bin.laden-part")
    figures.kill_made()
    _check_after_kill(state, downloads, data, "moment.bin")
    with manager() as m:
        info = m.wait(m.add(url, str(downloads)))
    assert info.state.value == "done", info.message
    assert [p.name for p in finished_files(downloads)] == ["moment.bin"]
    assert (downloads / "moment.bin").read_bytes() == data and part_files(downloads) == []
