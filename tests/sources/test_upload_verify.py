"""`laden verify` of finished uploads (S3 on moto): the local file read again and compared with
the object at the service, by size and CRC32C; a mismatch or a missing object exits 1 and fails
the upload, a check that cannot be made leaves it as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from laden.core.states import State

from .conftest import laden, manager
from .test_s3_upload import PART, _file, _options


def _uploaded(s3_server: Any, s3_bucket: str, tmp_path: Path, name: str, size: int,
              seed: int) -> tuple[int, Path, bytes]:
    path, data = _file(tmp_path, name, size, seed=seed)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/{name}",
                                   **_options(s3_server)))
    assert info.state is State.DONE, info.message
    return info.id, path, data


def _state(upload_id: int) -> State:
    with manager() as m:
        return m.get(upload_id).state


def test_verify_compares_size_and_crc32c_with_the_object(s3_server: Any, s3_bucket: str,
                                                         tmp_path: Path) -> None:
    small, _, _ = _uploaded(s3_server, s3_bucket, tmp_path, "small.bin", 1000, seed=70)
    large, _, _ = _uploaded(s3_server, s3_bucket, tmp_path, "large.bin", 2 * PART + 5, seed=71)
    result = laden("verify", str(small), str(large))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"[{small}] ok: ")
    assert (f"compared with s3://{s3_bucket}/small.bin at the service: size and CRC32C match "
            "(1000 bytes, CRC32C ") in lines[0]
    assert f"[{large}] ok: " in lines[1] and f"{2 * PART + 5} bytes" in lines[1]
    assert _state(small) is State.DONE


def test_a_changed_object_fails_and_a_resume_sends_it_again(s3_server: Any, s3_bucket: str,
                                                            tmp_path: Path) -> None:
    upload_id, path, data = _uploaded(s3_server, s3_bucket, tmp_path, "f.bin", 5000, seed=72)
    other, _ = _file(tmp_path / "elsewhere", "f.bin", 5000, seed=77)
    with manager() as m:  # another version replaces it, with its own CRC32C
        assert m.wait(m.add_upload(str(other), f"s3://{s3_bucket}/f.bin",
                                   **_options(s3_server))).state is State.DONE
    result = laden("verify", str(upload_id))
    assert result.returncode == 1
    assert f"[{upload_id}] FAILED: " in result.stdout
    assert f"s3://{s3_bucket}/f.bin at the service has CRC32C " in result.stdout
    assert "(both 5000 bytes)" in result.stdout
    assert _state(upload_id) is State.FAILED
    resumed = laden("resume", str(upload_id))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert s3_server.client().get_object(Bucket=s3_bucket, Key="f.bin")["Body"].read() == data
    assert laden("verify", str(upload_id)).returncode == 0


def test_a_missing_object_and_another_size_fail(s3_server: Any, s3_bucket: str,
                                                tmp_path: Path) -> None:
    gone, _, _ = _uploaded(s3_server, s3_bucket, tmp_path, "gone.bin", 100, seed=73)
    short, _, _ = _uploaded(s3_server, s3_bucket, tmp_path, "short.bin", 100, seed=74)
    client = s3_server.client()
    client.delete_object(Bucket=s3_bucket, Key="gone.bin")
    client.put_object(Bucket=s3_bucket, Key="short.bin", Body=b"y" * 10)
    result = laden("verify", "--all")
    assert result.returncode == 1
    assert f"s3://{s3_bucket}/gone.bin is not at the service (the local file: 100 bytes" \
        in result.stdout
    assert f"s3://{s3_bucket}/short.bin has 10 bytes at the service, the local file 100" \
        in result.stdout


def test_without_a_crc32c_at_the_service_only_the_size_is_compared_and_said(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    upload_id, _, data = _uploaded(s3_server, s3_bucket, tmp_path, "plain.bin", 300, seed=75)
    s3_server.client().put_object(Bucket=s3_bucket, Key="plain.bin", Body=data)  # no checksum
    result = laden("verify", str(upload_id))
    assert result.returncode == 0, result.stdout
    assert "the service keeps no checksum of it, so only the size was compared" in result.stdout


def test_a_check_that_cannot_be_made_leaves_the_upload_done(s3_server: Any, s3_bucket: str,
                                                            tmp_path: Path) -> None:
    upload_id, path, _ = _uploaded(s3_server, s3_bucket, tmp_path, "local.bin", 100, seed=76)
    path.unlink()
    result = laden("verify", str(upload_id))
    assert result.returncode == 1
    assert "the local file is gone" in result.stdout
    assert _state(upload_id) is State.DONE
    refused = laden("verify", "--checksum", "sha256:" + "0" * 64, str(upload_id))
    assert refused.returncode == 2 and "applies to downloads" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_failed_upload_never_committed_is_only_reported_on(s3_server: Any, s3_bucket: str,
                                                             tmp_path: Path) -> None:
    """An older object of the same size, without a checksum: its size alone matches, and the
    upload, which never committed, stays failed (it is not done, and `--unfinished-uploads`
    still sees what it left)."""
    path, _ = _file(tmp_path, "taken.bin", 400, seed=78)
    s3_server.client().put_object(Bucket=s3_bucket, Key="taken.bin", Body=b"o" * 400)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"s3://{s3_bucket}/taken.bin", conflict="fail",
                                   **_options(s3_server)))
    assert info.state is State.FAILED, info.message
    result = laden("verify", str(info.id))
    assert "only the size was compared" in result.stdout, result.stdout
    assert "the upload stays failed (it was never committed)" in result.stdout
    assert _state(info.id) is State.FAILED


def test_a_committed_upload_that_failed_verify_is_done_again_when_its_checksum_matches(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    upload_id, _, data = _uploaded(s3_server, s3_bucket, tmp_path, "back.bin", 600, seed=79)
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="back.bin", Body=b"x" * 10)
    assert laden("verify", str(upload_id)).returncode == 1
    assert _state(upload_id) is State.FAILED
    client.put_object(Bucket=s3_bucket, Key="back.bin", Body=data)  # the size alone: no change
    shown = laden("verify", str(upload_id)).stdout
    assert "the upload stays failed (only its size was compared)" in shown
    assert _state(upload_id) is State.FAILED
    copy = tmp_path / "elsewhere" / "back.bin"  # the same bytes, sent with their CRC32C
    copy.parent.mkdir()
    copy.write_bytes(data)
    with manager() as m:
        assert m.wait(m.add_upload(str(copy), f"s3://{s3_bucket}/back.bin",
                                   **_options(s3_server))).state is State.DONE
    assert laden("verify", str(upload_id)).returncode == 0
    assert _state(upload_id) is State.DONE
