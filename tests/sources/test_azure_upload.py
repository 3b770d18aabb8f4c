"""Uploads to Azure Blob (Azurite): one Put Blob and staged blocks, byte-identical with the
file's Content-MD5 kept; folders; conflicts (fail enforced by the service at the commit); resume
through the uncommitted block list after a pause and after kill -9; a changed local file; and
no key or SAS anywhere it could leak.
"""

from __future__ import annotations

import hashlib
import logging
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from laden.core.states import State
from laden.engine.uploading.local import Pin
from laden.engine.uploading.parts import MiB, part_size
from laden.sources.azure_upload import (
    BLOCK_ID_LENGTH,
    MAX_BLOCK,
    MAX_BLOCKS,
    AzureBlobUploader,
    block_name,
)
from servers.fixtures import random_bytes

from .conftest import FAST, journal_records, laden, laden_process, manager

PART = part_size(0, AzureBlobUploader.min_part, MAX_BLOCKS)  # 8 MiB: a test file's blocks


def _blob(server: Any, container: str, name: str) -> Any:
    return server.service_client().get_blob_client(container, name)


def _content(server: Any, container: str, name: str) -> bytes:
    return bytes(_blob(server, container, name).download_blob().readall())


def _content_md5(server: Any, container: str, name: str) -> str | None:
    md5 = _blob(server, container, name).get_blob_properties().content_settings.content_md5
    return bytes(md5).hex() if md5 else None


def _names(server: Any, container: str) -> list[str]:
    client = server.service_client().get_container_client(container)
    return sorted(b.name for b in client.list_blobs())


def _file(folder: Path, name: str, size: int, seed: int) -> tuple[Path, bytes]:
    data = random_bytes(size, seed=seed)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, data


def _secrets(server: Any) -> dict[str, Any]:
    return {"secrets": {"azure_connection_string": server.connection_string}}


def _connection_file(server: Any, folder: Path) -> list[str]:
    path = folder / "azure-connection"
    path.write_text(server.connection_string + "\n")
    return ["--azure-connection-string-file", str(path)]


def _records() -> list[Any]:
    import os

    return journal_records(Path(os.environ["LADEN_STATE_DIR"]))


# -- the blocks ------------------------------------------------------------------------------

