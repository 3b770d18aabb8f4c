"""What an `azureml://` address names: a path in a datastore, or in a job's output.

The forms Azure ML itself writes (azure-ai-ml's `SHORT_URI_FORMAT`, `LONG_URI_FORMAT`,
`JOB_URI_REGEX_FORMAT`):

```
azureml://datastores/NAME/paths/PATH
azureml://jobs/JOB/outputs/OUTPUT/paths/PATH
azureml://subscriptions/SUB/resourcegroups/RG/workspaces/WS/datastores/NAME/paths/PATH
```

The long form may be written with `resourceGroups`, with the
`providers/Microsoft.MachineLearningServices/` segment of a resource id, and with a job output
instead of a datastore. A job output address may stop at its name (`.../outputs/default`), which
is the whole output. PATH is percent-decoded as an object key is (`cloud.split_address`); an
empty PATH, one ending in `/` or holding a glob is a folder (`listing`). Addresses made here from
a listing keep the prefix as it was written, so a journalled address reads as the user wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from ..core.errors import InputError
from ..core.urls import shown_address

SCHEME = "azureml"
_KEY_SAFE = "/~!$&'()*+,;=:@"
"""The characters left unquoted in a path: the ones `cloud.object_url` keeps in a key."""
_WORKSPACE = re.compile(
    r"subscriptions/(?P<subscription>[^/]+)/resourcegroups/(?P<group>[^/]+)/"
    r"(?:providers/microsoft\.machinelearningservices/)?workspaces/(?P<workspace>[^/]+)/",
    re.IGNORECASE)
_DATASTORE = re.compile(r"datastores/(?P<datastore>[^/]+)/paths(?:/|$)")
_JOB = re.compile(r"jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths(?:/|$)|/?$)")
FORMS = ("azureml://datastores/NAME/paths/PATH, azureml://jobs/JOB/outputs/NAME/paths/PATH, or "
         "azureml://subscriptions/SUB/resourcegroups/RG/workspaces/WS/datastores/NAME/paths/PATH")


@dataclass(frozen=True)
class WorkspaceName:
    """The three names of a workspace, as an address or an option gives them."""

    subscription: str
    resource_group: str
    name: str


@dataclass(frozen=True)
class AzureMLAddress:
    workspace: WorkspaceName | None
    """Named by the long form; None for the short forms (the workspace comes from elsewhere)."""
    datastore: str | None
    """The datastore's name, or None for a job output."""
    job: str | None
    output: str | None
    path: str
    """Inside the datastore, or inside the job output; percent-decoded."""
    base: str
    """The address up to and including `/paths/`, as written."""

    def with_path(self, path: str) -> str:
        """The address of `path` (in the same datastore or job output)."""
        return self.base + quote(path, safe=_KEY_SAFE)

    @property
    def target(self) -> str:
        """What the address names, in words: `datastore X` or `output Y of job Z`."""
        if self.job is not None:
            return f"output {self.output} of job {self.job}"
        return f"datastore {self.datastore}"


def parse_address(url: str) -> AzureMLAddress:
    """Read an `azureml://` address.

    Raises:
        InputError: not one of the forms in the module docstring.
    """
    scheme, found, rest = url.partition("://")
    if not found or scheme.lower() != SCHEME:
        raise InputError(f"{shown_address(url)} is not an azureml:// address")
    prefix = url[: len(scheme) + 3]
    workspace = None
    named = _WORKSPACE.match(rest)
    if named:
        workspace = WorkspaceName(unquote(named["subscription"]), unquote(named["group"]),
                                  unquote(named["workspace"]))
        prefix, rest = prefix + rest[: named.end()], rest[named.end():]
    store = _DATASTORE.match(rest)
    job = None if store else _JOB.match(rest)
    matched = store or job
    if matched is None:
        raise InputError(f"malformed Azure ML address {shown_address(url)}: expected {FORMS}")
    head = rest[: matched.end()]
    if not head.endswith("/"):
        head += "/" if head.endswith("/paths") else "/paths/"
    elif not head.endswith("/paths/"):
        head += "paths/"
    return AzureMLAddress(
        workspace=workspace,
        datastore=unquote(store["datastore"]) if store else None,
        job=unquote(job["job"]) if job else None,
        output=unquote(job["output"]) if job else None,
        path=unquote(rest[matched.end():]),
        base=prefix + head,
    )


_RUN_FOLDER = re.compile(r"datastores/(?P<datastore>[^/]+)/(?P<path>ExperimentRun/.*)")


def output_location(uri: str) -> tuple[WorkspaceName | None, str, str]:
    """Where a job output's `uri` (as Resource Manager reports it) is: (the workspace when the
    uri names one, the datastore, the path in it).

    Besides the datastore forms, a run's artifact folder may be written without `paths/`
    (`azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.JOB`).

    Raises:
        InputError: the uri is not in the datastore of a workspace.
    """
    scheme, _, rest = uri.partition("://")
    folder = _RUN_FOLDER.fullmatch(rest) if scheme.lower() == SCHEME else None
    if folder is not None:
        return None, unquote(folder["datastore"]), unquote(folder["path"])
    address = parse_address(uri)
    if address.datastore is None:
        raise InputError(f"{shown_address(uri)} is not a path in a datastore")
    return address.workspace, address.datastore, address.path
