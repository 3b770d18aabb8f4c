"""A manifest is checked completely before anything is downloaded; mistakes are named by item
and field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from laden.cli import main
from laden.manifest import ManifestError, load_manifest

from .conftest import secret, write_manifest

# Kaiwo's documented example, as it is (python/docs/downloader.md, "Top-Level Configuration").
KAIWO_EXAMPLE = """\
download_root: "{root}"
download_items:
  - type: s3
    name: "MyS3Download"
    endpoint_url: "https://s3.amazonaws.com"
    access_key_id: "YOUR_ACCESS_KEY_ID"
    secret_key: "YOUR_SECRET_KEY"
    buckets:
      - name: "my-s3-bucket"
        items:
          - folder: "data"
            target_path: "local/data"
            glob: "**/*.csv"
          - file: "readme.txt"
            target_path: "local/readme.txt"
  - type: gcs
    name: "Google Cloud Storage"
    application_credentials_file: "{credentials}"
    buckets:
      - name: "my-gcs-bucket"
        items:
          - file: "readme.txt"
            target_path: "local/readme-gcs.txt"
  - type: azure-blob
    connection_string: "connection_string"
    containers:
      - name: "my-azure-blob-container"
        items:
          - file: "readme.txt"
            target_path: "local/readme-azure.txt"
  - type: hf
    name: "MyHFDownload"
    repo_id: "username/repo"
    files:
      - "model.bin"
      - "config.json"
"""


def test_kaiwo_example_is_accepted_as_it_is(tmp_path: Path) -> None:
    credentials = tmp_path / "gcs.json"
    credentials.write_text("{}")
    path = tmp_path / "kaiwo.yaml"
    path.write_text(KAIWO_EXAMPLE.format(root=tmp_path / "root", credentials=credentials))
    manifest = load_manifest(str(path))
    root = str(tmp_path / "root")
    s3, gcs, azure, hf = manifest.items
    assert [t.url for t in s3.targets] == ["s3://my-s3-bucket/data/", "s3://my-s3-bucket/readme.txt"]
    assert s3.targets[0].folder and s3.targets[0].glob == "**/*.csv"
    assert s3.targets[0].dest == os.path.join(root, "local", "data") + os.sep
    assert s3.targets[1].dest == os.path.join(root, "local", "readme.txt")
    options = s3.targets[1].options
    assert options.source_settings["s3_endpoint_url"] == "https://s3.amazonaws.com"
    assert options.secrets == {"s3_access_key_id": "YOUR_ACCESS_KEY_ID",
                               "s3_secret_key": "YOUR_SECRET_KEY"}
    assert "YOUR_SECRET_KEY" not in str(options.to_journal())
    assert gcs.targets[0].options.source_settings["gcs_credentials_file"] == str(credentials)
    assert azure.title == "item 3 (azure-blob)"
    assert azure.targets[0].options.secrets == {"azure_connection_string": "connection_string"}
    assert [t.url for t in hf.targets] == ["hf://username/repo@main/model.bin",
                                           "hf://username/repo@main/config.json"]
    assert hf.targets[0].dest == os.path.join(root, "username", "repo", "model.bin")


def test_kaiwo_code_forms_and_secret_files(tmp_path: Path, secrets_dir: Path) -> None:
    """Kaiwo's models also read `files`/`folders` with `path`, camelCase names, and
    `{file: ...}` references; secrets from files are never journalled, their paths are."""
    key_file = secret(secrets_dir, "secret_key", "s3cr3t-value")
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path), "download_items": [
        {"type": "s3", "endpointUrl": {"value": "http://minio:9000"},
         "access_key_id": {"file": secret(secrets_dir, "key_id", "AKIA")},
         "secret_key_file": key_file,
         "buckets": [{"name": "b", "files": [{"path": "x/y.bin", "targetPath": "y.bin"}],
                      "folders": [{"path": ".", "target_path": "all"}]}]},
    ]})
    (item,) = load_manifest(str(path)).items
    file_target, folder_target = item.targets
    assert file_target.url == "s3://b/x/y.bin" and folder_target.url == "s3://b/"
    assert file_target.options.secrets == {"s3_access_key_id": "AKIA",
                                           "s3_secret_key": "s3cr3t-value"}
    journal = file_target.options.to_journal()
    assert "s3cr3t-value" not in str(journal) and "AKIA" not in str(journal)
    assert journal["source_settings"]["s3_secret_key_file"] == key_file
    assert journal["source_settings"]["s3_endpoint_url"] == "http://minio:9000"


def test_toml_manifest_and_laden_fields(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(f"""
download_root = "{tmp_path}"

