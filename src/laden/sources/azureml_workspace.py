"""Which Azure ML workspace a short `azureml://` address means, and where Resource Manager is.

A long-form address names its workspace. For the short forms, each of the subscription, the
resource group and the workspace name is taken from the first place that gives it:

1. the download's settings (`azureml_subscription`, `azureml_resource_group`,
   `azureml_workspace`; `--azureml-*` on the command line, a manifest item, the settings file).
   `azureml_workspace` may also be the workspace's resource id
   (`/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.MachineLearningServices/
   workspaces/WS`, as the portal and `az ml workspace show --query id` give it);
2. the environment every Azure ML job runs with: `AZUREML_ARM_SUBSCRIPTION`,
   `AZUREML_ARM_RESOURCEGROUP`, `AZUREML_ARM_WORKSPACE_NAME`;
3. `AZURE_SUBSCRIPTION_ID` (the Azure SDK samples' and azd's name), then the az CLI's defaults
   as its environment gives them, `AZURE_DEFAULTS_GROUP` and `AZURE_DEFAULTS_WORKSPACE`
   (`az configure --defaults group=RG workspace=WS`);
4. a `config.json` (the file the portal's "Download config.json" and the Azure ML tools write:
   `subscription_id`, `resource_group`, `workspace_name`, or a `Scope` resource id) in
   `.azureml/`, `aml_config/` or the folder itself, looked for from the current folder up, as
   azure-ai-ml's `MLClient.from_config` looks. A `config.json` without those keys is not one.

Resource Manager is `azureml_arm_endpoint` (`LADEN_AZUREML_ARM_ENDPOINT`), else the endpoint of
the cloud `AZUREML_CURRENT_CLOUD` names (as azure-ai-ml reads it), else the public cloud's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.config import Config
from ..core.errors import InputError
from . import cloud
from .azureml_addresses import WorkspaceName

CLOUDS = {
    "azurecloud": "https://management.azure.com",
    "azurechinacloud": "https://management.chinacloudapi.cn",
    "azureusgovernment": "https://management.usgovcloudapi.net",
}
"""Resource Manager of each cloud, by the names `AZUREML_CURRENT_CLOUD` takes."""
PUBLIC = CLOUDS["azurecloud"]
SETTINGS = ("azureml_subscription", "azureml_resource_group", "azureml_workspace")
ENVIRONMENTS = (
    ("AZUREML_ARM_SUBSCRIPTION", "AZUREML_ARM_RESOURCEGROUP", "AZUREML_ARM_WORKSPACE_NAME"),
    ("AZURE_SUBSCRIPTION_ID", "AZURE_DEFAULTS_GROUP", "AZURE_DEFAULTS_WORKSPACE"),
)
CONFIG_FOLDERS = (".azureml", "aml_config", "")
CONFIG_LEVELS = 20
"""Folders looked in above the current one, as azure-ai-ml's `from_config` does."""
MAX_CONFIG_BYTES = 64 * 1024


def find_workspace(named: WorkspaceName | None, settings: Mapping[str, Any],
                   environ: Mapping[str, str], folder: str) -> WorkspaceName:
    """The workspace of an address: its own (`named`), else from `settings` (see
    `workspace_settings`), the environment and a config.json found from `folder` up.

    Raises:
        InputError: a part is found nowhere, saying where it is looked for.
    """
    if named is not None:
        return named
    found = [from_resource_id(str(settings.get("azureml_workspace") or "")) or tuple(
        str(settings.get(name) or "") for name in SETTINGS)]
    found += [tuple(environ.get(name, "") for name in names) for names in ENVIRONMENTS]
    parts = _first_of_each(found)
    if not all(parts):
        parts = _first_of_each([parts, _config_file(folder)])
    if not all(parts):
        missing = [what for what, part in zip(("subscription", "resource group", "workspace"),
                                              parts, strict=True) if not part]
        raise InputError(
            f"no Azure ML workspace for the address (no {' or '.join(missing)}): give "
            "--azureml-workspace, --azureml-resource-group and --azureml-subscription (or the "
            "workspace's resource id as --azureml-workspace), run inside an Azure ML job, or "
            "put the workspace's config.json in this folder or one above it")
    return WorkspaceName(*parts)


def workspace_settings(options: Any, config: Config | None) -> dict[str, Any]:
    """The three workspace settings of a download (its own, else the settings file's)."""
    return {name: cloud.setting(options, config, name) for name in SETTINGS}


def from_resource_id(text: str) -> tuple[str, str, str] | None:
    """(subscription, resource group, workspace) of a workspace's resource id, else None."""
    parts = text.strip().strip("/").split("/")
    if len(parts) != 8 or [p.lower() for p in parts[0:8:2]] != [
            "subscriptions", "resourcegroups", "providers", "workspaces"]:
        return None
    return parts[1], parts[3], parts[7]


def resource_manager(options: Any, config: Config | None,
                     environ: Mapping[str, str]) -> tuple[str, str]:
    """(the Resource Manager endpoint, the token scope for it).

    The scope is the endpoint's own when it is a known cloud's; an endpoint in front of one (a
    proxy, a test) takes the scope of the cloud `AZUREML_CURRENT_CLOUD` names, or the public's.
    """
    current = CLOUDS.get(environ.get("AZUREML_CURRENT_CLOUD", "").strip().lower(), PUBLIC)
    endpoint = str(cloud.setting(options, config, "azureml_arm_endpoint")
                   or environ.get("LADEN_AZUREML_ARM_ENDPOINT") or current).rstrip("/")
    known = endpoint if endpoint in CLOUDS.values() else current
    return endpoint, f"{known}/.default"


def _first_of_each(candidates: list[tuple[str, ...]]) -> tuple[str, str, str]:
    first = ["", "", ""]
    for candidate in candidates:
        for index, value in enumerate(candidate):
            if not first[index] and value and value.strip():
                first[index] = value.strip()
    return first[0], first[1], first[2]


def _config_file(folder: str) -> tuple[str, str, str]:
    """The workspace of the nearest usable config.json, or empty names."""
    here = Path(folder).resolve()
    places = (here, *here.parents)[: CONFIG_LEVELS + 1]
    for sub in CONFIG_FOLDERS:  # as azure-ai-ml: every .azureml/ up the tree before the rest
        for place in places:
            found = _read_config(place / sub / "config.json")
            if found:
                return found
    return "", "", ""


def _read_config(path: Path) -> tuple[str, str, str] | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    scope = from_resource_id(str(data.get("Scope") or ""))
    if scope:
        return scope
    values = tuple(data.get(k) for k in ("subscription_id", "resource_group", "workspace_name"))
    if all(isinstance(v, str) and v.strip() for v in values):
        return tuple(str(v).strip() for v in values)  # type: ignore[return-value]
    return None
