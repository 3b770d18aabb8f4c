"""HTTP and HTTPS: urllib3's connections for the probe and the bytes, httpx for redirects.

The probe asks for the first bytes of the file with one plain request through urllib3; most
servers answer it directly. An answer that redirects, or a connection that fails, is asked
again through httpx (`http_redirects`), which follows redirects hop by hop and names the
error. The body of each range is read through urllib3 too, because that loop decides laden's
speed: httpx's iterators copy every chunk through h11's buffer and hand back fresh bytes
objects, which measured at 0.6 to 1.4 times aria2c on this kind of machine. A urllib3
response's underlying http.client response is read with `readinto` into the connection's
reused buffer, or spliced into the file in the kernel (see `http_reader`). Both clients share
one SSL context and the same proxy decision, so they behave the same way.
"""

from __future__ import annotations

import base64
import functools
import netrc
import os
import ssl
import stat
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3

from ..core.config import Config
from ..core.errors import InputError, Permanent, RangeNotSupported, RemoteChanged, Retryable
from ..core.known_sources import known_source
from ..core.names import filename_from_content_disposition, filename_from_url
from ..core.options import DownloadOptions, check_proxy
from ..core.urls import strip_credentials
from ..core.version import __version__
from .base import FILTER_SETTINGS, PROBE_BODY, ListedObject, RangeReader, RemoteInfo, Source
from .http_connections import WATCHDOG, pool_classes
from .http_errors import READ_ERRORS, error_for_status, host_of
from .http_headers import (
    changed_version,
    parse_content_length,
    parse_content_range,
    published_checksums,
    strong_validator,
)
from .http_reader import HttpRangeReader, short_reason, socket_of
from .requests_log import logged_request, range_of

USER_AGENT = f"laden/{__version__}"
PROBE_RANGE = f"bytes=0-{PROBE_BODY - 1}"


