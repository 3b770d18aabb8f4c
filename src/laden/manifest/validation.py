"""Checking a manifest completely before anything is downloaded, and resolving what it names.

A manifest with an unknown type, a missing field, both `file` and `folder`, a secret file that
does not exist or a target path outside `download_root` is rejected as a whole, every problem
named by item and field. Nothing touches the network here.

Every form Kaiwo's downloader has read is read here too: `download_items` with a `type` each
(its README), or one list per type at the top (`s3`, `gcs`, `azure_blob`, `hf`: its own test
manifest); buckets and containers as `buckets`/`containers` with `name`, or as the older
`items: - bucket: NAME` / `- container: NAME`; their entries as `items` of `file`/`folder`, or as
`files`/`folders` with `path`; secrets as values, `FIELD_file`, or `{value: ...}`/`{file: ...}`;
and camelCase names (`targetPath`, `downloadRoot`, `azureBlob`) as well as snake_case.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any
from urllib.parse import urlsplit

from ..core.config import MAX_CONNECTIONS
from ..core.errors import LadenError
from ..core.options import DownloadOptions
from ..core.urls import shown_address, strip_credentials
from ..sources.registry import scheme_of
from .addresses import (
    CONNECTION_FIELDS,
    CREDENTIAL_FIELDS,
    HF_REPO_TYPES,
    OBJECT_STORES,
    SCHEMES,
    SECRET,
    ObjectStore,
    hf_address,
    object_address,
)
from .fields import PATH_SHOWN, Fields, Problems, cut, shown
from .loading import ManifestError, read_document
from .model import DEFAULT_POLICY, POLICIES, Item, Manifest, Target
from .uploads import upload_items

TYPES = tuple(CONNECTION_FIELDS)
"""Every source's manifest type (`core.known_sources`)."""
KAIWO_LISTS = {"s3": "s3", "gcs": "gcs", "azure_blob": "azure-blob", "hf": "hf", "git": "git"}
"""Kaiwo's form with one list of items per type at the top, in the order Kaiwo runs them
(Kaiwo's own format: the types it knows, git included)."""
OLD_CONTAINER_NAME = {"buckets": "bucket", "containers": "container"}
"""Kaiwo's older `items: - bucket: NAME` (`- container: NAME` for Azure)."""
COMMON = {"type", "name", "checksum", "connections", "limit_rate", "overwrite", "retry"}
SPECIFIC: dict[str, set[str]] = {
    # anonymous: a public bucket or repository, asked without credentials (`--anonymous`).
    **{kind: {store.containers, "items", "anonymous"} for kind, store in OBJECT_STORES.items()},
    "hf": {"repo_id", "files", "revision", "repo_type", "target_path", "anonymous"},
    "http": {"url", "target_path", "glob", "headers", "ca_bundle", *CREDENTIAL_FIELDS},
    "ftp": {"url", "target_path", "glob", "ca_bundle", "username", "password"},
    "azureml": {"url", "target_path", "glob"},
}
ENTRY_FIELDS = {"file", "folder", "path", "target_path", "glob", "checksum"}
DEFAULT_GLOB = "**/*"
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
MAX_PROBLEMS_SHOWN = 20


def load_manifest(path: str, *, cwd: str | None = None) -> Manifest:
    """Read and check the manifest at `path`; raises ManifestError naming every problem."""
    path = os.path.abspath(path)
    document = read_document(path)
    problems = Problems()
    top = Fields(document, "", problems, {"download_root", "download_items", "upload_root",
                                          "upload_items", *KAIWO_LISTS})
    root = os.path.abspath(os.path.expanduser(top.text("download_root") or cwd or os.getcwd()))
    by_type = [{"type": kind, **entry} if isinstance(entry, dict) else entry
               for key, kind in KAIWO_LISTS.items() for entry in top.list(key)]
    raw_uploads = top.list("upload_items")
    raw_items = top.list("download_items", required=not by_type and not raw_uploads) + by_type
    if top.has("download_items") and not raw_items:
        problems.add("download_items", "is empty: nothing to download")
    if top.has("upload_items") and not raw_uploads:
        problems.add("upload_items", "is empty: nothing to upload")
    items = [_item(index, data, root, problems) for index, data in enumerate(raw_items, 1)]
    _check_duplicates(items, problems)
    upload_root = os.path.abspath(os.path.expanduser(top.text("upload_root") or cwd
                                                     or os.getcwd()))
    items += upload_items(raw_uploads, upload_root, problems, item_options, SPECIFIC)
    if problems.lines:
        count = len(problems.lines)
        if count == 1:
            raise ManifestError(f"{path}: {problems.lines[0]}")
        # Enough to fix in one round; a generated manifest with 100,000 broken items would
        # otherwise print 100,000 lines.
        lines = problems.lines[:MAX_PROBLEMS_SHOWN]
        if count > MAX_PROBLEMS_SHOWN:
            lines.append(f"... and {count - MAX_PROBLEMS_SHOWN} more")
        raise ManifestError(f"{path} has {count} problems:\n  " + "\n  ".join(lines))
    return Manifest(path=path, download_root=root, items=tuple(items))