def test_a_terabyte_file_stays_under_azures_block_limits() -> None:
    one_tb, one_tib = 10**12, 1 << 40
    for size in (one_tb, one_tib):
        block = part_size(size, AzureBlobUploader.min_part, MAX_BLOCKS)
        assert block % MiB == 0 and block <= MAX_BLOCK
        assert -(-size // block) <= MAX_BLOCKS
    assert part_size(one_tb, 1, MAX_BLOCKS) == 20 * MiB  # 47,684 blocks
    assert part_size(one_tib, 1, MAX_BLOCKS) == 21 * MiB  # 49,933 blocks
    # The largest blob Azure takes (50,000 blocks of 4000 MiB) still fits.
    assert part_size(MAX_BLOCKS * MAX_BLOCK, 1, MAX_BLOCKS) == MAX_BLOCK
    # Small files keep 8 MiB blocks, as azcopy's.
    assert part_size(100 * MiB, 1, MAX_BLOCKS) == 8 * MiB


def test_block_ids_are_the_same_width_and_name_the_files_version() -> None:
    first = AzureBlobUploader.begin_id(Pin(10, 20, 30).tag())
    assert first == AzureBlobUploader.begin_id(Pin(10, 20, 30).tag())  # the same in every run
    assert first != AzureBlobUploader.begin_id(Pin(10, 21, 30).tag())  # another version
    names = {block_name(first, n) for n in (1, 9, 10, 12_345, MAX_BLOCKS)}
    assert len({len(n) for n in names}) == 1 and len(names) == 5
    assert all(len(n) == BLOCK_ID_LENGTH for n in names)  # Azure's limit is 64


def test_another_clients_upload_is_not_stopped_by_blocks_laden_left(
        azurite_server: Any, azure_container: str) -> None:
    """Azure refuses a block whose id has another length than the blob's uncommitted ones: laden's
    ids have the SDK's length, so the SDK's chunked upload_blob goes over a cancelled laden
    upload's blocks."""
    from azure.storage.blob import BlobServiceClient

    blob = _blob(azurite_server, azure_container, "shared.bin")
    blob.stage_block(block_name(AzureBlobUploader.begin_id(Pin(1, 2, 3).tag()), 1), b"left")
    service = BlobServiceClient.from_connection_string(
        azurite_server.connection_string, max_block_size=1 << 20, max_single_put_size=1 << 20)
    data = random_bytes(3 << 20, seed=254)
    service.get_blob_client(azure_container, "shared.bin").upload_blob(data, overwrite=True)
    assert _content(azurite_server, azure_container, "shared.bin") == data


def test_the_service_checks_every_blocks_and_blobs_md5(
        azurite_server: Any, azure_container: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The MD5 laden sends with a Put Blob or a Put Block is the service's to check: with the
    bytes other than the MD5 says, Azurite refuses them, and laden sends them again."""
    from laden.core.errors import Retryable
    from laden.core.options import DownloadOptions
    from laden.sources import azure_upload
    from laden.sources.azure import AzureBlobSource

    uploader = AzureBlobUploader(AzureBlobSource())
    options = DownloadOptions(secrets={"azure_connection_string": azurite_server.connection_string})
    url = f"az://{azure_container}/checked.bin"
    body = bytearray(random_bytes(1 << 20, seed=77))
    md5 = hashlib.md5
    # laden's MD5 of other bytes than it sends: as if the bytes changed on their way.
    monkeypatch.setattr(azure_upload, "hashlib", type("Other", (), {
        "md5": staticmethod(lambda data: md5(bytes(data) + b"x"))}))
    with pytest.raises(Retryable, match="MD5 did not match"):
        uploader.put(url, body, "", options, only_new=False)
    upload_id = uploader.begin(url, options, file_tag="checked")
    with pytest.raises(Retryable, match="MD5 did not match"):
        uploader.send_part(url, upload_id, 1, body, "", options, 0)
    monkeypatch.undo()
    uploader.put(url, body, "", options, only_new=False)
    assert _content(azurite_server, azure_container, "checked.bin") == body
    assert _content_md5(azurite_server, azure_container, "checked.bin") == hashlib.md5(
        body).hexdigest()


# -- uploads ---------------------------------------------------------------------------------

def test_small_file_is_one_put_with_its_content_md5(azurite_server: Any, azure_container: str,
                                                    tmp_path: Path) -> None:
    path, data = _file(tmp_path, "small.bin", 300_000, seed=200)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"az://{azure_container}/a/small.bin",
                                   **_secrets(azurite_server)))
    assert info.state is State.DONE, info.message
    assert _content(azurite_server, azure_container, "a/small.bin") == data
    md5 = hashlib.md5(data).hexdigest()
    assert _content_md5(azurite_server, azure_container, "a/small.bin") == md5
    # Azure keeps the Content-MD5 as given: laden's, not verified by Azure.
    assert [(c.algorithm, c.expected, c.origin, c.verified) for c in info.checksums] == [
        ("md5", md5, "laden", None)]


def test_empty_file_uploads(azurite_server: Any, azure_container: str, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"az://{azure_container}/empty",
                                   **_secrets(azurite_server)))
    assert info.state is State.DONE, info.message
    assert _content(azurite_server, azure_container, "empty") == b""


def test_large_file_is_staged_in_blocks_and_committed_with_its_md5(
        azurite_server: Any, azure_container: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    path, data = _file(tmp_path, "big.bin", 3 * PART + 12_345, seed=201)
    caplog.set_level(logging.INFO, logger="laden.transfer")
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"az://{azure_container}/big.bin", connections=4,
                                   **_secrets(azurite_server)))
        checked = m.verify(info.id)  # the credentials are in memory only
    assert info.state is State.DONE, info.message
    assert _content(azurite_server, azure_container, "big.bin") == data
    assert _content_md5(azurite_server, azure_container, "big.bin") == hashlib.md5(
        data).hexdigest()
    committed, uncommitted = _blob(azurite_server, azure_container, "big.bin").get_block_list()
    prefix = AzureBlobUploader.begin_id(Pin.from_journal(_records()[0].upload["pinned"]).tag())
    assert [b.id for b in committed] == [block_name(prefix, n) for n in (1, 2, 3, 4)]
    assert [b.size for b in committed] == [PART, PART, PART, 12_345]
    assert uncommitted == []
    md5 = hashlib.md5(data).hexdigest()
    # What Azure checked is each block: the committed list is laden's, in order, sized; the
    # Content-MD5 is the one laden gave with the commit (never computed by Azure).
    assert [(c.algorithm, c.expected, c.origin, c.verified) for c in info.checksums] == [
        ("md5", md5, "laden", None)]
    assert (f"the blob holds laden's 4 blocks, {len(data)} bytes, in order (Azure checked each "
            "by its MD5 as it was staged)") in caplog.text
    assert checked.ok, checked.message
    assert "size and the MD5 laden stored with the commit (Azure's Content-MD5) match" \
        in checked.message


def test_a_commit_of_other_blocks_than_laden_sent_fails_the_check(
        azurite_server: Any, azure_container: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check after the commit reads the committed block list: one that is not the parts
    the journal holds (here, its first two blocks swapped: the same size, and the Content-MD5
    laden gives, which Azure stores unchecked) fails the upload."""
    path, _ = _file(tmp_path, "swapped.bin", 2 * PART + 10, seed=205)
    commit = AzureBlobUploader.complete

    def swaps_two(self: Any, url: str, upload_id: str, parts: list[Any],
                  *args: Any, **kwargs: Any) -> None:
        first, second, *rest = sorted(parts, key=lambda p: p.number)
        swapped = [replace(first, etag=second.etag), replace(second, etag=first.etag), *rest]
        commit(self, url, upload_id, swapped, *args, **kwargs)

    monkeypatch.setattr(AzureBlobUploader, "complete", swaps_two)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"az://{azure_container}/swapped.bin",
                                   **_secrets(azurite_server)))
    assert info.state is State.FAILED
    assert ("block list checksum mismatch (the blob after the commit): expected laden's blocks "
            "1 to 3 in order, got blocks 2, 1, 3") in info.message, info.message


