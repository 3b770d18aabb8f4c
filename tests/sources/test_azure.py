"""Azure Blob specifics on Azurite: Content-MD5, and the ways to name an account."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from laden.core.states import State
from laden.sources.azure import PROBE_RANGE
from servers.fixtures import random_bytes

from .conftest import manager, probed_then_checked, requests_asked
from .stores import AzureStore


def test_a_wrong_content_md5_is_caught(az_store: AzureStore, downloads: Path) -> None:
    from azure.storage.blob import ContentSettings

    data = random_bytes(700_000, seed=50)
    az_store.put("w.bin", data)
    blob = az_store.server.service_client().get_blob_client(az_store.container, "w.bin")
    blob.set_http_headers(ContentSettings(content_md5=bytearray(hashlib.md5(b"x").digest())))
    with manager() as m:
        info = m.wait(m.add(az_store.url("w.bin"), str(downloads), **az_store.options()))
    assert info.state is State.FAILED
    assert "md5 checksum mismatch (Azure Content-MD5)" in info.message


def test_a_blob_without_content_md5_still_downloads(az_store: AzureStore,
                                                    downloads: Path) -> None:
    data = random_bytes(300_000, seed=51)
    az_store.server.upload(az_store.container, "blocks.bin", data, content_md5=False)
    with manager() as m:
        info = m.wait(m.add(az_store.url("blocks.bin"), str(downloads), **az_store.options()))
    assert info.state is State.DONE, info.message
    assert info.checksums == ()
    assert Path(info.dest).read_bytes() == data


@pytest.mark.parametrize("credential", ["account_key", "sas_token"])
def test_account_url_with_a_key_or_sas_file(az_store: AzureStore, downloads: Path,
                                            tmp_path: Path, credential: str) -> None:
    server = az_store.server
    az_store.put("k.bin", b"via account url")
    if credential == "account_key":
        value = server.account_key
    else:
        value = urlsplit(server.sas_url(az_store.container, "k.bin")).query
    secret_file = tmp_path / credential
    secret_file.write_text(value + "\n")
    settings = {"azure_account_url": server.account_url,
                f"azure_{credential}_file": str(secret_file)}
    with manager() as m:
        info = m.wait(m.add(az_store.url("k.bin"), str(downloads), source_settings=settings))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == b"via account url"


def test_az_addresses_need_an_account(downloads: Path) -> None:
    with manager() as m:
        info = m.wait(m.add("az://box/x.bin", str(downloads)))
    assert info.state is State.FAILED
    assert "az:// addresses need an account" in info.message


def test_a_small_blob_is_one_get_with_its_md5_verified(az_store: AzureStore,
                                                       downloads: Path) -> None:
    data = random_bytes(PROBE_RANGE, seed=52)  # the largest that comes whole with the probe
    az_store.put("small.bin", data)
    with requests_asked() as asked, manager() as m:
        info = m.wait(m.add(az_store.url("small.bin"), str(downloads), **az_store.options()))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == data
    assert [(c.origin, c.verified) for c in info.checksums] == [("Azure Content-MD5", True)]
    assert asked == [["GET", az_store.url("small.bin")]]


def test_an_empty_blob_and_a_larger_one(az_store: AzureStore, downloads: Path) -> None:
    larger = random_bytes(PROBE_RANGE + 1, seed=53)
    az_store.put("empty.bin", b"")
    az_store.put("larger.bin", larger)
    with requests_asked() as asked, manager() as m:
        infos = [m.wait(m.add(az_store.url(k), str(downloads), **az_store.options()))
                 for k in ("empty.bin", "larger.bin")]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    assert [Path(i.dest).read_bytes() for i in infos] == [b"", larger]
    # A range of an empty blob is refused (416): its properties are asked for instead. The
    # larger blob's probe range is read again by the connections.
    empty = [a for a in asked if a[1] == az_store.url("empty.bin")]
    assert empty == [["GET", az_store.url("empty.bin")], ["HEAD", az_store.url("empty.bin")]]
    assert ["HEAD", az_store.url("larger.bin")] not in asked


def test_a_reruns_check_reads_the_properties_not_the_bytes(az_store: AzureStore) -> None:
    az_store.put("r.bin", b"rerun")
    probed, now, asked = probed_then_checked(az_store, "r.bin")
    assert probed.body == b"rerun" and now.body is None
    assert (now.size, now.etag, now.checksums, now.extra) == (
        probed.size, probed.etag, probed.checksums, probed.extra)
    assert asked == [["GET", az_store.url("r.bin")], ["HEAD", az_store.url("r.bin")]]