def _item(index: int, data: Any, root: str, problems: Problems) -> Item:
    raw_name = data.get("name") if isinstance(data, dict) else None
    name = str(raw_name) if isinstance(raw_name, str | int | float) and raw_name else ""
    where = f"item {index}" + (f" ({shown(name)})" if name else "")
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "git":
        problems.add(f"{where}, field type", "git repositories are not something laden "
                     "downloads: clone them with git")
        return Item(index, name, kind, ())
    if not isinstance(kind, str) or kind not in TYPES:
        what = "is missing" if kind is None else f"{shown(kind)} is not a known type"
        problems.add(f"{where}, field type", f"{what} (known: {', '.join(TYPES)})")
        return Item(index, name, str(kind), ())
    data = _kaiwo_file_fields(kind, data)
    secret_fields = {f"{k}_file" for k in CONNECTION_FIELDS[kind] if not k.endswith("_file")}
    secret_fields |= {f"{k}_file" for k in CREDENTIAL_FIELDS if k in SPECIFIC[kind]}
    fields = Fields(data, where, problems,
                    COMMON | SPECIFIC[kind] | set(CONNECTION_FIELDS[kind]) | secret_fields)
    if not fields.ok:
        return Item(index, name, kind, ())
    options = item_options(kind, fields)
    targets = _READERS[kind](kind, fields, root, options)
    checksum = fields.checksum()
    if checksum:
        if len(targets) != 1 or targets[0].folder:
            fields.problem("checksum", "names one file's checksum, but this item downloads "
                                       "several: give it on the file entry instead")
        else:
            targets = [_with_checksum(targets[0], checksum)]
    return Item(index, name, kind, tuple(targets))


def item_options(kind: str, fields: Fields) -> DownloadOptions:
    """Options every file of the item shares: connection settings, secrets and policies."""
    settings: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for key, field in CONNECTION_FIELDS[kind].items():
        value = fields.existing_file(key) if key.endswith("_file") else fields.value_or_file(key)
        if value is None:
            continue
        if field.option == SECRET:
            secrets[field.key] = value
            path = fields.value_path(key)
            if path:
                settings[f"{field.key}_file"] = path  # for a later `laden resume`
        else:
            settings[field.key] = value
    if "anonymous" in SPECIFIC[kind] and fields.boolean("anonymous"):
        settings["anonymous"] = True
    credentials = {key: fields.value_or_file(key) for key in CREDENTIAL_FIELDS
                   if key in SPECIFIC[kind]}
    ca_bundle = fields.existing_file("ca_bundle") if "ca_bundle" in SPECIFIC[kind] else None
    policy = fields.choice("overwrite", POLICIES, {True: "overwrite", False: "skip"})
    try:
        return DownloadOptions(
            connections=fields.whole_number("connections", 1, MAX_CONNECTIONS),
            limit_rate=fields.rate("limit_rate"),
            conflict=policy or DEFAULT_POLICY,
            headers=fields.mapping("headers") if "headers" in SPECIFIC[kind] else {},
            ca_bundle=ca_bundle, source_settings=settings, secrets=secrets,
            username=credentials.get("username"), password=credentials.get("password"),
            bearer_token=credentials.get("bearer_token"),
            retry=fields.data.get("retry"),  # a table of RetryPolicy's fields, checked there
        )
    except LadenError as exc:
        fields.problems.add(fields.where, str(exc))
        return DownloadOptions()


