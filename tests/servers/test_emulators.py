"""Smoke tests: each emulator answers the requests the download engine relies on.

They also pin down what each emulator really does where it differs from the real service, so
an engine test does not silently rely on behaviour the emulator lacks. The fixtures come from
cloud_fixtures.py, which tests/conftest.py star-imports.
"""

from __future__ import annotations

import base64
import ftplib
import hashlib
import io
import os
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from .cloud_fixtures import unique_name
from .ftp import FTPTestServer
from .hf_hub import git_blob_sha1
from .s3 import multipart_etag, sha256_b64

DATA = hashlib.shake_128(b"laden-emulator-smoke").digest(10_000)


def test_sdk_environment_is_isolated() -> None:
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ["NO_GCE_CHECK"] == "true"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ
    assert os.path.getsize(os.environ["AWS_SHARED_CREDENTIALS_FILE"]) == 0
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert os.environ["HF_HOME"].startswith(tempfile.gettempdir())


def test_s3_checksum_ranged_conditional_get_and_multipart_etag(s3_server, s3_bucket) -> None:
    client = s3_server.client()
    s3_server.put_object(s3_bucket, "a.bin", DATA, checksum_sha256=True)
    head = client.head_object(Bucket=s3_bucket, Key="a.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256_b64(DATA)
    assert head["ETag"] == f'"{hashlib.md5(DATA).hexdigest()}"'

    part = client.get_object(Bucket=s3_bucket, Key="a.bin", Range="bytes=0-9", IfMatch=head["ETag"])
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 0-9/{len(DATA)}"
    assert part["Body"].read() == DATA[:10]
    with pytest.raises(client.exceptions.ClientError, match="PreconditionFailed"):
        client.get_object(Bucket=s3_bucket, Key="a.bin", Range="bytes=0-9", IfMatch='"0000"')

    etag = s3_server.put_multipart(s3_bucket, "m.bin", DATA, part_size=4000)
    assert etag == multipart_etag(DATA, 4000) and etag.endswith('-3"')
    # No checksum is stored for a multipart upload made without ChecksumAlgorithm.
    head = client.head_object(Bucket=s3_bucket, Key="m.bin", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head and "ChecksumCRC32" not in head


def test_gcs_hashes_and_ranged_download(gcs_server, gcs_bucket) -> None:
    import google_crc32c
    from google.api_core.exceptions import NotFound

    gcs_server.upload(gcs_bucket, "dir/a.bin", DATA)
    blob = gcs_server.client().bucket(gcs_bucket).get_blob("dir/a.bin")
    assert blob.size == len(DATA)
    assert blob.md5_hash == base64.b64encode(hashlib.md5(DATA).digest()).decode()
    assert blob.crc32c == base64.b64encode(google_crc32c.Checksum(DATA).digest()).decode()
    assert blob.media_link.startswith(gcs_server.endpoint)

    got = blob.download_as_bytes(start=10, end=19, if_generation_match=blob.generation)
    assert got == DATA[10:20]
    # Pinning by `generation` is enforced: an unknown generation is 404.
    stale = gcs_server.client().bucket(gcs_bucket).blob("dir/a.bin", generation=blob.generation + 1)
    with pytest.raises(NotFound):
        stale.download_as_bytes(start=0, end=9)


def test_gcs_emulator_ignores_if_generation_match_on_reads(gcs_server, gcs_bucket) -> None:
    """fake-gcs-server does not check ifGenerationMatch on downloads (real GCS answers 412):
    engine tests must pin reads with ``generation=`` instead."""
    blob = gcs_server.upload(gcs_bucket, "b.bin", DATA)
    got = blob.download_as_bytes(start=0, end=9, if_generation_match=blob.generation + 1)
    assert got == DATA[:10]


def test_azure_md5_ranged_conditional_download_and_sas(azurite_server, azure_container) -> None:
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    props = azurite_server.upload(azure_container, "dir/a b.bin", DATA)
    assert bytes(props["content_settings"]["content_md5"]) == hashlib.md5(DATA).digest()
    client = azurite_server.service_client().get_blob_client(azure_container, "dir/a b.bin")
    etag = props["etag"]
    stream = client.download_blob(
        offset=10, length=10, etag=etag, match_condition=MatchConditions.IfNotModified
    )
    assert stream.readall() == DATA[10:20]
    with pytest.raises(ResourceModifiedError):
        client.download_blob(
            offset=0, length=10, etag='"0x0"', match_condition=MatchConditions.IfNotModified
        ).readall()

    request = urllib.request.Request(
        azurite_server.sas_url(azure_container, "dir/a b.bin"),
        headers={"Range": "bytes=0-4", "If-Match": etag},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 206 and reply.read() == DATA[:5]
        # The whole blob's MD5, also on a ranged read.
        md5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
        assert reply.headers["x-ms-blob-content-md5"] == md5

    no_md5 = azurite_server.upload(azure_container, "plain.bin", DATA, content_md5=False)
    assert no_md5["content_settings"]["content_md5"] is None


def test_hf_hub_download_small_and_lfs_files(hf_hub) -> None:
    from huggingface_hub import hf_hub_download

    repo = f"org/{unique_name('model')}"
    sha = hf_hub.add_repo(repo, {"config.json": b'{"a": 1}\n', "weights/model.bin": DATA})
    cache = tempfile.mkdtemp()
    path = hf_hub_download(repo, "config.json", revision="main", endpoint=hf_hub.endpoint,
                           cache_dir=cache)  # fmt: skip
    with open(path, "rb") as file:
        assert file.read() == b'{"a": 1}\n'
    path = hf_hub_download(repo, "weights/model.bin", revision=sha, token=hf_hub.token,
                           endpoint=hf_hub.endpoint, cache_dir=cache)  # fmt: skip
    with open(path, "rb") as file:
        assert file.read() == DATA
    assert [r.method for r in hf_hub.cdn_requests] == ["GET"]
    assert all("authorization" not in r.headers for r in hf_hub.cdn_requests)
    assert any(r.headers.get("authorization") for r in hf_hub.hub_requests)


def test_hf_hub_takes_a_commit_from_huggingface_hub_itself(hf_hub) -> None:
    import io

    from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

    repo = f"org/{unique_name('model')}"
    weights = os.urandom(5000)  # new to the hub, which keeps objects across its repos
    hf_hub.add_repo(repo, {"README.md": b"# r\n"})
    api = HfApi(endpoint=hf_hub.endpoint, token=hf_hub.token)
    # File objects: huggingface_hub takes the LFS route (Xet reads paths only).
    info = api.create_commit(repo, [
        CommitOperationAdd("config.json", io.BytesIO(b'{"a": 1}\n')),
        CommitOperationAdd("weights/model.bin", io.BytesIO(weights)),
    ], commit_message="two files")
    assert hf_hub.repos[("model", repo)].refs["main"] == info.oid
    cache = tempfile.mkdtemp()
    for name, data in (("config.json", b'{"a": 1}\n'), ("weights/model.bin", weights)):
        path = hf_hub_download(repo, name, revision=info.oid, endpoint=hf_hub.endpoint,
                               cache_dir=cache)  # fmt: skip
        with open(path, "rb") as file:
            assert file.read() == data
    assert [r.method for r in hf_hub.cdn_requests].count("PUT") == 1  # the LFS file only
    hf_hub.cdn_requests.clear()
    again = api.upload_file(path_or_fileobj=io.BytesIO(weights), path_in_repo="copy.bin",
                            repo_id=repo)  # fmt: skip
    assert again.oid != info.oid
    assert "PUT" not in [r.method for r in hf_hub.cdn_requests]  # the hub holds the object


def test_hf_hub_metadata_tree_pagination_and_info(hf_hub) -> None:
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url

    repo = f"org/{unique_name('model')}"
    files = {"a.txt": b"a", "b.txt": b"bb", "d/c.txt": b"c", "d/e/big.bin": DATA}
    sha = hf_hub.add_repo(repo, files, lfs_threshold=1000)
    small = get_hf_file_metadata(hf_hub_url(repo, "a.txt", endpoint=hf_hub.endpoint))
    assert (small.commit_hash, small.etag, small.size) == (sha, git_blob_sha1(b"a"), 1)
    big = get_hf_file_metadata(hf_hub_url(repo, "d/e/big.bin", endpoint=hf_hub.endpoint))
    assert big.etag == hashlib.sha256(DATA).hexdigest() and big.size == len(DATA)
    assert big.location.startswith(hf_hub.cdn_endpoint)

    api = HfApi(endpoint=hf_hub.endpoint)
    hf_hub.hub_requests.clear()
    tree = list(api.list_repo_tree(repo, recursive=True))
    assert [e.path for e in tree] == ["a.txt", "b.txt", "d", "d/c.txt", "d/e", "d/e/big.bin"]
    assert len(hf_hub.hub_requests) == 3  # page size 2: the Link header was followed
    assert tree[-1].lfs is not None and tree[-1].lfs.sha256 == hashlib.sha256(DATA).hexdigest()
    assert [e.path for e in api.list_repo_tree(repo, path_in_repo="d")] == ["d/c.txt", "d/e"]
    info = api.model_info(repo, files_metadata=True)
    assert info.sha == sha and {s.rfilename: s.size for s in info.siblings} == {
        name: len(data) for name, data in files.items()
    }


def test_hf_hub_private_repo_ranges_and_signed_cdn(hf_hub) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    repo = f"org/{unique_name('secret')}"
    hf_hub.add_repo(repo, {"s.txt": b"secret", "big.bin": DATA}, private=True)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo, "s.txt", endpoint=hf_hub.endpoint, cache_dir=tempfile.mkdtemp())

    auth = {"Authorization": f"Bearer {hf_hub.token}"}
    url = f"{hf_hub.endpoint}/{repo}/resolve/main/s.txt"
    request = urllib.request.Request(url, headers={**auth, "Range": "bytes=1-3"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 206 and reply.read() == b"ecr"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as found:
        opener.open(urllib.request.Request(url.replace("s.txt", "big.bin"), headers=auth))
    assert found.value.code == 302
    cdn_url = found.value.headers["Location"]
    with urllib.request.urlopen(
        urllib.request.Request(cdn_url, headers={"Range": "bytes=-5"}), timeout=10
    ) as reply:
        assert reply.status == 206 and reply.read() == DATA[-5:]
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(cdn_url.replace("Signature=", "Signature=0"), timeout=10)


def _ftp_login(server: FTPTestServer) -> ftplib.FTP:
    if server.tls:
        client: ftplib.FTP = ftplib.FTP_TLS(context=server.client_ssl_context())
    else:
        client = ftplib.FTP()
    client.connect(server.host, server.port, timeout=10)
    client.login(server.user, server.password)
    if isinstance(client, ftplib.FTP_TLS):
        client.prot_p()
    return client


@pytest.mark.parametrize("server_name", ["ftp_server", "ftps_server"])
def test_ftp_size_mdtm_rest_mlsd(server_name: str, request: pytest.FixtureRequest) -> None:
    server: FTPTestServer = request.getfixturevalue(server_name)
    folder = unique_name("dir")
    server.write_file(f"{folder}/a.bin", DATA)
    server.write_file(f"{folder}/b.txt", b"hi")
    server.set_mtime(f"{folder}/a.bin", 1_600_000_000)  # 2020-09-13 12:26:40 UTC
    client = _ftp_login(server)
    try:
        client.voidcmd("TYPE I")
        assert client.size(f"{folder}/a.bin") == len(DATA)
        assert client.voidcmd(f"MDTM {folder}/a.bin") == "213 20200913122640"
        chunks = io.BytesIO()
        client.retrbinary(f"RETR {folder}/a.bin", chunks.write, rest=100)
        assert chunks.getvalue() == DATA[100:]
        listing = dict(client.mlsd(folder, facts=["type", "size"]))
        assert listing["a.bin"] == {"type": "file", "size": str(len(DATA))}
    finally:
        client.quit()


def test_ftp_wrong_password_fails_fast_and_anonymous_reads(ftp_server) -> None:
    ftp_server.write_file("pub/readme.txt", b"hello")
    client = ftplib.FTP()
    client.connect(ftp_server.host, ftp_server.port, timeout=10)
    started = time.monotonic()
    with pytest.raises(ftplib.error_perm, match="530"):
        client.login(ftp_server.user, "wrong")
    assert time.monotonic() - started < 1.0
    client.close()
    anonymous = ftplib.FTP()
    anonymous.connect(ftp_server.host, ftp_server.port, timeout=10)
    anonymous.login()
    assert "readme.txt" in anonymous.nlst("pub")
    with pytest.raises(ftplib.error_perm, match="550"):
        anonymous.storbinary("STOR pub/new.txt", io.BytesIO(b"no"))
    anonymous.quit()


def test_ftp_download_limit_throttles() -> None:
    # 150 kB at 100 kB/s: about 1.5 s whatever the machine's speed.
    with FTPTestServer(download_limit=100_000) as server:
        server.write_file("x.bin", DATA * 15)
        client = _ftp_login(server)
        started = time.monotonic()
        received = bytearray()
        client.retrbinary("RETR x.bin", received.extend)
        elapsed = time.monotonic() - started
        client.quit()
    assert bytes(received) == DATA * 15
    assert 1.3 < elapsed < 3.0
