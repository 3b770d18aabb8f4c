"""The trust suite's upload section: kill -9 at several moments, the local file changed, the
service losing the upload, every request refused (403) and the local disk failing to read, each
ending with the file's exact bytes under the remote name or one clear error and nothing
committed.

Each test runs once per service in `upload_services.SERVICES` (S3, Azure, GCS). laden reaches
the service through a relay that counts what it sends, so the bytes sent again after a fault
are measured on the wire, the same way for every service, and reported with the suite's
figures. Where services truly differ (how many parts may be in flight, what "lost" means, how
a 403 comes about) the driver says so; the promises are the same.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import FAST, manager
from laden.core.states import State
from laden.core.units import format_size
from servers.fixtures import random_bytes

from . import figures
from .helpers import journal_opens_cleanly, journal_records, laden_command, start_laden, wait_for
from .relays import CountingRelay
from .test_crash import SEED
from .test_network import scenario
from .upload_services import SERVICES, UploadService

CONNECTIONS = 2
SLACK = 256 * 1024
"""Request lines, headers and the requests around the parts (begin, list, commit), which the
relay counts with the parts' bytes: far less than a part."""


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> UploadService:
    return SERVICES[request.param](request)


@pytest.fixture
def relay(service: UploadService) -> Iterator[CountingRelay]:
    with CountingRelay(service.port) as counting:
        service.relay = counting  # type: ignore[assignment]
        yield counting  # type: ignore[misc]


def _endpoint(relay: CountingRelay) -> str:
    return f"http://127.0.0.1:{relay.port}"


def _local(service: UploadService, tmp_path: Path, parts: float,
           seed: int) -> tuple[Path, bytes, int]:
    """A local file of about `parts` of the service's parts; its path, bytes and how many
    parts it has."""
    data = random_bytes(int(parts * service.part) + 4321, seed=seed)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    return path, data, -(-len(data) // service.part)


def _kill(process: subprocess.Popen[bytes], service: UploadService) -> None:
    figures.kill_made(service.name)
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _record(state: Path) -> dict[str, Any]:
    records = journal_records(state)
    return records[0] if records else {}


def _journalled(state: Path) -> int:
    """Bytes the journal counts as held by the service (its acknowledged parts, or the
    prefix an in-order service confirmed)."""
    return sum(end - start for start, end in _record(state).get("done_ranges", ()))


def _wait_until(process: subprocess.Popen[bytes], ready: Callable[[], object], what: str,
                timeout: float = 30) -> None:
    wait_for(lambda: ready() or process.poll() is not None, step=0.005, timeout=timeout,
             what=what)
    assert process.poll() is None, (
        f"laden ended before {what}: "
        f"{process.stderr.read().decode() if process.stderr else ''} (seed {SEED})")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("laden:")]


# -- kill -9, then the same command again -----------------------------------------------------

MOMENTS = ("the upload begun", "parts in flight", "a part half sent", "the commit")
"""When the kills land; the last once the commit was sent whole, before the service made it."""
SLOW_COMMIT = 2.5
"""Seconds before that commit is made: S3 (moto) takes them over it, as for a large object;
for Azure and GCS the relay holds the request on its way (see `upload_services`)."""