class HttpSource(Source):
    known = known_source("http")

    def __init__(self, config: Config | None = None) -> None:
        self._config = config or Config()
        self._lock = threading.Lock()
        self._contexts: dict[tuple[str | None, bool], ssl.SSLContext] = {}
        self._redirecting: Any = None  # http_redirects.RedirectingProbe, made on first need
        self._pools: dict[tuple[Any, ...], urllib3.PoolManager] = {}
        self._env_proxies: dict[str, str] | None = None
        self._pool_classes = pool_classes(self._config.connect_timeout)

    @property
    def config(self) -> Config:
        return self._config

    # -- the probe ---------------------------------------------------------------------------

    def probe(self, url: str, options: DownloadOptions) -> RemoteInfo:
        clean = strip_credentials(url)
        headers = {
            **options.headers,
            **self._auth_headers(url, options),
            "Range": PROBE_RANGE,
            "Accept-Encoding": "identity",
        }
        try:
            return self._probe_once(clean, headers, options)
        except _RangeRefused:
            # 416 to the first bytes, without saying the size: not "an empty file". Ask for the
            # whole file instead; its answer says what there is.
            del headers["Range"]
            return self._probe_once(clean, headers, options)

    def _probe_once(self, clean: str, headers: dict[str, str],
                    options: DownloadOptions) -> RemoteInfo:
        direct_answer = self._probe_without_redirects(clean, headers, options)
        if direct_answer is not None:
            return direct_answer
        return self._redirecting_probe().probe(clean, headers, options)

    def _redirecting_probe(self) -> Any:
        """The probe through httpx, imported on first need: httpx costs 40 ms of start-up."""
        with self._lock:
            if self._redirecting is None:
                from .http_redirects import RedirectingProbe

                self._redirecting = RedirectingProbe(self)
            return self._redirecting

    def _probe_without_redirects(self, url: str, headers: dict[str, str],
                                 options: DownloadOptions) -> RemoteInfo | None:
        """The probe as one plain request through urllib3, for an answer that is not a redirect.

        Most probes are answered directly, and httpx spends about three times urllib3's CPU
        on a request: for a small file the probe is most of what laden does (measured with
        yappi over 500 files of 256 KiB). None when the answer is a redirect or the
        connection failed: httpx then asks again, following redirects hop by hop (refusing
        HTTPS to HTTP, dropping credentials across origins) and naming the error.
        """
        try:
            response = self._get(url, {**headers, "User-Agent": USER_AGENT}, options)
        except urllib3.exceptions.ReadTimeoutError:
            # Connected, and no answer: asking again through httpx would wait as long again.
            raise Retryable(f"timed out connecting to {host_of(url)}") from None
        except (urllib3.exceptions.HTTPError, OSError):
            return None
        whole = False
        try:
            if 300 <= response.status < 400:
                return None
            remote = self.remote_from(url, url, response.status, response.headers, headers)
            remote = self.with_body(remote, response.status, response.headers,
                                     lambda: self._read_whole(response),
                                     (urllib3.exceptions.HTTPError, OSError))
            whole = remote.body is not None
            return remote
        finally:
            if not whole:
                response.close()  # unread bytes: this connection cannot carry another request
            response.release_conn()

    def with_body(self, remote: RemoteInfo, status: int, headers: Any,
                   read: Callable[[], bytes], errors: tuple[type[BaseException], ...]
                   ) -> RemoteInfo:
        """`remote` with the whole file attached, when the probe's answer is it: `read` takes
        the body; a failure (`errors`) leaves it to the connections, which retry."""
        if not self._carries_whole_file(status, headers, remote):
            return remote
        try:
            body = read()
        except errors:
            return remote  # dropped or stalled: the connections fetch it, with retries
        return remote.carrying(body)

    def current_version(self, url: str, options: DownloadOptions) -> RemoteInfo:
        """A HEAD, not the probe: the probe of a small file brings the whole file back."""
        clean = strip_credentials(url)
        headers = {**options.headers, **self._auth_headers(url, options),
                   "Accept-Encoding": "identity", "User-Agent": USER_AGENT}
        try:
            with logged_request("HEAD", clean) as answer:
                response = self._pool(clean, options).urlopen(
                    "HEAD", clean, headers=headers, preload_content=False, redirect=True,
                    retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0,
                                          redirect=10),
                    timeout=urllib3.Timeout(connect=self._config.connect_timeout,
                                            read=self._config.stall_timeout))
                answer.status = response.status
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retryable(f"cannot reach {host_of(clean)}: {short_reason(exc)}") from None
        try:
            final = response.geturl() or clean
            return self.remote_from(clean, final, response.status, response.headers, {})
        finally:
            response.release_conn()

    def _read_whole(self, response: Any) -> bytes:
        """The probe's body, within the stall timeout in all: a body that trickles is left to
        the connections, whose speed is judged (see `engine.health`)."""
        sock = socket_of(response)
        token = WATCHDOG.arm(sock, self._config.stall_timeout) if sock is not None else 0
        try:
            body: bytes = response.read()
        finally:
            if token and not WATCHDOG.disarm(token):
                raise OSError("the probe's body came too slowly")
        return body

    def _get(self, url: str, headers: dict[str, str], options: DownloadOptions) -> Any:
        """One GET through urllib3, redirects not followed, the body left unread."""
        with logged_request("GET", url, *range_of(headers.get("Range"))) as answer:
            response = self._pool(url, options).urlopen(
                "GET", url, headers=headers, preload_content=False, decode_content=False,
                redirect=False, retries=False,
                timeout=urllib3.Timeout(connect=self._config.connect_timeout,
                                        read=self._config.stall_timeout),
            )
            answer.status = response.status
        return response

    def _carries_whole_file(self, status: int, headers: Any, remote: RemoteInfo) -> bool:
        """True when the probe's answer is the whole file, as the file's own bytes, and the
        file is one the connections would fetch on one connection anyway (see
        `min_segment_size`): a slow server still gets several for a larger one."""
        limit = min(PROBE_BODY, self._config.min_segment_size)
        if remote.size is None or remote.size > limit:
            return False
        if headers.get("content-encoding", "identity").strip().lower() != "identity":
            return False  # left to the connections, which decide what such bytes are
        if status == 200:
            return True
        parsed = parse_content_range(headers.get("content-range"))
        return status == 206 and parsed is not None and parsed[:2] == (0, remote.size)

    def remote_from(self, url: str, final: str, status: int, headers: Any,
                     asked: Mapping[str, str]) -> RemoteInfo:
        size: int | None
        if status == 206:
            parsed = parse_content_range(headers.get("content-range"))
            size = parsed[2] if parsed else None
            ranges = size is not None
        elif status == 200:
            size = parse_content_length(headers.get("content-length"))
            ranges = False
        elif status == 416 and "Range" in asked:
            # Only `bytes */0` proves an empty file: anything else says nothing of the size.
            parsed = parse_content_range(headers.get("content-range"))
            if parsed is None or parsed[2] != 0:
                raise _RangeRefused
            size, ranges = 0, False
        else:
            raise error_for_status(status, headers, final)
        etag = headers.get("etag")
        modified = headers.get("last-modified")
        filename = filename_from_content_disposition(headers.get("content-disposition"))
        return RemoteInfo(
            url=url,
            final_url=final,
            size=size,
            supports_ranges=ranges,
            etag=etag,
            last_modified=modified,
            filename=filename or filename_from_url(final) or filename_from_url(url),
            checksums=tuple(published_checksums(headers, whole_body=status == 200)),
            version=strong_validator(etag, modified, headers.get("date")),
            extra={"content_type": headers.get("content-type", "")},
        )

    # -- folders (see `http_folders`) --------------------------------------------------------

    SUPPORTS_LISTING = True

    def is_folder(self, url: str, options: DownloadOptions) -> bool:
        """Only with a filter: an address ending in / is as often a page as a folder."""
        return any(options.source_settings.get(name) for name in FILTER_SETTINGS)

    def list(self, url: str, options: DownloadOptions) -> Iterator[ListedObject]:
        # Imported when a folder is walked: html.parser and its entity tables are start-up
        # that a file does not need.
        from . import http_folders

        return http_folders.walk(self, url, options)

    def folder_page(self, url: str, options: DownloadOptions, limit: int,
                    check: Callable[[str, str], None]) -> tuple[str, str, bytes]:
        """A folder page, redirects followed: (its address, its Content-Type, its body);
        `check(address, content_type)` may refuse it before the body is read."""
        headers = {**options.headers, **self._auth_headers(url, options)}
        return self._redirecting_probe().page(strip_credentials(url), headers, options, limit,
                                              check)

    # -- the bytes ---------------------------------------------------------------------------

    def open_range(
        self, remote: RemoteInfo, start: int, end: int | None, options: DownloadOptions
    ) -> RangeReader:
        url = remote.final_url
        headers = {**options.headers, "Accept-Encoding": "identity", "User-Agent": USER_AGENT}
        if _same_origin(remote.url, url):
            headers.update(self._auth_headers(remote.url, options))
        ranged = remote.supports_ranges and (start > 0 or end is not None)
        if ranged:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
            if remote.version and not remote.version.startswith(("W/", "w/")):
                # Only a strong validator may go in If-Range; without one, the answer's own
                # validators are still compared with the pinned ones (`_check_response`).
                headers["If-Range"] = remote.version
        try:
            response = self._get(url, headers, options)
        except Exception as exc:  # noqa: BLE001 - translated by the table, or raised as it is
            error = READ_ERRORS.translate(exc, host=host_of(url), proxy=lambda: proxy_for(
                url, options, self.environment_proxies()))
            if error is exc:
                raise
            raise error from None
        try:
            return self._check_response(response, remote, start, end, ranged)
        except BaseException:
            response.close()
            response.release_conn()
            raise

    def _check_response(
        self, response: Any, remote: RemoteInfo, start: int, end: int | None, ranged: bool
    ) -> RangeReader:
        status = response.status
        headers = {k.lower(): v for k, v in response.headers.items()}
        url = remote.final_url
        if status in (200, 206) and ranged:
            # A cache or server that ignores If-Range answers with whatever version it has:
            # every answer's validators must be the pinned ones, or its bytes are not written.
            changed = changed_version(remote.etag, remote.last_modified, headers)
            if changed:
                raise RemoteChanged(changed)
        if status == 206 and ranged:
            parsed = parse_content_range(headers.get("content-range"))
            want_end = end if end is not None else remote.size
            if parsed is None or parsed[0] != start or parsed[1] != want_end:
                raise Retryable(
                    f"{host_of(url)} answered bytes {headers.get('content-range')!r} "
                    f"to a request for bytes {start}-{(want_end or 0) - 1}"
                )
            if parsed[2] is not None and remote.size is not None and parsed[2] != remote.size:
                raise RemoteChanged(
                    f"the remote file changed size ({remote.size} -> {parsed[2]} bytes)"
                )
            length = parse_content_length(headers.get("content-length"))
            encoding = headers.get("content-encoding", "identity").strip().lower()
            if encoding != "identity" and (
                length is None or want_end is None or length != want_end - start
            ):
                # Compressed on the fly although laden asked for identity: these are not the
                # file's bytes at these offsets. (A length equal to the range's means the file
                # is stored compressed, a .gz sent with Content-Encoding: gzip: its bytes are
                # the file's, kept as curl and wget keep them.)
                raise Permanent(
                    f"{host_of(url)} compressed its answer to a ranged request "
                    f"(Content-Encoding: {encoding}) although laden asked for none; refusing "
                    "to write those bytes into the file"
                )
            if headers.get("content-length") is not None and (
                length is None or (want_end is not None and length != want_end - start)
            ):
                # Not the range's length, or not a number: this server's ranged answers cannot
                # be trusted, and the whole file in one stream is what is left.
                raise RangeNotSupported(
                    f"{host_of(url)} sent Content-Length {headers['content-length'][:40]!r} "
                    f"for a range of {(want_end or 0) - start} bytes"
                )
            return HttpRangeReader(response, stall_timeout=self._config.stall_timeout)
        if status == 200:
            if not ranged:
                return HttpRangeReader(response, stall_timeout=self._config.stall_timeout)
            raise RangeNotSupported(
                f"{host_of(url)} ignored a Range request and sent the whole file")
        redirected = url != remote.url
        if 300 <= status < 400 or (redirected and status in (401, 403, 404, 410)):
            # A signed or CDN address that moved or expired: ask the original address again.
            error = Retryable(f"{host_of(url)} answered {status} to a ranged request",
                              status=status)
            error.reresolve = True  # type: ignore[attr-defined]
            raise error
        raise error_for_status(status, headers, url)

    # -- clients, TLS, proxies, credentials --------------------------------------------------

    def ssl_context(self, options: DownloadOptions) -> ssl.SSLContext:
        key = (options.ca_bundle, options.insecure)
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                context = make_ssl_context(options.ca_bundle, insecure=options.insecure)
                self._contexts[key] = context
            return context

    def _pool(self, url: str, options: DownloadOptions) -> urllib3.PoolManager:
        proxy = proxy_for(url, options, self.environment_proxies())
        secure = urlsplit(url).scheme == "https"
        key = (secure, options.ca_bundle, options.insecure, proxy)
        with self._lock:
            pool = self._pools.get(key)
        if pool is None:
            kwargs: dict[str, Any] = {"num_pools": 64, "maxsize": 64, "block": False}
            if secure:
                kwargs["ssl_context"] = self.ssl_context(options)
                if options.insecure:
                    kwargs.update(cert_reqs="CERT_NONE", assert_hostname=False)
            pool = urllib3.ProxyManager(proxy, **kwargs) if proxy else urllib3.PoolManager(**kwargs)
            pool.pool_classes_by_scheme = self._pool_classes
            with self._lock:
                pool = self._pools.setdefault(key, pool)
        return pool

    def environment_proxies(self) -> dict[str, str]:
        """The *_PROXY variables, read once per source: reading them walks the whole
        environment, a tenth of the CPU per small file when done for every request."""
        if self._env_proxies is None:
            self._env_proxies = proxies_from_environment()
        return self._env_proxies

    def _auth_headers(self, url: str, options: DownloadOptions) -> dict[str, str]:
        if options.bearer_token:
            return {"Authorization": f"Bearer {options.bearer_token}"}
        parts = urlsplit(url)
        user, password = options.username, options.password
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
        if user is None and options.netrc:
            user, password = netrc_credentials(parts.hostname or "")
        if user is None:
            return {}
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def close(self) -> None:
        with self._lock:
            redirecting, self._redirecting = self._redirecting, None
            pools, self._pools = list(self._pools.values()), {}
        if redirecting is not None:
            redirecting.close()
        for pool in pools:
            pool.clear()


