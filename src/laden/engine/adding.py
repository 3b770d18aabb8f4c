"""Checking what `DownloadManager.add` is given: addresses, options, destinations.

Everything here raises InputError with one clear line before anything is queued. Messages never
repeat an address that may hold a password.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import InputError
from .names import sanitize_filename
from .options import OPTION_NAMES, DownloadOptions
from .partfile import ensure_folder
from .units import parse_rate
from .urls import strip_credentials


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
                raise InputError(f"{_cut(name)!r} cannot be used as a file name")
            folder = folder or "."
    if options.filename:
        filename = sanitize_filename(options.filename)
        if not filename:
            raise InputError(f"{_cut(options.filename)!r} cannot be used as a file name")
    folder = os.path.abspath(folder)
    ensure_folder(folder)
    return folder, filename


def check_address(url: str) -> None:
    """What `scheme_of` lets through but no connection could use: a port out of range, a web
    or FTP address whose host is empty (`http://user@:80/`), stray brackets (`[::1]]`), a host
    name that cannot be encoded for DNS (a label over 63 characters, `a..b`, `☃.example`).

    The host is encoded here the way the sockets (the `idna` codec) and the HTTP clients (the
    `idna` package) will encode it, so no address fails later inside urllib3 or httpx. The
    address is not repeated in the message: it may hold a password.

    Raises:
        InputError: naming what is wrong, in one line.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise InputError(f"malformed address: {_cut(str(exc))}") from None
    if parts.scheme.lower() not in _NAMED_HOSTS:
        return  # a bucket or a repository: its source checks it
    if not parts.hostname:
        raise InputError("malformed address: no host name")
    host_and_port = parts.netloc.rpartition("@")[2]
    if host_and_port.startswith("["):
        _check_ip_literal(host_and_port)
    elif "[" in host_and_port or "]" in host_and_port:
        raise InputError("malformed address: brackets belong only around an IPv6 address, "
                         "as in http://[::1]:8080/")
    else:
        _check_host_name(parts.hostname)


_NAMED_HOSTS = ("http", "https", "ftp", "ftps")
_IPV4_LIKE = re.compile(r"[0-9]+(?:\.[0-9]+){3}")
"""What httpx and urllib3 take for an IPv4 address, and then refuse if it is not one."""


def _check_ip_literal(host_and_port: str) -> None:
    literal, closed, after = host_and_port[1:].partition("]")
    if not closed or (after and not after.startswith(":")):
        raise InputError("malformed address: an IPv6 address is written [address] or "
                         "[address]:port")
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        raise InputError(f"malformed address: {_cut(literal)!r} is not an IPv6 address") from None


def _check_host_name(host: str) -> None:
    shown = _cut(host)
    if _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InputError(f"malformed address: {shown!r} is not an IPv4 address") from None
        return
    labels = host.rstrip(".").split(".")
    if not all(labels):
        raise InputError(f"malformed address: the host name {shown!r} has an empty part "
                         "between dots")
    try:
        host.encode("idna")  # what the socket will do: each label 1 to 63 characters
    except UnicodeError as exc:
        why = ("a part between dots is longer than 63 characters" if "too long" in str(exc)
               else "it holds characters no host name can")
        raise InputError(f"malformed address: the host name {shown!r} is not usable: "
                         f"{why}") from None
    if host.isascii() and not any(label.startswith("xn--") for label in labels):
        return  # plain ASCII is sent as it is; nothing below it decodes or encodes it
    import idna  # httpx's own dependency; only international names need it

    try:
        if not host.isascii():
            idna.encode(host, strict=True, std3_rules=True)  # urllib3's rules, and httpx's
        for label in labels:
            if label.startswith("xn--"):
                idna.decode(label)  # httpx decodes these to show them
    except (idna.IDNAError, UnicodeError) as exc:
        raise InputError(f"malformed address: the host name {shown!r} cannot be encoded for "
                         f"DNS (IDNA: {_cut(str(exc))})") from None


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


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
        raise InputError(f"refusing {strip_credentials(url)}: its name {_cut(relative)!r} would be "
                         "saved outside the download folder or is not a usable file name")
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
