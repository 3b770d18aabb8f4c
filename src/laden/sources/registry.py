"""Which source handles an address. Sources are imported only when an address needs them, so
`laden get https://...` never pays for importing boto3 or the Google and Azure SDKs."""

from __future__ import annotations

import importlib
import threading
from urllib.parse import urlsplit

from ..core.addresses import check_address
from ..core.errors import InputError, UnsupportedSource
from ..core.urls import shown_address
from .base import Source

# scheme -> (module, class)
_SOURCES: dict[str, tuple[str, str]] = {
    "http": ("laden.sources.http", "HttpSource"),
    "https": ("laden.sources.http", "HttpSource"),
    "ftp": ("laden.sources.ftp", "FtpSource"),
    "ftps": ("laden.sources.ftp", "FtpSource"),
    "s3": ("laden.sources.s3", "S3Source"),
    "gs": ("laden.sources.gcs", "GcsSource"),
    "az": ("laden.sources.azure", "AzureBlobSource"),
    "hf": ("laden.sources.hf", "HfSource"),
    "azureml": ("laden.sources.azureml", "AzureMLSource"),
}

# Web addresses that belong to a cloud service's own source: host suffix -> scheme.
_SERVICE_HOSTS: dict[str, str] = {
    ".blob.core.windows.net": "az",
    ".blob.core.chinacloudapi.cn": "az",
    ".blob.core.usgovcloudapi.net": "az",
}


def register(scheme: str, module: str, class_name: str) -> None:
    _SOURCES[scheme] = (module, class_name)


def scheme_of(url: str) -> str:
    """The scheme of `url`, once the whole address is checked: every way in (the command line,
    the app, a manifest, the engine) goes through here before anything is queued.

    Raises:
        InputError: a malformed address, in one line that never holds its password.
        UnsupportedSource: a scheme no source handles.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError("the address is empty")
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
    if scheme not in _SOURCES:
        known = ", ".join(sorted(_SOURCES))
        raise UnsupportedSource(
            f"unsupported address scheme {scheme[:20]!r} in {shown} (known: {known})"
        )
    if not parts.netloc:
        raise InputError(f"malformed address {shown}: no host or bucket")
    check_address(url)  # the host and port, as the connections will read them
    return scheme


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
        self._instances: dict[tuple[str, str], Source] = {}
        self._factory_args = factory_args or {}

    def for_url(self, url: str) -> Source:
        module_name, class_name = _SOURCES[source_scheme(url)]
        key = (module_name, class_name)
        with self._lock:
            source = self._instances.get(key)
            if source is None:
                cls = getattr(importlib.import_module(module_name), class_name)
                source = cls(**self._factory_args)
                self._instances[key] = source
            return source

    def close(self) -> None:
        with self._lock:
            sources, self._instances = list(self._instances.values()), {}
        for source in sources:
            source.close()
