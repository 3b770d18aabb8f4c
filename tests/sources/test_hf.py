"""Hugging Face specifics on the hub emulator: tokens, the CDN, revisions and snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path

from laden.core.states import State
from servers.cloud_fixtures import unique_name
from servers.fixtures import random_bytes
from servers.hf_hub import HubServer, git_blob_sha1

from .conftest import FAST, manager


def _settings(hub: HubServer, **more: object) -> dict[str, object]:
    return {"hf_endpoint": hub.endpoint, **more}


def test_private_repo_needs_the_token_and_the_cdn_never_sees_it(hf_hub: HubServer,
                                                                 downloads: Path) -> None:
    repo = f"org/{unique_name('private')}"
    data = random_bytes(2 * 1024 * 1024, seed=60)
    hf_hub.add_repo(repo, {"weights.bin": data}, private=True)
    url = f"hf://{repo}/weights.bin"
    with manager() as m:
        refused = m.wait(m.add(url, str(downloads / "anonymous") + "/",
                               source_settings=_settings(hf_hub)))
        hf_hub.cdn_requests.clear()
        allowed = m.wait(m.add(url, str(downloads / "token") + "/",
                               source_settings=_settings(hf_hub),
                               secrets={"hf_token": hf_hub.token}))
    assert refused.state is State.FAILED
    assert "not found; if it is private or gated, give a token" in refused.message
    assert allowed.state is State.DONE, allowed.message
    assert Path(allowed.dest).read_bytes() == data
    assert [(c.algorithm, c.origin, c.verified) for c in allowed.checksums] == [
        ("sha256", "Hugging Face LFS sha256", True)]
    cdn = hf_hub.cdn_requests.snapshot()
    assert len([r for r in cdn if r.headers.get("range")]) >= 2, "expected ranged CDN reads"
    assert all("authorization" not in r.headers for r in cdn)
    assert any(r.headers.get("authorization") == f"Bearer {hf_hub.token}"
               for r in hf_hub.hub_requests)


def test_small_files_come_from_the_hub_pinned_to_the_commit(hf_hub: HubServer,
                                                            downloads: Path) -> None:
    repo = f"org/{unique_name('small')}"
    data = random_bytes(900, seed=61)  # under the LFS threshold: a plain git blob
    commit = hf_hub.add_repo(repo, {"config.json": data})
    with manager() as m:
        info = m.wait(m.add(f"hf://{repo}/config.json", str(downloads),
                            source_settings=_settings(hf_hub)))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == data
    assert [(c.algorithm, c.expected, c.verified) for c in info.checksums] == [
        ("git-sha1", git_blob_sha1(data), True)]
    reads = [r for r in hf_hub.hub_requests if r.method == "GET"]
    assert reads and all(f"/resolve/{commit}/" in r.path for r in reads)
    assert hf_hub.cdn_requests.snapshot() == []


def test_corrupted_cdn_bytes_fail_the_lfs_sha256(hf_hub: HubServer, downloads: Path) -> None:
    repo = f"org/{unique_name('broken')}"
    data = random_bytes(400_000, seed=62)
    hf_hub.add_repo(repo, {"model.bin": data})
    sha = hashlib.sha256(data).hexdigest()
    hf_hub._blobs[sha] = data[:-1] + bytes([data[-1] ^ 1])  # the CDN's copy rots
    with manager() as m:
        info = m.wait(m.add(f"hf://{repo}/model.bin", str(downloads),
                            source_settings=_settings(hf_hub)))
    assert info.state is State.FAILED
    assert "sha256 checksum mismatch (Hugging Face LFS sha256)" in info.message


def test_revisions_in_the_address_or_as_a_setting(hf_hub: HubServer, downloads: Path) -> None:
    repo = f"org/{unique_name('tagged')}"
    first = hf_hub.add_repo(repo, {"a.txt": b"version one"})
    hf_hub.add_ref(repo, "v1", first)
    hf_hub.set_file(repo, "a.txt", b"version two")
    with manager() as m:
        tagged = m.wait(m.add(f"hf://{repo}@v1/a.txt", str(downloads / "tag") + "/",
                              source_settings=_settings(hf_hub)))
        setting = m.wait(m.add(f"hf://{repo}/a.txt", str(downloads / "setting") + "/",
                               source_settings=_settings(hf_hub, revision=first)))
        latest = m.wait(m.add(f"hf://{repo}/a.txt", str(downloads / "main") + "/",
                              source_settings=_settings(hf_hub)))
    assert Path(tagged.dest).read_bytes() == b"version one"
    assert Path(setting.dest).read_bytes() == b"version one"
    assert Path(latest.dest).read_bytes() == b"version two"


def test_whole_repository_snapshot_with_include_and_exclude(hf_hub: HubServer,
                                                            downloads: Path) -> None:
    repo = f"org/{unique_name('data')}"
    files = {"README.md": b"# data", "train/a.parquet": random_bytes(5000, seed=63),
             "train/b.parquet": b"b" * 10, "test/c.parquet": b"c", "train/notes.txt": b"n"}
    hf_hub.add_repo(repo, files, repo_type="dataset")
    with manager() as m:
        ids = m.add_all(f"hf://datasets/{repo}", str(downloads),
                        source_settings=_settings(hf_hub, include=["*.parquet", "README.md"],
                                                  exclude="test/*"))
        infos = [m.wait(i) for i in ids]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    found = {str(p.relative_to(downloads)): p.read_bytes()
             for p in downloads.rglob("*") if p.is_file()}
    assert found == {k: v for k, v in files.items() if k.endswith(".parquet") and
                     not k.startswith("test/") or k == "README.md"}


def test_a_repository_path_that_escapes_is_refused(hf_hub: HubServer, downloads: Path) -> None:
    repo = f"org/{unique_name('evil')}"
    hf_hub.add_repo(repo, {"fine.txt": b"ok", "../escape.txt": b"no"})
    with manager() as m:
        try:
            m.add_all(f"hf://{repo}", str(downloads / "inside"),
                      source_settings=_settings(hf_hub))
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            message = str(exc)
        else:
            message = ""
        assert m.list() == []
    assert "outside the destination folder" in message
    assert not (downloads / "escape.txt").exists()


def test_an_expired_cdn_address_is_renewed(downloads: Path) -> None:
    data = random_bytes(2 * 1024 * 1024, seed=64)
    with HubServer(cdn_url_ttl=1.5) as hub:
        repo = f"org/{unique_name('expiring')}"
        hub.add_repo(repo, {"slow.bin": data})
        # One connection at a time walks the four segments one after the other (about 0.75 s
        # each), so ranges are still being opened after a signed address, valid for 0.5 to
        # 1.5 s, has expired.
        slow = FAST.replace(limit_rate=700_000, connections=4, per_host_connections=1)
        with manager(slow) as m:
            download_id = m.add(f"hf://{repo}/slow.bin", str(downloads),
                                source_settings=_settings(hub))
            info = m.wait(download_id, timeout=30)
        assert any(r.path.startswith("/lfs/") for r in hub.cdn_requests)
        expired = [r for r in hub.cdn_requests if r.headers.get("range")]
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == data
    assert len({r.path for r in expired}) >= 2, "the signed address should have been renewed"
    assert any("403" in e.message for e in info.errors), info.errors


def test_the_token_never_reaches_the_journal(hf_hub: HubServer, downloads: Path,
                                             laden_dirs: dict[str, Path]) -> None:
    repo = f"org/{unique_name('secret')}"
    hf_hub.add_repo(repo, {"s.bin": b"secret" * 100}, private=True)
    with manager() as m:
        info = m.wait(m.add(f"hf://{repo}/s.bin", str(downloads),
                            source_settings=_settings(hf_hub),
                            secrets={"hf_token": hf_hub.token}))
    assert info.state is State.DONE, info.message
    files = [p for p in laden_dirs["state"].rglob("*") if p.is_file()]
    assert files, "the journal should exist"
    for path in files:
        assert hf_hub.token.encode() not in path.read_bytes(), path