def test_folder_with_a_glob_keeps_its_layout(azurite_server: Any, azure_container: str,
                                             tmp_path: Path) -> None:
    folder = tmp_path / "data"
    wanted = {"a.csv": 10, "sub/b.csv": 20, "sub/deeper/c.csv": PART + 5}
    for number, (name, size) in enumerate({**wanted, "skip.txt": 5, "sub/x.json": 7}.items()):
        _file(folder, name, size, seed=210 + number)
    result = laden("put", *_connection_file(azurite_server, tmp_path), "--glob", "**/*.csv",
                   str(folder), f"az://{azure_container}/pre")
    assert result.returncode == 0, result.stderr
    assert _names(azurite_server, azure_container) == sorted(f"pre/{name}" for name in wanted)
    for name in wanted:
        data = (folder / name).read_bytes()
        assert _content(azurite_server, azure_container, f"pre/{name}") == data
        assert _content_md5(azurite_server, azure_container, f"pre/{name}") == hashlib.md5(
            data).hexdigest()


# -- conflicts -------------------------------------------------------------------------------

def test_conflict_skip_keeps_a_blob_with_the_same_size_and_md5(
        azurite_server: Any, azure_container: str, tmp_path: Path) -> None:
    path, data = _file(tmp_path, "same.bin", 5000, seed=220)
    azurite_server.upload(azure_container, "same.bin", data)  # Content-MD5 set by Put Blob
    other, _ = _file(tmp_path, "other.bin", 5000, seed=221)
    azurite_server.upload(azure_container, "other.bin", data)
    with manager() as m:
        same = m.wait(m.add_upload(str(path), f"az://{azure_container}/same.bin",
                                   conflict="skip", **_secrets(azurite_server)))
        changed = m.wait(m.add_upload(str(other), f"az://{azure_container}/other.bin",
                                      conflict="skip", **_secrets(azurite_server)))
    assert same.state is State.DONE and same.skipped, same.message
    assert "size and MD5 already" in same.message
    assert changed.state is State.DONE and not changed.skipped, changed.message
    assert _content(azurite_server, azure_container, "other.bin") == other.read_bytes()


