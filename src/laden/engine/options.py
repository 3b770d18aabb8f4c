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

# Header names that carry credentials; any name containing one of these words is kept out of
# the journal too ("X-Api-Key", "X-Auth-Token", ...).
_SECRET_HEADER_WORDS = ("authorization", "cookie", "token", "secret", "key", "auth", "password")


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_HEADER_WORDS)


@dataclass(frozen=True)
class DownloadOptions:
    connections: int | None = None
    """Connections for this download (None: the manager's setting)."""
    limit_rate: int | None = None
    """Bandwidth limit for this download in bytes per second."""
    headers: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: str | None = field(default=None, metadata={"secret": True})
    bearer_token: str | None = field(default=None, metadata={"secret": True})
    netrc: bool = True
    """Look up credentials for the host in ~/.netrc (or $NETRC) when none are given."""
    ca_bundle: str | None = None
    insecure: bool = False
    """Skip TLS certificate checks (never the default)."""
    proxy: str | None = None
    """Proxy URL; None: the HTTP(S)_PROXY / NO_PROXY environment."""
    checksum: str | None = None
    """Expected checksum as ALGORITHM:HEX (sha256:..., md5:...)."""
    conflict: str | None = None
    filename: str | None = None
    """Name of the finished file, instead of the server's or the address's."""
    source_settings: dict[str, Any] = field(default_factory=dict)
    """Source-specific settings that are not secret (endpoint URL, region, glob, revision)."""
    secrets: dict[str, str] = field(default_factory=dict, metadata={"secret": True})
    """Source-specific credentials (keys, connection strings, tokens): never journalled."""

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
        if self.limit_rate is not None and self.limit_rate <= 0:
            raise InputError(f"limit_rate must be positive, not {self.limit_rate!r}")
        if self.conflict is not None and self.conflict not in CONFLICT_POLICIES:
            raise InputError(
                f"conflict must be one of {', '.join(CONFLICT_POLICIES)}, not {self.conflict!r}"
            )
        if self.proxy is not None:
            check_proxy(self.proxy)
        for name, value in self.headers.items():
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
                raise InputError(f"invalid header {name!r}: use 'Name: value' on one line")

    def to_journal(self) -> dict[str, Any]:
        """The options that may be written to disk: no secrets, no credential headers."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("secret"):
                continue
            value = getattr(self, f.name)
            if f.name == "headers":
                value = {k: v for k, v in value.items() if not is_secret_header(k)}
            elif f.name == "proxy" and value:
                from .urls import strip_credentials

                value = strip_credentials(value)  # http://user:password@proxy: the address only
            if value in (None, {}, ()):
                continue
            data[f.name] = value
        return data

    @classmethod
    def from_journal(cls, data: dict[str, Any]) -> DownloadOptions:
        return cls(**{k: v for k, v in data.items() if k in OPTION_NAMES})

    def merged(self, newer: DownloadOptions) -> DownloadOptions:
        """These options with the credentials and headers of `newer` (a rerun of a command)."""
        return dataclasses.replace(
            self,
            headers={**self.headers, **newer.headers},
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
        )


PROXY_SCHEMES = ("http", "https", "socks4", "socks5", "socks5h")


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(DownloadOptions))
"""Looked up once: per record, `fields()` was 7 % of opening a journal of 5,000 downloads."""


def check_proxy(proxy: str) -> str:
    """`proxy` if it is an address a proxy can have (http://host:port, socks5://...)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018 - parsing the port is part of the check
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise InputError(f"the proxy must be an address like http://host:port, not "
                         f"{proxy.split('@')[-1]!r}")
    return proxy
