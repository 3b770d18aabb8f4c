"""`laden run`: manifests in both formats against every emulator, dry runs, summaries, exit
codes, skipping, and resuming an interrupted run by running it again."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.helpers import journalled_bytes
from laden.cli import main
from servers.faults import Faults
from servers.fixtures import random_bytes, wait_for

from .conftest import secret, write_manifest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def world(s3_server: Any, s3_bucket: str, gcs_server: Any, gcs_bucket: str,
          azurite_server: Any, azure_container: str, hf_hub: Any, http_server: Any,
          ftp_server: Any, secrets_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """Files on every emulator, and a manifest (as a dict) that names them with a mix of file
    and folder items; `expected` maps local paths under the root to their bytes."""
    blobs = {name: random_bytes(size, seed=n) for n, (name, size) in enumerate([
        ("s3.bin", 300_000), ("a.csv", 2_000), ("b.csv", 3_000), ("deep.csv", 100),
        ("gcs1.bin", 50_000), ("gcs2.bin", 70_000), ("az.bin", 200_000), ("weights", 40_000),
        ("http.bin", 150_000), ("ftp1.txt", 1_000), ("ftp2.txt", 2_000), ("ftp.bin", 500)])}
    s3_server.put_object(s3_bucket, "data/model.bin", blobs["s3.bin"])
    for name in ("a.csv", "b.csv"):
        s3_server.put_object(s3_bucket, f"data/csv/{name}", blobs[name])
    s3_server.put_object(s3_bucket, "data/csv/nested/deep.csv", blobs["deep.csv"])
    gcs_server.upload(gcs_bucket, "set/one.bin", blobs["gcs1.bin"])
    gcs_server.upload(gcs_bucket, "set/sub/two.bin", blobs["gcs2.bin"])
    azurite_server.upload(azure_container, "blobs/az.bin", blobs["az.bin"])
    repo = f"laden/model-{s3_bucket[-8:]}"
    hf_hub.add_repo(repo, {"config.json": b'{"a": 1}', "weights/model.bin": blobs["weights"]},
                    private=True)
    http_url = http_server.add_file("/files/http.bin", blobs["http.bin"])
    for name in ("ftp1.txt", "ftp2.txt", "ftp.bin"):
        ftp_server.write_file(f"{s3_bucket}/{name}", blobs[name])
    root = tmp_path / "root"
    manifest = {"download_root": str(root), "download_items": [
        {"type": "s3", "name": "s3 data",
         "endpoint_url_file": secret(secrets_dir, "s3-endpoint", s3_server.endpoint_url),
         "access_key_id_file": secret(secrets_dir, "s3-key-id", s3_server.access_key),
         "secret_key_file": secret(secrets_dir, "s3-secret", s3_server.secret_key),
         "buckets": [{"name": s3_bucket, "items": [
             {"file": "data/model.bin", "target_path": "s3/model.bin",
              "checksum": f"sha256:{_sha256(blobs['s3.bin'])}"},
             {"folder": "data/csv", "target_path": "s3/csv", "glob": "*.csv"}]}]},
        {"type": "gcs", "name": "gcs data", "endpoint_url": gcs_server.endpoint,
         "project": "test",
         "buckets": [{"name": gcs_bucket, "items": [{"folder": "set", "target_path": "gcs"}]}]},
        {"type": "azure-blob", "name": "azure data",
         "connection_string_file": secret(secrets_dir, "azure",
                                          azurite_server.connection_string),
         "containers": [{"name": azure_container, "items": [
             {"file": "blobs/az.bin", "target_path": "azure/az.bin"}]}]},
        {"type": "hf", "name": "model", "repo_id": repo, "endpoint_url": hf_hub.endpoint,
         "token_file": secret(secrets_dir, "hf-token", hf_hub.token),
         "files": ["config.json", "weights/model.bin"], "target_path": "hf"},
        {"type": "hf", "name": "whole repo", "repo_id": repo, "endpoint_url": hf_hub.endpoint,
         "token": hf_hub.token, "target_path": "hf-all"},
        {"type": "http", "name": "web", "url": http_url, "target_path": "web/"},
        {"type": "ftp", "name": "ftp folder",
         "url": f"ftp://127.0.0.1:{ftp_server.port}/{s3_bucket}/",
         "username": ftp_server.user,
         "password_file": secret(secrets_dir, "ftp-password", ftp_server.password),
         "glob": "*.txt", "target_path": "ftp"},
    ]}
    expected = {
        "s3/model.bin": blobs["s3.bin"], "s3/csv/a.csv": blobs["a.csv"],
        "s3/csv/b.csv": blobs["b.csv"], "gcs/one.bin": blobs["gcs1.bin"],
        "gcs/sub/two.bin": blobs["gcs2.bin"], "azure/az.bin": blobs["az.bin"],
        "hf/config.json": b'{"a": 1}', "hf/weights/model.bin": blobs["weights"],
        "hf-all/config.json": b'{"a": 1}', "hf-all/weights/model.bin": blobs["weights"],
        "web/http.bin": blobs["http.bin"], "ftp/ftp1.txt": blobs["ftp1.txt"],
        "ftp/ftp2.txt": blobs["ftp2.txt"]}
    secret_values = [azurite_server.account_key, hf_hub.token, ftp_server.password]
    return {"manifest": manifest, "root": root, "expected": expected, "secrets": secret_values}


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["manifest.yaml", "manifest.toml"])
def test_manifest_with_every_source_in_one_run(
    world: dict[str, Any], tmp_path: Path, laden_dirs: dict[str, Path], name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_manifest(tmp_path / name, world["manifest"])
    code = main(["run", str(path), "--log-level", "debug"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert _files_under(world["root"]) == world["expected"]
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip())
                                          for line in out[out.index("ITEM"):].splitlines())}
    assert rows["s3 data"][1:2] == ["3/3"] and rows["s3 data"][4] == "yes"  # checksum checked
    assert rows["whole repo"][1] == "2/2" and rows["ftp folder"][1] == "2/2"
    assert "7 of 7 items succeeded" in out
    # Secrets came from files; none of them reached the journal or the log.
    journal = sqlite3.connect(laden_dirs["state"] / "journal.sqlite3")
    rows = " ".join(str(r) for r in journal.execute("SELECT data FROM downloads"))
    groups = {r for (r,) in journal.execute("SELECT json_extract(data, '$.group') "
                                           "FROM downloads")}
    journal.close()
    logs = "".join(p.read_text() for p in laden_dirs["logs"].glob("*.log*"))
    assert groups == {f"manifest:{path}"}
    for value in world["secrets"]:
        assert value not in rows and value not in logs and value not in out + err


def test_dry_run_lists_sizes_and_disk_space_without_downloading(
    world: dict[str, Any], tmp_path: Path, laden_dirs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_manifest(tmp_path / "m.yaml", world["manifest"])
    code = main(["run", str(path), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    total = sum(len(data) for data in world["expected"].values())
    assert f"total: {len(world['expected'])} files," in out
    assert "disk: " in out and ": fits" in out
    assert "s3/csv/nested" not in out and "deep.csv" not in out  # Kaiwo's glob: direct files
    assert not world["root"].exists()
    assert not (laden_dirs["state"] / "journal.sqlite3").exists()
    code = main(["run", str(path), "--dry-run", "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    files = [f for line in lines if line["event"] == "plan" for f in line["files"]]
    assert sum(f["size"] for f in files) == total
    assert {f["dest"] for f in files} == {str(world["root"] / p) for p in world["expected"]}
    (disk,) = [line for line in lines if line["event"] == "disk"]
    assert disk["fits"] and disk["needed"] == total


def test_a_dry_run_asks_for_sizes_without_the_bytes(
    http_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = http_server.add_file("/plain.bin", b"p" * 3000)
    no_head = http_server.add_file("/no-head.bin", b"n" * 5000,
                                   faults=Faults(head_not_allowed=True))
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path / "root"),
                                                "download_items": [
        {"type": "http", "url": plain, "target_path": "plain.bin"},
        {"type": "http", "url": no_head, "target_path": "no-head.bin"},
    ]})
    http_server.clear_log()
    assert main(["run", str(path), "--dry-run", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    sizes = {os.path.basename(f["dest"]): f["size"]
             for line in lines if line["event"] == "plan" for f in line["files"]}
    assert sizes == {"plain.bin": 3000, "no-head.bin": 5000}
    asked = sorted((r.method, r.path) for r in http_server.requests)
    # A HEAD each, and no GET where it answered; a server that refuses it gets the probe.
    assert {("HEAD", "/plain.bin"), ("HEAD", "/no-head.bin"), ("GET", "/no-head.bin")} == set(asked)
    assert not (tmp_path / "root").exists()


def test_an_older_snapshot_does_not_undo_a_settling(http_server: Any, tmp_path: Path) -> None:
    import dataclasses

    from laden.core.states import State
    from laden.engine.manager import DownloadManager
    from laden.manifest import load_manifest
    from laden.manifest.plan import expand
    from laden.manifest.run import ManifestRun

    url = http_server.add_file("/one.bin", b"1" * 1000)
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path / "root"),
                                                "download_items": [{"type": "http", "url": url}]})
    manifest = load_manifest(str(path))
    with DownloadManager() as manager:
        run = ManifestRun(manifest, expand(manifest, manager.sources), manager)
        run.start()
        (download_id,) = run.ids
        manager.wait(download_id)
        (done,) = run.infos()
        run.observe([done])
        # The display's first look, or an event delivered late, from before the end:
        assert run.note(dataclasses.replace(done, state=State.DOWNLOADING,
                                            sequence=done.sequence - 1))
        (result,) = run.results([done])
    assert result.done == 1 and result.seconds is not None


def test_summary_and_exit_code_when_one_item_fails(
    http_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = http_server.add_file("/ok.bin", b"ok" * 100)
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path / "root"),
                                                "download_items": [
        {"type": "http", "name": "good", "url": url},
        {"type": "http", "name": "gone", "url": f"{http_server.base_url}/gone.bin",
         "target_path": "gone.bin"},
    ]})
    code = main(["run", str(path)])
    out, err = capsys.readouterr()
    assert code == 4  # a 404: permanent, another try cannot help
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "1/1" in rows["good"] and "200 B" in rows["good"]
    assert "0/1" in rows["gone"] and "HTTP 404" in rows["gone"]
    assert "1 of 2 items succeeded" in out
    assert "laden: gone: gone.bin: HTTP 404" in err
    assert (tmp_path / "root" / "ok.bin").read_bytes() == b"ok" * 100


def test_skip_keeps_an_existing_file_and_overwrite_replaces_it(
    http_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "kept.bin").write_bytes(b"mine")
    (root / "replaced.bin").write_bytes(b"mine")
    url = http_server.add_file("/remote.bin", b"remote")
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(root), "download_items": [
        {"type": "http", "name": "kept", "url": url, "target_path": "kept.bin",
         "overwrite": "skip"},
        {"type": "http", "name": "replaced", "url": url, "target_path": "replaced.bin"},
    ]})
    code = main(["run", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert (root / "kept.bin").read_bytes() == b"mine"
    assert (root / "replaced.bin").read_bytes() == b"remote"
    assert "1/1 (1 skipped)" in out


def test_resume_policy_continues_from_an_existing_partial_file(
    http_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Larger than the probe's first bytes (laden.sources.http.PROBE_BODY): a smaller file
    # comes whole with the probe, and only its missing part is written.
    data = random_bytes(1_200_000, seed=43)
    root = tmp_path / "root"
    root.mkdir()
    (root / "r.bin").write_bytes(data[:250_000])  # left by another tool (like wget -c)
    url = http_server.add_file("/r.bin", data)
    # A file laden did not write is continued only with a checksum to prove the result.
    digest = hashlib.sha256(data).hexdigest()
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(root), "download_items": [
        {"type": "http", "url": url, "target_path": "r.bin", "overwrite": "resume",
         "connections": 1, "checksum": f"sha256:{digest}"}]})
    assert main(["run", str(path), "--max-workers", "2"]) == 0, capsys.readouterr().err
    assert (root / "r.bin").read_bytes() == data
    assert [r.range for r in http_server.ranged_requests("/r.bin")][-1] == "bytes=250000-1199999"
    assert main(["run", str(path), "--max-workers", "0"]) == 2
    assert "--max-workers must be from 1 to 1000" in capsys.readouterr().err


def test_json_and_plain_lines_for_programs_and_logs(
    http_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = http_server.add_file("/j.bin", b"j" * 5000)
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path / "root"),
                                                "download_items": [{"type": "http", "url": url}]})
    assert main(["run", str(path), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "added" and "completed" in kinds and kinds[-1] == "summary", str(kinds)
    (item,) = [e for e in events if e["event"] == "item"]
    assert item["ok"] and item["bytes"] == 5000 and item["item"] == "item 1 (http)"
    (tmp_path / "root" / "j.bin").unlink()
    assert main(["run", str(path)]) == 0  # stdout is not a terminal here: plain lines
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("[2] j.bin done 100.0%")


def test_rerun_after_kill_9_resumes_and_finished_files_stay(
    http_server: Any, tmp_path: Path, laden_dirs: dict[str, Path]
) -> None:
    big, small = random_bytes(2_000_000, seed=40), random_bytes(1000, seed=41)
    slow = http_server.add_file("/slow.bin", big, faults=Faults(rate_per_connection=400_000))
    quick = http_server.add_file("/quick.bin", small)
    root = tmp_path / "root"
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(root), "download_items": [
        {"type": "http", "name": "slow", "url": slow, "connections": 2},
        {"type": "http", "name": "quick", "url": quick},
    ]})
    command = [sys.executable, "-m", "laden", "run", str(path)]
    process = subprocess.Popen([*command, "-q"], env=os.environ.copy())
    try:
        wait_for(lambda: (root / "quick.bin").exists()
                 and journalled_bytes(laden_dirs["state"], "slow.bin") > 300_000)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = journalled_bytes(laden_dirs["state"], "slow.bin")
    http_server.set_faults("/slow.bin", Faults())
    http_server.clear_log()
    again = subprocess.run([*command, "--json"], env=os.environ.copy(), capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    started = [e for e in events if e["event"] == "started"]
    assert [e["dest"] for e in started] == [str(root / "slow.bin")]  # quick.bin: done before
    assert started[0]["done"] >= before > 0
    assert (root / "slow.bin").read_bytes() == big and (root / "quick.bin").read_bytes() == small
    # quick.bin is asked about (a HEAD: is the remote still that version?), never fetched.
    assert all("quick" not in r.path or r.method == "HEAD" for r in http_server.requests)
    items = {e["item"]: e for e in events if e["event"] == "item"}
    assert items["quick"]["earlier"] == 1 and items["slow"]["ok"]


def test_sigterm_pauses_and_the_same_command_resumes(
    http_server: Any, tmp_path: Path, laden_dirs: dict[str, Path]
) -> None:
    """What Kubernetes does to a pod it stops: SIGTERM, then the pod starts again."""
    data = random_bytes(1_200_000, seed=42)
    url = http_server.add_file("/slow.bin", data, faults=Faults(rate_per_connection=400_000))
    root = tmp_path / "root"
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(root), "download_items": [
        {"type": "http", "name": "slow", "url": url, "connections": 1}]})
    command = [sys.executable, "-m", "laden", "run", str(path)]
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: journalled_bytes(laden_dirs["state"], "slow.bin") > 100_000)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "run the same command again to resume" in err and "Traceback" not in err
    http_server.set_faults("/slow.bin", Faults())
    again = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert (root / "slow.bin").read_bytes() == data


def test_kaiwo_test_manifest_form_downloads(s3_server: Any, s3_bucket: str, secrets_dir: Path,
                                            tmp_path: Path, laden_dirs: dict[str, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest in the form of Kaiwo's own test manifest (a list per type at the top,
    `folders`/`files` with `path`, secrets as `{file: ...}`) runs as it is."""
    data = {"top.txt": b"top", "sub/a.md": b"# a", "sub/b.txt": b"b"}
    for key, body in data.items():
        s3_server.put_object(s3_bucket, f"kaiwo/{key}", body)
    path = write_manifest(tmp_path / "kaiwo.yaml", {
        "download_root": str(tmp_path / "out"),
        "s3": [{"name": "Test Minio",
                "endpoint_url": {"file": secret(secrets_dir, "endpoint", s3_server.endpoint_url),
                                 "secret_name": "s3-secret", "secret_key": "endpoint"},
                "access_key_id": {"file": secret(secrets_dir, "id", s3_server.access_key)},
                "secret_key": {"file": secret(secrets_dir, "key", s3_server.secret_key)},
                "buckets": [{"name": s3_bucket,
                             "folders": [{"path": "kaiwo/sub", "target_path": "s3/sub"}],
                             "files": [{"path": "kaiwo/top.txt",
                                        "target_path": "s3/single.txt"}]}]}]})
    code = main(["run", str(path), "-q"])
    assert code == 0, capsys.readouterr().err
    assert _files_under(tmp_path / "out") == {"s3/sub/a.md": b"# a", "s3/sub/b.txt": b"b",
                                              "s3/single.txt": b"top"}


