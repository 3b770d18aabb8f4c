"""What the object-store sources share: addresses, globs, safe names, options, checksums."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from laden.cli import parser as grammar
from laden.cli.commands import download_options
from laden.core.errors import InputError, Permanent
from laden.core.options import DownloadOptions
from laden.engine.verify import hash_file
from laden.sources import cloud, listing
from laden.sources.registry import SourceRegistry, source_scheme
from servers.fixtures import random_bytes
from servers.hf_hub import git_blob_sha1
from servers.s3 import multipart_etag

GLOBS = [
    ("*.csv", "a.csv", True),
    ("*.csv", "x/y/b.csv", True),  # no slash: any depth, as in .gitignore
    ("sub/*.csv", "sub/a.csv", True),
    ("sub/*.csv", "sub/x/a.csv", False),
    ("sub/**/*.csv", "sub/a.csv", True),
    ("sub/**/*.csv", "sub/x/y/a.csv", True),
    ("sub/**", "sub/x/y", True),
    ("[ab].txt", "b.txt", True),
    ("[!ab].txt", "a.txt", False),
    ("?.txt", "c.txt", True),
    ("a?b", "a/b", False),
]


@pytest.mark.parametrize(("pattern", "path", "matches"), GLOBS)
def test_glob_language(pattern: str, path: str, matches: bool) -> None:
    assert bool(listing.compile_glob(pattern).fullmatch(path)) is matches


def test_address_glob_selects_under_its_folder() -> None:
    chosen = listing.selection("data/**/*.csv", DownloadOptions())
    assert (chosen.prefix, chosen.base) == ("data/", "data/")
    keys = ["data/a.csv", "data/x/b.csv", "data/c.txt", "database/d.csv", "data/e/"]
    assert [k for k in keys if chosen.wants(k)] == ["data/a.csv", "data/x/b.csv"]


def test_include_and_exclude() -> None:
    options = DownloadOptions(source_settings={"include": ["*.json", "*.safetensors"],
                                               "exclude": "*/optimizer*"})
    chosen = listing.selection("", options)
    keys = ["config.json", "model.safetensors", "ckpt/optimizer.safetensors", "README.md"]
    assert [k for k in keys if chosen.wants(k)] == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("key", ["data/../../etc/passwd", "data/./x", "data//abs",
                                 "data/a\\..\\..\\b", "data/bell\x07"])
def test_names_that_would_escape_the_destination_are_refused(key: str) -> None:
    chosen = listing.selection("data/", DownloadOptions())
    items = [("data/fine.bin", 1), (key, 1)]
    with pytest.raises(Permanent, match="outside the destination"):
        list(listing.expand("s3://b/data/", items, chosen, lambda k: f"s3://b/{k}"))


def test_an_empty_selection_says_so() -> None:
    chosen = listing.selection("data/*.csv", DownloadOptions())
    with pytest.raises(Permanent, match="no files under s3://b/data/\\*.csv match"):
        listing.expand("s3://b/data/*.csv", [("data/a.txt", 1)], chosen, str)


def test_keys_in_addresses_are_percent_decoded() -> None:
    assert cloud.split_address("s3://bucket/dir/a%20b%3F.bin") == ("bucket", "dir/a b?.bin")
    url = cloud.object_url("s3", "bucket", "dir/a b?#.bin")
    assert " " not in url and cloud.split_address(url) == ("bucket", "dir/a b?#.bin")


def test_hugging_face_addresses() -> None:
    from laden.sources.hf import parse_address

    file = parse_address("hf://owner/repo/sub/model.bin")
    assert (file.repo_type, file.repo_id, file.revision, file.path) == (
        "model", "owner/repo", None, "sub/model.bin")
    data = parse_address("hf://datasets/owner/set@refs%2Fpr%2F1/train/a.parquet")
    assert (data.repo_type, data.repo_id, data.revision, data.path) == (
        "dataset", "owner/set", "refs/pr/1", "train/a.parquet")
    assert parse_address(data.url_for("x y.bin")).path == "x y.bin"
    assert parse_address(data.url_for("x")).revision == "refs/pr/1"
    whole = parse_address("hf://spaces/owner/app")
    assert (whole.repo_type, whole.path) == ("space", "")
    with pytest.raises(InputError, match="owner/repo"):
        parse_address("hf://gpt2")


def test_azure_web_addresses_go_to_the_azure_source() -> None:
    from laden.sources.azure import AzureBlobSource, parse_address

    url = "https://acct.blob.core.windows.net/box/dir/a%20b.bin?sv=2024&sig=abc"
    assert source_scheme(url) == "az"
    assert source_scheme("https://example.com/a.bin") == "https"
    registry = SourceRegistry()
    try:
        assert isinstance(registry.for_url(url), AzureBlobSource)
    finally:
        registry.close()
    address = parse_address(url)
    assert (address.container, address.blob, address.account_url, address.sas) == (
        "box", "dir/a b.bin", "https://acct.blob.core.windows.net", "sv=2024&sig=abc")
    assert address.url_for("other/c.bin").endswith("/box/other/c.bin?sv=2024&sig=abc")


def test_plain_web_downloads_never_import_a_cloud_sdk() -> None:
    code = (
        "import sys\n"
        "from laden.sources.registry import SourceRegistry\n"
        "import laden.cli.commands\n"
        "SourceRegistry().for_url('https://example.com/a.bin')\n"
        "heavy = ('boto3', 'botocore', 'google.cloud', 'google.auth', 'azure', "
        "'huggingface_hub', 'msal')\n"
        "print([m for m in sys.modules if m.startswith(heavy)])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_command_line_options_become_settings_and_secrets(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret").write_text("s3cr3t\n")
    args = grammar.build().parse_args([
        "get", "s3://b/k", "--s3-endpoint-url", "http://127.0.0.1:9000",
        "--s3-access-key-id", "AKIAEXAMPLE", "--s3-secret-key-file", "secret",
        "--glob", "*.csv", "--include", "a*", "--include", "b*", "--revision", "v1",
        "--anonymous",
    ])
    options = download_options(args)
    assert options.source_settings == {
        "s3_endpoint_url": "http://127.0.0.1:9000",
        "s3_secret_key_file": str(tmp_path / "secret"),  # absolute: read again on resume
        "glob": "*.csv", "include": ["a*", "b*"], "revision": "v1", "anonymous": True,
    }
    assert options.secrets == {"s3_access_key_id": "AKIAEXAMPLE"}
    journal = options.to_journal()
    assert "AKIAEXAMPLE" not in repr(journal) and "s3cr3t" not in repr(journal)
    missing = grammar.build().parse_args(["get", "hf://o/r/f", "--hf-token-file", "nope"])
    with pytest.raises(InputError, match="--hf-token-file .*nope: no such file"):
        download_options(missing)


def test_credential_files_are_read_when_needed(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("hf_abc\n")
    options = DownloadOptions(source_settings={"hf_token_file": str(token)})
    assert cloud.secret(options, None, "hf_token") == "hf_abc"
    given = DownloadOptions(secrets={"hf_token": "hf_given"},
                            source_settings={"hf_token_file": str(token)})
    assert cloud.secret(given, None, "hf_token") == "hf_given"
    (tmp_path / "empty").write_text("\n")
    empty = DownloadOptions(source_settings={"hf_token_file": str(tmp_path / "empty")})
    with pytest.raises(InputError, match="hf token file .* is empty"):
        cloud.secret(empty, None, "hf_token")


def test_service_digests(tmp_path: Path) -> None:
    data = random_bytes(5 * 1024 * 1024 + 7, seed=40)
    path = tmp_path / "d.bin"
    path.write_bytes(data)
    part = 1024 * 1024
    digests = hash_file(path, ["git-sha1", f"s3-etag-{part}"])
    assert digests["git-sha1"] == git_blob_sha1(data)
    assert digests[f"s3-etag-{part}"] == multipart_etag(data, part).strip('"')
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_file(empty, ["git-sha1"])["git-sha1"] == git_blob_sha1(b"")
