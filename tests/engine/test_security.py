"""TLS is checked by default, and credentials never reach the state folder or the logs."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

from laden.core.states import State
from servers.http_server import FileServer

from .helpers import manager, run_laden


def test_self_signed_server_is_refused_unless_its_ca_is_given(tmp_path, downloads) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with FileServer(ssl_context=context) as server:
        url = server.add_file("/s.bin", b"secret bytes")
        with manager() as m:
            refused = m.wait(m.add(url, str(downloads)))
            trusted = m.wait(m.add(url, str(downloads / "t.bin"), ca_bundle=str(bundle)))
    assert refused.state is State.FAILED and "not trusted" in refused.message
    assert trusted.state is State.DONE
    assert Path(trusted.dest).read_bytes() == b"secret bytes"


def test_credentials_are_never_written_down(http_server, laden_dirs, downloads) -> None:
    password, token = "pa55-Sekrit-u7", "tok-Sekrit-99"
    http_server.add_file("/a.bin", b"a" * 1000)
    http_server.require_auth("/a.bin", "Basic dXNlcjpwYTU1LVNla3JpdC11Nw==")
    http_server.add_file("/b.bin", b"b" * 1000)
    http_server.require_auth("/b.bin", f"Bearer {token}")
    base = http_server.base_url.replace("http://", f"http://user:{password}@")
    first = run_laden("get", "-o", str(downloads), f"{base}/a.bin", "--log-level", "debug")
    second = run_laden("get", "-o", str(downloads), "-H", f"Authorization: Bearer {token}",
                       "-H", "X-Api-Key: " + token, f"{http_server.base_url}/b.bin")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    listing = run_laden("list", "--json")
    for secret in (password, token):
        assert secret not in listing.stdout
        for folder in (laden_dirs["state"], laden_dirs["config"], laden_dirs["logs"]):
            for path in folder.rglob("*"):
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), f"{secret} in {path}"


def test_wrong_password_is_one_clear_line(http_server, downloads) -> None:
    http_server.add_file("/p.bin", b"p")
    http_server.require_auth("/p.bin", "Basic c29tZW9uZTpyaWdodA==")
    url = http_server.base_url.replace("http://", "http://someone:wrong@") + "/p.bin"
    result = run_laden("get", "-q", "-o", str(downloads), url)
    assert result.returncode == 1
    assert "401" in result.stderr and "credentials" in result.stderr
    assert "wrong" not in result.stderr.replace("are missing or wrong", "")
    assert "Traceback" not in result.stderr
