"""What goes wrong talking HTTP, in laden's words: an answer's status (classified by
`statuses`), a connection that could not be made, and the exceptions of urllib3 (the bytes) and
httpx (redirects), each through its table (`foreign_errors`).
"""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

from ..core.errors import HostNotFound, LadenError, Permanent, RemoteError, Retryable
from ..core.options import DownloadOptions
from ..core.retry import parse_retry_after
from ..core.urls import strip_credentials
from .foreign_errors import Becomes, ErrorTable, Rows
from .http_reader import short_reason
from .statuses import Wording

WORDING = Wording(
    slow_down="{where}: the server asks for fewer requests",
    server_error="{where}",
    refused="{where}",
    statuses={
        401: "{where}: the credentials are missing or wrong",
        404: "{where}: no such file ({path})",
        410: "{where}: the file is gone",
    },
)


def error_for_status(status: int, headers: Any, url: str) -> LadenError:
    """The error for an answer of `url` with `status` (and a Retry-After in `headers`)."""
    reason = http.client.responses.get(status, "")
    return WORDING.error(
        status, retry_after=parse_retry_after(headers.get("retry-after")),
        where=f"HTTP {status} {reason} from {host_of(url)}".rstrip(),
        path=quote(urlsplit(url).path),
    )


def _urllib3_rows() -> Rows:
    import urllib3

    return {
        urllib3.exceptions.SSLError: Becomes(Permanent, "TLS error talking to {host}: {exc}"),
        urllib3.exceptions.ProxyError: lambda exc, facts: Retryable(
            f"cannot reach the proxy {host_of(facts['proxy']() or 'the proxy')}: "
            f"{connect_reason(str(exc))}"),
        urllib3.exceptions.NameResolutionError: lambda exc, facts: HostNotFound(facts["host"]),
        (urllib3.exceptions.HTTPError, OSError): lambda exc, facts: Retryable(
            f"{facts['host']} refused the connection" if "Connection refused" in str(exc)
            else f"connection to {facts['host']} failed: {short_reason(exc)}"),
    }


READ_ERRORS = ErrorTable(_urllib3_rows)
"""urllib3's exceptions for a range's request. Facts: `host`, and `proxy`: a function that
looks up the proxy (only a ProxyError needs it)."""


def _httpx_rows() -> Rows:
    import httpx

    return {
        httpx.TooManyRedirects: Becomes(Permanent, "too many redirects from {url}"),
        httpx.TimeoutException: Becomes(Retryable, "timed out connecting to {host}"),
        (httpx.ConnectError, httpx.ProxyError): lambda exc, facts: connect_error(
            _failed_hop(exc, facts["url"]), exc, facts["options"], facts["proxy"]),
        (httpx.TransportError, httpx.DecodingError): Becomes(
            Retryable, "connection to {host} failed: {exc}"),
    }


REDIRECT_ERRORS = ErrorTable(_httpx_rows)
"""httpx's exceptions for the probe that follows redirects. Facts: `url` (without
credentials), `host`, `options`, `proxy` (or None)."""


def connect_error(url: str, exc: Exception, options: DownloadOptions,
                  proxy: str | None = None) -> RemoteError:
    """The error for a connection that could not be made, naming what could not be reached:
    the proxy when there is one (the address is its to reach), else the host of the hop that
    failed (`url`: for a redirect, where it led)."""
    text = str(exc)
    host = host_of(url)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        hint = "" if options.ca_bundle else "; pass --ca-bundle FILE if you trust its issuer"
        return Permanent(f"the TLS certificate of {host} is not trusted{hint}")
    if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in text:
        return Permanent(f"TLS error talking to {host}: {text}")
    if proxy is not None:
        return Retryable(f"cannot reach the proxy {host_of(proxy)}: {connect_reason(text)}")
    if "Name or service not known" in text or "nodename nor servname" in text or (
        "Temporary failure in name resolution" in text
    ):
        return HostNotFound(host)
    if "Connection refused" in text:
        return Retryable(f"{host} refused the connection")
    return Retryable(f"cannot connect to {host}: {text}")


def connect_reason(text: str) -> str:
    if "Connection refused" in text:
        return "it refused the connection"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "its name does not resolve"
    return short_reason(Exception(text))


def refuse_downgrade(url: str, final: str) -> None:
    """Raises Permanent when `final` is plain HTTP and `url` was HTTPS."""
    if urlsplit(url).scheme == "https" and urlsplit(final).scheme == "http":
        raise Permanent(f"{host_of(url)} redirected from HTTPS to plain HTTP ({final}); refusing")


def host_of(url: str) -> str:
    """host, or host:port when the address names a port."""
    parts = urlsplit(url)
    return parts.hostname or url if parts.port is None else f"{parts.hostname}:{parts.port}"


def _failed_hop(exc: Any, first: str) -> str:
    """The address of the request that failed: after a redirect, where it led."""
    try:
        return strip_credentials(str(exc.request.url))
    except RuntimeError:  # no request attached
        return first
