"""`laden run --shards N`: one manifest split across pods of an Indexed Job, run here as real
`laden run` processes side by side, each with its own state folder, against the emulators.

Server-side counts: the HTTP server logs every request; moto and fake-gcs-server are reached
through a counting proxy (counting_proxy.py), which also shuffles their listings.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from laden.cli import main
from laden.core.errors import PERMANENT_EXIT, Permanent, exit_code_of
from laden.manifest.shards import chosen, shard_of, target_key
from servers.fixtures import wait_for

from .conftest import secret, write_manifest
from .counting_proxy import CountingProxy

SHARDS = 4
S3_OBJECTS, GCS_OBJECTS, HTTP_OBJECTS = 130, 110, 80


@pytest.fixture
def proxies(s3_server: Any, gcs_server: Any) -> Iterator[dict[str, CountingProxy]]:
    found = {"s3": CountingProxy(s3_server.endpoint_url), "gcs": CountingProxy(gcs_server.endpoint)}
    yield found
    for proxy in found.values():
        proxy.close()


@pytest.fixture
def job(s3_server: Any, s3_bucket: str, gcs_server: Any, gcs_bucket: str, http_server: Any,
        proxies: dict[str, CountingProxy], secrets_dir: Path, tmp_path: Path,
        laden_dirs: dict[str, Path]) -> dict[str, Any]:
    """320 objects of a few bytes: an S3 folder, a GCS folder and 80 HTTP files; `expected`
    maps each path under the root to its bytes, `fetch_key` to its key in the servers' counts."""
    expected: dict[str, bytes] = {}
    fetch_key: dict[str, str] = {}
    s3 = s3_server.client()  # one client: a new one for each object takes 0.1 s
    for n in range(S3_OBJECTS):
        data = f"s3 object {n}\n".encode() * (1 + n % 3)
        s3.put_object(Bucket=s3_bucket, Key=f"data/part-{n:04d}.bin", Body=data)
        expected[f"s3/part-{n:04d}.bin"] = data
        fetch_key[f"s3/part-{n:04d}.bin"] = f"{s3_bucket}/data/part-{n:04d}.bin"
    for n in range(GCS_OBJECTS):
        data = f"gcs object {n}\n".encode() * (1 + n % 2)
        folder = "sub/" if n % 5 == 0 else ""
        _upload_gcs(gcs_server.endpoint, gcs_bucket, f"set/{folder}obj-{n:04d}", data)
        expected[f"gcs/{folder}obj-{n:04d}"] = data
        fetch_key[f"gcs/{folder}obj-{n:04d}"] = f"{gcs_bucket}/set/{folder}obj-{n:04d}"
    items: list[dict[str, Any]] = [
        {"type": "s3", "name": "s3 folder", "endpoint_url": proxies["s3"].endpoint,
         "access_key_id_file": secret(secrets_dir, "s3-key-id", s3_server.access_key),
         "secret_key_file": secret(secrets_dir, "s3-secret", s3_server.secret_key),
         "buckets": [{"name": s3_bucket, "items": [{"folder": "data", "target_path": "s3"}]}]},
        {"type": "gcs", "name": "gcs folder", "endpoint_url": proxies["gcs"].endpoint,
         "project": "test",
         "buckets": [{"name": gcs_bucket, "items": [{"folder": "set", "target_path": "gcs"}]}]},
    ]
    for n in range(HTTP_OBJECTS):
        data = f"http file {n}\n".encode()
        url = http_server.add_file(f"/files/f-{n:03d}.txt", data)
        items.append({"type": "http", "name": f"web {n}", "url": url,
                      "target_path": f"web/f-{n:03d}.txt"})
        expected[f"web/f-{n:03d}.txt"] = data
        fetch_key[f"web/f-{n:03d}.txt"] = f"/files/f-{n:03d}.txt"
    root = tmp_path / "root"
    manifest = write_manifest(tmp_path / "job.yaml", {"download_root": str(root),
                                                      "download_items": items})
    return {"manifest": manifest, "root": root, "expected": expected, "fetch_key": fetch_key,
            "secrets": [s3_server.secret_key]}


