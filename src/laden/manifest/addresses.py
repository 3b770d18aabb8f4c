"""How a manifest's item types map onto laden's sources: addresses and option names.

Both tables are made from the sources' declarations (`core.known_sources`): each source with a
manifest type is one, an object store (a source that names its containers field) addresses its
items as `{scheme}://{container}/{key}`, and each connection field of an item goes either into
`DownloadOptions.source_settings` (not secret, journalled) or into `DownloadOptions.secrets`
(never journalled), under the name the source reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ..core.known_sources import KNOWN_SOURCES

SETTING = "source_settings"
SECRET = "secrets"


@dataclass(frozen=True)
class Field:
    option: str
    """SETTING or SECRET: which DownloadOptions mapping the value goes into."""
    key: str
    """The key the source reads in that mapping."""


@dataclass(frozen=True)
class ObjectStore:
    scheme: str
    """Address scheme: {scheme}://{bucket or container}/{key}."""
    containers: str
    """The manifest field listing the buckets or containers."""


OBJECT_STORES: dict[str, ObjectStore] = {
    source.manifest_type: ObjectStore(source.schemes[0], source.containers)
    for source in KNOWN_SOURCES if source.manifest_type and source.containers
}

# Manifest field -> where its value goes. A field whose name ends in `_file` is a path passed
# on as it is (it must exist); any other field may instead be given as `{field}_file`, a file
# holding the value (Kubernetes secrets mounted as files), or as Kaiwo's {value: ..} / {file: ..}.
# A secret read from a file is passed as its value in `secrets` and as its path in the
# `{key}_file` setting, which the cloud sources read again when a download is resumed later
# by `laden resume` (secrets are never journalled; the path of the file holding one is).
CONNECTION_FIELDS: dict[str, dict[str, Field]] = {
    source.manifest_type: {
        option.manifest: Field(SECRET if option.secret else SETTING, option.key)
        for option in source.options if option.manifest
    }
    for source in KNOWN_SOURCES if source.manifest_type
}
SCHEMES: dict[str, tuple[str, ...]] = {
    source.manifest_type: source.schemes for source in KNOWN_SOURCES if source.manifest_type}
"""The address schemes of each item type's source (a url item's address must use one)."""

# Fields that are secret whatever the type (they are DownloadOptions fields of their own).
CREDENTIAL_FIELDS = ("username", "password", "bearer_token")


def object_address(store: ObjectStore, container: str, key: str, *, folder: bool) -> str:
    """s3://bucket/key, or s3://bucket/prefix/ for a folder ("" or "." is the whole bucket)."""
    key = key.strip("/")
    if key == ".":
        key = ""
    path = quote(key, safe="/")
    if folder and path:
        path += "/"
    return f"{store.scheme}://{container}/{path}"


HF_REPO_TYPES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def hf_address(repo_id: str, revision: str, path: str = "", repo_type: str = "model") -> str:
    """hf://[datasets/]owner/repo@revision/path; an empty path names the whole repository."""
    kind = HF_REPO_TYPES[repo_type]
    revision = quote(revision, safe="")  # refs/pr/1 is one revision, not a path
    return f"hf://{kind}{repo_id}@{revision}/{quote(path.strip('/'), safe='/')}"
