"""Uploads to Azure ML datastores: `laden put` to azureml:// addresses, against the fake
Resource Manager and Entra ID, and Azurite over HTTPS (see test_azureml for the setup).

The datastore resolves as for downloads; the blocks, MD5s and commit are the Azure Blob
uploader's. The journal keeps the azureml:// address, never the key or SAS it resolved to.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.helpers import run_laden
from laden.engine.uploading.parts import MiB
from servers.azureml import AzureMLSetup
from servers.fixtures import random_bytes

from .conftest import journal_records, wait_for

PART = 8 * MiB


def _blob(azureml: AzureMLSetup, name: str) -> Any:
    return azureml.storage.service_client().get_blob_client(azureml.container, name)


def _content(azureml: AzureMLSetup, name: str) -> bytes:
    return bytes(_blob(azureml, name).download_blob().readall())


def _content_md5(azureml: AzureMLSetup, name: str) -> str:
    return bytes(_blob(azureml, name).get_blob_properties().content_settings.content_md5).hex()


def _file(folder: Path, name: str, size: int, seed: int) -> tuple[Path, bytes]:
    data = random_bytes(size, seed=seed)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, data


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_file_to_a_datastore_path_in_the_long_form(azureml: AzureMLSetup, tmp_path: Path,
                                                     laden_dirs: dict[str, Path]) -> None:
    path, data = _file(tmp_path, "model.bin", 2 * PART + 999, seed=260)
    url = azureml.long_address("blobs", "up/model.bin")
    result = run_laden("put", "-c", "3", str(path), url)
    assert result.returncode == 0, result.stderr
    assert _content(azureml, "up/model.bin") == data
    assert _content_md5(azureml, "up/model.bin") == hashlib.md5(data).hexdigest()
    [record] = journal_records(laden_dirs["state"])
    assert record.url == url and record.direction == "upload"
    # The datastore's blob is checked as an Azure blob: its committed blocks, not the MD5
    # laden gave with the commit (laden's, recorded as such).
    assert [(c["algorithm"], c["origin"], c["verified"]) for c in record.checksums] == [
        ("md5", "laden", None)]
    state = "".join(p.read_bytes().decode("latin-1") for p in laden_dirs["state"].rglob("*")
                    if p.is_file())
    assert azureml.storage.account_key not in state


def test_a_folder_with_a_glob_in_the_short_form(azureml: AzureMLSetup, tmp_path: Path) -> None:
    folder = tmp_path / "outputs"
    wanted = {"a.csv": 10, "sub/b.csv": PART + 3}
    for number, (name, size) in enumerate({**wanted, "skip.txt": 5}.items()):
        _file(folder, name, size, seed=261 + number)
    result = run_laden("put", *azureml.workspace_args(), "--glob", "**/*.csv", str(folder),
                       "azureml://datastores/blobs/paths/run1/")
    assert result.returncode == 0, result.stderr
    client = azureml.storage.service_client().get_container_client(azureml.container)
    assert sorted(b.name for b in client.list_blobs()) == ["run1/a.csv", "run1/sub/b.csv"]
    for name in wanted:
        assert _content(azureml, f"run1/{name}") == (folder / name).read_bytes()
    again = run_laden("put", *azureml.workspace_args(), "--conflict", "skip", "--glob",
                      "**/*.csv", str(folder), "azureml://datastores/blobs/paths/run1/")
    assert again.returncode == 0, again.stderr
    assert "skipped" in again.stdout + again.stderr


@pytest.mark.parametrize("credentials", ["Sas", "None"], ids=["sas", "identity"])
def test_sas_and_identity_datastores_take_uploads(azureml: AzureMLSetup, tmp_path: Path,
                                                  credentials: str) -> None:
    azureml.workspace.add_datastore("store", azureml.container, credentials=credentials)
    path, data = _file(tmp_path, "f.bin", PART + 5, seed=263)
    result = run_laden("put", *azureml.workspace_args(), str(path),
                       "azureml://datastores/store/paths/in/f.bin")
    assert result.returncode == 0, result.stderr
    assert _content(azureml, "in/f.bin") == data
    assert azureml.workspace.calls["secrets"] == (1 if credentials == "Sas" else 0)


def test_conflict_fail_names_the_azureml_address(azureml: AzureMLSetup, tmp_path: Path) -> None:
    azureml.put("taken.bin", b"theirs")
    path, _ = _file(tmp_path, "f.bin", 100, seed=264)
    url = "azureml://datastores/blobs/paths/taken.bin"
    result = run_laden("put", *azureml.workspace_args(), "--conflict", "fail", str(path), url)
    assert result.returncode == 1
    line = _one_line(result)
    assert url in line and "exists already" in line
    assert _content(azureml, "taken.bin") == b"theirs"


def test_a_job_output_is_not_a_place_to_upload_to(azureml: AzureMLSetup,
                                                  tmp_path: Path) -> None:
    path, _ = _file(tmp_path, "f.bin", 100, seed=265)
    result = run_laden("put", *azureml.workspace_args(), str(path),
                       "azureml://jobs/job1/outputs/default/paths/f.bin")
    assert result.returncode != 0
    assert "laden uploads to datastore paths" in _one_line(result)


def test_an_expired_sas_is_asked_for_again_when_the_upload_resumes(
        azureml: AzureMLSetup, tmp_path: Path, laden_dirs: dict[str, Path]) -> None:
    server = azureml.server
    azureml.workspace.add_datastore("sas", azureml.container, credentials="Sas")
    path, data = _file(tmp_path, "big.bin", 3 * PART, seed=266)
    url = "azureml://datastores/sas/paths/big.bin"
    common = ["put", "-q", *azureml.workspace_args(), "-c", "1", str(path), url]
    server.sas_lifetime = datetime.timedelta(seconds=8)
    try:
        process = subprocess.Popen([sys.executable, "-m", "laden", *common, "--limit-rate",
                                    "2M"], env={**os.environ}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        wait_for(lambda: any((r.upload or {}).get("parts")
                             for r in journal_records(laden_dirs["state"])), timeout=30)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        server.sas_lifetime = datetime.timedelta(hours=1)
    first_sas = server.issued_sas[-1]
    expiry = datetime.datetime.fromisoformat(
        next(p for p in first_sas.split("&") if p.startswith("se=")).split("=", 1)[1]
        .replace("%3A", ":"))
    wait_for(lambda: datetime.datetime.now(datetime.UTC) > expiry + datetime.timedelta(
        seconds=1), timeout=30)
    resumed = run_laden(*common)
    assert resumed.returncode == 0, resumed.stderr
    assert _content(azureml, "big.bin") == data
    assert _content_md5(azureml, "big.bin") == hashlib.md5(data).hexdigest()
    assert azureml.workspace.calls["secrets"] == 2
    assert server.issued_sas[-1] != first_sas


def test_a_manifest_upload_item_of_type_azureml(azureml: AzureMLSetup, tmp_path: Path) -> None:
    folder = tmp_path / "outputs"
    _file(folder, "metrics.json", 20, seed=270)
    _file(folder, "ckpt/last.ckpt", PART + 5, seed=271)
    ws = azureml.workspace
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"upload_root": str(tmp_path), "upload_items": [{
        "type": "azureml", "name": "run", "workspace": ws.name,
        "resource_group": ws.resource_group, "subscription": ws.subscription,
        "url": "azureml://datastores/blobs/paths/run-9/", "source": "outputs"}]}))
    result = run_laden("run", "-q", str(manifest))
    assert result.returncode == 0, result.stderr
    for name in ("metrics.json", "ckpt/last.ckpt"):
        assert _content(azureml, f"run-9/{name}") == (folder / name).read_bytes()