def test_an_http_folder_in_a_manifest(http_server: Any, tmp_path: Path,
                                      laden_dirs: dict[str, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    files = {"a.csv": random_bytes(5000, seed=1), "nested/b.csv": random_bytes(7000, seed=2),
             "c.txt": b"not wanted"}
    for name, data in files.items():
        http_server.add_file(f"/data/{name}", data)
    http_server.add_file("/data/", b'<a href="../">..</a><a href="a.csv">a</a>'
                         b'<a href="nested/">nested/</a><a href="c.txt">c</a>',
                         content_type="text/html")
    http_server.add_file("/data/nested/", b'<a href="b.csv">b</a>', content_type="text/html")
    root = tmp_path / "root"
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(root), "download_items": [
        {"type": "http", "name": "csv", "url": f"{http_server.base_url}/data/", "glob": "**/*.csv",
         "target_path": "tables"}]})
    assert main(["run", str(path), "--dry-run", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    planned = {f["dest"]: f["size"] for line in lines if line["event"] == "plan"
               for f in line["files"]}
    assert planned == {str(root / "tables" / "a.csv"): 5000,
                       str(root / "tables" / "nested" / "b.csv"): 7000}
    code = main(["run", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert _files_under(root) == {f"tables/{n}": d for n, d in files.items() if n.endswith(".csv")}
    assert "1 of 1 items succeeded" in out


def test_anonymous_items_send_no_credentials(hf_hub: Any, tmp_path: Path,
                                             laden_dirs: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # A public repository, with a token in the environment that must not be sent to it.
    monkeypatch.setenv("HF_TOKEN", "hf_should_not_be_sent")
    repo = f"laden/public-{tmp_path.name[-8:]}"
    hf_hub.add_repo(repo, {"config.json": b'{"public": true}'})
    root = tmp_path / "root"
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(root), "download_items": [
        {"type": "hf", "repo_id": repo, "endpoint_url": hf_hub.endpoint, "anonymous": True,
         "files": ["config.json"], "target_path": "public"}]})
    code = main(["run", str(path)])
    assert code == 0, capsys.readouterr().err
    assert (root / "public" / "config.json").read_bytes() == b'{"public": true}'
    assert hf_hub.hub_requests.snapshot()
    assert all("authorization" not in r.headers for r in hf_hub.hub_requests.snapshot())