@pytest.mark.parametrize("size", [1000, PART + 1], ids=["put", "blocks"])
def test_conflict_fail_is_enforced_by_the_service(azurite_server: Any, azure_container: str,
                                                  tmp_path: Path, size: int) -> None:
    path, _ = _file(tmp_path, "f.bin", size, seed=222)
    azurite_server.upload(azure_container, "taken", b"theirs")
    result = laden("put", "--conflict", "fail", *_connection_file(azurite_server, tmp_path),
                   str(path), f"az://{azure_container}/taken")
    assert result.returncode == 1
    assert "exists already, and the conflict policy is fail" in result.stderr
    assert "Traceback" not in result.stderr
    assert _content(azurite_server, azure_container, "taken") == b"theirs"


def test_conflict_fail_loses_a_race_at_the_commit(azurite_server: Any, azure_container: str,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is free when the upload starts and taken just before the commit: the service
    refuses the commit (If-None-Match: *), not a check laden made earlier."""
    original = AzureBlobUploader.complete

    def complete(self: Any, url: str, *args: Any, **kwargs: Any) -> None:
        azurite_server.upload(azure_container, "raced", b"first")
        original(self, url, *args, **kwargs)

    monkeypatch.setattr(AzureBlobUploader, "complete", complete)
    path, _ = _file(tmp_path, "f.bin", 2 * PART, seed=223)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"az://{azure_container}/raced", conflict="fail",
                                   **_secrets(azurite_server)))
    assert info.state is State.FAILED
    assert "exists already" in info.message
    assert _content(azurite_server, azure_container, "raced") == b"first"


def test_a_commit_whose_answer_was_lost_is_found_done(
        azurite_server: Any, azure_container: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Put Block List took effect and the connection failed before its answer (the trust
    suite cuts it at a relay): laden looks, finds the file's MD5 on the blob and is done,
    without a failure and without staging a block again."""
    from laden.core.errors import Retryable

    original = AzureBlobUploader.complete

    def complete(self: Any, url: str, *args: Any, **kwargs: Any) -> None:
        original(self, url, *args, **kwargs)
        raise Retryable(f"connection to Azure failed for {url}: the answer was lost")

    monkeypatch.setattr(AzureBlobUploader, "complete", complete)
    sent = _Sent(monkeypatch)
    path, data = _file(tmp_path, "answer.bin", 2 * PART + 5, seed=225)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"az://{azure_container}/answer.bin",
                                   **_secrets(azurite_server)), timeout=60)
    assert info.state is State.DONE, info.message
    assert not info.errors, info.errors
    assert sorted(sent.numbers) == [1, 2, 3]
    assert _content(azurite_server, azure_container, "answer.bin") == data


def test_conflict_overwrite_replaces(azurite_server: Any, azure_container: str,
                                     tmp_path: Path) -> None:
    path, data = _file(tmp_path, "f.bin", PART + 1000, seed=224)
    azurite_server.upload(azure_container, "taken", b"theirs")
    result = laden("put", "-q", *_connection_file(azurite_server, tmp_path), str(path),
                   f"az://{azure_container}/taken")
    assert result.returncode == 0, result.stderr
    assert _content(azurite_server, azure_container, "taken") == data


# -- resume and faults -----------------------------------------------------------------------

