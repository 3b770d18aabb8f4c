"""Unfinished uploads (S3 on moto): `laden list --unfinished-uploads` shows the multipart
uploads laden began and never finished, `laden remove --unfinished-uploads` aborts them at the
service and forgets them, and one that cannot be aborted is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from laden.core.errors import LadenError
from laden.core.states import State
from laden.engine.uploading.parts import MiB

from .conftest import FAST, laden, manager
from .test_s3_upload import PART, _file, _keys, _options, _unfinished, _wait_for_parts


def _paused_upload(s3_server: Any, s3_bucket: str, tmp_path: Path, name: str,
                   seed: int) -> int:
    path, _ = _file(tmp_path, name, 3 * PART, seed=seed)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"s3://{s3_bucket}/{name}", connections=1,
                                 **_options(s3_server))
        _wait_for_parts(upload_id, m)
        m.pause(upload_id)
        m.wait(upload_id)
    return upload_id


def test_list_shows_only_uploads_begun_and_never_finished(s3_server: Any, s3_bucket: str,
                                                          tmp_path: Path) -> None:
    waiting = _paused_upload(s3_server, s3_bucket, tmp_path, "waiting.bin", seed=80)
    done, _ = _file(tmp_path, "done.bin", 10, seed=81)
    with manager() as m:
        assert m.wait(m.add_upload(str(done), f"s3://{s3_bucket}/done.bin",
                                   **_options(s3_server))).state is State.DONE
        assert [u.id for u in m.unfinished_uploads()] == [waiting]
    listed = laden("list", "--unfinished-uploads")
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.strip().startswith(str(waiting))]
    assert len(rows) == 1 and "paused" in rows[0]
    assert f"waiting.bin -> s3://{s3_bucket}/waiting.bin" in rows[0]
    assert "done.bin" not in listed.stdout
    assert "laden remove --unfinished-uploads" in listed.stdout
    (event,) = [json.loads(line) for line in laden("list", "--unfinished-uploads",
                                                   "--json").stdout.splitlines()]
    assert event["id"] == waiting and event["parts"] >= 1 and event["sent"] >= PART
    assert not any("upload_id" in key for key in event)
    upload_id = _unfinished(s3_server, s3_bucket)[0]["UploadId"]
    assert upload_id not in listed.stdout  # what is shown names no upload


def test_remove_unfinished_uploads_aborts_them_and_forgets_them(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    first = _paused_upload(s3_server, s3_bucket, tmp_path, "one.bin", seed=82)
    second = _paused_upload(s3_server, s3_bucket, tmp_path, "two.bin", seed=83)
    assert len(_unfinished(s3_server, s3_bucket)) == 2
    removed = laden("remove", "--unfinished-uploads")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    for upload_id, name in ((first, "one.bin"), (second, "two.bin")):
        assert (f"[{upload_id}] aborted the unfinished upload of {name} to "
                f"s3://{s3_bucket}/{name} at the service (") in removed.stdout
    assert _unfinished(s3_server, s3_bucket) == [] and _keys(s3_server, s3_bucket) == []
    assert "no unfinished uploads" in laden("list", "--unfinished-uploads").stdout
    assert "no downloads yet" in laden("list").stdout
    assert (tmp_path / "one.bin").exists()
    assert "no unfinished uploads to remove" in laden("remove", "--unfinished-uploads").stdout


def test_an_upload_that_cannot_be_aborted_is_kept(s3_server: Any, s3_bucket: str,
                                                  tmp_path: Path, monkeypatch: Any) -> None:
    upload_id = _paused_upload(s3_server, s3_bucket, tmp_path, "kept.bin", seed=84)
    with manager() as m:
        from laden.sources.s3_upload import S3Uploader

        def refuse(*_: Any) -> None:
            raise LadenError("access denied to s3://b/k")

        monkeypatch.setattr(S3Uploader, "abort", refuse)
        try:
            m.abort_upload(upload_id)
        except LadenError as exc:
            assert "access denied" in str(exc)
        else:
            raise AssertionError("the abort's failure was not raised")
        assert [u.id for u in m.unfinished_uploads()] == [upload_id]
        monkeypatch.undo()
        aborted = m.abort_upload(upload_id)
        assert aborted is not None and aborted.parts >= 1
        assert m.unfinished_uploads() == []
    assert _unfinished(s3_server, s3_bucket) == []


def test_remove_of_one_upload_by_id_with_the_flag(s3_server: Any, s3_bucket: str,
                                                  tmp_path: Path) -> None:
    keep = _paused_upload(s3_server, s3_bucket, tmp_path, "keep.bin", seed=85)
    drop = _paused_upload(s3_server, s3_bucket, tmp_path, "drop.bin", seed=86)
    removed = laden("remove", "--unfinished-uploads", str(drop))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert f"[{drop}] aborted" in removed.stdout and f"[{keep}]" not in removed.stdout
    assert [u["Key"] for u in _unfinished(s3_server, s3_bucket)] == ["keep.bin"]
    done, _ = _file(tmp_path, "done.bin", 10, seed=90)
    with manager() as m:
        finished = m.wait(m.add_upload(str(done), f"s3://{s3_bucket}/done.bin",
                                       **_options(s3_server))).id
    spared = laden("remove", "--unfinished-uploads", str(finished))
    assert f"[{finished}] is not an unfinished upload: left as it is" in spared.stdout
    assert str(finished) in laden("list").stdout
    refused = laden("remove")
    assert refused.returncode == 2 and "laden remove ID... or --unfinished-uploads" \
        in refused.stderr


def test_at_the_service_the_uploads_laden_does_not_know_are_listed(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    mine = _paused_upload(s3_server, s3_bucket, tmp_path, "mine.bin", seed=87)
    client = s3_server.client()
    foreign = client.create_multipart_upload(Bucket=s3_bucket, Key="runs/other.bin")
    client.create_multipart_upload(Bucket=s3_bucket, Key="elsewhere/x.bin")
    listed = laden("list", "--unfinished-uploads", "--at", f"s3://{s3_bucket}/runs/",
                   "--s3-endpoint-url", s3_server.endpoint_url)
    assert listed.returncode == 0, listed.stderr
    assert (f"at the service under s3://{s3_bucket}/runs/: 1 unfinished uploads laden's "
            "journal does not know") in listed.stdout
    assert f"s3://{s3_bucket}/runs/other.bin" in listed.stdout
    assert "elsewhere" not in listed.stdout and foreign["UploadId"] not in listed.stdout
    assert any(line.strip().startswith(str(mine)) for line in listed.stdout.splitlines())
    whole = laden("list", "--unfinished-uploads", "--json", "--at", f"s3://{s3_bucket}",
                  "--s3-endpoint-url", s3_server.endpoint_url)
    events = [json.loads(line) for line in whole.stdout.splitlines()]
    assert sorted(e["url"] for e in events if e["id"] is None) == [
        f"s3://{s3_bucket}/elsewhere/x.bin", f"s3://{s3_bucket}/runs/other.bin"]
    assert [e["id"] for e in events if e["id"] is not None] == [mine]
    wrong = laden("list", "--at", f"s3://{s3_bucket}/")
    assert wrong.returncode == 2 and "--at goes with --unfinished-uploads" in wrong.stderr
    elsewhere = laden("list", "--unfinished-uploads", "--at", "https://example.org/x/")
    assert elsewhere.returncode == 2 and "Traceback" not in elsewhere.stderr


def test_a_paused_upload_is_said_to_resume(s3_server: Any, s3_bucket: str,
                                           tmp_path: Path) -> None:
    from laden.cli.resuming import fresh_start

    path, _ = _file(tmp_path, "paused.bin", 3 * PART, seed=88)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"s3://{s3_bucket}/paused.bin", connections=1,
                                 **_options(s3_server))
        _wait_for_parts(upload_id, m)
        m.pause(upload_id)
        info = m.wait(upload_id)
    assert info.done >= PART and not info.etag and not info.last_modified
    assert fresh_start(info) is None  # S3's parts, not an ETag, are what it resumes from


def test_a_stopped_upload_counts_the_parts_it_left_at_the_service(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    upload_id = _paused_upload(s3_server, s3_bucket, tmp_path, "stopped.bin", seed=89)
    with (tmp_path / "stopped.bin").open("r+b") as handle:
        handle.write(b"changed")
    with manager() as m:
        m.resume(upload_id)
        assert m.wait(upload_id, timeout=60).state is State.FAILED
        (waiting,) = m.unfinished_uploads()
    assert waiting.id == upload_id and waiting.parts >= 1
    assert waiting.sent == waiting.parts * PART


def test_an_upload_laden_was_killed_in_shows_as_interrupted(s3_server: Any, s3_bucket: str,
                                                            tmp_path: Path) -> None:
    import signal

    from .conftest import laden_process
    from .test_s3_upload import _wait_for_journalled_part

    path, _ = _file(tmp_path, "killed.bin", 3 * PART, seed=91)
    process = laden_process("put", "--limit-rate", "8M", "-c", "1", "--s3-endpoint-url",
                            s3_server.endpoint_url, str(path), f"s3://{s3_bucket}/killed.bin")
    try:
        _wait_for_journalled_part()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    listed = laden("list", "--unfinished-uploads")
    (row,) = [line for line in listed.stdout.splitlines() if "killed.bin ->" in line]
    assert row.split()[1] == "interrupted"


def test_the_manager_lists_the_services_unfinished_uploads_laden_did_not_begin(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    """`DownloadManager.unfinished_at`, which `laden list --unfinished-uploads --at` asks (a
    face never reaches past the manager to the sources)."""
    from laden.core.errors import InputError
    from laden.core.options import DownloadOptions

    mine = _paused_upload(s3_server, s3_bucket, tmp_path, "known.bin", seed=88)
    s3_server.client().create_multipart_upload(Bucket=s3_bucket, Key="runs/theirs.bin")
    options = DownloadOptions(source_settings={"s3_endpoint_url": s3_server.endpoint_url})
    with manager() as m:
        assert m.get(mine).state is State.PAUSED
        found = m.unfinished_at(f"s3://{s3_bucket}/", options)
        assert [w.url for w in found] == [f"s3://{s3_bucket}/runs/theirs.bin"]
        with pytest.raises(InputError):
            m.unfinished_at("https://example.org/x/", options)