[[download_items]]
type = "http"
name = "iso"
url = "https://example.invalid/a.iso"
target_path = "isos/"
checksum = "sha256:{"ab" * 32}"
connections = 4
limit_rate = "2M"
overwrite = "skip"

[[download_items]]
type = "hf"
repo_id = "owner/set"
repo_type = "dataset"
revision = "refs/pr/1"
""")
    http, hf = load_manifest(str(path)).items
    (target,) = http.targets
    assert target.dest == str(tmp_path / "isos") + os.sep
    assert (target.options.checksum, target.options.connections) == ("sha256:" + "ab" * 32, 4)
    assert (target.options.limit_rate, target.options.conflict) == (2 * 1024 * 1024, "skip")
    assert hf.targets[0].url == "hf://datasets/owner/set@refs%2Fpr%2F1/"
    assert hf.targets[0].folder


def test_an_http_address_is_a_folder_only_with_a_glob(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path), "download_items": [
        {"type": "http", "url": "http://x.invalid/data/", "glob": "*.csv"},
        {"type": "http", "url": "http://x.invalid/data/"}]})
    folder, page = load_manifest(str(path)).items
    assert folder.targets[0].folder and folder.targets[0].options.source_settings["glob"] == "*.csv"
    assert not page.targets[0].folder  # an address ending in / is as often a page


def _item(**fields: Any) -> dict[str, Any]:
    return {"type": "s3", "name": "data", "buckets": [
        {"name": "b", "items": [{"file": "k", "target_path": "k"}]}], **fields}


@pytest.mark.parametrize(("item", "expected"), [
    ({"type": "dropbox", "name": "box"},
     "item 1 ('box'), field type: 'dropbox' is not a known type"),
    ({"name": "no type"}, "item 1 ('no type'), field type: is missing"),
    ({"type": "s3", "name": "data"}, "item 1 ('data'), field buckets: is missing"),
    ({"type": "hf", "name": "m"}, "item 1 ('m'), field repo_id: is missing"),
    ({"type": "http", "name": "w"}, "item 1 ('w'), field url: is missing"),
    (_item(buckets=[{"name": "b", "items": [{"target_path": "x"}]}]),
     "item 1 ('data'), buckets[0].items[0]: give file (one object) or folder (a prefix)"),
    (_item(buckets=[{"name": "b", "items": [{"file": "k", "folder": "f", "target_path": "x"}]}]),
     "item 1 ('data'), buckets[0].items[0]: give either file or folder, not both"),
    (_item(buckets=[{"name": "b", "items": [{"file": "k"}]}]),
     "item 1 ('data'), buckets[0].items[0], field target_path: is missing"),
    (_item(buckets=[{"items": [{"file": "k", "target_path": "k"}]}]),
     "item 1 ('data'), buckets[0], field name: is missing"),
    (_item(secret_key_file="/nowhere/secret"),
     "item 1 ('data'), field secret_key_file: /nowhere/secret does not exist"),
    (_item(buckets=[{"name": "b", "items": [{"file": "k", "target_path": "../../etc/k"}]}]),
     "item 1 ('data'), buckets[0].items[0], field target_path: '../../etc/k' is outside "
     "download_root"),
    (_item(secret_key="a", secret_key_file="/x"),
     "item 1 ('data'), field secret_key: give either secret_key or secret_key_file, not both"),
    (_item(checksum="sha256:zz"), "item 1 ('data'), field checksum:"),
    (_item(overwrite="sometimes"),
     "item 1 ('data'), field overwrite: must be one of overwrite, skip, resume"),
    (_item(connections=99), "item 1 ('data'), field connections: must be a whole number"),
    (_item(acess_key_id="typo"), "item 1 ('data'): unknown field acess_key_id"),
    ({"type": "ftp", "url": "http://x/y"}, "item 1, field url: a ftp item needs a ftp or ftps"),
    ({"type": "hf", "repo_id": "o/r", "files": ["../x"]}, "item 1, field files[0]: expected"),
    (_item(anonymous="yes"), "item 1 ('data'), field anonymous: must be true or false"),
    ({"type": "http", "url": "http://x/", "anonymous": True}, "item 1: unknown field anonymous"),
    ({"type": "http", "url": "http://x/data/", "glob": "*.csv", "checksum": "md5:" + "0" * 32},
     "item 1, field checksum: names one file's checksum, but this item downloads several"),
])
def test_each_mistake_is_named_by_item_and_field(tmp_path: Path, item: dict[str, Any],
                                                 expected: str) -> None:
    path = write_manifest(tmp_path / "bad.yaml", {"download_root": str(tmp_path / "root"),
                                                  "download_items": [item]})
    with pytest.raises(ManifestError) as caught:
        load_manifest(str(path))
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "bad.yaml", {"download_items": [
        {"type": "nope"}, _item(checksum="md5:1"), {"type": "http", "url": "https://x/y"}]})
    with pytest.raises(ManifestError) as caught:
        load_manifest(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path} has 2 problems:")
    assert "item 1, field type" in message and "item 2 ('data'), field checksum" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("download_items: [\n  - type: s3\n", "is not valid YAML, line 2"),
    ("- just\n- a list\n", "expected a mapping with download_items"),
    ("download_root: /tmp\n", "field download_items: is missing"),
])
def test_unreadable_manifests(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=expected):
        load_manifest(str(path))


def test_invalid_manifest_downloads_nothing(http_server: Any, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    url = http_server.add_file("/good.bin", b"good")
    path = write_manifest(tmp_path / "m.yaml", {"download_root": str(tmp_path / "root"),
                                                "download_items": [
        {"type": "http", "name": "fine", "url": url},
        {"type": "s3", "name": "broken", "buckets": [{"name": "b", "items": [
            {"file": "k", "target_path": "../../outside"}]}]},
    ]})
    code = main(["run", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "item 2 ('broken'), buckets[0].items[0], field target_path" in err
    assert http_server.requests == []
    assert not (tmp_path / "root").exists()


def test_kaiwo_test_manifest_form_one_list_per_type(tmp_path: Path, secrets_dir: Path) -> None:
    """The form of Kaiwo's own test manifest (python/test/): a list per type at the top, in the
    order Kaiwo runs them, buckets with `folders`/`files` of `path`, secrets as
    `{file: ..., secret_name: ..., secret_key: ...}` (the last two are for Kubernetes)."""
    def reference(name: str, value: str) -> dict[str, str]:
        return {"file": secret(secrets_dir, name, value), "secret_name": "s", "secret_key": name}

    path = write_manifest(tmp_path / "kaiwo-test.yaml", {
        "download_root": str(tmp_path / "out"),
        "hf": [{"name": "hub", "repo_id": "owner/model", "files": ["README.md"]}],
        "gcs": [{"name": "gcs", "project": "p", "application_credentials": {
                    "file": secret(secrets_dir, "gcs.json", "{}")},
                 "buckets": [{"name": "g", "folders": [
                     {"path": ".", "target_path": "gcs/all"},
                     {"path": ".", "glob": "**/*.md", "target_path": "gcs/md"}]}]}],
        "s3": [{"name": "minio", "endpoint_url": reference("endpoint", "http://minio:9000"),
                "access_key_id": reference("key_id", "AKIA"),
                "secret_key": reference("secret_key", "s3cr3t"),
                "buckets": [{"name": "b", "folders": [{"path": "sub", "target_path": "s3/sub"}],
                             "files": [{"path": "sub/f.txt", "target_path": "s3/f.txt"}]}]}],
        "azureBlob": [{"name": "azure", "connectionString": reference("azure", "AccountName=x"),
                       "containers": [{"name": "c", "files": [
                           {"path": "f.txt", "targetPath": "azure/f.txt"}]}]}],
    })
    manifest = load_manifest(str(path))
    out = str(tmp_path / "out")
    assert [item.name for item in manifest.items] == ["minio", "gcs", "azure", "hub"]
    s3, gcs, azure, hub = manifest.items
    assert sorted((t.url, t.dest) for t in s3.targets) == [
        ("s3://b/sub/", os.path.join(out, "s3", "sub") + os.sep),
        ("s3://b/sub/f.txt", os.path.join(out, "s3", "f.txt"))]
    assert s3.targets[0].options.source_settings["s3_endpoint_url"] == "http://minio:9000"
    assert s3.targets[0].options.secrets == {"s3_access_key_id": "AKIA",
                                             "s3_secret_key": "s3cr3t"}
    assert [(t.url, t.glob) for t in gcs.targets] == [("gs://g/", "**/*"), ("gs://g/", "**/*.md")]
    assert gcs.targets[0].options.source_settings["gcs_credentials_file"] == str(
        secrets_dir / "gcs.json")
    assert azure.targets[0].options.secrets == {"azure_connection_string": "AccountName=x"}
    assert [t.url for t in hub.targets] == ["hf://owner/model@main/README.md"]


def test_kaiwo_older_items_of_buckets_form(tmp_path: Path, secrets_dir: Path) -> None:
    """Kaiwo's first form: `items: - bucket: NAME` (`- container: NAME` for Azure), each with
    `items` of `folder`/`file`, secrets as `*_file` fields (the endpoint too)."""
    old = tmp_path / "old.yaml"
    path = write_manifest(old, {"download_root": str(tmp_path), "download_items": [
        {"type": "s3", "name": "minio",
         "endpoint_url_file": secret(secrets_dir, "endpoint", "http://minio:9000"),
         "access_key_id_file": secret(secrets_dir, "key_id", "AKIA"),
         "secret_key_file": secret(secrets_dir, "secret_key", "s3cr3t"),
         "items": [{"bucket": "b", "items": [{"folder": ".", "target_path": "all"}]},
                   {"bucket": "b", "items": [{"file": "sub/f.txt", "target_path": "f.txt"}]}]},
        {"type": "azure-blob",
         "connection_string_file": secret(secrets_dir, "azure", "AccountName=x"),
         "items": [{"container": "c", "items": [{"file": "a.txt", "target_path": "a.txt"}]}]},
    ]})
    s3, azure = load_manifest(str(path)).items
    assert [t.url for t in s3.targets] == ["s3://b/", "s3://b/sub/f.txt"]
    assert s3.targets[0].options.source_settings["s3_endpoint_url"] == "http://minio:9000"
    assert [t.url for t in azure.targets] == ["az://c/a.txt"]
    broken = write_manifest(tmp_path / "broken.yaml", {"download_items": [
        {"type": "gcs", "items": [{"items": [{"file": "x", "target_path": "x"}]},
                                  {"bucket": "g", "items": [{"file": "y"}]}]},
        {"type": "git", "name": "code", "repository": "https://example.invalid/r.git"}]})
    with pytest.raises(ManifestError) as refused:
        load_manifest(str(broken))
    message = str(refused.value)
    assert "item 1, items[0], field bucket: is missing" in message
    assert "item 1, items[1].items[0], field target_path: is missing" in message
    assert "item 2 ('code'), field type: git repositories are not something laden" in message
