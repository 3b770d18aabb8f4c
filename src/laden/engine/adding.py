"""Checking what `DownloadManager.add` is given: addresses, options, destinations.

Everything here raises InputError with one clear line before anything is queued. Messages never
repeat an address that may hold a password.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from urllib.parse import unquote, urlsplit

from ..core.errors import InputError
from ..core.names import sanitize_filename
from ..core.options import OPTION_NAMES, DownloadOptions
from ..core.printable import shortened
from ..core.units import parse_rate
from ..core.urls import strip_credentials
from .partfile import ensure_folder


def build_options(options: DownloadOptions | None, fields: dict[str, Any]) -> DownloadOptions:
    """`options` with keyword fields applied and validated (rates may be written like 5M)."""
    if options is not None and not fields:
        return options  # frozen: nothing to copy
    if fields.get("limit_rate") is not None:  # ints too: 10**400 is as wrong as "1e400"
        fields["limit_rate"] = parse_rate(fields["limit_rate"])
    unknown = set(fields) - OPTION_NAMES
    if unknown:
        raise InputError(f"unknown download option(s): {', '.join(sorted(unknown))}")
    try:
        return dataclasses.replace(options or DownloadOptions(), **fields)
    except TypeError as exc:
        raise InputError(str(exc)) from None


def resolve_destination(
    dest: str | None, options: DownloadOptions, default_folder: str
) -> tuple[str, str | None]:
    """(folder, file name or None) for `dest`: a folder (existing, or ending in a separator)
    or a file path. The folder is created, or InputError says why it cannot be used."""
    if dest is None:
        folder, filename = default_folder, None
    else:
        dest = os.path.expanduser(dest)
        if dest.endswith(("/", os.sep)) or os.path.isdir(dest):
            folder, filename = dest, None
        else:
            folder, name = os.path.split(dest)
            filename = sanitize_filename(name)
            if filename != name:
                raise InputError(f"{shortened(name)!r} cannot be used as a file name")
            folder = folder or "."
    if options.filename:
        filename = sanitize_filename(options.filename)
        if not filename:
            raise InputError(f"{shortened(options.filename)!r} cannot be used as a file name")
    folder = os.path.abspath(folder)
    ensure_folder(folder)
    return folder, filename


def listed_target(folder: str, relative: str, url: str) -> str:
    """Where a file found under a folder address goes. Sources check their listings; this is
    the last line: a name that would land outside `folder` is refused, whatever the source."""
    parts = relative.split("/")
    if (
        not relative
        or os.path.isabs(relative)
        or "\\" in relative
        or any(p in (".", "..") or (p and sanitize_filename(p, windows=False) != p)
               for p in parts)
    ):
        raise InputError(f"refusing {strip_credentials(url)}: its name {shortened(relative)!r} "
                         "would be saved outside the download folder or is not a usable file name")
    return os.path.join(folder, *[p for p in parts if p])


def take_credentials(url: str, options: DownloadOptions) -> tuple[str, DownloadOptions]:
    """Move `user:password@` out of the address into the (never journalled) options."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, options
    options = dataclasses.replace(
        options,
        username=options.username or unquote(parts.username),
        password=options.password or unquote(parts.password or ""),
    )
    return strip_credentials(url), options
