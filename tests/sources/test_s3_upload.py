"""Uploads to S3 (moto): single and multipart objects byte-identical, folders, conflicts, a
changed local file, a lost upload id, a 403 mid-upload, and no secret anywhere it could leak.

The kill -9 test is in `faults/test_crash.py`, where the trust suite counts its kills.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

from laden.core.states import State
from laden.engine.uploading.crc32c import combine
from laden.engine.uploading.local import Pin
from laden.engine.uploading.parts import MiB, part_size
from laden.engine.uploading.state import fresh
from servers.fixtures import random_bytes

from .conftest import FAST, journal_records, laden, laden_process, manager

PART = part_size(0, 5 * MiB, 10_000)  # 8 MiB: what a test file's parts are


def _options(s3_server: Any) -> dict[str, Any]:
    return {"source_settings": {"s3_endpoint_url": s3_server.endpoint_url}}


def _object(s3_server: Any, bucket: str, key: str) -> bytes:
    return bytes(s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def _file(folder: Path, name: str, size: int, seed: int) -> tuple[Path, bytes]:
    data = random_bytes(size, seed=seed)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, data


def _keys(s3_server: Any, bucket: str) -> list[str]:
    answer = s3_server.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in answer.get("Contents", ()))


def _unfinished(s3_server: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", ()))


# -- the parts and their checksums ----------------------------------------------------------

def test_part_size_grows_to_stay_under_the_part_limit() -> None:
    assert part_size(1, 5 * MiB, 10_000) == 8 * MiB
    assert part_size(80_000 * MiB, 5 * MiB, 10_000) == 8 * MiB
    one_tib = 1 << 40
    size = part_size(one_tib, 5 * MiB, 10_000)
    assert size % MiB == 0 and -(-one_tib // size) <= 10_000


def test_whole_file_crc32c_is_combined_from_the_parts() -> None:
    data = random_bytes(3 * 1024 * 1024 + 17, seed=1)
    first, second = data[:1024 * 1024], data[1024 * 1024:]
    combined = combine(google_crc32c.value(first), google_crc32c.value(second), len(second))
    assert combined == google_crc32c.value(data)


# -- uploads ---------------------------------------------------------------------------------

def test_small_file_is_one_put_and_byte_identical(s3_server: Any, s3_bucket: str,
                                                  tmp_path: Path) -> None:
    path, data = _file(tmp_path, "small.bin", 300_000, seed=2)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/a/small.bin",
                                   **_options(s3_server)))
    assert info.state is State.DONE, info.message
    assert info.direction == "upload" and info.dest == str(path)
    assert _object(s3_server, s3_bucket, "a/small.bin") == data
    assert [(c.algorithm, c.verified) for c in info.checksums] == [("crc32c", True)]


def test_empty_file_uploads(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/empty", **_options(s3_server)))
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "empty") == b""


def test_large_file_is_multipart_with_a_full_object_crc32c(s3_server: Any, s3_bucket: str,
                                                           tmp_path: Path) -> None:
    path, data = _file(tmp_path, "big.bin", 3 * PART + 12_345, seed=3)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/big.bin", connections=4,
                                   **_options(s3_server)))
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "big.bin") == data
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="big.bin",
                                          ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-4")  # four parts
    assert head["ChecksumCRC32C"] == _crc(data)  # moto computes it from the object's bytes
    assert _unfinished(s3_server, s3_bucket) == []
    records = [r for r in journal_records_of() if r.direction == "upload"]
    assert records and records[0].upload["upload_id"] is None  # nothing left to abort


def journal_records_of() -> list[Any]:
    import os

    return journal_records(Path(os.environ["LADEN_STATE_DIR"]))


def test_folder_with_a_glob_keeps_its_layout(s3_server: Any, s3_bucket: str,
                                             tmp_path: Path) -> None:
    folder = tmp_path / "data"
    wanted = {"a.csv": 10, "sub/b.csv": 20, "sub/deeper/c.csv": 30}
    for number, (name, size) in enumerate({**wanted, "skip.txt": 5, "sub/x.json": 7}.items()):
        _file(folder, name, size, seed=10 + number)
    result = laden("put", "--s3-endpoint-url", s3_server.endpoint_url, "--glob", "**/*.csv",
                   str(folder), f"s3://{s3_bucket}/pre")
    assert result.returncode == 0, result.stderr
    assert _keys(s3_server, s3_bucket) == sorted(f"pre/{name}" for name in wanted)
    for name in wanted:
        assert _object(s3_server, s3_bucket, f"pre/{name}") == (folder / name).read_bytes()
    assert "uploaded" in result.stdout


def test_several_files_go_under_the_prefix(s3_server: Any, s3_bucket: str,
                                           tmp_path: Path) -> None:
    one, _ = _file(tmp_path, "one.bin", 100, seed=20)
    two, _ = _file(tmp_path, "two.bin", 200, seed=21)
    result = laden("put", "-q", "--s3-endpoint-url", s3_server.endpoint_url, str(one), str(two),
                   f"s3://{s3_bucket}/p/")
    assert result.returncode == 0, result.stderr
    assert _keys(s3_server, s3_bucket) == ["p/one.bin", "p/two.bin"]


def test_list_json_and_events_show_the_direction(s3_server: Any, s3_bucket: str,
                                                 tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "f.bin", 1000, seed=22)
    result = laden("put", "--json", "--s3-endpoint-url", s3_server.endpoint_url, str(path),
                   f"s3://{s3_bucket}/f.bin")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "completed" and events[-1]["direction"] == "upload"
    listed = laden("list")
    assert f"f.bin -> s3://{s3_bucket}/f.bin" in listed.stdout
    rows = [json.loads(line) for line in laden("list", "--json").stdout.splitlines()]
    assert rows[0]["direction"] == "upload" and rows[0]["state"] == "done"


# -- conflicts -------------------------------------------------------------------------------

def test_conflict_skip_keeps_an_object_with_the_same_size_and_crc32c(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "same.bin", 5000, seed=30)
    s3_server.client().put_object(Bucket=s3_bucket, Key="same.bin", Body=data,
                                  ChecksumAlgorithm="CRC32C", ChecksumCRC32C=_crc(data))
    other, _ = _file(tmp_path, "other.bin", 5000, seed=31)
    s3_server.client().put_object(Bucket=s3_bucket, Key="other.bin", Body=data,
                                  ChecksumAlgorithm="CRC32C", ChecksumCRC32C=_crc(data))
    with manager() as m:
        same = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/same.bin", conflict="skip",
                                   **_options(s3_server)))
        changed = m.wait(m.add_upload(str(other), f"s3://{s3_bucket}/other.bin",
                                      conflict="skip", **_options(s3_server)))
    assert same.state is State.DONE and same.skipped, same.message
    assert changed.state is State.DONE and not changed.skipped, changed.message
    assert _object(s3_server, s3_bucket, "other.bin") == other.read_bytes()


@pytest.mark.parametrize("size", [1000, PART + 1], ids=["put", "multipart"])
def test_conflict_fail_is_enforced_by_the_store(s3_server: Any, s3_bucket: str, tmp_path: Path,
                                                size: int) -> None:
    path, _ = _file(tmp_path, "f.bin", size, seed=32)
    s3_server.client().put_object(Bucket=s3_bucket, Key="taken", Body=b"theirs")
    result = laden("put", "--conflict", "fail", "--s3-endpoint-url", s3_server.endpoint_url,
                   str(path), f"s3://{s3_bucket}/taken")
    assert result.returncode == 1
    assert "exists already, and the conflict policy is fail" in result.stderr
    assert "Traceback" not in result.stderr
    assert _object(s3_server, s3_bucket, "taken") == b"theirs"
    assert _unfinished(s3_server, s3_bucket) == []  # the parts sent were aborted


def test_conflict_overwrite_replaces(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "f.bin", 1000, seed=33)
    s3_server.client().put_object(Bucket=s3_bucket, Key="taken", Body=b"theirs")
    result = laden("put", "-q", "--s3-endpoint-url", s3_server.endpoint_url, str(path),
                   f"s3://{s3_bucket}/taken")
    assert result.returncode == 0, result.stderr
    assert _object(s3_server, s3_bucket, "taken") == data


# -- faults ----------------------------------------------------------------------------------

def _wait_for_parts(upload_id: int, m: Any, parts: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = m.get(upload_id)
        if sum(end - start for start, end in info.done_ranges) >= parts * PART:
            return
        assert not info.state.is_finished, info.message
        time.sleep(0.02)
    raise AssertionError("no part was acknowledged in time")


def test_a_part_that_fails_is_sent_again_whole(s3_server: Any, s3_bucket: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.s3.models as models

    original = models.S3Backend.upload_part
    failed: list[int] = []

    def upload_part(self: Any, bucket_name: str, multipart_id: str, part_id: int,
                    value: bytes) -> Any:
        if part_id == 2 and not failed:
            failed.append(part_id)
            raise RuntimeError("the store fails once")  # moto answers 500
        return original(self, bucket_name, multipart_id, part_id, value)

    monkeypatch.setattr(models.S3Backend, "upload_part", upload_part)
    path, data = _file(tmp_path, "again.bin", 2 * PART + 99, seed=48)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/again.bin", connections=2,
                                   **_options(s3_server)))
    assert failed == [2]
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "again.bin") == data


def test_local_file_changed_mid_upload_commits_nothing(s3_server: Any, s3_bucket: str,
                                                       tmp_path: Path) -> None:
    path, data = _file(tmp_path, "moving.bin", 4 * PART, seed=40)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"s3://{s3_bucket}/moving.bin", connections=1,
                                 **_options(s3_server))
        _wait_for_parts(upload_id, m)
        with path.open("r+b") as handle:  # an edit in place: same size, another version
            handle.seek(len(data) - 1)
            handle.write(b"\0")
        info = m.wait(upload_id, timeout=60)
        assert info.state is State.FAILED
        assert "changed during the upload; nothing was committed" in info.message
        assert _keys(s3_server, s3_bucket) == []
        # Resumed, it stops again: the file is still not the one pinned.
        m.resume(upload_id)
        info = m.wait(upload_id, timeout=60)
        assert info.state is State.FAILED
        assert "changed since the upload began; nothing was committed" in info.message
        assert "--on-change restart" in info.message
        # Added again with on_change restart, it starts from the first byte of the file now.
        m.set_limit_rate(None)
        assert m.add_upload(str(path), f"s3://{s3_bucket}/moving.bin", on_change="restart",
                            **_options(s3_server)) == upload_id
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "moving.bin") == path.read_bytes()
    assert any("changed since the upload began" in e.message
               and "starting again from the first byte" in e.message for e in info.errors)
    assert _unfinished(s3_server, s3_bucket) == []  # the old version's parts were aborted


def test_upload_id_lost_between_runs_starts_again_and_says_why(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "lost.bin", 3 * PART, seed=41)
    url = f"s3://{s3_bucket}/lost.bin"
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), url, connections=1, **_options(s3_server))
        _wait_for_parts(upload_id, m)
        m.pause(upload_id)
        m.wait(upload_id)
    client = s3_server.client()
    for unfinished in _unfinished(s3_server, s3_bucket):  # behind laden's back
        client.abort_multipart_upload(Bucket=s3_bucket, Key="lost.bin",
                                      UploadId=unfinished["UploadId"])
    with manager() as m:
        m.resume(upload_id)
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "lost.bin") == data
    assert any("no longer knows the unfinished upload" in e.message
               and "starting again from the first byte" in e.message for e in info.errors)


def test_upload_id_lost_mid_upload_starts_again(s3_server: Any, s3_bucket: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # moto answers an UploadPart to an upload it no longer has with a 500 (a KeyError inside);
    # S3 answers NoSuchUpload, as moto's ListParts and AbortMultipartUpload already do.
    import moto.s3.models as models
    from moto.s3.exceptions import NoSuchUpload

    original = models.S3Backend.upload_part

    def upload_part(self: Any, bucket_name: str, multipart_id: str, part_id: int,
                    value: bytes) -> Any:
        if multipart_id not in self.get_bucket(bucket_name).multiparts:
            raise NoSuchUpload(upload_id=multipart_id)
        return original(self, bucket_name, multipart_id, part_id, value)

    monkeypatch.setattr(models.S3Backend, "upload_part", upload_part)
    path, data = _file(tmp_path, "lost.bin", 3 * PART, seed=42)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"s3://{s3_bucket}/lost.bin", connections=1,
                                 **_options(s3_server))
        _wait_for_parts(upload_id, m)
        for unfinished in _unfinished(s3_server, s3_bucket):
            s3_server.client().abort_multipart_upload(Bucket=s3_bucket, Key="lost.bin",
                                                      UploadId=unfinished["UploadId"])
        m.set_limit_rate(None)
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "lost.bin") == data
    assert any("no longer knows" in e.message for e in info.errors)


def test_forbidden_mid_upload_is_one_clear_line(s3_server: Any, s3_bucket: str,
                                                tmp_path: Path) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    path, _ = _file(tmp_path, "denied.bin", 4 * PART, seed=43)
    process = subprocess.Popen(
        [*_laden_argv(), "put", "--limit-rate", "8M", "-c", "2", "--s3-endpoint-url",
         s3_server.endpoint_url, str(path), f"s3://{s3_bucket}/denied.bin"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    try:
        _wait_for_journalled_part()
        # From now on moto checks credentials, and knows none: every request is refused.
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        _out, err = process.communicate(timeout=60)
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    lines = [line for line in err.splitlines() if line.startswith("laden:")]
    assert len(lines) == 1, err
    assert "S3 refused the credentials" in lines[0] or "access denied" in lines[0]
    assert "Traceback" not in err


def _laden_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "laden"]


def _wait_for_journalled_part(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((r.upload or {}).get("parts") for r in journal_records_of()):
            return
        time.sleep(0.02)
    raise AssertionError("no part was journalled in time")


def test_cancel_and_remove_abort_the_multipart_upload(s3_server: Any, s3_bucket: str,
                                                      tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "gone.bin", 3 * PART, seed=44)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        first = m.add_upload(str(path), f"s3://{s3_bucket}/one.bin", connections=1,
                             **_options(s3_server))
        _wait_for_parts(first, m)
        m.cancel(first)
        assert _unfinished(s3_server, s3_bucket) == []
        second = m.add_upload(str(path), f"s3://{s3_bucket}/two.bin", connections=1,
                              **_options(s3_server))
        _wait_for_parts(second, m)
        m.pause(second)
        m.wait(second)
        assert len(_unfinished(s3_server, s3_bucket)) == 1
        m.remove(second, delete_file=True)
        assert _unfinished(s3_server, s3_bucket) == []
    assert path.exists()  # an upload's file is never laden's to delete
    assert _keys(s3_server, s3_bucket) == []


def test_no_secret_reaches_output_json_log_or_journal(s3_server: Any, s3_bucket: str,
                                                      tmp_path: Path,
                                                      laden_dirs: dict[str, Path]) -> None:
    key_id, secret = "AKIAUPLOADSECRET0001", "uploadSecretValue/abc123xyz"
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    path, _ = _file(tmp_path, "s.bin", PART + 10, seed=45)
    result = laden("--log-level", "debug", "put", "--json", "--s3-endpoint-url",
                   s3_server.endpoint_url, "--s3-access-key-id", key_id,
                   "--s3-secret-key-file", str(secret_file), str(path),
                   f"s3://{s3_bucket}/s.bin")
    assert result.returncode == 0, result.stderr
    listed = laden("list", "--json").stdout + laden("list").stdout
    seen = [result.stdout, result.stderr, listed]
    seen += [p.read_text(errors="replace") for p in laden_dirs["logs"].rglob("*") if p.is_file()]
    seen += [p.read_bytes().decode("latin-1") for p in laden_dirs["state"].rglob("*")
             if p.is_file()]
    assert "UploadPart" in "".join(seen)  # the log was written, at debug
    for text in seen:
        assert secret not in text and key_id not in text


def test_what_the_journal_keeps_of_an_upload_grants_nothing() -> None:
    kept = fresh(Pin(1, 2, 3), PART, "overwrite")
    assert set(kept) == {"pinned", "part_size", "conflict", "upload_id", "parts"}


def test_the_journal_is_its_owners_alone(s3_server: Any, s3_bucket: str, tmp_path: Path,
                                         laden_dirs: dict[str, Path]) -> None:
    journal = laden_dirs["state"] / "journal.sqlite3"
    journal.touch(mode=0o644)
    journal.chmod(0o644)  # as an earlier laden left it
    path, _ = _file(tmp_path, "f.bin", 10, seed=46)
    with manager() as m:
        assert m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/f.bin",
                                   **_options(s3_server))).state is State.DONE
    assert journal.stat().st_mode & 0o077 == 0


def test_an_interrupted_upload_resumes_in_the_next_session(s3_server: Any, s3_bucket: str,
                                                           tmp_path: Path) -> None:
    import signal

    path, data = _file(tmp_path, "later.bin", 3 * PART, seed=47)
    process = laden_process("put", "--limit-rate", "8M", "-c", "1", "--s3-endpoint-url",
                            s3_server.endpoint_url, str(path), f"s3://{s3_bucket}/later.bin")
    try:
        _wait_for_journalled_part()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    listed = laden("list")
    assert "interrupted" in listed.stdout and "later.bin -> s3://" in listed.stdout
    resumed = laden("resume", "--all")  # the endpoint was kept with the upload
    assert resumed.returncode == 0, resumed.stderr
    assert _object(s3_server, s3_bucket, "later.bin") == data
    assert _unfinished(s3_server, s3_bucket) == []


def test_the_queue_shows_which_way_a_row_goes() -> None:
    from laden.core.snapshots import DownloadInfo
    from laden.tui.widgets.queue_table import UPLOAD_MARK, shown_name

    def info(direction: str) -> DownloadInfo:
        return DownloadInfo(id=1, url="s3://b/k.bin", final_url=None, source="s3",
                            dest="/data/k.bin", state=State.QUEUED, size=1, done=0, speed=0.0,
                            eta=None, direction=direction)

    assert shown_name(info("upload")) == f"{UPLOAD_MARK}k.bin → s3://b/k.bin"
    assert shown_name(info("download")) == "k.bin"
