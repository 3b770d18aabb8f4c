"""No credential is ever written down: downloads with every kind of credential laden takes, at
--log-level debug, and then a search of everything laden keeps (the state folder with its
journal, the settings folder, the logs) and everything it printed, for each secret value.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.helpers import run_laden
from servers.http_server import FileServer

from . import figures
from .relays import ForwardProxy

BODY = b"only for the right people\n" * 100


def _grep(secrets: dict[str, str], folders: list[Path], texts: dict[str, str]) -> list[str]:
    """Where any secret value (or its base64 or URL-quoted form) turns up."""
    from urllib.parse import quote

    found = []
    for name, secret in secrets.items():
        forms = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
        for folder in folders:
            for path in folder.rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    found += [f"{name} in {path}" for form in forms if form.encode() in data]
        for where, text in texts.items():
            found += [f"{name} in {where}" for form in forms if form in text]
        figures.FIGURES["secret values checked"] += 1
    return found


@pytest.mark.slow
def test_no_credential_is_ever_written_down(
        http_server: FileServer, s3_server: Any, s3_bucket: str, azurite_server: Any,
        azure_container: str, hf_hub: Any, laden_dirs: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    downloads = laden_dirs["downloads"]
    secrets = {
        "password in the address": "Pa55-in-url-7f3a",
        "password of -u": "Pa55-for-u-91bc",
        "bearer token": "tok-bearer-4d2e8a",
        "api key header": "key-header-0b77f1",
        "netrc password": "Pa55-netrc-c0ffee",
        "proxy password": "Pa55-proxy-5e5e5e",
        "s3 access key id": "AKIALADENSECRET01",
        "s3 secret key": "s3-secret-key-6a6b6c6d",
        "manifest s3 secret key": "s3-manifest-secret-9e9e",
        "azure account key": azurite_server.account_key,
        "hf token": hf_hub.token,
    }
    outputs: dict[str, str] = {}

    def laden(label: str, *args: str) -> None:
        result = run_laden(*args, "--log-level", "debug", timeout=90)
        outputs[f"{label} stdout"], outputs[f"{label} stderr"] = result.stdout, result.stderr
        assert result.returncode == 0, f"{label}: {result.stderr}"

    # HTTP: a password in the address, -u, a bearer token, an API key header, ~/.netrc.
    def auth(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    for name, expected in [("url", auth("alice", secrets["password in the address"])),
                           ("u", auth("bob", secrets["password of -u"])),
                           ("bearer", f"Bearer {secrets['bearer token']}"),
                           ("netrc", auth("carol", secrets["netrc password"]))]:
        http_server.add_file(f"/{name}.bin", BODY)
        http_server.require_auth(f"/{name}.bin", expected)
    base = http_server.base_url
    with_password = base.replace("http://",
                                 f"http://alice:{secrets['password in the address']}@")
    laden("url", "get", "-q", "-o", str(downloads), f"{with_password}/url.bin")
    laden("u", "get", "-q", "-o", str(downloads), "-u", f"bob:{secrets['password of -u']}",
          f"{base}/u.bin")
    laden("bearer", "get", "-q", "-o", str(downloads), "--bearer", secrets["bearer token"],
          "-H", f"X-Api-Key: {secrets['api key header']}", f"{base}/bearer.bin")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login carol password {secrets['netrc password']}\n")
    with monkeypatch.context() as only_here:  # the SDKs in this process read ~/.netrc too
        only_here.setenv("NETRC", str(netrc))
        laden("netrc", "get", "-q", "-o", str(downloads), f"{base}/netrc.bin")

    # A proxy whose address carries a password.
    http_server.add_file("/proxied.bin", BODY)
    with ForwardProxy({"files.invalid": http_server.port}) as proxy:
        proxy_url = f"http://puser:{secrets['proxy password']}@127.0.0.1:{proxy.port}"
        laden("proxy", "get", "-q", "-o", str(downloads), "--proxy", proxy_url,
              "http://files.invalid/proxied.bin")
        assert any("files.invalid/proxied.bin" in r for r in proxy.requests)

    # S3 keys: the id on the command line, the secret from a file (as a mounted secret).
    s3_server.put_object(s3_bucket, "s3.bin", BODY)
    key_file = tmp_path / "s3-secret"
    key_file.write_text(secrets["s3 secret key"] + "\n")
    laden("s3", "get", "-q", "-o", str(downloads), "--s3-endpoint-url", s3_server.endpoint_url,
          "--s3-access-key-id", secrets["s3 access key id"], "--s3-secret-key-file",
          str(key_file), f"s3://{s3_bucket}/s3.bin")

    # An Azure connection string (it holds the account key).
    azurite_server.upload(azure_container, "az.bin", BODY)
    connection = tmp_path / "azure-connection"
    connection.write_text(azurite_server.connection_string + "\n")
    laden("azure", "get", "-q", "-o", str(downloads), "--azure-connection-string-file",
          str(connection), f"az://{azure_container}/az.bin")

    # A Hugging Face token, for a private repository.
    repo = f"org/secret-{s3_bucket}"
    hf_hub.add_repo(repo, {"weights.bin": BODY}, private=True)
    token_file = tmp_path / "hf-token"
    token_file.write_text(hf_hub.token + "\n")
    laden("hf", "get", "-q", "-o", str(downloads), "--hf-endpoint", hf_hub.endpoint,
          "--hf-token-file", str(token_file), f"hf://{repo}/weights.bin")

    # A manifest with the S3 credentials written inline.
    s3_server.put_object(s3_bucket, "manifest.bin", BODY)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"download_root": str(downloads / "m"), "download_items": [
        {"type": "s3", "endpoint_url": s3_server.endpoint_url,
         "access_key_id": secrets["s3 access key id"],
         "secret_key": secrets["manifest s3 secret key"],
         "buckets": [{"name": s3_bucket, "items": [{"file": "manifest.bin",
                                                   "target_path": "manifest.bin"}]}]}]}))
    laden("manifest", "run", "-q", str(manifest))

    # Everything arrived, and `laden list` has nothing to give away either.
    finished = sorted(p.name for p in downloads.rglob("*.bin"))
    assert finished == sorted(["url.bin", "u.bin", "bearer.bin", "netrc.bin", "proxied.bin",
                               "s3.bin", "az.bin", "weights.bin", "manifest.bin"]), finished
    for path in downloads.rglob("*.bin"):
        assert path.read_bytes() == BODY
    listing = run_laden("list", "--json")
    outputs["list --json"] = listing.stdout
    records = [json.loads(line) for line in listing.stdout.splitlines()]
    assert all("@" not in r["url"] for r in records), "credentials left in a stored address"
    assert list(laden_dirs["logs"].rglob("*.log")), "no log was written at --log-level debug"

    found = _grep(secrets, [laden_dirs["state"], laden_dirs["config"], laden_dirs["logs"]],
                  outputs)
    figures.FIGURES["secrets found"] += len(found)
    assert not found, found


def test_a_refused_password_is_not_repeated_in_the_message(http_server: FileServer,
                                                           downloads: Path) -> None:
    http_server.add_file("/p.bin", BODY)
    http_server.require_auth("/p.bin", "Basic bm9ib2R5OnJpZ2h0")
    url = http_server.base_url.replace("http://", "http://nobody:Wr0ng-Pa55-x1@") + "/p.bin"
    result = run_laden("get", "-q", "-o", str(downloads), url, "--log-level", "debug")
    assert result.returncode == 1 and "401" in result.stderr
    figures.FIGURES["secret values checked"] += 1
    assert "Wr0ng-Pa55-x1" not in result.stderr + result.stdout