def make_ssl_context(ca_bundle: str | None = None, *, insecure: bool = False) -> ssl.SSLContext:
    """The TLS context of HTTPS and FTPS: trusting `ca_bundle`, else the bundle (a file or a
    folder) REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names, as requests and curl read them, else
    the system's store (which OpenSSL reads from SSL_CERT_FILE and SSL_CERT_DIR when set)."""
    named = ""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if not (ca_bundle or insecure) and os.environ.get(variable):
            ca_bundle, named = os.environ[variable], f" (from {variable})"
    if ca_bundle:
        folder = os.path.isdir(ca_bundle)
        if not folder and not os.path.isfile(ca_bundle):
            raise InputError(f"CA bundle {ca_bundle}{named} does not exist")
        try:
            context = ssl.create_default_context(cafile=None if folder else ca_bundle,
                                                 capath=ca_bundle if folder else None)
        except ssl.SSLError as exc:
            raise InputError(f"CA bundle {ca_bundle}{named} holds no certificate laden can read "
                             f"({exc.reason or exc})") from None
    else:
        context = ssl.create_default_context()
        if not context.cert_store_stats().get("x509_ca"):
            import certifi  # minimal containers ship no system store; httpx brings certifi

            context.load_verify_locations(certifi.where())
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        # Asked for (-k): urllib3 would warn again for every connection it opens; the command
        # line says it once instead (cli.credentials).
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    return context


