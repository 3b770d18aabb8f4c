"""An upload whose local file changes before the commit (S3 on moto): by default it stops,
commits nothing and says how to go on; with on_change restart it starts again from the first
byte and says why; the policy is kept across sessions, by the API, `laden put` and manifests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from laden.core.errors import InputError
from laden.core.states import State
from laden.engine.uploading.parts import MiB

from .conftest import FAST, laden, manager
from .test_s3_upload import PART, _file, _keys, _object, _options, _unfinished, _wait_for_parts


def _edit_in_place(path: Path) -> None:
    """Another version of the file: same size, another byte, a later modification time."""
    with path.open("r+b") as handle:
        handle.seek(0)
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))


def test_a_change_mid_upload_restarts_it_when_asked(s3_server: Any, s3_bucket: str,
                                                    tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "growing.bin", 4 * PART, seed=60)
    url = f"s3://{s3_bucket}/growing.bin"
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), url, connections=1, on_change="restart",
                                 **_options(s3_server))
        _wait_for_parts(upload_id, m)
        _edit_in_place(path)
        m.set_limit_rate(None)
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "growing.bin") == path.read_bytes()
    said = [e.message for e in info.errors]
    assert any("changed during the upload" in e and "starting again from the first byte" in e
               for e in said), said
    assert _unfinished(s3_server, s3_bucket) == []


def test_a_change_between_sessions_stops_and_keeps_what_was_sent(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "later.bin", 3 * PART, seed=61)
    url = f"s3://{s3_bucket}/later.bin"
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), url, connections=1, **_options(s3_server))
        _wait_for_parts(upload_id, m)
        m.pause(upload_id)
        m.wait(upload_id)
    _edit_in_place(path)
    with manager() as m:
        m.resume(upload_id)
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.FAILED
    assert info.message.startswith(f"{path} changed since the upload began; nothing was "
                                   "committed")
    assert _keys(s3_server, s3_bucket) == []
    # Its parts wait at the service for the user's choice (restart, or remove).
    assert len(_unfinished(s3_server, s3_bucket)) == 1


def test_the_restart_policy_is_kept_across_sessions(s3_server: Any, s3_bucket: str,
                                                    tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "kept.bin", 3 * PART, seed=62)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"s3://{s3_bucket}/kept.bin", connections=1,
                                 on_change="restart", **_options(s3_server))
        _wait_for_parts(upload_id, m)
        m.pause(upload_id)
        m.wait(upload_id)
    _edit_in_place(path)
    with manager() as m:
        m.resume(upload_id)
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    assert _object(s3_server, s3_bucket, "kept.bin") == path.read_bytes()
    assert any("changed since the upload began; starting again from the first byte"
               in e.message for e in info.errors)
    assert _unfinished(s3_server, s3_bucket) == []


def test_an_unknown_policy_is_refused_before_anything_is_queued(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "f.bin", 10, seed=63)
    with manager() as m, pytest.raises(InputError, match="on_change policy is one of stop, "
                                                         "restart, not 'again'"):
        m.add_upload(str(path), "s3://bucket/f.bin", on_change="again")
        assert m.list() == []


def test_laden_put_on_change_restart(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "cli.bin", 3 * PART, seed=64)
    url = f"s3://{s3_bucket}/cli.bin"
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), url, connections=1, **_options(s3_server))
        _wait_for_parts(upload_id, m)
        m.pause(upload_id)
        m.wait(upload_id)
    time.sleep(0.01)
    _edit_in_place(path)
    stopped = laden("resume", str(upload_id))
    assert stopped.returncode == 1
    assert "nothing was committed" in stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stderr
    again = laden("put", "--on-change", "restart", "--s3-endpoint-url", s3_server.endpoint_url,
                  str(path), url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _object(s3_server, s3_bucket, "cli.bin") == path.read_bytes()
    assert _unfinished(s3_server, s3_bucket) == []
    refused = laden("put", "--on-change", "maybe", str(path), url)
    assert refused.returncode == 2 and "invalid choice: 'maybe'" in refused.stderr


def test_the_journal_keeps_an_uploads_policies() -> None:
    from laden.store.records import Record

    upload = {"pinned": {"size": 1, "mtime_ns": 2, "inode": 3}, "part_size": 5,
              "upload_id": "u", "parts": {}, "conflict": "fail", "on_change": "restart",
              "committing": True, "checksum": "AAAAAA=="}
    record = Record(url="s3://b/k", source="s3", dest_dir="/tmp", state="paused",
                    direction="upload", upload=upload)
    assert Record.from_row(1, record.to_json(), "[]").upload == upload


def test_a_file_that_keeps_changing_is_given_up_on_and_nothing_committed(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    import threading

    path, _ = _file(tmp_path, "busy.bin", 3 * PART, seed=65)
    stop = threading.Event()

    def keep_writing() -> None:  # a checkpoint still being written
        while not stop.wait(0.15):
            _edit_in_place(path)

    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"s3://{s3_bucket}/busy.bin", connections=1,
                                 on_change="restart", **_options(s3_server))
        writer = threading.Thread(target=keep_writing, daemon=True)
        writer.start()
        try:
            info = m.wait(upload_id, timeout=120)
        finally:
            stop.set()
            writer.join()
    assert info.state is State.FAILED
    assert "changed during the upload" in info.message and "giving up" in info.message
    assert _keys(s3_server, s3_bucket) == []


def test_a_file_changed_after_a_commit_laden_saw_no_answer_to_is_done(
        s3_server: Any, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit is made, laden stops before it hears so (the journal says committing), and
    the file changes before the next run: the object is looked for by the journalled size and
    CRC32C, without reading the changed file, and the upload is done (not "nothing was
    committed")."""
    from laden.core.errors import DiskError
    from laden.sources.s3_upload import S3Uploader

    path, data = _file(tmp_path, "sent.bin", 2 * PART + 7, seed=66)
    commit = S3Uploader.complete

    def then_stops(self: Any, *args: Any, **kwargs: Any) -> None:
        commit(self, *args, **kwargs)
        raise DiskError("stopped right after the commit")

    with monkeypatch.context() as patched:
        patched.setattr(S3Uploader, "complete", then_stops)
        with manager() as m:
            info = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/sent.bin",
                                       **_options(s3_server)))
    assert info.state is State.PAUSED, info.message
    time.sleep(0.01)
    _edit_in_place(path)
    with manager() as m:
        m.resume(info.id)
        done = m.wait(info.id)
    assert done.state is State.DONE, done.message
    assert done.message == ("it was committed before laden stopped; the local file changed "
                            "since")
    assert _object(s3_server, s3_bucket, "sent.bin") == data