def _upload_gcs(endpoint: str, bucket: str, name: str, data: bytes) -> None:
    """A simple media upload: the client library's upload and reload take 0.1 s an object."""
    request = urllib.request.Request(
        f"{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}",
        data=data, method="POST", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def _command(manifest: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "laden", "run", str(manifest), "--shards", str(SHARDS),
            "--max-workers", "4", "-q", *extra]


def _env(tmp_path: Path, index: int) -> dict[str, str]:
    """A pod: its JOB_COMPLETION_INDEX and its own state folder."""
    state = tmp_path / f"state-{index}"
    state.mkdir(exist_ok=True)
    return {**os.environ, "JOB_COMPLETION_INDEX": str(index), "LADEN_STATE_DIR": str(state)}


def _start(job: dict[str, Any], tmp_path: Path, index: int) -> subprocess.Popen[str]:
    return subprocess.Popen(_command(job["manifest"]), env=_env(tmp_path, index),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _fetches(job: dict[str, Any], http_server: Any,
             proxies: dict[str, CountingProxy]) -> Counter[str]:
    """Per object (by its path under the root): how many GETs of its bytes the servers saw."""
    http = Counter(r.path.split("?")[0] for r in http_server.requests if r.method == "GET")
    counts: Counter[str] = Counter()
    for relative, key in job["fetch_key"].items():
        counts[relative] = (http[key] if relative.startswith("web/") else
                            proxies["s3"].fetches[key] + proxies["gcs"].fetches[key])
    return counts


def _owner(job: dict[str, Any], relative: str) -> int:
    return shard_of(target_key(str(job["root"] / relative), "", str(job["root"])), SHARDS)


def _journalled(state: Path) -> dict[str, str]:
    try:
        db = sqlite3.connect(f"file:{state / 'journal.sqlite3'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT json_extract(data, '$.dest'), "
                              "json_extract(data, '$.state') FROM downloads").fetchall()
        finally:
            db.close()
    except sqlite3.Error:  # read while laden creates it
        return {}
    return {dest: state for dest, state in rows}


def _status(job: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "laden", "run", str(job["manifest"]),
                           "--shards", str(SHARDS), "--status"], capture_output=True, text=True,
                          timeout=60)


def test_four_shards_fetch_the_manifest_exactly_once(
    job: dict[str, Any], http_server: Any, proxies: dict[str, CountingProxy], tmp_path: Path,
) -> None:
    for proxy in proxies.values():
        proxy.shuffle = True  # every pod lists the folders in an order of its own
    started = time.monotonic()
    processes = [_start(job, tmp_path, index) for index in range(SHARDS)]
    outputs = [p.communicate(timeout=240) for p in processes]
    seconds = time.monotonic() - started
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    root = job["root"]
    on_disk = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
               if p.is_file() and ".laden-shards" not in p.parts}
    assert on_disk == job["expected"]
    fetched = _fetches(job, http_server, proxies)
    duplicates = {k: n for k, n in fetched.items() if n > 1}
    assert duplicates == {} and set(fetched.values()) == {1}
    # The listings were really shuffled: the pods saw the folders in different orders...
    for proxy in proxies.values():
        assert len(proxy.listings) >= SHARDS
        assert len({tuple(order) for order in proxy.listings}) > 1
    # ...and each pod took exactly the objects the hash gives it.
    per_shard = []
    for index in range(SHARDS):
        mine = {os.path.relpath(d, root) for d in _journalled(tmp_path / f"state-{index}")}
        assert mine == {k for k in job["expected"] if _owner(job, k) == index}
        per_shard.append(len(mine))
    assert sum(per_shard) == len(job["expected"]) >= 300
    assert min(per_shard) > 0.6 * len(job["expected"]) / SHARDS  # roughly even
    status = _status(job)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"job complete: {SHARDS} of {SHARDS} shards" in status.stdout
    results = [json.loads(p.read_text()) for p in sorted((root / ".laden-shards").glob("*.json"))]
    assert [r["files"] for r in results] == per_shard and all(r["failed"] == 0 for r in results)
    text = "".join(p.read_text() for p in (root / ".laden-shards").iterdir())
    assert all(value not in text for value in job["secrets"])
    print(f"\nobjects per shard: {per_shard}; duplicates fetched: {len(duplicates)}; "
          f"{len(job['expected'])} objects in {seconds:.1f} s")


