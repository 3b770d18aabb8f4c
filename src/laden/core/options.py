"""Per-download options, and the rule that keeps credentials out of the journal.

`DownloadOptions.to_journal()` is the only way options reach disk, and it leaves out every
secret: passwords, tokens, and headers that carry credentials. A download resumed in a later
session gets its credentials again from the command, the environment, `~/.netrc` or a
credentials file, never from the state directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .config import CONFLICT_POLICIES, MAX_CONNECTIONS
from .errors import InputError
from .retry import RetryPolicy
from .units import MAX_SIZE

HARMLESS_HEADERS = frozenset({"accept", "accept-charset", "accept-language", "cache-control",
                              "pragma", "user-agent"})
"""The only headers whose values the journal keeps. Any other may carry a credential under a
name nobody can guess (`X-JFrog-Art-Api`, `X-Session`), so only its name is kept, and the
download asks for it again (see `missing_headers`)."""


def is_secret_header(name: str) -> bool:
    return name.lower() not in HARMLESS_HEADERS


def _check_secret(what: str, value: object) -> None:
    """A credential goes into a header line as it is: a line break or a control character in
    it would end that line early. Refused without repeating the value."""
    if value is not None and (not isinstance(value, str) or any(
            ord(c) < 32 or ord(c) == 127 for c in value)):
        raise InputError(f"the {what} holds a line break or another control character; "
                         "check how it was pasted or read")


@dataclass(frozen=True)
class DownloadOptions:
    """What one download sets for itself, over the manager's `Config`; None means the
    manager's value. Checked when built: a wrong value raises `errors.InputError`.

    The fields marked secret (passwords, tokens, `secrets`) and any header that may carry a
    credential are never written to the journal (see `to_journal`).
    """

    connections: int | None = None
    """Connections for this download (None: the manager's setting)."""
    limit_rate: int | None = None
    """Bandwidth limit for this download in bytes per second."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra request headers, name to value (HTTP sources)."""
    username: str | None = None
    """User name for HTTP basic auth or FTP (also read from the address, user@host)."""
    password: str | None = field(default=None, metadata={"secret": True})
    """Password for that user; secret."""
    bearer_token: str | None = field(default=None, metadata={"secret": True})
    """Sent as `Authorization: Bearer ...`; secret."""
    netrc: bool = True
    """Look up credentials for the host in ~/.netrc (or $NETRC) when none are given."""
    ca_bundle: str | None = None
    """A PEM file (or folder) of the certificate authorities to trust instead of the
    system's."""
    insecure: bool = False
    """Skip TLS certificate checks (never the default)."""
    proxy: str | None = None
    """Proxy URL; None: the HTTP(S)_PROXY / NO_PROXY environment; "": none, even when the
    environment names one (aria2's `all-proxy=`)."""
    checksum: str | None = None
    """Expected checksum as ALGORITHM:HEX (sha256:..., md5:...)."""
    conflict: str | None = None
    """When the file exists: rename, overwrite, skip or resume (None: `Config.conflict`)."""
    filename: str | None = None
    """Name of the finished file, instead of the server's or the address's."""
    source_settings: dict[str, Any] = field(default_factory=dict)
    """Source-specific settings that are not secret (endpoint URL, region, glob, revision)."""
    secrets: dict[str, str] = field(default_factory=dict, metadata={"secret": True})
    """Source-specific credentials (keys, connection strings, tokens): never journalled."""
    retry: RetryPolicy | None = None
    """When and how long to wait before trying again after an error (None: the manager's
    policy, from its `Config`); journalled with the download, so a resume keeps it."""
    format_check: bool | None = None
    """Check the structure of a model file before its final rename (None: the manager's
    `Config.format_check`); False for `--no-format-check`."""
    missing_headers: tuple[str, ...] = field(default=(), metadata={"secret": True})
    """Headers given in an earlier session whose values were not kept (see HARMLESS_HEADERS):
    the same command, run again, gives them back."""

    def __post_init__(self) -> None:
        if self.connections is not None and (
            isinstance(self.connections, bool)
            or not isinstance(self.connections, int)
            or not 1 <= self.connections <= MAX_CONNECTIONS
        ):
            raise InputError(
                f"connections must be a whole number from 1 to {MAX_CONNECTIONS}, "
                f"not {self.connections!r}"
            )
        if self.limit_rate is not None and (
            isinstance(self.limit_rate, bool) or not isinstance(self.limit_rate, int)
            or not 0 < self.limit_rate <= MAX_SIZE
        ):
            raise InputError(f"limit_rate must be a whole number of bytes per second from 1 "
                             f"to {MAX_SIZE}, not {str(self.limit_rate)[:30]}")
        _check_secret("password", self.password)
        _check_secret("bearer token", self.bearer_token)
        _check_secret("user name", self.username)
        for name, value in self.secrets.items():
            _check_secret(name.replace("_", " "), value)
        if self.conflict is not None and self.conflict not in CONFLICT_POLICIES:
            raise InputError(
                f"conflict must be one of {', '.join(CONFLICT_POLICIES)}, not {self.conflict!r}"
            )
        if self.proxy:
            check_proxy(self.proxy)
        if self.format_check is not None and not isinstance(self.format_check, bool):
            raise InputError(f"format_check must be true, false or None, not "
                             f"{str(self.format_check)[:30]!r}")
        if self.retry is not None and not isinstance(self.retry, RetryPolicy):
            # A table (a manifest item's, the journal's) becomes the value; frozen, hence this.
            object.__setattr__(self, "retry", RetryPolicy.from_mapping(self.retry))
        for name, value in self.headers.items():
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n\0"):
                raise InputError(f"invalid header {name[:40]!r}: use 'Name: value' on one line")

    def to_journal(self) -> dict[str, Any]:
        """The options that may be written to disk: no secrets, no credential headers."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("secret"):
                continue
            value = getattr(self, f.name)
            if f.name == "headers":
                names = sorted({k for k in value if is_secret_header(k)}
                               | set(self.missing_headers))
                if names:
                    data["header_names"] = names
                value = {k: v for k, v in value.items() if not is_secret_header(k)}
            elif f.name == "proxy" and value:
                from .urls import strip_credentials

                value = strip_credentials(value)  # http://user:password@proxy: the address only
            elif f.name == "retry" and value is not None:
                value = value.to_mapping()
            if value in (None, {}, ()):
                continue
            data[f.name] = value
        return data

    @classmethod
    def from_journal(cls, data: dict[str, Any]) -> DownloadOptions:
        """The options a journal record kept; never a secret, even one written there by hand."""
        kept = {k: v for k, v in data.items() if k in _JOURNALLED}
        if "retry" in kept:
            try:
                kept["retry"] = RetryPolicy.from_mapping(kept["retry"])
            except (InputError, TypeError):
                del kept["retry"]  # a record edited by hand: the manager's policy applies
        given = {k.lower() for k in kept.get("headers", {})}
        missing = tuple(n for n in data.get("header_names", ()) if n.lower() not in given)
        return cls(**kept, missing_headers=missing)

    def merged(self, newer: DownloadOptions) -> DownloadOptions:
        """These options with the credentials and headers of `newer` (a rerun of a command)."""
        given = {k.lower() for k in newer.headers}
        return dataclasses.replace(
            self,
            headers={**self.headers, **newer.headers},
            missing_headers=tuple(n for n in self.missing_headers if n.lower() not in given),
            username=newer.username or self.username,
            password=newer.password or self.password,
            bearer_token=newer.bearer_token or self.bearer_token,
            secrets={**self.secrets, **newer.secrets},
            source_settings={**self.source_settings, **newer.source_settings},
            ca_bundle=newer.ca_bundle or self.ca_bundle,
            insecure=newer.insecure or self.insecure,
            proxy=newer.proxy or self.proxy,
            limit_rate=newer.limit_rate or self.limit_rate,
            connections=newer.connections or self.connections,
            checksum=newer.checksum or self.checksum,
            format_check=self.format_check if newer.format_check is None
            else newer.format_check,
            retry=newer.retry or self.retry,
        )


PROXY_SCHEMES = ("http", "https")
SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")
"""Refused with a clear line: neither urllib3 nor httpx speaks SOCKS without an extra package
(PySocks, socksio) that laden does not depend on."""


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(DownloadOptions))
"""Looked up once: per record, `fields()` was 7 % of opening a journal of 5,000 downloads."""
_JOURNALLED = frozenset(f.name for f in dataclasses.fields(DownloadOptions)
                        if not f.metadata.get("secret"))


def check_proxy(proxy: str) -> str:
    """`proxy` if it is an address of a proxy laden can use (http://host:port, https://...).

    Raises:
        InputError: anything else; a SOCKS proxy (`SOCKS_SCHEMES`) said to be one.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018 - parsing the port is part of the check
    except ValueError:
        parts = None
    if parts is not None and parts.scheme.lower() in SOCKS_SCHEMES:
        from .urls import shown_address

        raise InputError(f"laden cannot use a SOCKS proxy ({shown_address(proxy)}): give an "
                         "HTTP proxy (http://host:port), or leave the proxy out")
    if parts is None or parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise InputError(f"the proxy must be an address like http://host:port, not "
                         f"{proxy.split('@')[-1]!r}")
    return proxy
