"""TLS is checked by default for HTTPS and FTPS, and nothing downgrades it silently: not a
redirect, not a proxy, not an FTP server without TLS. Extends tests/engine/test_security.py
(self-signed refused, CA bundle accepted) with the command line's messages, certificates that
are wrong in other ways, FTPS, redirects and proxies."""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from engine.helpers import manager, run_laden, sha256
from laden.core.states import State
from servers.fixtures import random_bytes
from servers.http_server import FileServer

from .relays import ForwardProxy

BODY = random_bytes(300_000, seed=77)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _https(ca: trustme.CA, *names: str, **cert: Any) -> FileServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, **cert).configure_cert(context)
    return FileServer(ssl_context=context)


@pytest.fixture
def https_server(ca: trustme.CA) -> Iterator[FileServer]:
    with _https(ca, "127.0.0.1", "files.invalid") as server:
        yield server


def test_untrusted_certificate_is_one_clear_line(https_server: FileServer,
                                                 downloads: Path, bundle: Path) -> None:
    url = https_server.add_file("/tls.bin", BODY)
    refused = run_laden("get", "-q", "-o", str(downloads), url)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "not trusted" in lines[0] and "--ca-bundle" in lines[0], lines
    assert list(downloads.iterdir()) == []
    trusted = run_laden("get", "-q", "-o", str(downloads), "--ca-bundle", str(bundle), url)
    assert trusted.returncode == 0, trusted.stderr
    assert sha256(downloads / "tls.bin") == sha256(BODY)


@pytest.mark.parametrize("problem", ["another host's certificate", "expired"])
def test_a_certificate_wrong_in_other_ways_is_refused_even_with_the_ca(
        problem: str, ca: trustme.CA, bundle: Path, downloads: Path) -> None:
    if problem == "expired":
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
        server = _https(ca, "127.0.0.1", not_before=past,
                        not_after=past + datetime.timedelta(days=1))
    else:
        server = _https(ca, "somewhere-else.invalid")
    with server:
        url = server.add_file("/wrong.bin", BODY)
        with manager() as m:
            info = m.wait(m.add(url, str(downloads), ca_bundle=str(bundle)))
    assert info.state is State.FAILED
    assert "TLS" in info.message or "certificate" in info.message, info.message
    assert list(downloads.iterdir()) == []


