"""A manifest's `upload_items`: local files and folders sent to a service, checked whole first.

An upload item has the download item's per-service fields (type, endpoint, credentials as
values or `*_file`, connections, limit_rate, retry) and names what it sends the other way
round: a local `source`, and a remote `file` (one object) or `folder` (a prefix its files go
under, keeping their layout, those matching `glob` only)::

    upload_root: /checkpoints             # relative sources are read from here (default: .)
    upload_items:
      - type: s3
        name: run-7
        endpoint_url: http://minio:9000
        conflict: skip                    # overwrite (default), skip, fail
        on_change: stop                   # stop (default), restart
        buckets:
          - name: models
            items:
              - source: run-7/config.json
                file: llama/config.json
              - source: run-7/shards
                folder: llama/shards
                glob: "*.safetensors"     # default **/*
      - type: s3
        url: s3://models/llama/README.md  # any type: the remote address as a whole
        source: README.md

Only types whose service takes uploads (`core.known_sources`: an `uploader`) are accepted.
Everything is local until the upload starts, so a missing source, a folder with nothing that
matches, a remote name given twice are problems of the manifest, found before anything moves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ..core.known_sources import KNOWN_SOURCES
from ..core.options import DownloadOptions
from ..core.upload_policies import CONFLICTS, ON_CHANGE
from ..engine.uploading.local import files_under
from ..sources import cloud
from .addresses import CONNECTION_FIELDS, CREDENTIAL_FIELDS, OBJECT_STORES, SCHEMES
from .fields import PATH_SHOWN, Fields, Problems, cut, shown
from .model import Item, Target, Upload
from .plan import glob_matches

UPLOAD_TYPES = tuple(source.manifest_type for source in KNOWN_SOURCES
                     if source.manifest_type and source.uploader)
"""The item types laden can upload to."""
COMMON = {"type", "name", "connections", "limit_rate", "retry", "conflict", "on_change", "url",
          "source", "glob"}
PER_TYPE = {"headers", "ca_bundle", *CREDENTIAL_FIELDS}
"""Fields an item of a type that has them for downloads has for uploads too."""
ENTRY_FIELDS = {"source", "file", "folder", "glob"}
DEFAULT_GLOB = "**/*"

OptionsOf = Callable[[str, Fields], DownloadOptions]


def upload_items(raw_items: list[Any], root: str, problems: Problems, options_of: OptionsOf,
                 specific: dict[str, set[str]]) -> list[Item]:
    """The upload items, each with one target per file it sends; problems are collected.

    `options_of` reads an item's options as for a download item, `specific` the fields
    each type has there (both from `validation`)."""
    items = [_item(index, data, root, problems, options_of, specific)
             for index, data in enumerate(raw_items, 1)]
    seen: dict[str, Item] = {}
    for item in items:
        for target in item.targets:
            other = seen.get(target.url)
            if other is not None:  # one line per item is enough to fix it
                problems.add(f"{_where(item.index, item.name)}",
                             f"{target.label} is also uploaded by "
                             f"{'this item' if other is item else other.title}: one file per "
                             "remote name")
                break
            seen[target.url] = item
    return items


def _where(index: int, name: str) -> str:
    return f"upload item {index}" + (f" ({shown(name)})" if name else "")


def _item(index: int, data: Any, root: str, problems: Problems, options_of: OptionsOf,
          specific: dict[str, set[str]]) -> Item:
    raw_name = data.get("name") if isinstance(data, dict) else None
    name = str(raw_name) if isinstance(raw_name, str | int | float) and raw_name else ""
    where = _where(index, name)
    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in UPLOAD_TYPES:
        what = ("is missing" if kind is None else
                f"{shown(kind)}: laden cannot upload there" if kind in CONNECTION_FIELDS else
                f"{shown(kind)} is not a known type")
        problems.add(f"{where}, field type", f"{what} (uploads go to: {', '.join(UPLOAD_TYPES)})")
        return Item(index, name, str(kind), (), "upload")
    store = OBJECT_STORES.get(kind)
    secrets = {f"{k}_file" for k in CONNECTION_FIELDS[kind] if not k.endswith("_file")}
    secrets |= {f"{k}_file" for k in CREDENTIAL_FIELDS if k in specific.get(kind, ())}
    known = (COMMON | set(CONNECTION_FIELDS[kind]) | secrets
             | (specific.get(kind, set()) & PER_TYPE) | ({store.containers} if store else set()))
    fields = Fields(data, where, problems, known)
    if not fields.ok:
        return Item(index, name, kind, (), "upload")
    options = options_of(kind, fields)
    upload = Upload(fields.choice("conflict", CONFLICTS, {}) or CONFLICTS[0],
                    fields.choice("on_change", ON_CHANGE, {}) or ON_CHANGE[0])
    entries: list[tuple[Fields, str, str]] = []  # (fields, remote address, its label)
    if fields.has("url") or store is None or not fields.has(store.containers):
        if store is not None and fields.has(store.containers):
            fields.problem("url", f"give either url or {store.containers}, not both")
        entries += _url_entry(kind, fields)
    else:
        if fields.has("source"):
            fields.problem("source", f"goes on each entry of {store.containers} (or with url)")
        entries += _store_entries(kind, fields, store.containers)
    targets: list[Target] = []
    for entry, url, label in entries:
        targets += _targets(entry, url, label, root, options, upload)
    return Item(index, name, kind, tuple(targets), "upload")


def _url_entry(kind: str, fields: Fields) -> list[tuple[Fields, str, str]]:
    url = fields.text("url", required=True)
    if url is None:
        return []
    schemes = SCHEMES[kind]
    if url.partition("://")[0].lower() not in schemes:
        fields.problem("url", f"a {kind} item uploads to a {' or '.join(schemes)} address, "
                              f"not {shown(url)}")
        return []
    scheme = url.partition("://")[0].lower()
    if kind in OBJECT_STORES and scheme == schemes[0]:
        # The key as `laden put` writes it, whether typed quoted or not.
        url = cloud.object_url(scheme, *cloud.split_address(url))
    return [(fields, url, url)]


def _store_entries(kind: str, fields: Fields, containers: str) -> list[tuple[Fields, str, str]]:
    scheme = SCHEMES[kind][0]
    found: list[tuple[Fields, str, str]] = []
    for number, raw in enumerate(fields.list(containers, required=True)):
        where = f"{fields.where}, {containers}[{number}]"
        container = Fields(raw, where, fields.problems, {"name", "items"})
        bucket = container.text("name", required=True)
        listed = container.list("items", required=container.ok)
        for position, data in enumerate(listed):
            entry = Fields(data, f"{where}.items[{position}]", fields.problems, ENTRY_FIELDS)
            if not entry.ok:
                continue
            if entry.has("file") == entry.has("folder"):
                entry.problems.add(entry.where, "give either file or folder, not both"
                                   if entry.has("file") else
                                   "give file (one object) or folder (a prefix) to upload to")
                continue
            form = "file" if entry.has("file") else "folder"
            key = (entry.text(form, required=form == "file") or "").strip("/")
            if bucket is None or (form == "file" and not key):
                continue
            address = cloud.object_url(scheme, bucket, key + ("/" if form == "folder" and key
                                                              else ""))
            found.append((entry, address, f"{bucket}/{key}"))
    return found


def _targets(entry: Fields, url: str, label: str, root: str, options: DownloadOptions,
             upload: Upload) -> list[Target]:
    """One target per local file: a file's own, or a folder's files under the prefix."""
    folder_wanted = url.endswith("/") or url.count("/") == 2 or entry.has("folder")
    source = _source(entry, root)
    if source is None:
        return []
    if not os.path.isdir(source):
        if entry.has("glob"):
            entry.problem("glob", "applies to folders only")
            return []
        if folder_wanted:  # a file into a prefix keeps its name
            url = _under(url, os.path.basename(source))
            label = f"{label.rstrip('/')}/{os.path.basename(source)}"
        return [Target(url, source, options, label=label, upload=upload)]
    if not folder_wanted:
        entry.problem("source", f"{cut(source, PATH_SHOWN)} is a folder: upload it to a "
                                "folder (a prefix), not to one file")
        return []
    glob = entry.text("glob") or DEFAULT_GLOB
    targets = [Target(_under(url, relative), os.path.join(source, *relative.split("/")),
                      options, glob=glob, label=f"{label.rstrip('/')}/{relative}",
                      upload=upload)
               for relative in files_under(source) if glob_matches(glob, relative)]
    if not targets:
        entry.problem("glob" if entry.has("glob") else "source",
                      f"no file in {cut(source, PATH_SHOWN)} matches {glob!r}")
    return targets


def _under(prefix_url: str, relative: str) -> str:
    """The address of `relative` under the prefix `prefix_url`, quoted as the sources quote
    keys (any service's address: `s3://bucket/p/`, `hf://owner/repo@main/p/`)."""
    base = prefix_url if prefix_url.endswith("/") else prefix_url + "/"
    return base + quote(relative, safe=cloud.KEY_SAFE)


def _source(entry: Fields, root: str) -> str | None:
    """The absolute path of `source`: a relative one is read under upload_root and must stay
    there (a manifest from anywhere must not send what lies outside it)."""
    text = entry.text("source", required=True)
    if text is None:
        return None
    if any(ord(c) < 32 for c in text):
        entry.problem("source", f"{shown(text)} holds control characters")
        return None
    given = os.path.expanduser(text)
    path = os.path.normpath(given if os.path.isabs(given) else os.path.join(root, given))
    if not os.path.isabs(given) and os.path.commonpath([root, path]) != root:
        entry.problem("source", f"{shown(text)} is outside upload_root {root}")
        return None
    if not os.path.exists(path):
        entry.problem("source", f"{cut(path, PATH_SHOWN)} does not exist")
        return None
    if not (os.path.isdir(path) or os.path.isfile(path)):
        entry.problem("source", f"{cut(path, PATH_SHOWN)} is not a regular file or a folder")
        return None
    return path