def test_the_policy_words_are_the_same_in_every_face_and_the_engine(tmp_path: Path) -> None:
    """One definition (`core.upload_policies`): `laden put`'s choices, a manifest's and the
    engine's refusal all name the same words."""
    from laden.cli.parser import build
    from laden.core.upload_policies import CONFLICTS, ON_CHANGE

    parser = build()
    put = next(a for a in parser._subparsers._group_actions[0].choices["put"]._actions
               if a.dest == "upload_conflict")
    change = next(a for a in parser._subparsers._group_actions[0].choices["put"]._actions
                  if a.dest == "on_change")
    assert tuple(put.choices) == CONFLICTS and put.default == CONFLICTS[0]
    assert tuple(change.choices) == ON_CHANGE and change.default == ON_CHANGE[0]
    path, _ = _file(tmp_path, "p.bin", 10, seed=67)
    with manager() as m:
        with pytest.raises(InputError, match="one of overwrite, skip, fail, not 'maybe'"):
            m.add_upload(str(path), "s3://b/p.bin", conflict="maybe")
        with pytest.raises(InputError, match="one of stop, restart, not 'maybe'"):
            m.add_upload(str(path), "s3://b/p.bin", on_change="maybe")
        # The engine names an option by its settings key, never a command line flag.
        with pytest.raises(InputError) as refused:
            m.add_upload(str(path), "https://acct.blob.core.windows.net/box/p.bin?sv=1&sig=x")
    assert "azure_sas_token_file option" in str(refused.value)
    assert "--" not in str(refused.value)
