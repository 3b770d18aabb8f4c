"""Addresses as laden shows and stores them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SHOWN_ADDRESS = 120
"""Characters of an address an error message repeats: a whole usual address, never a flood."""


def strip_credentials(url: str) -> str:
    """The address without `user:password@`, safe to show, log and journal.

    Never raises: a malformed address (`http://user:pw@[::1/x`, a port out of range) loses
    its `user:password@` as text instead, so the message about it cannot hold the password.
    """
    if "@" not in url:
        return url  # no userinfo without its `@` (most addresses: asked several times each)
    if "://" not in url:
        return _without_userinfo(url)
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return _without_userinfo(url)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def shown_address(url: object) -> str:
    """The address as an error message repeats it: without credentials, cut to a readable
    length, quoted. Never raises, whatever `url` is."""
    if not isinstance(url, str):
        return f"a {type(url).__name__}, not an address"
    text = _without_userinfo(url)  # as typed, so the message shows what is wrong with it
    if len(text) > SHOWN_ADDRESS:
        text = text[:SHOWN_ADDRESS] + "…"
    return repr(text)


def _without_userinfo(url: str) -> str:
    """`url` with everything up to the last `@` of its authority removed, by text alone
    (nothing to parse, so nothing to fail)."""
    scheme, found, rest = url.partition("://")
    if not found:
        # Not an address laden takes, but `user:password@host/x` may still hold a password.
        return url.rpartition("@")[2]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    return f"{scheme}://{authority.rpartition('@')[2]}{tail}"


_SIGNED = re.compile(
    r"([?&;](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|"
    r"x-goog-credential|signature|sig|token|access_token|id_token|api_key|apikey|password|"
    r"secret|client_secret|upload_id)=)[^&#\s\"'<>]+",
    re.IGNORECASE)


def without_signatures(text: str) -> str:
    """`text` with the signature and token values of signed addresses in it replaced: a signed
    S3, GCS or Azure SAS address, one with `?token=`, or a GCS resumable session's URI
    (`upload_id=`), works for whoever reads it. The
    journal keeps the address whole (a resume needs it); what is shown or logged does not."""
    if "=" not in text:
        return text
    return _SIGNED.sub(r"\1REDACTED", text)