def test_a_shard_killed_midway_finishes_on_rerun_without_fetching_twice(
    job: dict[str, Any], http_server: Any, proxies: dict[str, CountingProxy], tmp_path: Path,
) -> None:
    victim = 2
    for proxy in proxies.values():
        proxy.delay = 0.05  # a few seconds for the shard: the kill lands midway
    process = _start(job, tmp_path, victim)
    state = tmp_path / f"state-{victim}"
    try:
        wait_for(lambda: (state / "journal.sqlite3").exists()
                 and sum(s == "done" for s in _journalled(state).values()) >= 25, timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done_before = {os.path.relpath(d, job["root"])
                   for d, s in _journalled(state).items() if s == "done"}
    mine = {k for k in job["expected"] if _owner(job, k) == victim}
    assert 25 <= len(done_before) < len(mine)
    for proxy in proxies.values():
        proxy.delay = 0.0
    again = subprocess.run(_command(job["manifest"]), env=_env(tmp_path, victim),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    for relative in mine:
        assert (job["root"] / relative).read_bytes() == job["expected"][relative]
    fetched = _fetches(job, http_server, proxies)
    assert {k for k, n in fetched.items() if n} == mine  # nothing of the other shards
    twice = {k for k, n in fetched.items() if n > 1}
    # Only downloads the kill cut short may be fetched again (at most one per worker).
    assert not twice & done_before and len(twice) <= 4
    result = json.loads((job["root"] / ".laden-shards" / f"shard-{victim:05d}-of-"
                         f"{SHARDS:05d}.json").read_text())
    assert result["state"] == "complete" and result["earlier"] == len(done_before)
    print(f"\nkill -9 after {len(done_before)} of {len(mine)} files; "
          f"fetched twice after the rerun: {len(twice)}")
    status = _status(job)
    assert status.returncode == 1 and "missing 0,1,3" in status.stdout


def test_a_permanent_failure_has_its_exit_code_and_status_names_the_shard(
    job: dict[str, Any], http_server: Any, tmp_path: Path,
) -> None:
    manifest = job["manifest"]
    text = manifest.read_text().replace("/files/f-007.txt", "/files/missing.txt")
    manifest.write_text(text)
    broken = _owner(job, "web/f-007.txt")
    processes = [_start(job, tmp_path, index) for index in range(SHARDS)]
    outputs = [p.communicate(timeout=240) for p in processes]
    codes = [p.returncode for p in processes]
    assert codes == [PERMANENT_EXIT if i == broken else 0 for i in range(SHARDS)], outputs
    assert "HTTP 404" in outputs[broken][1] and "Traceback" not in outputs[broken][1]
    status = _status(job)
    assert status.returncode == PERMANENT_EXIT
    assert f"failed {broken}" in status.stdout
    line = next(s for s in status.stdout.splitlines() if s.startswith(f"shard {broken}/"))
    assert "f-007.txt" in line and "(permanent)" in line
    # A changed manifest makes every earlier result stale: none of them counts for it.
    manifest.write_text(text + "\n# changed\n")
    stale = _status(job)
    assert stale.returncode == 1 and "stale 0,1,2,3" in stale.stdout


def test_exit_codes_and_shard_choice_are_checked(
    job: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert exit_code_of(Permanent("HTTP 404", status=404)) == PERMANENT_EXIT == 4
    assert exit_code_of(TimeoutError()) == 1
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "3")
    assert str(chosen(None, 4)) == "3/4"
    for args, message in [
        (["--shard", "4/4"], "the shard index must be from 0 to 3, not 4"),
        (["--shard", "a/4"], "--shard must look like INDEX/COUNT"),
        (["--shards", "0"], "the shard count must be from 1 to 100000, not 0"),
        (["--shard", "1/4", "--shards", "3"], "disagree on the count"),
        (["--status"], "--status needs the number of shards"),
    ]:
        code = main(["run", str(job["manifest"]), *args])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, (args, err)
    monkeypatch.delenv("AWS_BATCH_JOB_ARRAY_INDEX")
    assert main(["run", str(job["manifest"]), "--shards", "4"]) == 2
    assert "JOB_COMPLETION_INDEX" in capsys.readouterr().err


def test_a_shard_whose_journal_is_lost_keeps_files_whose_checksum_matches(
    http_server: Any, tmp_path: Path, laden_dirs: dict[str, Path],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replaced pod with a fresh state folder, on the same data volume."""
    files = {f"c-{n}.txt": f"checked file {n}\n".encode() for n in range(6)}
    items = [{"type": "http", "name": name, "url": http_server.add_file(f"/c/{name}", data),
              "target_path": name, "checksum": f"sha256:{hashlib.sha256(data).hexdigest()}"}
             for name, data in files.items()]
    items.append({"type": "http", "name": "unchecked",
                  "url": http_server.add_file("/c/plain.txt", b"plain\n"),
                  "target_path": "plain.txt"})
    manifest = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path / "root"),
                                                    "download_items": items})
    assert main(["run", str(manifest), "--shard", "0/1", "-q"]) == 0
    http_server.clear_log()
    (tmp_path / "root" / "c-0.txt").write_bytes(b"changed\n")  # must be fetched again
    monkeypatch.setenv("LADEN_STATE_DIR", str(tmp_path / "fresh-state"))
    assert main(["run", str(manifest), "--shard", "0/1", "-q"]) == 0
    assert "5 files already complete at their destination" in capsys.readouterr().err
    fetched = {r.path for r in http_server.requests if r.method == "GET"}
    assert fetched == {"/c/c-0.txt", "/c/plain.txt"}  # no checksum: not trusted
    assert (tmp_path / "root" / "c-0.txt").read_bytes() == files["c-0.txt"]