def proxies_from_environment() -> dict[str, str]:
    """The proxies the *_PROXY variables name, as urllib reads them; urllib.request (3 ms of
    every start) is imported only when one of them is set."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return {}
    import urllib.request

    return urllib.request.getproxies_environment()


def proxy_for(url: str, options: DownloadOptions,
              proxies: dict[str, str] | None = None) -> str | None:
    """The proxy for `url`: the option ("" for none), else HTTP(S)_PROXY / ALL_PROXY unless
    NO_PROXY matches. `proxies`: the environment's, when the caller has read them already."""
    if options.proxy is not None:
        return options.proxy or None
    parts = urlsplit(url)
    if proxies is None:
        proxies = proxies_from_environment()
    if not proxies:
        return None
    import urllib.request

    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if bypass(parts.hostname or "", proxies):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy:
        try:
            check_proxy(proxy)
        except InputError as exc:
            raise Permanent(f"{exc} (from the {parts.scheme.upper()}_PROXY environment "
                            "variable)") from None
    return proxy


class _RangeRefused(Exception):
    """416 to the probe's range with no size: the probe asks again without a range."""


def netrc_credentials(host: str) -> tuple[str | None, str | None]:
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if not host:
        return None, None
    try:
        found = os.stat(path)
    except OSError:
        return None, None
    if not stat.S_ISREG(found.st_mode):
        return None, None
    entries = _parsed_netrc(path, found.st_mtime_ns, found.st_ctime_ns, found.st_size,
                            found.st_ino, found.st_dev)
    login, password = entries.get(host) or entries.get("default") or (None, None)
    return login, password


@functools.lru_cache(maxsize=4)
def _parsed_netrc(path: str, *_version: int) -> dict[str, tuple[str | None, str | None]]:
    """Each host's login and password in the netrc file at `path` ("default" among them, as
    `netrc` keeps it), read once per version of the file (its times, size, inode and device):
    a request asks for them, and with thousands of small files a parse per request cost more
    than the request's own headers."""
    try:
        parsed = netrc.netrc(path)
    except (netrc.NetrcParseError, OSError):
        return {}
    return {host: (login, password) for host, (login, _account, password)
            in parsed.hosts.items()}


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)
