"""azureml:// addresses, and where the workspace and Resource Manager come from: no network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from laden.core.errors import InputError
from laden.sources.azureml_addresses import WorkspaceName, output_location, parse_address
from laden.sources.azureml_workspace import find_workspace, resource_manager
from laden.sources.registry import source_scheme

WS = WorkspaceName("sub-1", "rg-1", "ws-1")


@pytest.mark.parametrize("url, expected", [
    ("azureml://datastores/blobs/paths/data/a%20b.csv",
     (None, "blobs", None, None, "data/a b.csv")),
    ("azureml://datastores/blobs/paths/", (None, "blobs", None, None, "")),
    ("azureml://jobs/train-1/outputs/default/paths/outputs/*.json",
     (None, None, "train-1", "default", "outputs/*.json")),
    ("azureml://jobs/train-1/outputs/model", (None, None, "train-1", "model", "")),
    ("azureml://subscriptions/sub-1/resourcegroups/rg-1/workspaces/ws-1/datastores/blobs/paths/x",
     (WS, "blobs", None, None, "x")),
    ("azureml://subscriptions/sub-1/resourceGroups/rg-1/providers/"
     "Microsoft.MachineLearningServices/workspaces/ws-1/jobs/j/outputs/o/paths/y/",
     (WS, None, "j", "o", "y/")),
])
def test_the_forms_of_an_address(url: str, expected: tuple[object, ...]) -> None:
    address = parse_address(url)
    assert (address.workspace, address.datastore, address.job, address.output,
            address.path) == expected
    # A file found under it keeps the prefix as it was written.
    assert address.with_path("q r/z.bin") == address.base + "q%20r/z.bin"
    assert url.startswith(address.base.rstrip("/").removesuffix("/paths"))


@pytest.mark.parametrize("url", ["azureml://datastores/blobs", "azureml://registries/r/x",
                                 "azureml://jobs/j/outputs/o/stray",
                                 "azureml://subscriptions/s/workspaces/w/datastores/d/paths/x"])
def test_malformed_addresses_say_which_forms_there_are(url: str) -> None:
    with pytest.raises(InputError, match="azureml://datastores/NAME/paths/PATH"):
        parse_address(url)


def test_where_a_job_output_is() -> None:
    assert output_location("azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.j") \
        == (None, "workspaceartifactstore", "ExperimentRun/dcid.j")
    assert output_location("azureml://datastores/blobs/paths/azureml/j/model/") == (
        None, "blobs", "azureml/j/model/")
    assert output_location("azureml://subscriptions/sub-1/resourcegroups/rg-1/workspaces/ws-1/"
                           "datastores/d/paths/p") == (WS, "d", "p")


def test_the_workspace_is_looked_for_part_by_part(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "subscription_id": "sub-cfg", "resource_group": "rg-cfg", "workspace_name": "ws-cfg"}))
    job = {"AZUREML_ARM_SUBSCRIPTION": "sub-job", "AZUREML_ARM_RESOURCEGROUP": "rg-job",
           "AZUREML_ARM_WORKSPACE_NAME": "ws-job"}
    cli = {"AZURE_SUBSCRIPTION_ID": "sub-cli", "AZURE_DEFAULTS_GROUP": "rg-cli",
           "AZURE_DEFAULTS_WORKSPACE": "ws-cli"}
    nothing: dict[str, str] = {}
    folder = str(tmp_path)
    assert find_workspace(WS, {"azureml_workspace": "other"}, job, folder) == WS
    assert find_workspace(None, nothing, job, folder) == WorkspaceName("sub-job", "rg-job",
                                                                         "ws-job")
    assert find_workspace(None, nothing, cli, folder) == WorkspaceName("sub-cli", "rg-cli",
                                                                         "ws-cli")
    assert find_workspace(None, nothing, nothing, folder) == WorkspaceName("sub-cfg", "rg-cfg",
                                                                             "ws-cfg")
    # Each part from the first place that has it: an option over the job's, the job's over
    # config.json's.
    assert find_workspace(None, {"azureml_workspace": "ws-opt"},
                          {"AZUREML_ARM_RESOURCEGROUP": "rg-job"}, folder) == WorkspaceName(
        "sub-cfg", "rg-job", "ws-opt")
    resource_id = ("/subscriptions/sub-id/resourceGroups/rg-id/providers/"
                   "Microsoft.MachineLearningServices/workspaces/ws-id")
    assert find_workspace(None, {"azureml_workspace": resource_id}, job, folder) == (
        WorkspaceName("sub-id", "rg-id", "ws-id"))


def test_config_json_in_dot_azureml_above_wins_and_scope_is_read(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(json.dumps({
        "Scope": "/subscriptions/s/resourceGroups/r/providers/"
                 "Microsoft.MachineLearningServices/workspaces/w"}))
    (deep / "config.json").write_text(json.dumps({
        "subscription_id": "s2", "resource_group": "r2", "workspace_name": "w2"}))
    assert find_workspace(None, {}, {}, str(deep)) == WorkspaceName("s", "r", "w")


def test_no_workspace_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no subscription or resource group"):
        find_workspace(None, {"azureml_workspace": "ws"}, {}, str(tmp_path))


def test_resource_manager_endpoint_and_token_scope() -> None:
    from laden.core.options import DownloadOptions

    none = DownloadOptions()
    assert resource_manager(none, None, {}) == ("https://management.azure.com",
                                                "https://management.azure.com/.default")
    china = {"AZUREML_CURRENT_CLOUD": "AzureChinaCloud"}
    assert resource_manager(none, None, china) == (
        "https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default")
    proxied = DownloadOptions(source_settings={"azureml_arm_endpoint": "https://arm.corp/"})
    assert resource_manager(proxied, None, {}) == ("https://arm.corp",
                                                   "https://management.azure.com/.default")
    usgov = DownloadOptions(source_settings={
        "azureml_arm_endpoint": "https://management.usgovcloudapi.net"})
    assert resource_manager(usgov, None, {})[1] == "https://management.usgovcloudapi.net/.default"


def test_the_registry_knows_azureml_and_loads_no_azure_sdk_until_an_address_resolves() -> None:
    assert source_scheme("azureml://datastores/d/paths/x") == "azureml"
    code = (
        "import sys\n"
        "from laden.sources.registry import SourceRegistry\n"
        "source = SourceRegistry().for_url('azureml://datastores/d/paths/x/')\n"
        "from laden.core.options import DownloadOptions\n"
        "assert source.is_folder('azureml://datastores/d/paths/x/', DownloadOptions())\n"
        "print([m for m in sys.modules if m.startswith(('azure', 'msal', 'httpx'))])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_tests_sign_in_only_with_the_environment_never_a_managed_identity() -> None:
    """The test environment (servers.sdk_env) keeps DefaultAzureCredential from probing the
    instance metadata service (169.254.169.254) or running the az CLI."""
    from azure.identity import DefaultAzureCredential, EnvironmentCredential

    credential = DefaultAzureCredential()
    try:
        assert [type(c) for c in credential.credentials] == [EnvironmentCredential]
    finally:
        credential.close()
