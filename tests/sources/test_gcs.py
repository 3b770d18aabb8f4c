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
from laden.sources.gcs_answers import remote_from
from servers.fixtures import random_bytes

from .conftest import manager, probed_then_checked, requests_asked
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


def test_a_small_object_is_one_get_with_its_checksums_verified(gs_store: GcsStore,
                                                               downloads: Path) -> None:
    data = random_bytes(50_000, seed=31)  # within the probe (FAST: 64 KiB segments)
    gs_store.put("small.bin", data)
    gs_store.put("empty.bin", b"")
    with requests_asked() as asked, manager() as m:
        infos = [m.wait(m.add(gs_store.url(k), str(downloads), **gs_store.options()))
                 for k in ("small.bin", "empty.bin")]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    assert [Path(i.dest).read_bytes() for i in infos] == [data, b""]
    assert {(c.algorithm, c.origin, c.verified) for c in infos[0].checksums} == {
        ("md5", "GCS md5Hash", True), ("crc32c", "GCS crc32c", None)}
    assert sorted(asked) == sorted(["GET", gs_store.url(k)] for k in ("small.bin", "empty.bin"))


def test_a_larger_object_is_read_in_ranges_of_the_probed_generation(gs_store: GcsStore,
                                                                   downloads: Path) -> None:
    data = random_bytes(300_000, seed=32)
    gs_store.put("large.bin", data)
    with requests_asked() as asked, manager() as m:
        info = m.wait(m.add(gs_store.url("large.bin"), str(downloads), **gs_store.options()))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == data
    assert len(asked) > 2 and all(a == ["GET", gs_store.url("large.bin")] for a in asked)


def test_a_reruns_check_reads_the_metadata_not_the_bytes(gs_store: GcsStore) -> None:
    gs_store.put("r.bin", b"rerun")
    probed, now, asked = probed_then_checked(gs_store, "r.bin")
    assert probed.body == b"rerun" and now.body is None
    assert (now.size, now.version) == (probed.size, probed.version)
    assert asked == [["GET", gs_store.url("r.bin")], ["GET metadata", gs_store.url("r.bin")]]


def test_an_answer_without_a_generation_or_size_is_not_trusted() -> None:
    headers = {"x-goog-generation": "7", "content-length": "3", "x-goog-hash": "crc32c=AAAAAA=="}
    assert remote_from("gs://b/k", "k", headers).version == "7"
    for left_out in ("x-goog-generation", "content-length"):
        partial = {k: v for k, v in headers.items() if k != left_out}
        assert remote_from("gs://b/k", "k", partial) is None
