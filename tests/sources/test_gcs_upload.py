"""Uploads to Google Cloud Storage.

Everything but resumption against fake-gcs-server: single requests, resumable sessions of
several chunks, folders, conflicts, the checksums of the finished object. Resumption (pause,
kill -9, a lost session, a chunk the service kept only part of) against `GcsResumableServer`,
which follows Google's documented protocol where fake-gcs-server does not (see its docstring).
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

from laden.core.states import State
from laden.engine.uploading.parts import MiB
from servers.fixtures import random_bytes
from servers.gcs_resumable import GcsResumableServer

from .conftest import FAST, journal_records, laden, laden_process, manager

CHUNK = 16 * MiB  # GcsUploader.min_part: a test file's chunks, and the largest single request
BUCKET = "up"


@pytest.fixture(scope="module")
def resumable() -> Iterator[GcsResumableServer]:
    with GcsResumableServer() as server:
        yield server


@pytest.fixture
def google(resumable: GcsResumableServer) -> GcsResumableServer:
    resumable.requests.clear()
    resumable.chunks.clear()
    resumable.objects.clear()
    resumable.forget_sessions()
    resumable.keep_short_once = resumable.keep_then_fail_once = False
    resumable.fail_next_chunks = 0
    return resumable


def _settings(endpoint: str) -> dict[str, Any]:
    return {"source_settings": {"gcs_endpoint_url": endpoint}}


def _file(folder: Path, name: str, size: int, seed: int) -> tuple[Path, bytes]:
    data = random_bytes(size, seed=seed)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, data


def _blob(gcs_server: Any, bucket: str, name: str) -> Any:
    return gcs_server.client().bucket(bucket).get_blob(name)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _crc(data: bytes) -> str:
    return _b64(google_crc32c.value(data).to_bytes(4, "big"))


def _md5(data: bytes) -> str:
    return _b64(hashlib.md5(data).digest())


def _state_dir() -> Path:
    import os

    return Path(os.environ["LADEN_STATE_DIR"])


# -- fake-gcs-server -------------------------------------------------------------------------

def test_small_file_is_one_request_with_its_checksums(gcs_server: Any, gcs_bucket: str,
                                                      tmp_path: Path) -> None:
    path, data = _file(tmp_path, "small.bin", 300_000, seed=1)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"gs://{gcs_bucket}/a/small.bin",
                                   **_settings(gcs_server.endpoint)))
    assert info.state is State.DONE, info.message
    blob = _blob(gcs_server, gcs_bucket, "a/small.bin")
    assert blob.download_as_bytes() == data
    assert (blob.crc32c, blob.md5_hash) == (_crc(data), _md5(data))
    assert [(c.algorithm, c.verified) for c in info.checksums] == [("crc32c", True)]


def test_empty_file_uploads(gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "empty", 0, seed=2)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"gs://{gcs_bucket}/empty",
                                   **_settings(gcs_server.endpoint)))
    assert info.state is State.DONE, info.message
    assert _blob(gcs_server, gcs_bucket, "empty").download_as_bytes() == b""


def test_large_file_is_a_resumable_session_checked_by_crc32c_and_md5(
        gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "big.bin", 2 * CHUNK + 12_345, seed=3)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"gs://{gcs_bucket}/big.bin", connections=4,
                                   **_settings(gcs_server.endpoint)))
        assert m.verify(info.id).ok  # laden verify: the file against what the service had
    assert info.state is State.DONE, info.message
    blob = _blob(gcs_server, gcs_bucket, "big.bin")
    assert blob.download_as_bytes() == data
    assert sorted((c.algorithm, c.expected, c.verified) for c in info.checksums) == [
        ("crc32c", google_crc32c.value(data).to_bytes(4, "big").hex(), True),
        ("md5", hashlib.md5(data).hexdigest(), True)]
    record = [r for r in journal_records(_state_dir()) if r.direction == "upload"][0]
    assert record.upload["upload_id"] is None  # nothing left of the session


def test_folder_with_a_glob_keeps_its_layout(gcs_server: Any, gcs_bucket: str,
                                             tmp_path: Path) -> None:
    folder = tmp_path / "data"
    wanted = {"a.csv": 10, "sub/b.csv": 20, "sub/deeper/c.csv": 30}
    for number, (name, size) in enumerate({**wanted, "skip.txt": 5}.items()):
        _file(folder, name, size, seed=10 + number)
    result = laden("put", "--gcs-endpoint-url", gcs_server.endpoint, "--glob", "**/*.csv",
                   str(folder), f"gs://{gcs_bucket}/pre")
    assert result.returncode == 0, result.stderr
    names = sorted(b.name for b in gcs_server.client().list_blobs(gcs_bucket))
    assert names == sorted(f"pre/{name}" for name in wanted)
    for name in wanted:
        blob = _blob(gcs_server, gcs_bucket, f"pre/{name}")
        assert blob.download_as_bytes() == (folder / name).read_bytes()


def test_conflict_skip_keeps_an_object_with_the_same_checksums(
        gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "same.bin", 5000, seed=30)
    gcs_server.upload(gcs_bucket, "same.bin", data)
    other, _ = _file(tmp_path, "other.bin", 5000, seed=31)
    gcs_server.upload(gcs_bucket, "other.bin", data)  # the same size, other bytes
    with manager() as m:
        same = m.wait(m.add_upload(str(path), f"gs://{gcs_bucket}/same.bin", conflict="skip",
                                   **_settings(gcs_server.endpoint)))
        changed = m.wait(m.add_upload(str(other), f"gs://{gcs_bucket}/other.bin",
                                      conflict="skip", **_settings(gcs_server.endpoint)))
    assert same.state is State.DONE and same.skipped, same.message
    assert "size and CRC32C and MD5 already; skipped" in same.message
    assert changed.state is State.DONE and not changed.skipped, changed.message
    assert _blob(gcs_server, gcs_bucket, "other.bin").download_as_bytes() == other.read_bytes()


def test_conflict_fail_is_enforced_by_the_service(gcs_server: Any, gcs_bucket: str,
                                                  tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "f.bin", 1000, seed=32)
    gcs_server.upload(gcs_bucket, "taken", b"theirs")
    result = laden("put", "--conflict", "fail", "--gcs-endpoint-url", gcs_server.endpoint,
                   str(path), f"gs://{gcs_bucket}/taken")
    assert result.returncode == 1, result.stderr
    assert "exists already, and the conflict policy is fail" in result.stderr
    assert "Traceback" not in result.stderr
    assert _blob(gcs_server, gcs_bucket, "taken").download_as_bytes() == b"theirs"


def test_conflict_fail_with_a_session_is_enforced_by_the_service(google: GcsResumableServer,
                                                                 tmp_path: Path) -> None:
    # fake-gcs-server ignores ifGenerationMatch on a resumable session: the protocol's server.
    path, _ = _file(tmp_path, "f.bin", CHUNK + 1, seed=34)
    google.put_object(BUCKET, "taken", b"theirs")
    result = laden("put", "--conflict", "fail", "--gcs-endpoint-url", google.endpoint,
                   str(path), f"gs://{BUCKET}/taken")
    assert result.returncode == 1, result.stderr
    assert "exists already, and the conflict policy is fail" in result.stderr
    assert "Traceback" not in result.stderr
    assert google.object(BUCKET, "taken") == b"theirs"


def test_conflict_overwrite_replaces(gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "f.bin", CHUNK + 7, seed=33)
    gcs_server.upload(gcs_bucket, "taken", b"theirs")
    result = laden("put", "-q", "--gcs-endpoint-url", gcs_server.endpoint, str(path),
                   f"gs://{gcs_bucket}/taken")
    assert result.returncode == 0, result.stderr
    assert _blob(gcs_server, gcs_bucket, "taken").download_as_bytes() == data


# -- resumption, against the protocol as Google documents it ---------------------------------

def _wait_persisted(google: GcsResumableServer, at_least: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = google.persisted()
        if held >= at_least:
            return held
        time.sleep(0.02)
    raise AssertionError(f"the session held {google.persisted()} bytes, not {at_least}")


def _sent_after(google: GcsResumableServer, count: int) -> list[tuple[int, int]]:
    return google.chunks[count:]


def test_pause_and_resume_send_only_what_the_session_lacks(google: GcsResumableServer,
                                                           tmp_path: Path) -> None:
    path, data = _file(tmp_path, "paused.bin", 3 * CHUNK + 999, seed=40)
    url = f"gs://{BUCKET}/paused.bin"
    with manager(FAST.replace(limit_rate=16 * MiB)) as m:
        upload = m.add_upload(str(path), url, **_settings(google.endpoint))
        _wait_persisted(google, CHUNK)
        m.pause(upload)
        assert m.wait(upload).state is State.PAUSED
        held, before = google.persisted(), len(google.chunks)
        assert held % CHUNK == 0 and 0 < held < len(data)
        (waiting,) = m.unfinished_uploads()  # `laden list --unfinished-uploads`
        assert (waiting.parts, waiting.sent) == (held // CHUNK, held)
        m.set_limit_rate(None)
        m.resume(upload)
        info = m.wait(upload, timeout=60)
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "paused.bin") == data
    after = _sent_after(google, before)
    assert after[0][0] == held  # straight on from the persisted offset
    assert sum(end - start for start, end in after) == len(data) - held
    queries = [r for r in google.requests if r.method == "PUT"
               and r.headers.get("content-range") == f"bytes */{len(data)}"]
    assert queries  # the resume asked the service, not the journal


def test_kill_9_then_the_same_command_again_finishes_it(google: GcsResumableServer,
                                                        tmp_path: Path) -> None:
    path, data = _file(tmp_path, "killed.bin", 3 * CHUNK + 5, seed=41)
    command = ["put", "--gcs-endpoint-url", google.endpoint, str(path), f"gs://{BUCKET}/k.bin"]
    process = laden_process(command[0], "--limit-rate", "16M", *command[1:])
    try:
        _wait_persisted(google, CHUNK)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    held, before = google.persisted(), len(google.chunks)
    assert google.object(BUCKET, "k.bin") is None  # nothing is named before the last chunk
    result = laden(*command)
    assert result.returncode == 0, result.stderr
    assert google.object(BUCKET, "k.bin") == data
    resent = sum(end - start for start, end in _sent_after(google, before))
    assert resent == len(data) - held


def test_a_lost_session_starts_again_and_says_why(google: GcsResumableServer,
                                                  tmp_path: Path) -> None:
    path, data = _file(tmp_path, "lost.bin", 2 * CHUNK + 1, seed=42)
    with manager(FAST.replace(limit_rate=16 * MiB)) as m:
        upload = m.add_upload(str(path), f"gs://{BUCKET}/lost.bin",
                              **_settings(google.endpoint))
        _wait_persisted(google, CHUNK)
        m.pause(upload)
        m.wait(upload)
        google.forget_sessions()  # a week later
        m.set_limit_rate(None)
        m.resume(upload)
        info = m.wait(upload, timeout=60)
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "lost.bin") == data
    assert any("no longer knows the upload session" in e.message
               and "starting again from the first byte" in e.message for e in info.errors)


def test_a_session_lost_mid_upload_starts_again(google: GcsResumableServer,
                                                tmp_path: Path) -> None:
    path, data = _file(tmp_path, "midway.bin", 3 * CHUNK, seed=43)
    with manager(FAST.replace(limit_rate=16 * MiB)) as m:
        upload = m.add_upload(str(path), f"gs://{BUCKET}/midway.bin",
                              **_settings(google.endpoint))
        _wait_persisted(google, CHUNK)
        google.forget_sessions()
        m.set_limit_rate(None)
        info = m.wait(upload, timeout=60)
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "midway.bin") == data
    assert any("no longer knows the upload session" in e.message for e in info.errors)


def test_a_chunk_the_service_kept_only_part_of_is_finished(google: GcsResumableServer,
                                                           tmp_path: Path) -> None:
    path, data = _file(tmp_path, "short.bin", 2 * CHUNK + 3, seed=44)
    google.keep_short_once = True
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"gs://{BUCKET}/short.bin",
                                   **_settings(google.endpoint)))
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "short.bin") == data
    assert google.chunks[:2] == [(0, CHUNK - 256 * 1024), (CHUNK - 256 * 1024, CHUNK)]


def test_conflict_fail_is_decided_when_the_session_finalises(google: GcsResumableServer,
                                                             tmp_path: Path) -> None:
    # A second whole chunk after the first: a second, at this rate, to put the object first.
    path, _ = _file(tmp_path, "f.bin", 2 * CHUNK + 10, seed=45)
    with manager(FAST.replace(limit_rate=16 * MiB)) as m:
        upload = m.add_upload(str(path), f"gs://{BUCKET}/race.bin", conflict="fail",
                              **_settings(google.endpoint))
        _wait_persisted(google, CHUNK)
        google.put_object(BUCKET, "race.bin", b"someone else's")  # after laden looked
        m.set_limit_rate(None)
        info = m.wait(upload, timeout=60)
    assert info.state is State.FAILED
    assert "exists already, and the conflict policy is fail" in info.message
    assert google.object(BUCKET, "race.bin") == b"someone else's"
    assert not google.sessions  # the refused session was cancelled


def test_the_session_uri_stays_in_the_journal_alone(google: GcsResumableServer, tmp_path: Path,
                                                    laden_dirs: dict[str, Path]) -> None:
    path, data = _file(tmp_path, "s.bin", 2 * CHUNK, seed=46)
    command = ["--log-level", "debug", "put", "--json", "--gcs-endpoint-url", google.endpoint,
               str(path), f"gs://{BUCKET}/s.bin"]
    process = laden_process(command[0], command[1], command[2], "--limit-rate", "16M",
                            *command[3:])
    try:
        _wait_persisted(google, CHUNK)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    listed = laden("list", "--json").stdout + laden("list").stdout
    record = [r for r in journal_records(laden_dirs["state"]) if r.direction == "upload"][0]
    session = record.upload["upload_id"]
    token = session.rsplit("upload_id=", 1)[1]
    result = laden(*command)
    assert result.returncode == 0, result.stderr
    assert google.object(BUCKET, "s.bin") == data
    seen = [result.stdout, result.stderr, listed, laden("list", "--json").stdout]
    seen += [p.read_text(errors="replace") for p in laden_dirs["logs"].rglob("*") if p.is_file()]
    assert "PUT chunk" in "".join(seen)  # the log was written, at debug
    for text in seen:
        assert token not in text
    assert [json.loads(line)["event"] for line in result.stdout.splitlines()][-1] == "completed"
    assert (laden_dirs["state"] / "journal.sqlite3").stat().st_mode & 0o077 == 0


def test_local_file_changed_mid_upload_commits_nothing(google: GcsResumableServer,
                                                       tmp_path: Path) -> None:
    path, data = _file(tmp_path, "moving.bin", 3 * CHUNK, seed=47)
    with manager(FAST.replace(limit_rate=16 * MiB)) as m:
        upload = m.add_upload(str(path), f"gs://{BUCKET}/moving.bin",
                              **_settings(google.endpoint))
        _wait_persisted(google, CHUNK)
        with path.open("r+b") as handle:  # an edit in place: same size, another version
            handle.seek(len(data) - 1)
            handle.write(b"\0")
        info = m.wait(upload, timeout=60)
        assert info.state is State.FAILED
        assert "changed during the upload; nothing was committed" in info.message
        assert google.object(BUCKET, "moving.bin") is None
        m.set_limit_rate(None)
        # Added again with on_change restart: from the first byte of the file as it is now,
        # in a new session.
        assert m.add_upload(str(path), f"gs://{BUCKET}/moving.bin", on_change="restart",
                            **_settings(google.endpoint)) == upload
        info = m.wait(upload, timeout=60)
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "moving.bin") == path.read_bytes()
    assert any("changed since the upload began" in e.message for e in info.errors)
    assert len(google.sessions) == 1  # the first session was cancelled


def test_one_piece_at_a_time_front_to_back() -> None:
    from laden.engine.uploading.in_order import InOrderPlan

    plan = InOrderPlan(10 * MiB, [(0, 2 * MiB)], min_size=4 * MiB, piece_size=4 * MiB)
    first = plan.take(0)
    assert first is not None and (first.start, first.end) == (2 * MiB, 4 * MiB)
    assert plan.take(1) is None  # another connection gets nothing while a piece is on its way
    plan.interrupted(first)
    plan.release(first)
    again = plan.take(1)
    assert again is not None and (again.start, again.position) == (2 * MiB, 2 * MiB)
    plan.advance(again, again.end - again.start)
    following = plan.take(1)
    assert following is not None and following.start == 4 * MiB


def test_a_chunk_refused_by_a_busy_service_is_sent_again(google: GcsResumableServer,
                                                         tmp_path: Path) -> None:
    path, data = _file(tmp_path, "busy.bin", 2 * CHUNK + 5, seed=48)
    google.fail_next_chunks = 2
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"gs://{BUCKET}/busy.bin",
                                   **_settings(google.endpoint)))
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "busy.bin") == data
    assert sum("GCS asks for fewer requests (HTTP 503)" in e.message for e in info.errors) == 2
    assert google.chunks == [(0, CHUNK), (CHUNK, 2 * CHUNK), (2 * CHUNK, len(data))]


def test_a_chunk_kept_though_its_answer_failed_is_not_sent_again(google: GcsResumableServer,
                                                                 tmp_path: Path) -> None:
    # The PUT failed after the service persisted the chunk: the next attempt asks the service
    # where it stands, not what the sink last knew (which would send the chunk twice).
    path, data = _file(tmp_path, "kept.bin", 2 * CHUNK + 9, seed=49)
    google.keep_then_fail_once = True
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"gs://{BUCKET}/kept.bin",
                                   **_settings(google.endpoint)))
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "kept.bin") == data
    assert google.chunks == [(0, CHUNK), (CHUNK, 2 * CHUNK), (2 * CHUNK, len(data))]


def test_added_again_with_conflict_fail_never_finishes_the_old_session(
        google: GcsResumableServer, tmp_path: Path) -> None:
    # The session was opened under overwrite; added again with fail, it must not finalise
    # over an object that appeared meanwhile: a new session, under the new policy.
    path, _ = _file(tmp_path, "policy.bin", 2 * CHUNK + 11, seed=50)
    url = f"gs://{BUCKET}/policy.bin"
    with manager(FAST.replace(limit_rate=16 * MiB)) as m:
        upload = m.add_upload(str(path), url, **_settings(google.endpoint))
        _wait_persisted(google, CHUNK)
        m.pause(upload)
        assert m.wait(upload).state is State.PAUSED
        google.put_object(BUCKET, "policy.bin", b"theirs")
        m.set_limit_rate(None)
        assert m.add_upload(str(path), url, conflict="fail", **_settings(google.endpoint)) \
            == upload
        info = m.wait(upload, timeout=60)
    assert info.state is State.FAILED, info.message
    assert "exists already, and the conflict policy is fail" in info.message
    assert google.object(BUCKET, "policy.bin") == b"theirs"
    assert not google.sessions  # the session opened under overwrite was cancelled
    assert any("not the one the upload session was opened with" in e.message
               for e in info.errors)


def test_a_session_that_lost_confirmed_bytes_is_cancelled_not_forgotten(
        google: GcsResumableServer, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "shrunk.bin", 3 * CHUNK, seed=51)
    with manager(FAST.replace(limit_rate=16 * MiB)) as m:
        upload = m.add_upload(str(path), f"gs://{BUCKET}/shrunk.bin",
                              **_settings(google.endpoint))
        _wait_persisted(google, CHUNK)
        google.lose_confirmed_bytes()
        m.set_limit_rate(None)
        info = m.wait(upload, timeout=60)
    assert info.state is State.DONE, info.message
    assert google.object(BUCKET, "shrunk.bin") == data
    assert any("fewer than it confirmed" in e.message for e in info.errors)
    # The session still alive was cancelled (DELETE), not dropped from the journal alone.
    assert [s.finished for s in google.sessions.values()] == [True]
    assert any(r.method == "DELETE" for r in google.requests)


def test_refused_credentials_are_said_and_not_retried_as_a_failed_connection(
        google: GcsResumableServer, tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "creds.bin", CHUNK + 1, seed=52)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    account = tmp_path / "account.json"  # a key the token endpoint (the test server) refuses
    account.write_text(json.dumps({
        "type": "service_account", "project_id": "laden-test", "private_key_id": "1",
        "private_key": key, "client_email": "laden@laden-test.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{google.endpoint}/token"}))
    settings = {"source_settings": {"gcs_endpoint_url": google.endpoint,
                                    "gcs_credentials_file": str(account)}}
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"gs://{BUCKET}/creds.bin", **settings))
    assert info.state is State.FAILED
    assert "Google refused the credentials for gs://up/creds.bin" in info.message
    assert not any("connection to GCS" in e.message for e in info.errors)
    assert not [r for r in google.requests if r.path.startswith("/upload/")]
