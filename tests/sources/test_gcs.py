"""Google Cloud Storage specifics on fake-gcs-server."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from laden.core.config import Config
from laden.core.options import DownloadOptions
from laden.core.states import State
from laden.sources.gcs import GcsSource
from servers.fixtures import random_bytes

from .conftest import manager
from .stores import GcsStore


def test_md5_and_crc32c_are_published_and_md5_is_checked(gs_store: GcsStore,
                                                          downloads: Path) -> None:
    data = random_bytes(1024 * 1024 + 3, seed=30)
    gs_store.put("h.bin", data)
    with manager() as m:
        info = m.wait(m.add(gs_store.url("h.bin"), str(downloads), **gs_store.options()))
    assert info.state is State.DONE, info.message
    published = {c.algorithm: (c.expected, c.origin, c.verified) for c in info.checksums}
    assert published == {
        "md5": (hashlib.md5(data).hexdigest(), "GCS md5Hash", True),
        "crc32c": (base64.b64decode(gs_store.server.client().bucket(gs_store.bucket)
                                    .get_blob("h.bin").crc32c).hex(), "GCS crc32c", None),
    }


def test_the_probe_names_the_generation(gs_store: GcsStore) -> None:
    gs_store.put("g.bin", b"one")
    blob = gs_store.server.client().bucket(gs_store.bucket).get_blob("g.bin")
    source = GcsSource(Config())
    try:
        remote = source.probe(gs_store.url("g.bin"), DownloadOptions(**gs_store.options()))
    finally:
        source.close()
    assert remote.version == str(blob.generation) and remote.size == 3


def test_emulator_from_the_environment(gs_store: GcsStore, downloads: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    gs_store.put("e.bin", b"from STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gs_store.server.endpoint.removeprefix("http://"))
    with manager() as m:
        info = m.wait(m.add(gs_store.url("e.bin"), str(downloads)))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == b"from STORAGE_EMULATOR_HOST"
