"""Upload items in a manifest: their shape, every mistake named in one line by item and field
before anything moves, and `laden run` sending them to S3 (moto) beside download items."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from laden.cli import main
from laden.manifest import ManifestError, load_manifest
from servers.fixtures import random_bytes

from .conftest import secret, write_manifest


def _tree(root: Path) -> dict[str, bytes]:
    files = {"run/config.json": b'{"layers": 2}', "run/shards/a.safetensors": random_bytes(
        3000, seed=1), "run/shards/b.safetensors": random_bytes(5000, seed=2),
        "run/shards/notes.txt": b"not this", "run/shards/deeper/c.safetensors": b"deep"}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def _item(**fields: Any) -> dict[str, Any]:
    return {"type": "s3", "name": "ckpt", "endpoint_url": "http://127.0.0.1:9",
            "buckets": [{"name": "models", "items": [
                {"source": "run/config.json", "file": "llama/config.json"}]}], **fields}


def _problem(tmp_path: Path, items: list[Any], **top: Any) -> str:
    path = write_manifest(tmp_path / "m.yaml", {"upload_root": str(tmp_path), **top,
                                                "upload_items": items})
    with pytest.raises(ManifestError) as caught:
        load_manifest(str(path))
    return str(caught.value)


# -- the shape -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["m.yaml", "m.toml"])
def test_upload_items_become_one_target_per_file(tmp_path: Path, name: str) -> None:
    _tree(tmp_path)
    path = write_manifest(tmp_path / name, {"upload_root": str(tmp_path), "upload_items": [
        _item(conflict="skip", on_change="restart", buckets=[{"name": "models", "items": [
            {"source": "run/config.json", "file": "llama/config.json"},
            {"source": "run/shards", "folder": "llama/shards", "glob": "*.safetensors"}]}]),
        {"type": "s3", "url": "s3://models/copy/", "source": "run/config.json"}]})
    manifest = load_manifest(str(path))
    first, second = manifest.items
    assert (first.direction, first.title, second.title) == ("upload", "ckpt",
                                                            "upload item 2 (s3)")
    assert [(t.url, t.dest) for t in first.targets] == [
        ("s3://models/llama/config.json", str(tmp_path / "run/config.json")),
        ("s3://models/llama/shards/a.safetensors", str(tmp_path / "run/shards/a.safetensors")),
        ("s3://models/llama/shards/b.safetensors", str(tmp_path / "run/shards/b.safetensors"))]
    assert {(t.upload.conflict, t.upload.on_change) for t in first.targets if t.upload} == {
        ("skip", "restart")}
    assert first.targets[0].options.source_settings["s3_endpoint_url"] == "http://127.0.0.1:9"
    assert [(t.url, t.upload) for t in second.targets] == [
        ("s3://models/copy/config.json", second.targets[0].upload)]
    assert second.targets[0].upload is not None
    assert second.targets[0].upload.conflict == "overwrite"
    assert second.targets[0].upload.on_change == "stop"


def test_only_uploads_need_no_download_items(tmp_path: Path) -> None:
    _tree(tmp_path)
    path = write_manifest(tmp_path / "m.yaml", {"upload_root": str(tmp_path),
                                                "upload_items": [_item()]})
    assert len(load_manifest(str(path)).items) == 1


# -- every mistake, one line naming the item and the field ----------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    ({"buckets": [{"name": "models", "items": [{"source": "run/gone.bin", "file": "k"}]}]},
     r"upload item 1 \('ckpt'\), buckets\[0\]\.items\[0\], field source: .*run/gone\.bin does "
     r"not exist"),
    ({"buckets": [{"name": "models", "items": [{"source": "run/shards", "file": "k"}]}]},
     r"upload item 1 \('ckpt'\), buckets\[0\]\.items\[0\], field source: .*run/shards is a "
     r"folder: upload it to a folder \(a prefix\), not to one file"),
    ({"buckets": [{"name": "models", "items": [{"source": "run/config.json"}]}]},
     r"upload item 1 \('ckpt'\), buckets\[0\]\.items\[0\]: give file \(one object\) or folder"),
    ({"buckets": [{"name": "models", "items": [
        {"source": "run/shards", "folder": "s", "glob": "*.bin"}]}]},
     r"upload item 1 \('ckpt'\), buckets\[0\]\.items\[0\], field glob: no file in .*run/shards "
     r"matches '\*\.bin'"),
    ({"buckets": [{"name": "models", "items": [{"source": "../outside", "file": "k"}]}]},
     r"field source: '\.\./outside' is outside upload_root"),
    ({"conflict": "resume"},
     r"upload item 1 \('ckpt'\), field conflict: must be one of overwrite, skip, fail, not "
     r"'resume'"),
    ({"on_change": "ignore"},
     r"upload item 1 \('ckpt'\), field on_change: must be one of stop, restart"),
    ({"type": "http"},  # every other type takes uploads now
     r"upload item 1 \('ckpt'\), field type: 'http': laden cannot upload there \(uploads go "
     r"to: s3"),
    ({"target_path": "x"},
     r"upload item 1 \('ckpt'\): unknown field target_path"),
    ({"url": "gs://b/k", "buckets": None, "source": "run/config.json"},
     r"upload item 1 \('ckpt'\), field url: a s3 item uploads to a s3 address, not 'gs://b/k'"),
])
def test_a_bad_upload_item_is_one_line_naming_item_and_field(
        tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    _tree(tmp_path)
    message = _problem(tmp_path, [{k: v for k, v in _item(**change).items() if v is not None}])
    assert "\n" not in message, message
    assert re.search(expected, message), message


def test_the_same_remote_name_twice_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path)
    message = _problem(tmp_path, [_item(), {"type": "s3", "url": "s3://models/llama/config.json",
                                            "source": "run/shards/notes.txt"}])
    assert message.endswith("upload item 2: s3://models/llama/config.json is also uploaded by "
                            "ckpt: one file per remote name"), message


def test_nothing_moves_when_one_item_is_wrong(s3_server: Any, s3_bucket: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _tree(tmp_path)
    path = write_manifest(tmp_path / "m.yaml", {"upload_root": str(tmp_path), "upload_items": [
        {"type": "s3", "endpoint_url": s3_server.endpoint_url, "url": f"s3://{s3_bucket}/ok",
         "source": "run/config.json"},
        {"type": "s3", "endpoint_url": s3_server.endpoint_url, "url": f"s3://{s3_bucket}/no",
         "source": "run/missing"}]})
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "upload item 2, field source" in err
    assert "Traceback" not in err
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents") is None


# -- laden run -------------------------------------------------------------------------------

def test_laden_run_uploads_beside_downloads_and_a_rerun_skips(
        s3_server: Any, s3_bucket: str, tmp_path: Path, secrets_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    files = _tree(tmp_path)
    s3_server.put_object(s3_bucket, "in/data.bin", b"downloaded")
    connection = {
        "endpoint_url": s3_server.endpoint_url,
        "access_key_id_file": secret(secrets_dir, "id", s3_server.access_key),
        "secret_key_file": secret(secrets_dir, "key", s3_server.secret_key)}
    path = write_manifest(tmp_path / "m.yaml", {
        "download_root": str(tmp_path / "down"), "upload_root": str(tmp_path),
        "download_items": [{"type": "s3", "name": "inputs", **connection, "buckets": [
            {"name": s3_bucket, "items": [{"file": "in/data.bin", "target_path": "data.bin"}]}]}],
        "upload_items": [{"type": "s3", "name": "checkpoint", **connection, "conflict": "skip",
                          "buckets": [{"name": s3_bucket, "items": [
                              {"source": "run/config.json", "file": "out/config.json"},
                              {"source": "run/shards", "folder": "out/shards",
                               "glob": "**/*.safetensors"}]}]}]})
    assert main(["run", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "2 of 2 items succeeded" in out
    assert (tmp_path / "down/data.bin").read_bytes() == b"downloaded"
    client = s3_server.client()
    for key, local in [("out/config.json", "run/config.json"),
                       ("out/shards/a.safetensors", "run/shards/a.safetensors"),
                       ("out/shards/deeper/c.safetensors", "run/shards/deeper/c.safetensors")]:
        assert client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == files[local]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert "out/shards/notes.txt" not in keys

    def rerun(*extra: str) -> dict[str, Any]:
        assert main(["run", str(path), "--json", *extra]) == 0, capsys.readouterr().err
        items = [event for event in map(json.loads, capsys.readouterr().out.splitlines())
                 if event.get("event") == "item"]
        return next(i for i in items if i["item"] == "checkpoint")

    def journalled() -> int:
        assert main(["list", "--json"]) == 0
        return len(capsys.readouterr().out.splitlines())

    before = journalled()
    # Again, files unchanged: the earlier run's uploads are kept, nothing is sent or added.
    checkpoint = rerun()
    assert checkpoint["ok"] and checkpoint["files"] == 4 and checkpoint["earlier"] == 4
    assert journalled() == before
    # A file touched (same bytes): uploaded again, which conflict skip makes a HEAD and a read.
    config = tmp_path / "run/config.json"
    config.write_bytes(config.read_bytes())
    checkpoint = rerun()
    assert (checkpoint["earlier"], checkpoint["skipped"], checkpoint["ok"]) == (3, 1, True)
    # --verify asks the service for each kept upload: one deleted behind laden is sent again.
    client.delete_object(Bucket=s3_bucket, Key="out/shards/a.safetensors")
    checkpoint = rerun("--verify")
    assert checkpoint["ok"] and checkpoint["earlier"] == 3, checkpoint
    assert client.get_object(Bucket=s3_bucket, Key="out/shards/a.safetensors")[
        "Body"].read() == files["run/shards/a.safetensors"]


def test_dry_run_lists_uploads_and_needs_no_disk(s3_server: Any, s3_bucket: str,
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _tree(tmp_path)
    path = write_manifest(tmp_path / "m.yaml", {"upload_root": str(tmp_path), "upload_items": [
        {"type": "s3", "endpoint_url": s3_server.endpoint_url, "url": f"s3://{s3_bucket}/c/",
         "source": "run/shards", "glob": "*.safetensors"}]})
    assert main(["run", str(path), "--dry-run", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    plan = next(line for line in lines if line["event"] == "plan")
    assert [(f["url"], f["size"], f["direction"]) for f in plan["files"]] == [
        (f"s3://{s3_bucket}/c/a.safetensors", 3000, "upload"),
        (f"s3://{s3_bucket}/c/b.safetensors", 5000, "upload")]
    assert not [line for line in lines if line["event"] == "disk"]
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents") is None


def test_names_are_quoted_as_laden_put_quotes_them(tmp_path: Path) -> None:
    from laden.engine.uploading.adding import targets

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "a b#c%.bin").write_bytes(b"1")
    path = write_manifest(tmp_path / "m.yaml", {"upload_root": str(tmp_path), "upload_items": [
        {"type": "s3", "url": "s3://models/x y/", "source": "odd"}]})
    (target,) = load_manifest(str(path)).items[0].targets
    assert [target.url] == [url for _, url in targets([str(folder)], "s3://models/x y/")]


def test_one_item_sending_two_files_to_one_name_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path)
    message = _problem(tmp_path, [_item(buckets=[{"name": "models", "items": [
        {"source": "run/config.json", "file": "same"},
        {"source": "run/shards/notes.txt", "file": "same"}]}])])
    assert message.endswith("upload item 1 ('ckpt'): models/same is also uploaded by this "
                            "item: one file per remote name"), message


def test_laden_run_uploads_to_gcs_and_ftp(gcs_server: Any, gcs_bucket: str, ftp_server: Any,
                                          tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    files = _tree(tmp_path)
    ftp_url = f"ftp://127.0.0.1:{ftp_server.port}/manifest/config.json"
    path = write_manifest(tmp_path / "m.yaml", {"upload_root": str(tmp_path), "upload_items": [
        {"type": "gcs", "name": "to-gcs", "endpoint_url": gcs_server.endpoint,
         "buckets": [{"name": gcs_bucket, "items": [
             {"source": "run/shards", "folder": "out/shards", "glob": "**/*.safetensors"}]}]},
        {"type": "ftp", "name": "to-ftp", "url": ftp_url, "source": "run/config.json",
         "username": ftp_server.user, "password": ftp_server.password}]})
    assert main(["run", str(path)]) == 0, capsys.readouterr().err
    assert "2 of 2 items succeeded" in capsys.readouterr().out
    bucket = gcs_server.client().bucket(gcs_bucket)
    for name in ("a.safetensors", "deeper/c.safetensors"):
        assert bucket.get_blob(f"out/shards/{name}").download_as_bytes() == \
            files[f"run/shards/{name}"]
    assert (ftp_server.root / "manifest/config.json").read_bytes() == files["run/config.json"]
