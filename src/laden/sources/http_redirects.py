"""The probe through httpx, for answers that redirect and connections that fail.

`HttpSource.probe` asks with one plain request through urllib3 first. When the answer is a
redirect, or the request could not be made, it asks again here: httpx follows redirects hop
by hop (refusing HTTPS to plain HTTP before the hop is made, dropping credentials across
origins, keeping cookies a redirect sets) and tells connection errors apart. Imported only
then: httpx costs about 40 ms of start-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from ..core.errors import Permanent
from ..core.options import DownloadOptions
from ..core.urls import strip_credentials
from .base import RemoteInfo
from .http import USER_AGENT, proxy_for
from .http_errors import REDIRECT_ERRORS, error_for_status, host_of, refuse_downgrade
from .requests_log import logged_request, range_of

if TYPE_CHECKING:
    from .http import HttpSource


class RedirectingProbe:
    """httpx clients, one per TLS and proxy setting, and the probe made with them."""

    def __init__(self, source: HttpSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._clients: dict[tuple[Any, ...], httpx.Client] = {}

    def probe(self, clean: str, headers: dict[str, str], options: DownloadOptions) -> RemoteInfo:
        source = self._source
        with self._answer(clean, headers, options, range_of(headers.get("Range"))) as (
                response, final):
            remote = source.remote_from(clean, final, response.status_code, response.headers,
                                        headers)
            # An answer whose body is not read is closed unread on leaving the block.
            return source.with_body(remote, response.status_code, response.headers,
                                    lambda: _read_within(response, source.config),
                                    (httpx.TransportError, TimeoutError))

    def page(self, clean: str, headers: dict[str, str], options: DownloadOptions,
             limit: int, check: Any) -> tuple[str, str, bytes]:
        """A folder page: (the address it came from after redirects, its Content-Type, its
        body). Any status but 200 is the error it names; `check(address, content_type)` may
        refuse the answer before its body is read; a body over `limit` bytes is refused before
        it is read whole."""
        with self._answer(clean, headers, options) as (response, final):
            if response.status_code != 200:
                raise error_for_status(response.status_code, response.headers,
                                       strip_credentials(final))
            content_type = response.headers.get("content-type", "")
            check(final, content_type)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise Permanent(f"{strip_credentials(final)} is not a folder page: it is "
                                    f"larger than {limit >> 20} MiB")
            return final, content_type, bytes(body)

    @contextmanager
    def _answer(self, clean: str, headers: dict[str, str], options: DownloadOptions,
                asked: tuple[int | None, ...] = ()) -> Iterator[tuple[httpx.Response, str]]:
        """A GET with redirects followed, logged, its errors in laden's words, HTTPS to plain
        HTTP refused: (the answer, its address after redirects), its body not yet read."""
        proxy = proxy_for(clean, options, self._source.environment_proxies())
        client = self._client(clean, options)
        with REDIRECT_ERRORS.translating(url=clean, host=host_of(clean), options=options,
                                         proxy=proxy), \
                logged_request("GET", clean, *asked) as answer, \
                client.stream("GET", clean, headers=headers) as response:
            final = str(response.url)
            answer.status = response.status_code if final == clean else \
                f"{response.status_code} from {strip_credentials(final)}"
            refuse_downgrade(clean, final)
            yield response, final

    def _client(self, url: str, options: DownloadOptions) -> httpx.Client:
        proxy = proxy_for(url, options, self._source.environment_proxies())
        key = (options.ca_bundle, options.insecure, proxy)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            timeout = self._source.config.connect_timeout

            def https() -> httpx.HTTPTransport:
                context = self._source.ssl_context(options)
                return httpx.HTTPTransport(verify=context, proxy=proxy)

            client = httpx.Client(
                # The default transport serves plain HTTP. Passing one keeps httpx from building
                # its own, with a certifi context that costs 15 ms of every start-up; verify=False
                # only skips building a context, plain HTTP has no TLS to check.
                transport=httpx.HTTPTransport(verify=False, proxy=proxy),
                mounts={"https://": LazyTransport(https)},
                trust_env=False,  # proxies and netrc are decided here, the same for urllib3
                follow_redirects=True,
                max_redirects=20,
                # Checked before a redirect is followed: refusing only at the end would already
                # have sent the request, with any -H headers, over plain HTTP.
                event_hooks={"response": [_refuse_downgrade_hop]},
                timeout=httpx.Timeout(timeout, read=self._source.config.stall_timeout),
                headers={"User-Agent": USER_AGENT},
            )
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


class LazyTransport(httpx.BaseTransport):
    """Builds the HTTPS transport on first use: loading the CA certificates costs about 40 ms,
    which a plain-HTTP download, or `laden get` of a small file, should not pay."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._transport: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._transport is None:
                self._transport = self._factory()
        return self._transport.handle_request(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _read_within(response: httpx.Response, config: Any) -> bytes:
    """The body, or TimeoutError when it takes longer than the stall timeout in all (each
    chunk waits at most that long, so a trickle is noticed at the next chunk)."""
    deadline = time.monotonic() + config.stall_timeout
    chunks = []
    for chunk in response.iter_raw():
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("the probe's body came too slowly")
    return b"".join(chunks)


def _refuse_downgrade_hop(response: httpx.Response) -> None:
    """A redirect from HTTPS to plain HTTP, anywhere in the chain, is not followed."""
    location = response.headers.get("location") if response.is_redirect else None
    if location and response.url.scheme == "https":
        target = response.url.join(location)
        if target.scheme == "http":
            raise Permanent(f"{host_of(str(response.url))} redirected from HTTPS to plain HTTP "
                            f"({strip_credentials(str(target))}); refusing")
