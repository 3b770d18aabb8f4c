"""azureml:// addresses against the fake Resource Manager and Entra ID, and Azurite over HTTPS.

Every download here goes the whole way: azure-identity signs in with a client secret (through a
proxy that knows only login.microsoftonline.com, mapped to the fake), Resource Manager answers
for the datastore or job, and the bytes come from Azurite with the key, SAS or bearer token it
resolved to. The `azureml` fixture (servers.cloud_fixtures) checks afterwards that no request
went anywhere but 127.0.0.1.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml

from engine.helpers import run_laden
from laden.core.states import State
from servers.azureml import STORAGE_AUDIENCE, AzureMLSetup
from servers.fixtures import random_bytes

from .conftest import journal_done, journal_records, manager, wait_for


def _get(azureml: AzureMLSetup, downloads: Path, *urls: str, workspace: bool = True,
         **kwargs: object) -> subprocess.CompletedProcess[str]:
    args = azureml.workspace_args() if workspace else []
    return run_laden("get", "-o", str(downloads), *args, *urls, **kwargs)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- addresses and workspaces ------------------------------------------------------------------


@pytest.mark.parametrize("credentials", ["AccountKey", "Sas"])
def test_key_and_sas_datastores_in_the_long_form(azureml: AzureMLSetup, downloads: Path,
                                                 credentials: str) -> None:
    data = random_bytes(3 * 1024 * 1024, seed=190)
    azureml.workspace.add_datastore("store", azureml.container, credentials=credentials)
    azureml.put("weights/model.bin", data)
    result = _get(azureml, downloads, azureml.long_address("store", "weights/model.bin"),
                  "-c", "4", workspace=False)
    assert result.returncode == 0, result.stderr
    assert (downloads / "model.bin").read_bytes() == data
    assert azureml.workspace.calls == {"datastore": 1, "secrets": 1}
    [record] = journal_records(Path(os.environ["LADEN_STATE_DIR"]))
    assert record.url == azureml.long_address("store", "weights/model.bin")


def test_short_form_with_the_workspace_from_options_or_its_resource_id(
        azureml: AzureMLSetup, downloads: Path) -> None:
    azureml.put("a.bin", b"by name")
    azureml.put("b.bin", b"by resource id")
    by_name = _get(azureml, downloads, "azureml://datastores/blobs/paths/a.bin")
    by_id = run_laden("get", "-o", str(downloads), "--azureml-workspace",
                      azureml.workspace.resource_id, "azureml://datastores/blobs/paths/b.bin")
    assert by_name.returncode == 0, by_name.stderr
    assert by_id.returncode == 0, by_id.stderr
    assert (downloads / "a.bin").read_bytes() == b"by name"
    assert (downloads / "b.bin").read_bytes() == b"by resource id"


def test_the_workspace_from_an_azure_ml_jobs_environment(
        azureml: AzureMLSetup, downloads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = azureml.workspace
    monkeypatch.setenv("AZUREML_ARM_SUBSCRIPTION", ws.subscription)
    monkeypatch.setenv("AZUREML_ARM_RESOURCEGROUP", ws.resource_group)
    monkeypatch.setenv("AZUREML_ARM_WORKSPACE_NAME", ws.name)
    azureml.put("env.bin", b"inside a job")
    result = _get(azureml, downloads, "azureml://datastores/blobs/paths/env.bin",
                  workspace=False)
    assert result.returncode == 0, result.stderr
    assert (downloads / "env.bin").read_bytes() == b"inside a job"


def test_the_workspace_from_a_config_json_above_the_current_folder(
        azureml: AzureMLSetup, downloads: Path, tmp_path: Path) -> None:
    ws = azureml.workspace
    project = tmp_path / "project"
    (project / ".azureml").mkdir(parents=True)
    (project / ".azureml" / "config.json").write_text(json.dumps({
        "subscription_id": ws.subscription, "resource_group": ws.resource_group,
        "workspace_name": ws.name}))
    here = project / "src" / "train"
    here.mkdir(parents=True)
    (here / "config.json").write_text('{"learning_rate": 0.1}')  # not a workspace's: skipped
    azureml.put("cfg.bin", b"from config.json")
    result = _get(azureml, downloads, "azureml://datastores/blobs/paths/cfg.bin",
                  workspace=False, cwd=here)
    assert result.returncode == 0, result.stderr
    assert (downloads / "cfg.bin").read_bytes() == b"from config.json"


def test_no_workspace_anywhere_is_one_line_saying_where_to_give_it(
        azureml: AzureMLSetup, downloads: Path, tmp_path: Path) -> None:
    result = _get(azureml, downloads, "azureml://datastores/blobs/paths/x.bin",
                  workspace=False, cwd=tmp_path)
    assert result.returncode == 1
    line = _one_line(result)
    assert "no Azure ML workspace" in line and "--azureml-workspace" in line
    assert "config.json" in line


def test_endpoints_as_options(azureml: AzureMLSetup, downloads: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = os.environ["LADEN_AZUREML_ARM_ENDPOINT"]
    monkeypatch.setenv("LADEN_AZUREML_ARM_ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.setenv("LADEN_AZUREML_STORAGE_ENDPOINT", "https://127.0.0.1:9/{account}")
    azureml.put("opt.bin", b"endpoints from options")
    result = _get(azureml, downloads, "azureml://datastores/blobs/paths/opt.bin",
                  "--azureml-arm-endpoint", endpoint,
                  "--azureml-storage-endpoint", azureml.storage_endpoint)
    assert result.returncode == 0, result.stderr
    assert (downloads / "opt.bin").read_bytes() == b"endpoints from options"


# -- job outputs -------------------------------------------------------------------------------


def test_job_outputs_the_default_artifact_folder_and_a_named_output(
        azureml: AzureMLSetup, downloads: Path) -> None:
    ws = azureml.workspace
    artifacts = azureml.new_container(f"{azureml.container}-artifacts")
    ws.add_datastore("workspaceartifactstore", artifacts)
    ws.add_job("train-1", {
        "default": "azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.train-1",
        "model": "azureml://datastores/blobs/paths/azureml/train-1/model/"})
    azureml.put("ExperimentRun/dcid.train-1/outputs/metrics.json", b'{"loss": 0.1}',
                container=artifacts)
    azureml.put("ExperimentRun/dcid.train-1/outputs/ckpt/epoch1.ckpt", b"epoch 1",
                container=artifacts)
    azureml.put("ExperimentRun/dcid.train-1/logs/std_log.txt", b"log", container=artifacts)
    weights = random_bytes(600_000, seed=191)
    azureml.put("azureml/train-1/model/weights.bin", weights)

    run = _get(azureml, downloads / "run",
               "azureml://jobs/train-1/outputs/default/paths/outputs/")
    model = _get(azureml, downloads, "azureml://jobs/train-1/outputs/model/paths/weights.bin")
    assert run.returncode == 0, run.stderr
    assert model.returncode == 0, model.stderr
    assert (downloads / "run" / "metrics.json").read_bytes() == b'{"loss": 0.1}'
    assert (downloads / "run" / "ckpt" / "epoch1.ckpt").read_bytes() == b"epoch 1"
    assert not (downloads / "run" / "std_log.txt").exists()
    assert (downloads / "weights.bin").read_bytes() == weights
    urls = {r.url for r in journal_records(Path(os.environ["LADEN_STATE_DIR"]))}
    assert "azureml://jobs/train-1/outputs/default/paths/outputs/ckpt/epoch1.ckpt" in urls


def test_job_outputs_the_job_does_not_report_are_where_azure_ml_puts_them(
        azureml: AzureMLSetup, downloads: Path) -> None:
    ws = azureml.workspace
    artifacts = azureml.new_container(f"{azureml.container}-artifacts")
    ws.add_datastore("workspaceartifactstore", artifacts)
    ws.add_job("train-2", {"checkpoints": None})
    azureml.put("ExperimentRun/dcid.train-2/outputs/done.txt", b"done", container=artifacts)
    azureml.put("azureml/train-2/checkpoints/step-100.ckpt", b"step 100")  # default datastore
    result = _get(azureml, downloads,
                  "azureml://jobs/train-2/outputs/artifacts/paths/outputs/done.txt",
                  "azureml://jobs/train-2/outputs/checkpoints/paths/step-100.ckpt")
    assert result.returncode == 0, result.stderr
    assert (downloads / "done.txt").read_bytes() == b"done"
    assert (downloads / "step-100.ckpt").read_bytes() == b"step 100"
    assert ws.calls["default"] == 1


def test_a_missing_job_is_one_line(azureml: AzureMLSetup, downloads: Path) -> None:
    result = _get(azureml, downloads, "azureml://jobs/nope/outputs/default/paths/x.txt")
    assert result.returncode == 1
    line = _one_line(result)
    assert f"job nope not found in Azure ML workspace {azureml.workspace.name}" in line


# -- folders -----------------------------------------------------------------------------------


def test_a_datastore_folder_with_a_glob_keeps_its_layout(azureml: AzureMLSetup,
                                                        downloads: Path) -> None:
    files = {"data/a.csv": b"a", "data/sub/b.csv": b"b", "data/sub/deeper/c.csv": b"c",
             "data/notes.txt": b"not me", "other/d.csv": b"not me either"}
    for key, data in files.items():
        azureml.put(key, data)
    result = _get(azureml, downloads, "azureml://datastores/blobs/paths/data/",
                  "--glob", "*.csv")
    assert result.returncode == 0, result.stderr
    found = sorted(str(p.relative_to(downloads)) for p in downloads.rglob("*") if p.is_file())
    assert found == ["a.csv", "sub/b.csv", "sub/deeper/c.csv"]
    assert (downloads / "sub" / "deeper" / "c.csv").read_bytes() == b"c"
    # One resolution serves the listing and every file of it.
    assert azureml.workspace.calls == {"datastore": 1, "secrets": 1}
    urls = sorted(r.url for r in journal_records(Path(os.environ["LADEN_STATE_DIR"])))
    assert urls[0] == "azureml://datastores/blobs/paths/data/a.csv"


def test_a_data_lake_gen2_datastore_is_read_through_its_blob_endpoint(
        azureml: AzureMLSetup, downloads: Path) -> None:
    azureml.workspace.add_datastore("lake", azureml.container, kind="AzureDataLakeGen2")
    azureml.put("lake/part-0.parquet", b"columns")
    result = _get(azureml, downloads, "azureml://datastores/lake/paths/lake/part-0.parquet")
    assert result.returncode == 0, result.stderr
    assert (downloads / "part-0.parquet").read_bytes() == b"columns"


# -- identity-based datastores -----------------------------------------------------------------


def test_an_identity_based_datastore_is_read_with_your_own_token(azureml: AzureMLSetup,
                                                                 downloads: Path) -> None:
    azureml.workspace.add_datastore("credentialless", azureml.container, credentials="None")
    data = random_bytes(1_500_000, seed=192)
    azureml.put("id/data.bin", data)
    before = azureml.server.token_requests[STORAGE_AUDIENCE]
    result = _get(azureml, downloads, "azureml://datastores/credentialless/paths/id/data.bin",
                  "-c", "3")
    assert result.returncode == 0, result.stderr
    assert (downloads / "data.bin").read_bytes() == data
    assert azureml.workspace.calls == {"datastore": 1}  # no secrets asked for
    assert azureml.server.token_requests[STORAGE_AUDIENCE] == before + 1


def test_a_storage_account_refusing_your_token_names_the_datastore_and_the_role(
        azureml: AzureMLSetup, downloads: Path) -> None:
    azureml.workspace.add_datastore("credentialless", azureml.container, credentials="None")
    azureml.put("id/data.bin", b"private")
    azureml.server.storage_issuer = "https://sts.example.invalid/"
    try:
        result = _get(azureml, downloads, "azureml://datastores/credentialless/paths/id/data.bin")
    finally:
        azureml.server.storage_issuer = None
    assert result.returncode == 1
    line = _one_line(result)
    assert "storage account of datastore credentialless" in line
    assert "Storage Blob Data Reader" in line


# -- refusals ----------------------------------------------------------------------------------


def test_a_missing_datastore_is_one_line_naming_the_workspace(azureml: AzureMLSetup,
                                                             downloads: Path) -> None:
    result = _get(azureml, downloads, "azureml://datastores/nope/paths/x.bin")
    assert result.returncode == 1  # laden get: a download failed (laden run says 4: permanent)
    line = _one_line(result)
    assert f"datastore nope not found in Azure ML workspace {azureml.workspace.name}" in line
    assert "404" in line


def test_a_403_from_resource_manager_is_one_line_and_permanent(
        azureml: AzureMLSetup, downloads: Path, tmp_path: Path) -> None:
    azureml.workspace.refuse("datastores/blobs")
    azureml.put("x.bin", b"x")
    started = time.monotonic()
    result = _get(azureml, downloads, "azureml://datastores/blobs/paths/x.bin")
    assert result.returncode == 1, result.stderr
    line = _one_line(result)
    assert ("Azure Resource Manager refused access to datastore blobs of Azure ML workspace "
            f"{azureml.workspace.name}") in line
    assert "AuthorizationFailed (HTTP 403)" in line
    assert time.monotonic() - started < 20, "a refusal is not worth retrying"

    manifest = tmp_path / "refused.yaml"
    manifest.write_text(yaml.safe_dump({"download_root": str(downloads), "download_items": [{
        "type": "azureml", **_manifest_workspace(azureml),
        "url": "azureml://datastores/blobs/paths/x.bin"}]}))
    run = run_laden("run", "-q", str(manifest))
    assert run.returncode == 4, run.stderr
    assert "AuthorizationFailed" in run.stderr + run.stdout


def test_a_refused_azure_sign_in_is_one_line(azureml: AzureMLSetup, downloads: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret-9f8e")
    result = _get(azureml, downloads, "azureml://datastores/blobs/paths/x.bin")
    assert result.returncode == 1
    line = _one_line(result)
    assert "could not sign in to Azure" in line and "AADSTS7000215" in line
    assert "not-the-secret-9f8e" not in result.stderr + result.stdout
    assert not azureml.workspace.calls, "Resource Manager was asked without a token"


# -- secrets that expire -----------------------------------------------------------------------


def test_an_expired_sas_is_asked_for_again_when_the_download_resumes(
        azureml: AzureMLSetup, downloads: Path, laden_dirs: dict[str, Path]) -> None:
    import requests

    server = azureml.server
    azureml.workspace.add_datastore("sas", azureml.container, credentials="Sas")
    data = random_bytes(4 * 1024 * 1024, seed=193)
    azureml.put("big.bin", data)
    url = "azureml://datastores/sas/paths/big.bin"
    server.sas_lifetime = datetime.timedelta(seconds=12)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "laden", "get", "-q", "-o", str(downloads),
             *azureml.workspace_args(), "--limit-rate", "300K", "-c", "2", url],
            env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: journal_done(laden_dirs["state"]) > 0, timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 130, process.stderr.read() if process.stderr else ""
    finally:
        server.sas_lifetime = datetime.timedelta(hours=1)
    first_sas = server.issued_sas[-1]
    expiry = datetime.datetime.fromisoformat(parse_qs(first_sas)["se"][0])
    assert datetime.datetime.now(datetime.UTC) < expiry, "the first run outlived its SAS"
    part_done = journal_done(laden_dirs["state"])
    assert 0 < part_done < len(data)
    time.sleep(max(0.0, (expiry - datetime.datetime.now(datetime.UTC)).total_seconds() + 1.5))
    refused = requests.get(f"{azureml.storage.account_url}/{azureml.container}/big.bin?"
                           f"{first_sas}", verify=azureml.storage.ca_file, timeout=10)
    assert refused.status_code == 403, "the first run's SAS should have expired by now"

    resumed = _get(azureml, downloads, url)
    assert resumed.returncode == 0, resumed.stderr
    assert (downloads / "big.bin").read_bytes() == data
    assert azureml.workspace.calls["secrets"] == 2
    assert server.issued_sas[-1] != first_sas


def test_a_sas_that_expires_mid_download_is_renewed_in_the_same_process(
        azureml: AzureMLSetup, downloads: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from laden.sources import azureml as source

    monkeypatch.setattr(source, "FRESH", 1.0)
    server = azureml.server
    azureml.workspace.add_datastore("sas", azureml.container, credentials="Sas")
    data = random_bytes(2 * 1024 * 1024, seed=194)
    azureml.put("slow.bin", data)
    server.sas_lifetime = datetime.timedelta(seconds=3)
    try:
        with manager() as m:
            info = m.wait(m.add("azureml://datastores/sas/paths/slow.bin", str(downloads),
                                source_settings=azureml.workspace_settings(),
                                limit_rate=400_000, connections=2), timeout=60)
    finally:
        server.sas_lifetime = datetime.timedelta(hours=1)
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == data
    assert azureml.workspace.calls["secrets"] >= 2


# -- the Python API and manifests --------------------------------------------------------------


def test_the_python_api_downloads_a_folder_and_connects_only_to_127_0_0_1(
        azureml: AzureMLSetup, downloads: Path) -> None:
    for index in range(5):
        azureml.put(f"shards/part-{index}.bin", random_bytes(100_000, seed=index))
    with _connections() as seen, manager() as m:
        ids = m.add_all("azureml://datastores/blobs/paths/shards/", str(downloads) + "/",
                        source_settings=azureml.workspace_settings())
        infos = [m.wait(i) for i in ids]
    assert [i.state for i in infos] == [State.DONE] * 5, [i.message for i in infos]
    for index in range(5):
        assert (downloads / f"part-{index}.bin").read_bytes() == random_bytes(100_000,
                                                                             seed=index)
    assert seen and {host for host, _ in seen} == {"127.0.0.1"}, seen


def test_a_manifest_item_of_type_azureml(azureml: AzureMLSetup, downloads: Path,
                                        tmp_path: Path) -> None:
    azureml.put("corpus/one.jsonl", b"{}\n")
    azureml.put("corpus/two.jsonl", b"{}\n{}\n")
    azureml.put("corpus/readme.md", b"# no")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"download_root": str(downloads), "download_items": [{
        "type": "azureml", "name": "corpus", **_manifest_workspace(azureml),
        "url": "azureml://datastores/blobs/paths/corpus/", "glob": "*.jsonl",
        "target_path": "corpus/"}]}))
    result = run_laden("run", "-q", str(manifest))
    assert result.returncode == 0, result.stderr
    found = sorted(p.name for p in (downloads / "corpus").iterdir())
    assert found == ["one.jsonl", "two.jsonl"]


def _manifest_workspace(azureml: AzureMLSetup) -> dict[str, str]:
    ws = azureml.workspace
    return {"workspace": ws.name, "resource_group": ws.resource_group,
            "subscription": ws.subscription}


# -- secrets -----------------------------------------------------------------------------------


def test_no_secret_reaches_the_output_the_log_or_the_journal(
        azureml: AzureMLSetup, laden_dirs: dict[str, Path]) -> None:
    downloads = laden_dirs["downloads"]
    azureml.workspace.add_datastore("sas", azureml.container, credentials="Sas")
    azureml.put("k.bin", b"by key")
    azureml.put("s.bin", b"by sas")
    outputs = {}
    for name, url in (("key", "azureml://datastores/blobs/paths/k.bin"),
                      ("sas", "azureml://datastores/sas/paths/s.bin")):
        result = _get(azureml, downloads, url, "--json", "--log-level", "debug")
        assert result.returncode == 0, result.stderr
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = result.stdout, result.stderr
    listing = run_laden("list", "--json")
    outputs["list"] = listing.stdout
    assert list(laden_dirs["logs"].rglob("*.log")), "no log was written"
    server = azureml.server
    secrets = {"account key": azureml.storage.account_key,
               "client secret": server.client_secret,
               **{f"token {n}": token for n, token in enumerate(server.issued_tokens)},
               **{f"sas {n}": sas for n, sas in enumerate(server.issued_sas)},
               **{f"sas signature {n}": sas.split("sig=")[1].split("&")[0]
                  for n, sas in enumerate(server.issued_sas)}}
    assert server.issued_sas
    found = []
    for name, secret in secrets.items():
        for folder in (laden_dirs["state"], laden_dirs["config"], laden_dirs["logs"]):
            found += [f"{name} in {p}" for p in folder.rglob("*")
                      if p.is_file() and secret.encode() in p.read_bytes()]
        found += [f"{name} in {where}" for where, text in outputs.items() if secret in text]
    assert not found, found


# -- helpers -----------------------------------------------------------------------------------


class _connections:
    """Every address this process connects a socket to, while inside the block."""

    watching: list[tuple[str, int]] | None = None
    installed = False

    def __enter__(self) -> list[tuple[str, int]]:
        if not _connections.installed:
            sys.addaudithook(_connections._audit)
            _connections.installed = True
        _connections.watching = []
        return _connections.watching

    def __exit__(self, *exc_info: object) -> None:
        _connections.watching = None

    @staticmethod
    def _audit(event: str, args: tuple[object, ...]) -> None:
        watching = _connections.watching
        if event == "socket.connect" and watching is not None and isinstance(args[1], tuple):
            watching.append(args[1][:2])  # type: ignore[arg-type]