@pytest.mark.slow
def test_kill_9_at_several_moments_then_rerun(service: UploadService, relay: CountingRelay,
                                              tmp_path: Path,
                                              laden_dirs: dict[str, Path]) -> None:
    """Killed as the upload begins, with parts in flight, with a part half sent and while the
    service finishes the commit, the upload leaves no object but the file's and a journal
    that never claims a part the service lacks; each rerun sends only the parts the journal
    lacks (at most those in flight at the kill), and the last leaves the file's exact bytes
    under the remote name without sending them again."""
    state = laden_dirs["state"]
    path, data, count = _local(service, tmp_path, 5, seed=1801)
    key = "crash/up.bin"
    command = ["put", "-q", "-c", str(CONNECTIONS), *service.args(_endpoint(relay)), str(path),
               service.url(key)]
    rng = random.Random(SEED * 1000 + 18)
    kills, kept = 0, 0

    def unjournalled() -> int:
        """Bytes the journal does not hold: all a run may send."""
        return len(data) - _journalled(state)

    for moment in MOMENTS:
        began, allowed = relay.sent, unjournalled() + SLACK
        if moment == "the commit":
            # Without a limit the last parts go at once; the service's commit is slow.
            with service.slow_commit(SLOW_COMMIT) as committing:
                process = start_laden(*command)
                _wait_until(process, committing.is_set, "the commit at the service")
        else:
            # Two parts at once, 4 MB/s each: a part is acknowledged every second or so.
            process = start_laden(*command, "--limit-rate", "8M")
        if moment == "the upload begun":
            _wait_until(process, lambda: (_record(state).get("upload") or {}).get("upload_id"),
                        moment)
        elif moment == "a part half sent":
            _wait_until(process, lambda b=began: relay.sent - b > service.part // 2, moment)
        elif moment == "parts in flight":
            _wait_until(process, lambda: _journalled(state), "a journalled part")
            deadline = time.monotonic() + rng.uniform(0.0, 1.5)
            while time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.005)
        if process.poll() is not None:
            break  # it finished: the checks after the loop still hold
        _kill(process, service)
        kills += 1
        time.sleep(0.2)  # what the killed process had written reaches the relay's count
        assert relay.sent - began <= allowed, \
            f"the run killed at {moment} sent a part the journal held (seed {SEED})"
        kept = _journalled(state)
        _check_after_kill(service, state, key, data, moment)
    began, allowed = relay.sent, unjournalled() + SLACK
    done = subprocess.run(laden_command(*command), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{done.stderr} (seed {SEED})"
    assert "Traceback" not in done.stderr
    last = relay.sent - began
    errors = [e["message"] for e in _record(state).get("errors", ())]
    assert not any("starting again" in e for e in errors), f"{errors} (seed {SEED})"
    assert last <= allowed, f"the last rerun sent {last} bytes, more than the parts the " \
                            f"journal lacked ({allowed}); {errors} (seed {SEED})"
    assert service.stored(key) == data, f"the object differs from the file (seed {SEED})"
    assert service.unfinished(key) == []
    # What went on the wire beyond the file itself: the parts that were in flight at each kill.
    extra = relay.sent - len(data)
    bound = kills * service.in_flight * service.part + (kills + 1) * SLACK
    figures.NOTES.append(
        f"{service.name} upload, kill -9 at {', '.join(MOMENTS[:kills])}: "
        f"{format_size(extra)} sent beyond the file's {format_size(len(data))} in all "
        f"({format_size(extra // max(1, kills))} per resume; at most {service.in_flight} "
        f"parts of {format_size(service.part)} in flight); the last rerun sent "
        f"{format_size(last)} with {format_size(kept)} of {format_size(len(data))} "
        f"journalled")
    assert extra <= bound, f"{extra} bytes sent again, more than the parts in flight " \
                           f"({bound}) (seed {SEED})"


def _check_after_kill(service: UploadService, state: Path, key: str, data: bytes,
                      moment: str) -> None:
    journal_opens_cleanly(state)
    stored = service.stored(key)
    assert stored is None or (moment == "the commit" and stored == data), \
        f"an object other than the file's appeared after a kill at {moment} (seed {SEED})"
    # During the commit the service may have taken the parts out of the upload.
    if stored is None and moment != "the commit":
        unheld = service.unheld(key, _record(state))
        assert not unheld, f"journalled, not held by the service: {unheld} (seed {SEED})"
    figures.kill_survived(service.name)


def test_the_journal_keeps_what_a_resume_after_a_crash_needs() -> None:
    """The conflict policy and "the commit was asked for" come back from the journal: without
    them a resumed "fail" upload would overwrite, and a crash during the commit would send the
    whole file again."""
    from laden.store.records import Record

    upload = {"pinned": {"size": 1, "mtime_ns": 2, "inode": 3}, "part_size": 8 << 20,
              "upload_id": "u", "parts": {"1": ("etag", "AAAAAA==")}, "conflict": "fail",
              "committing": True, "checksum": "AAAAAA=="}
    record = Record(url="s3://b/k", source="s3", dest_dir="/data", state="paused",
                    direction="upload", upload=upload)
    assert Record.from_row(1, record.to_json(), "[]").upload == upload


# -- the local file changes mid-upload ---------------------------------------------------------

@pytest.mark.slow
def test_local_file_changed_mid_upload_stops_and_commits_nothing(
        service: UploadService, relay: CountingRelay, tmp_path: Path,
        laden_dirs: dict[str, Path]) -> None:
    with scenario(f"{service.name} upload: the local file changed mid-upload"):
        path, data, _ = _local(service, tmp_path, 2, seed=1802)
        command = ["put", "-c", "1", *service.args(_endpoint(relay)), str(path),
                   service.url("moving.bin")]
        process = start_laden(*command, "--limit-rate", "8M")
        _wait_until(process, lambda: _journalled(laden_dirs["state"]), "a journalled part")
        with path.open("r+b") as handle:  # an edit in place: same size, another version
            handle.seek(len(data) - 1)
            handle.write(b"\0")
        _, err = process.communicate(timeout=60)
        stderr = err.decode()
        assert process.returncode == 1, stderr
        assert "Traceback" not in stderr
        lines = _error_lines(stderr)
        assert len(lines) == 1 and "changed during the upload; nothing was committed" in lines[0]
        assert service.stored("moving.bin") is None
        # The same command again refuses the other version and says how to go on; asked to
        # restart, it sends the file as it is now, from its first byte.
        again = subprocess.run(laden_command(*command), capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
        lines = _error_lines(again.stderr)
        assert len(lines) == 1 and "--on-change restart" in lines[0], again.stderr
        assert service.stored("moving.bin") is None
        again = subprocess.run(laden_command(*command, "--on-change", "restart"),
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        assert service.stored("moving.bin") == path.read_bytes()
        assert service.unfinished("moving.bin") == []


# -- the service loses the upload --------------------------------------------------------------

@pytest.mark.slow
def test_upload_lost_at_the_service_starts_again_and_says_why(
        service: UploadService, relay: CountingRelay, tmp_path: Path,
        laden_dirs: dict[str, Path]) -> None:
    with scenario(f"{service.name} upload: the service lost the upload"):
        path, data, _ = _local(service, tmp_path, 2, seed=1803)
        command = ["put", *service.args(_endpoint(relay)), str(path), service.url("lost.bin")]
        process = start_laden(*command, "-c", "1", "--limit-rate", "8M")
        _wait_until(process, lambda: _journalled(laden_dirs["state"]), "a journalled part")
        _kill(process, service)
        assert service.lose("lost.bin") == 1  # behind laden's back
        again = subprocess.run(laden_command(*command), capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 0, again.stderr
        assert "Traceback" not in again.stderr
        assert service.stored("lost.bin") == data
        # The reason is kept with the upload: the app's detail screen and the log show it.
        said = [e["message"] for e in _record(laden_dirs["state"]).get("errors", ())]
        assert any(all(w in m for w in service.lost_words) for m in said), said
        figures.kill_survived(service.name)


@pytest.mark.slow
def test_a_commit_whose_answer_was_lost_is_not_sent_again(
        service: UploadService, relay: CountingRelay, tmp_path: Path) -> None:
    """The commit succeeded but its answer was lost (S3: asking again says the upload is
    unknown; Azure, GCS: the connection is cut before the answer): laden finds the object is
    the file's and is done, sending nothing again."""
    with scenario(f"{service.name} upload: the commit's answer lost"):
        path, data, _ = _local(service, tmp_path, 2, seed=1806)
        with service.commit_answer_lost(), manager(FAST) as m:
            upload_id = m.add_upload(str(path), service.url("answer.bin"),
                                     connections=CONNECTIONS,
                                     **service.options(_endpoint(relay)))
            info = m.wait(upload_id, timeout=60)
        assert info.state is State.DONE, info.message
        assert not any("starting again" in e.message for e in info.errors), info.errors
        assert service.stored("answer.bin") == data
        assert relay.sent <= len(data) + SLACK, "the file was sent again"


# -- every request refused mid-upload ----------------------------------------------------------

@pytest.mark.slow
def test_forbidden_mid_upload_is_one_clear_line_and_loses_no_part(
        service: UploadService, relay: CountingRelay, tmp_path: Path,
        laden_dirs: dict[str, Path]) -> None:
    with scenario(f"{service.name} upload: 403 mid-upload"):
        path, data, count = _local(service, tmp_path, 3, seed=1804)
        command = ["put", "-c", str(CONNECTIONS), *service.args(_endpoint(relay)), str(path),
                   service.url("denied.bin")]
        process = start_laden(*command, "--limit-rate", "8M")
        _wait_until(process, lambda: _journalled(laden_dirs["state"]), "a journalled part")
        with service.forbidden():
            _, err = process.communicate(timeout=60)
        stderr = err.decode()
        assert process.returncode == 1, stderr
        assert "Traceback" not in stderr
        lines = _error_lines(stderr)
        assert len(lines) == 1 and any(w in lines[0] for w in service.forbidden_words), stderr
        assert service.stored("denied.bin") is None
        kept = _journalled(laden_dirs["state"])
        assert kept >= service.part
        # The key works again: the same command sends only the parts not journalled.
        before = relay.sent
        again = subprocess.run(laden_command(*command), capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 0, again.stderr
        assert service.stored("denied.bin") == data
        assert relay.sent - before <= len(data) - kept + 2 * SLACK, \
            "parts acknowledged before the 403 were sent again"


# -- the local disk fails to read --------------------------------------------------------------

@pytest.mark.slow
def test_disk_read_error_pauses_clearly_and_resumes_once_readable(
        service: UploadService, relay: CountingRelay, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO from reads of the local file past its second part, injected at `os.preadv` (the one
    call laden reads an upload's file with) for that file only: no file system here can be made
    to fail reads on demand without root and device-mapper."""
    with scenario(f"{service.name} upload: disk read error"):
        path, data, count = _local(service, tmp_path, 4, seed=1805)
        failing = threading.Event()
        failing.set()
        real_preadv = os.preadv
        target = os.stat(path)

        def preadv(fd: int, buffers: Any, offset: int, *flags: int) -> int:
            found = os.fstat(fd)
            if (failing.is_set() and offset >= 2 * service.part
                    and (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino)):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_preadv(fd, buffers, offset, *flags)

        monkeypatch.setattr(os, "preadv", preadv)
        with manager(FAST.replace(retries=1)) as m:
            upload_id = m.add_upload(str(path), service.url("unreadable.bin"),
                                     connections=CONNECTIONS, **service.options(_endpoint(relay)))
            info = m.wait(upload_id, timeout=60)
            # As a download's disk error: paused with the reason, the acknowledged parts kept.
            assert info.state is State.PAUSED, (info.state, info.message)
            assert info.message == f"paused: cannot read {path}: Input/output error"
            assert service.stored("unreadable.bin") is None
            kept = sum(e - s for s, e in info.done_ranges)
            assert kept >= service.part, "the parts acknowledged before the error are kept"
            failing.clear()  # the disk is readable again
            before = relay.sent
            m.resume(upload_id)
            info = m.wait(upload_id, timeout=60)
        assert info.state is State.DONE, info.message
        assert service.stored("unreadable.bin") == data
        assert relay.sent - before <= len(data) - kept + service.in_flight * service.part + SLACK
