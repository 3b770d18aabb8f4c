"""Which source handles an address, built from the sources' declarations
(`core.known_sources`). A source's module is imported only when an address needs it, so
`laden get https://...` never pays for importing boto3, the Google and Azure SDKs, or the
other sources' code."""

from __future__ import annotations

import functools
import importlib
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..core.addresses import check_address
from ..core.errors import InputError, UnsupportedSource
from ..core.known_sources import KNOWN_SOURCES, KnownSource
from ..core.urls import shown_address
from .base import Source

if TYPE_CHECKING:
    from .uploads import Uploader  # the uploads' vocabulary: not for a download's start

_BY_SCHEME: dict[str, KnownSource] = {
    scheme: source for source in KNOWN_SOURCES for scheme in source.schemes}
# Web addresses that belong to a cloud service's own source: host suffix -> its scheme.
_SERVICE_HOSTS: dict[str, str] = {
    suffix: source.schemes[0] for source in KNOWN_SOURCES for suffix in source.web_hosts}


def scheme_of(url: str) -> str:
    """The scheme of `url`, once the whole address is checked: every way in (the command line,
    the app, a manifest, the engine) goes through here before anything is queued.

    An address is asked about several times (when given, queued, and started), and with
    thousands of small files the checks were a tenth of laden's CPU per file: the answers are
    kept (an address that fails raises again each time).

    Raises:
        InputError: a malformed address, in one line that never holds its password.
        UnsupportedSource: a scheme no source handles.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError("the address is empty")
    return _checked_scheme(url)


@functools.lru_cache(maxsize=1 << 14)
def _checked_scheme(url: str) -> str:
    shown = shown_address(url)
    if any(c in url for c in "\r\n\t\x00 "):
        raise InputError(f"malformed address {shown}: it contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InputError(f"malformed address {shown}: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        raise InputError(f"malformed address {shown}: expected something like https://host/file")
    if scheme not in _BY_SCHEME:
        known = ", ".join(sorted(_BY_SCHEME))
        raise UnsupportedSource(
            f"unsupported address scheme {scheme[:20]!r} in {shown} (known: {known})"
        )
    if not parts.netloc:
        raise InputError(f"malformed address {shown}: no host or bucket")
    check_address(url)  # the host and port, as the connections will read them
    return scheme


@functools.lru_cache(maxsize=1 << 14)
def source_scheme(url: str) -> str:
    """The scheme whose source handles `url`: its own, or a service's for a web address."""
    scheme = scheme_of(url)
    if scheme in ("http", "https"):
        host = (urlsplit(url).hostname or "").lower()
        for suffix, owner in _SERVICE_HOSTS.items():
            if host.endswith(suffix):
                return owner
    return scheme


class SourceRegistry:
    """One instance of each source a manager uses, created on first need."""

    def __init__(self, factory_args: dict[str, object] | None = None) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, Source] = {}
        self._uploaders: dict[str, Uploader] = {}
        self._factory_args = factory_args or {}

    def for_url(self, url: str) -> Source:
        known = _BY_SCHEME[source_scheme(url)]
        with self._lock:
            source = self._instances.get(known.name)
            if source is None:
                module_name, _, class_name = known.code.partition(":")
                cls = getattr(importlib.import_module(module_name), class_name)
                source = cls(**self._factory_args)
                self._instances[known.name] = source
            return source

    def uploader_for(self, url: str) -> Uploader:
        """The uploader of the service `url` names, sharing that service's source."""
        known = _BY_SCHEME[source_scheme(url)]
        if known.uploader is None:
            raise UnsupportedSource(f"laden cannot upload to {known.name} addresses yet "
                                    f"({shown_address(url)})")
        source = self.for_url(url)
        with self._lock:
            uploader = self._uploaders.get(known.name)
            if uploader is None:
                module_name, _, class_name = known.uploader.partition(":")
                cls = getattr(importlib.import_module(module_name), class_name)
                uploader = self._uploaders[known.name] = cls(source)
            return uploader

    def close(self) -> None:
        with self._lock:
            sources, self._instances = list(self._instances.values()), {}
            self._uploaders = {}
        for source in sources:
            source.close()
