"""Addresses: what `scheme_of` lets through but no connection could use.

Checked before anything is queued, by the registry of sources; the messages never repeat the
address, which may hold a password.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .errors import InputError
from .printable import shortened


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
        raise InputError(f"malformed address: {shortened(str(exc))}") from None
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
        raise InputError(f"malformed address: {shortened(literal)!r} is not an IPv6 "
                         "address") from None


def _check_host_name(host: str) -> None:
    shown = shortened(host)
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
                         f"DNS (IDNA: {shortened(str(exc))})") from None