def test_https_redirect_to_plain_http_is_refused(https_server: FileServer,
                                                 http_server: FileServer, bundle: Path,
                                                 downloads: Path) -> None:
    plain = http_server.add_file("/plain.bin", BODY)
    url = https_server.add_redirect("/secure.bin", plain)
    result = run_laden("get", "-q", "-o", str(downloads), "--ca-bundle", str(bundle), url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "plain HTTP" in result.stderr and "refusing" in result.stderr, result.stderr
    assert not http_server.requests, "a request went out over plain HTTP"
    assert list(downloads.iterdir()) == []


def test_a_renewed_address_may_not_downgrade_either(https_server: FileServer,
                                                   http_server: FileServer, bundle: Path,
                                                   downloads: Path) -> None:
    """A signed address that expires mid-download is asked for again: if the origin now
    redirects to plain HTTP, that is refused too, and nothing is fetched over it."""
    from servers.http_server import Faults

    data = random_bytes(2 << 20, seed=78)
    https_server.add_file("/store/big.bin", data, faults=Faults(rate_per_connection=1_000_000))
    url = https_server.add_signed_redirect("/get/big.bin", "/store/big.bin",
                                           expire_after_requests=2)
    http_server.add_file("/store/big.bin", data)
    with manager() as m:
        download_id = m.add(url, str(downloads), ca_bundle=str(bundle), connections=2)
        from .helpers import wait_for

        wait_for(lambda: m.get(download_id).done > 0, what="the first bytes")
        https_server.add_redirect("/get/big.bin", http_server.base_url + "/store/big.bin")
        info = m.wait(download_id)
    assert not http_server.requests, "a request went out over plain HTTP"
    if info.state is State.DONE:  # it may have finished on the first address
        assert sha256(Path(info.dest)) == sha256(data)
    else:
        assert "plain HTTP" in info.message or "refus" in info.message, info.message
        assert not Path(info.dest).exists()


def test_ftps_untrusted_is_one_clear_line_and_trusted_with_the_ca(
        ftps_server: Any, downloads: Path) -> None:
    data = random_bytes(200_000, seed=79)
    ftps_server.write_file("faults/secure.bin", data)
    url = f"{ftps_server.url}/faults/secure.bin"
    refused = run_laden("get", "-q", "-o", str(downloads), url)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "certificate" in refused.stderr and "--ca-bundle" in refused.stderr
    assert ftps_server.password not in refused.stderr
    trusted = run_laden("get", "-q", "-o", str(downloads), "--ca-bundle",
                        str(ftps_server.ca_cert_path), url)
    assert trusted.returncode == 0, trusted.stderr
    assert sha256(downloads / "secure.bin") == sha256(data)


def test_ftps_to_a_server_without_tls_is_refused_not_downgraded(
        ftp_server: Any, downloads: Path) -> None:
    ftp_server.write_file("faults/plain.bin", b"p" * 1000)
    url = ftp_server.url.replace("ftp://", "ftps://") + "/faults/plain.bin"
    with manager() as m:
        info = m.wait(m.add(url, str(downloads)))
    assert info.state is State.FAILED, "an ftps:// address was fetched without TLS"
    assert "TLS" in info.message or "FTPS" in info.message, info.message
    assert list(downloads.iterdir()) == []


# -- proxies ---------------------------------------------------------------------------------


@pytest.fixture
def no_real_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """`files.invalid` never reaches a DNS server: a download that ignored the proxy would
    fail here, on this machine, instead of asking the network."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_real_dns")
def test_http_proxy_from_the_environment_is_used(http_server: FileServer, downloads: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.add_file("/via-proxy.bin", BODY)
    with ForwardProxy({"files.invalid": http_server.port}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        with manager() as m:
            info = m.wait(m.add("http://files.invalid/via-proxy.bin", str(downloads)))
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(BODY)
    assert any(line.startswith("GET http://files.invalid/via-proxy.bin")
               for line in proxy.requests), proxy.requests


@pytest.mark.usefixtures("no_real_dns")
def test_https_through_a_proxy_stays_inside_a_tunnel(https_server: FileServer, bundle: Path,
                                                     downloads: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    https_server.add_file("/tunnel.bin", BODY)
    with ForwardProxy({"files.invalid": https_server.port}) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        url = f"https://files.invalid:{https_server.port}/tunnel.bin"
        with manager() as m:
            refused = m.wait(m.add(url, str(downloads / "a") + "/"))
            info = m.wait(m.add(url, str(downloads / "b") + "/", ca_bundle=str(bundle)))
    assert refused.state is State.FAILED and "not trusted" in refused.message, refused.message
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(BODY)
    assert proxy.requests and all(line.startswith("CONNECT files.invalid:")
                                  for line in proxy.requests), proxy.requests


def test_a_proxy_cannot_downgrade_an_https_redirect(https_server: FileServer,
                                                    http_server: FileServer, bundle: Path,
                                                    downloads: Path) -> None:
    """Through an explicit proxy, the HTTPS-to-HTTP redirect is still refused."""
    http_server.add_file("/plain2.bin", BODY)
    url = https_server.add_redirect("/secure2.bin", http_server.base_url + "/plain2.bin")
    with ForwardProxy({"127.0.0.1": https_server.port}) as proxy, manager() as m:
        info = m.wait(m.add(url, str(downloads), ca_bundle=str(bundle),
                            proxy=f"http://127.0.0.1:{proxy.port}"))
    assert info.state is State.FAILED and "plain HTTP" in info.message, info.message
    assert not http_server.requests


def test_insecure_says_once_that_certificates_are_not_checked(https_server: FileServer,
                                                              downloads: Path) -> None:
    url = https_server.add_file("/insecure.bin", random_bytes(8_000_000, seed=78))
    got = run_laden("get", "-k", "-c", "8", "-o", str(downloads), url)  # several connections
    assert got.returncode == 0, got.stderr
    assert got.stderr.count("certificates are not checked") == 1, got.stderr
    assert "InsecureRequestWarning" not in got.stderr and "warnings.warn" not in got.stderr
    assert (downloads / "insecure.bin").stat().st_size == 8_000_000


def test_requests_ca_bundle_is_trusted_like_ssl_cert_file(
        https_server: FileServer, bundle: Path, downloads: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = https_server.add_file("/env-ca.bin", BODY)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    got = run_laden("get", "-q", "-o", str(downloads), url)
    assert got.returncode == 0, got.stderr
    assert sha256(downloads / "env-ca.bin") == sha256(BODY)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle.parent / "missing.pem"))
    refused = run_laden("get", "-q", "-o", str(downloads / "again"), url)
    assert refused.returncode != 0
    assert "missing.pem (from REQUESTS_CA_BUNDLE) does not exist" in refused.stderr