class _Sent:
    """The blocks staged during a test: their numbers, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.numbers: list[int] = []
        original = AzureBlobUploader.send_part

        def send_part(uploader: Any, url: str, upload_id: str, number: int,
                      *args: Any) -> str:
            tag = original(uploader, url, upload_id, number, *args)
            self.numbers.append(number)
            return tag

        monkeypatch.setattr(AzureBlobUploader, "send_part", send_part)


def _wait_for_parts(upload_id: int, m: Any, parts: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = m.get(upload_id)
        if sum(end - start for start, end in info.done_ranges) >= parts * PART:
            return
        assert not info.state.is_finished, info.message
        time.sleep(0.02)
    raise AssertionError("no block was acknowledged in time")


def test_a_paused_upload_resumes_with_the_blocks_azure_holds(
        azurite_server: Any, azure_container: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _Sent(monkeypatch)
    path, data = _file(tmp_path, "paused.bin", 5 * PART + 77, seed=230)  # six blocks
    url = f"az://{azure_container}/paused.bin"
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), url, connections=1, **_secrets(azurite_server))
        _wait_for_parts(upload_id, m, parts=2)
        m.pause(upload_id)
        m.wait(upload_id)
    before = list(sent.numbers)
    held = _blob(azurite_server, azure_container, "paused.bin").get_block_list("uncommitted")[1]
    assert len(held) >= len(before) >= 2  # staged, not committed: no blob to read yet
    assert _names(azurite_server, azure_container) == []
    with manager() as m:  # a new session: the journal and the uncommitted block list
        # The same upload again continues it, with the credentials the journal never kept.
        assert m.add_upload(str(path), url, **_secrets(azurite_server)) == upload_id
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    again = sent.numbers[len(before):]
    assert sorted(set(before) | set(again)) == [1, 2, 3, 4, 5, 6]
    assert not set(before) & set(again), "a block Azure held was staged again"
    assert _content(azurite_server, azure_container, "paused.bin") == data
    assert _content_md5(azurite_server, azure_container, "paused.bin") == hashlib.md5(
        data).hexdigest()


@pytest.mark.parametrize("how", ["committed", "deleted"])
def test_a_block_azure_lost_is_staged_again(azurite_server: Any, azure_container: str,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            how: str) -> None:
    """Uncommitted blocks go when someone else commits the blob, or after a week (then there
    may be no blob at all): the resume asks Azure which it still has, and stages the others
    again."""
    sent = _Sent(monkeypatch)
    path, data = _file(tmp_path, "lost.bin", 3 * PART, seed=231)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"az://{azure_container}/lost.bin", connections=1,
                                 **_secrets(azurite_server))
        _wait_for_parts(upload_id, m)
        m.pause(upload_id)
        m.wait(upload_id)
    # Another writer commits its own (empty) block list, which drops every uncommitted block.
    # (Azure drops them at a Put Blob too; Azurite keeps them then.)
    _blob(azurite_server, azure_container, "lost.bin").commit_block_list([])
    if how == "deleted":
        _blob(azurite_server, azure_container, "lost.bin").delete_blob()
    first = len(sent.numbers)
    with manager() as m:
        m.add_upload(str(path), f"az://{azure_container}/lost.bin", **_secrets(azurite_server))
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    assert sorted(sent.numbers[first:]) == [1, 2, 3]
    assert _content(azurite_server, azure_container, "lost.bin") == data
    # Said, and kept with the upload (the app's detail screen, the log): why it started again.
    said = [e.message for e in info.errors]
    assert any("the service no longer holds the" in m and "lost.bin" in m
               and "starting again from the first byte" in m for m in said), said


def test_local_file_changed_mid_upload_commits_nothing(azurite_server: Any,
                                                       azure_container: str,
                                                       tmp_path: Path) -> None:
    path, data = _file(tmp_path, "moving.bin", 4 * PART, seed=232)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"az://{azure_container}/moving.bin",
                                 connections=1, **_secrets(azurite_server))
        _wait_for_parts(upload_id, m)
        with path.open("r+b") as handle:  # an edit in place: same size, another version
            handle.seek(len(data) - 1)
            handle.write(b"\0")
        info = m.wait(upload_id, timeout=60)
        assert info.state is State.FAILED
        assert "changed during the upload; nothing was committed" in info.message
        assert _names(azurite_server, azure_container) == []
        m.resume(upload_id)  # stops again: the file is still not the one pinned
        info = m.wait(upload_id, timeout=60)
        assert info.state is State.FAILED
        assert "--on-change restart" in info.message
        m.set_limit_rate(None)  # added again with restart: from the first byte of it now
        assert m.add_upload(str(path), f"az://{azure_container}/moving.bin",
                            on_change="restart", **_secrets(azurite_server)) == upload_id
        info = m.wait(upload_id, timeout=60)
    assert info.state is State.DONE, info.message
    now = path.read_bytes()
    assert _content(azurite_server, azure_container, "moving.bin") == now
    assert _content_md5(azurite_server, azure_container, "moving.bin") == hashlib.md5(
        now).hexdigest()


def _wait_for_journalled_part(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((r.upload or {}).get("parts") for r in _records()):
            return
        time.sleep(0.02)
    raise AssertionError("no block was journalled in time")


def test_kill_9_mid_upload_then_the_same_command_again(azurite_server: Any,
                                                      azure_container: str, tmp_path: Path,
                                                      laden_dirs: dict[str, Path]) -> None:
    """Killed three times at random moments while blocks are in flight: no blob appears, every
    block the journal holds is in Azure's uncommitted list with its size, at most the blocks in
    flight are staged but not journalled, and the rerun stages only the blocks the journal
    lacks; the blob comes out byte-identical, with the file's Content-MD5."""
    path, data = _file(tmp_path, "crash.bin", 9 * PART + 4321, seed=233)  # ten blocks
    common = ["put", "-q", "-c", "2", *_connection_file(azurite_server, tmp_path), str(path),
              f"az://{azure_container}/crash/up.bin"]
    rng = random.Random(233)
    blob = _blob(azurite_server, azure_container, "crash/up.bin")
    journalled: dict[str, Any] = {}
    for kill in range(3):
        # Two blocks at once at 4 MB/s each: a block is acknowledged every second or so.
        process = laden_process(*common, "--limit-rate", "8M")
        try:
            if kill == 0:
                _wait_for_journalled_part()
            time.sleep(rng.uniform(0.3, 2.0))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        assert _names(azurite_server, azure_container) == [], "a blob before the commit"
        [record] = _records()
        journalled = record.upload["parts"]
        try:
            held = {f"{b.id}:{b.size}" for b in blob.get_block_list("uncommitted")[1]}
        except Exception:  # noqa: BLE001 - no block staged yet: no blob at all
            held = set()
        kept = {tag for tag, _crc in journalled.values()}
        assert kept <= held, f"kill {kill}: blocks journalled that Azure does not hold"
        assert len(held - kept) <= 2, f"kill {kill}: more than the blocks in flight unjournalled"
    log = laden_dirs["logs"] / "laden.log"
    before = log.read_text().count("PutBlock ") if log.exists() else 0
    done = subprocess.run([sys.executable, "-m", "laden", "--log-level", "debug", *common],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sent = log.read_text().count("PutBlock ") - before
    assert sent == 10 - len(journalled), f"staged {sent}, the journal held {len(journalled)}"
    assert _content(azurite_server, azure_container, "crash/up.bin") == data
    assert _content_md5(azurite_server, azure_container, "crash/up.bin") == hashlib.md5(
        data).hexdigest()


# -- secrets ---------------------------------------------------------------------------------

def _write_sas(server: Any, container: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        account_name=server.account_name, container_name=container,
        account_key=server.account_key,
        permission=ContainerSasPermissions(read=True, write=True, create=True, add=True),
        start=datetime.now(UTC) - timedelta(minutes=5),
        expiry=datetime.now(UTC) + timedelta(hours=1))


@pytest.mark.parametrize("credential", ["account_key", "sas_token"])
def test_no_key_or_sas_reaches_output_log_or_journal(azurite_server: Any, azure_container: str,
                                                     tmp_path: Path,
                                                     laden_dirs: dict[str, Path],
                                                     credential: str) -> None:
    if credential == "account_key":
        secret = azurite_server.account_key
        shown = [secret, secret[:20]]
    else:
        secret = _write_sas(azurite_server, azure_container)
        signature = next(p for p in secret.split("&") if p.startswith("sig="))
        shown = [secret, signature, signature.split("=", 1)[1][:20]]
    secret_file = tmp_path / credential
    secret_file.write_text(secret + "\n")
    path, data = _file(tmp_path, "s.bin", PART + 10, seed=240)
    result = laden("--log-level", "debug", "put", "--json", "--azure-account-url",
                   azurite_server.account_url, f"--azure-{credential.replace('_', '-')}-file",
                   str(secret_file), str(path), f"az://{azure_container}/s.bin")
    assert result.returncode == 0, result.stderr
    assert _content(azurite_server, azure_container, "s.bin") == data
    listed = laden("list", "--json").stdout + laden("list").stdout
    seen = [result.stdout, result.stderr, listed]
    seen += [p.read_text(errors="replace") for p in laden_dirs["logs"].rglob("*") if p.is_file()]
    seen += [p.read_bytes().decode("latin-1") for p in laden_dirs["state"].rglob("*")
             if p.is_file()]
    assert "PutBlock" in "".join(seen)  # the log was written, at debug
    for text in seen:
        for part in shown:
            assert part not in text


def test_azure_blob_https_addresses_go_to_the_uploader(tmp_path: Path) -> None:
    from laden.engine.uploading.adding import targets
    from laden.sources.registry import SourceRegistry

    folder = tmp_path / "run"
    _file(folder, "a b.bin", 1, seed=250)
    _file(folder, "sub/c.bin", 1, seed=251)
    base = "https://acct.blob.core.windows.net/box/pre/"
    found = [url for _path, url in targets([str(folder)], base)]
    assert found == [base + "a%20b.bin", base + "sub/c.bin"]
    registry = SourceRegistry()
    try:
        assert isinstance(registry.uploader_for(found[0]), AzureBlobUploader)
    finally:
        registry.close()


def test_a_sas_in_an_upload_address_is_refused_without_showing_it(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "f.bin", 10, seed=252)
    result = laden("put", str(path), "https://acct.blob.core.windows.net/box/f.bin?sv=2024&"
                   "sig=SECRETSIGNATURE")
    assert result.returncode != 0
    assert "an upload address takes no query" in result.stderr
    assert "SECRETSIGNATURE" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_cancel_commits_nothing_and_leaves_the_staged_blocks_to_azure(
        azurite_server: Any, azure_container: str, tmp_path: Path) -> None:
    """Azure has no call that drops uncommitted blocks: cancelling commits nothing (no blob
    appears), and the blocks stay until Azure deletes them (a week) or the blob's next commit."""
    path, _ = _file(tmp_path, "gone.bin", 3 * PART, seed=253)
    with manager(FAST.replace(limit_rate=8 * MiB)) as m:
        upload_id = m.add_upload(str(path), f"az://{azure_container}/gone.bin", connections=1,
                                 **_secrets(azurite_server))
        _wait_for_parts(upload_id, m)
        m.cancel(upload_id)
        info = m.wait(upload_id)
    assert info.state is State.CANCELLED
    assert _names(azurite_server, azure_container) == []
    held = _blob(azurite_server, azure_container, "gone.bin").get_block_list("uncommitted")[1]
    assert held and all(b.id.startswith("laden-") for b in held)
    assert path.exists()


def test_a_file_changed_after_a_commit_laden_saw_no_answer_to_is_done(
        azurite_server: Any, azure_container: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks are committed, laden stops before it hears so, and the file changes: the
    blob's committed block list is the journalled one, so the upload is done, and the changed
    file is not read."""
    from laden.core.errors import DiskError

    path, data = _file(tmp_path, "sent.bin", 2 * PART + 3, seed=206)
    commit = AzureBlobUploader.complete

    def then_stops(self: Any, *args: Any, **kwargs: Any) -> None:
        commit(self, *args, **kwargs)
        raise DiskError("stopped right after the commit")

    with manager() as m:
        with monkeypatch.context() as patched:
            patched.setattr(AzureBlobUploader, "complete", then_stops)
            info = m.wait(m.add_upload(str(path), f"az://{azure_container}/sent.bin",
                                       **_secrets(azurite_server)))
        assert info.state is State.PAUSED, info.message
        time.sleep(0.01)
        path.write_bytes(b"another version")
        m.resume(info.id)
        done = m.wait(info.id)
    assert done.state is State.DONE, done.message
    assert done.message == ("it was committed before laden stopped; the local file changed "
                            "since")
    assert _content(azurite_server, azure_container, "sent.bin") == data