def _object_store(kind: str, fields: Fields, root: str, options: DownloadOptions) -> list[Target]:
    store = OBJECT_STORES[kind]
    targets: list[Target] = []
    old = OLD_CONTAINER_NAME[store.containers]
    listed = [(f"{store.containers}[{n}]", raw, "name") for n, raw in
              enumerate(fields.list(store.containers, required=not fields.has("items")))]
    listed += [(f"items[{n}]", raw, old) for n, raw in enumerate(fields.list("items"))]
    for label, raw, name_field in listed:
        where = f"{fields.where}, {label}"
        container = Fields(raw, where, fields.problems, {name_field, "items", "files", "folders"})
        name = container.text(name_field, required=True)
        entries: list[tuple[str, Any, str | None]] = [
            (f"items[{i}]", e, None) for i, e in enumerate(container.list("items"))]
        entries += [(f"files[{i}]", e, "file") for i, e in enumerate(container.list("files"))]
        entries += [(f"folders[{i}]", e, "folder") for i, e in enumerate(container.list("folders"))]
        if container.ok and not entries:
            container.problem("items", "is missing: list the files and folders to download")
        for label, data, form in entries:
            entry = Fields(data, f"{where}.{label}", fields.problems, ENTRY_FIELDS)
            target = _entry(entry, form, store, name or "", root, options)
            if target is not None and name:
                targets.append(target)
    return targets


def _entry(entry: Fields, form: str | None, store: ObjectStore, container: str, root: str,
           options: DownloadOptions) -> Target | None:
    """One `file` or `folder` entry of a bucket (or Kaiwo's `files`/`folders` with `path`)."""
    if not entry.ok:
        return None
    if form is None:
        if entry.has("file") == entry.has("folder"):
            both = entry.has("file")
            entry.problems.add(entry.where, "give either file or folder, not both" if both
                               else "give file (one object) or folder (a prefix)")
            return None
        form = "file" if entry.has("file") else "folder"
        key = entry.text(form, required=form == "file")
    else:
        key = entry.text("path", required=form == "file")
    dest = _target_path(entry, root, required=True, folder=form == "folder")
    if form == "folder":
        if entry.has("checksum"):
            entry.problem("checksum", "applies to one file, not a folder")
        glob = entry.text("glob") or DEFAULT_GLOB
        url = object_address(store, container, key or "", folder=True)
        options = dataclasses.replace(options, source_settings={
            **options.source_settings, "glob": glob})
        return None if dest is None else Target(url, dest, options, True, glob,
                                                f"{container}/{key or ''}")
    if entry.has("glob"):
        entry.problem("glob", "applies to folders only")
    if dest is None or key is None:
        return None
    checksum = entry.checksum()
    target = Target(object_address(store, container, key, folder=False), dest, options,
                    label=f"{container}/{key}")
    return _with_checksum(target, checksum) if checksum else target


def _kaiwo_file_fields(kind: str, data: Any) -> Any:
    """Kaiwo's `application_credentials: {file: F}` (or `{value: PATH}`, or a path) as laden's
    `application_credentials_file`, for every connection field that names a file (the
    service-account JSON the GCS source reads)."""
    if not isinstance(data, dict):
        return data
    for field in CONNECTION_FIELDS[kind]:
        if not field.endswith("_file"):
            continue
        base = field.removesuffix("_file")
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), base)
        key = next((k for k in (base, camel) if k in data), None)
        if key is None or field in data:
            continue  # nothing to read, or both given: the unknown field is named
        value = data[key]
        if isinstance(value, dict):
            value = value.get("file") or value.get("value")
        data = {**{k: v for k, v in data.items() if k != key}, field: value}
    return data


def _hf(kind: str, fields: Fields, root: str, options: DownloadOptions) -> list[Target]:
    repo_id = fields.text("repo_id", required=True)
    revision = fields.text("revision") or "main"
    repo_type = fields.choice("repo_type", tuple(HF_REPO_TYPES), {}) or "model"
    if repo_id is not None and (not _REPO_ID.fullmatch(repo_id) or ".." in repo_id.split("/")):
        fields.problem("repo_id", f"expected owner/name, not {shown(repo_id)}")
        repo_id = None
    folder = _target_path(fields, root, default=repo_id or "", folder=True)
    files = fields.list("files")
    if repo_id is None or folder is None:
        return []
    if not files:
        return [Target(hf_address(repo_id, revision, "", repo_type), folder, options, True,
                       DEFAULT_GLOB, f"{repo_id}@{revision}")]
    targets = []
    for number, path in enumerate(files):
        if not isinstance(path, str) or not path.strip() or ".." in path.split("/") \
                or path.startswith("/"):
            fields.problem(f"files[{number}]", f"expected a path inside the repository, "
                                               f"not {shown(path)}")
            continue
        dest = os.path.join(folder, *path.strip().split("/"))
        targets.append(Target(hf_address(repo_id, revision, path.strip(), repo_type), dest, options,
                              label=f"{repo_id}/{path.strip()}"))
    return targets


def _url_item(kind: str, fields: Fields, root: str, options: DownloadOptions) -> list[Target]:
    url = fields.text("url", required=True)
    schemes = SCHEMES[kind]
    if url is not None and url.partition("://")[0].lower() not in schemes:
        fields.problem("url", f"a {kind} item needs a {' or '.join(schemes)} address, "
                              f"not {shown_address(url)}")
        url = None
    elif url is not None:
        try:
            scheme_of(url)  # the check every address goes through, done before any download
        except LadenError as exc:
            fields.problem("url", str(exc))
            url = None
    glob = fields.text("glob")
    path = urlsplit(url).path if url else ""
    # An HTTP address ending in / is as often a page as a folder: only a glob makes it one.
    folder = glob is not None or kind != "http" and (path.endswith("/")
                                                     or any(c in path for c in "*?["))
    # Without a target_path the file goes into download_root under the server's name for it.
    dest = _target_path(fields, root, default="", folder=folder or not fields.has("target_path"))
    if url is None or dest is None:
        return []
    if glob:
        options = dataclasses.replace(options, source_settings={
            **options.source_settings, "glob": glob})
    return [Target(url, dest, options, folder, glob, strip_credentials(url))]


def _target_path(fields: Fields, root: str, *, required: bool = False, default: str | None = None,
                 folder: bool = False) -> str | None:
    """The absolute local path of `target_path`: relative ones must stay under download_root.

    A folder, or a path written with a trailing slash, ends in a separator (the file keeps its
    own name inside it)."""
    text = fields.text("target_path", required=required and default is None)
    if text is None:
        if default is None:
            return None
        text = default
    if any(ord(c) < 32 for c in text):
        fields.problem("target_path", f"{shown(text)} holds control characters")
        return None
    given = os.path.expanduser(text)
    full = os.path.normpath(given if os.path.isabs(given) else os.path.join(root, given))
    if not os.path.isabs(given) and os.path.commonpath([root, full]) != root:
        fields.problem("target_path", f"{shown(text)} is outside download_root {root}")
        return None
    if full == root and not (folder or text.endswith("/")):
        fields.problem("target_path", "names download_root itself; give a file name")
        return None
    return full + os.sep if folder or text.endswith(("/", os.sep)) else full


def _with_checksum(target: Target, checksum: str) -> Target:
    return dataclasses.replace(target, options=dataclasses.replace(target.options,
                                                                   checksum=checksum))


def _check_duplicates(items: list[Item], problems: Problems) -> None:
    seen: dict[str, Item] = {}
    for item in items:
        for target in item.targets:
            if target.folder or target.dest.endswith(os.sep):
                continue
            other = seen.setdefault(target.dest, item)
            if other is not item:
                problems.add(f"item {item.index}, field target_path",
                             f"{cut(target.dest, PATH_SHOWN)} is also the target of item "
                             f"{other.index}")


_READERS = {**{kind: _object_store for kind in OBJECT_STORES},
            "hf": _hf, "http": _url_item, "ftp": _url_item, "azureml": _url_item}

__all__ = ["ManifestError", "load_manifest"]
