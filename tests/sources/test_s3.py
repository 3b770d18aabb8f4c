"""S3 specifics on moto: which published checksum is verified, and where credentials and the
endpoint come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from laden.core.config import Config
from laden.core.options import DownloadOptions
from laden.core.states import State
from laden.sources.s3 import S3Source, parse_timestamp
from servers.fixtures import random_bytes

from .conftest import FAST, manager, requests_asked
from .stores import S3Store


def _plain_client(server):  # uploads with no checksum, as older tools and consoles do
    import boto3
    from botocore.config import Config as BotoConfig

    kwargs = server.client_kwargs()
    kwargs["config"] = kwargs["config"].merge(
        BotoConfig(request_checksum_calculation="when_required"))
    return boto3.session.Session().client("s3", **kwargs)


def test_each_kind_of_published_checksum_is_verified(s3_store: S3Store, downloads: Path) -> None:
    server, bucket = s3_store.server, s3_store.bucket
    data = random_bytes(3 * 1024 * 1024 + 11, seed=20)
    server.put_object(bucket, "sha.bin", data, checksum_sha256=True)
    _plain_client(server).put_object(Bucket=bucket, Key="md5.bin", Body=data)
    server.put_multipart(bucket, "parts.bin", data, part_size=1024 * 1024)
    with manager() as m:
        ids = [m.add(s3_store.url(k), str(downloads), **s3_store.options())
               for k in ("sha.bin", "md5.bin", "parts.bin")]
        infos = [m.wait(i) for i in ids]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    assert all(Path(i.dest).read_bytes() == data for i in infos)
    checked = [[(c.algorithm, c.origin, c.verified) for c in i.checksums] for i in infos]
    assert checked == [
        [("sha256", "S3 ChecksumSHA256", True)],
        [("md5", "S3 ETag", True)],
        [(f"s3-etag-{1024 * 1024}", "S3 multipart ETag", True)],
    ]


def test_a_small_object_is_one_get_with_its_checksum_verified(
        s3_store: S3Store, downloads: Path) -> None:
    server, bucket = s3_store.server, s3_store.bucket
    data = random_bytes(50_000, seed=22)  # within the probe (FAST: 64 KiB segments)
    server.put_object(bucket, "small-sha.bin", data, checksum_sha256=True)
    _plain_client(server).put_object(Bucket=bucket, Key="small-md5.bin", Body=data)
    server.put_object(bucket, "empty.bin", b"")
    with requests_asked() as asked, manager() as m:
        ids = [m.add(s3_store.url(k), str(downloads), **s3_store.options())
               for k in ("small-sha.bin", "small-md5.bin", "empty.bin")]
        infos = [m.wait(i) for i in ids]
    assert all(i.state is State.DONE for i in infos), [i.message for i in infos]
    assert [Path(i.dest).read_bytes() for i in infos] == [data, data, b""]
    assert [[(c.origin, c.verified) for c in i.checksums] for i in infos[:2]] == [
        [("S3 ChecksumSHA256", True)], [("S3 ETag", True)]]
    assert sorted(asked) == sorted(["GET", s3_store.url(k)] for k in (
        "small-sha.bin", "small-md5.bin", "empty.bin")), asked  # no HEAD, no second GET


def test_multipart_etag_catches_corruption(s3_store: S3Store, downloads: Path,
                                           corrupt_reads) -> None:
    data = random_bytes(2 * 1024 * 1024, seed=21)
    s3_store.server.put_multipart(s3_store.bucket, "m.bin", data, part_size=512 * 1024)
    corrupt_reads(S3Source)
    with manager() as m:
        info = m.wait(m.add(s3_store.url("m.bin"), str(downloads), **s3_store.options()))
    assert info.state is State.FAILED
    assert "checksum mismatch (S3 multipart ETag)" in info.message


def test_endpoint_from_the_environment_or_the_settings_file(
    s3_store: S3Store, downloads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_store.put("dir/a b+c.bin", b"spaces and plus")
    url = s3_store.url("dir/a b+c.bin")
    assert "%20" in url
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_store.server.endpoint_url)
    with manager() as m:
        from_env = m.wait(m.add(url, str(downloads / "env") + "/"))
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    settings = Config.from_mapping({"s3_endpoint_url": s3_store.server.endpoint_url,
                                    "min_segment_size": FAST.min_segment_size})
    with manager(settings) as m:
        from_settings = m.wait(m.add(url, str(downloads / "settings") + "/"))
    for info in (from_env, from_settings):
        assert info.state is State.DONE, info.message
        assert Path(info.dest).name == "a b+c.bin"
        assert Path(info.dest).read_bytes() == b"spaces and plus"


def test_without_credentials_requests_go_unsigned(
    s3_store: S3Store, downloads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore import UNSIGNED

    s3_store.client.put_object(Bucket=s3_store.bucket, Key="public.bin", Body=b"for everyone",
                               ACL="public-read")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    source = S3Source(Config())
    client = source._client(DownloadOptions(**s3_store.options()))
    assert client.meta.config.signature_version is UNSIGNED
    with manager() as m:
        info = m.wait(m.add(s3_store.url("public.bin"), str(downloads), **s3_store.options()))
    assert info.state is State.DONE, info.message
    assert Path(info.dest).read_bytes() == b"for everyone"


def test_one_client_per_endpoint_and_credentials(s3_store: S3Store) -> None:
    source = S3Source(Config())
    options = DownloadOptions(**s3_store.options())
    same = DownloadOptions(**s3_store.options(glob="*"))
    other = DownloadOptions(source_settings=options.source_settings,
                            secrets={"s3_access_key_id": "AKIAOTHER", "s3_secret_key": "x"})
    assert source._client(options) is source._client(same)
    assert source._client(options) is not source._client(other)


def test_an_archived_object_says_so(s3_store: S3Store, downloads: Path) -> None:
    server, bucket = s3_store.server, s3_store.bucket
    server.client().put_object(Bucket=bucket, Key="cold.bin", Body=b"c" * 100,
                               StorageClass="GLACIER")
    with manager() as m:
        info = m.wait(m.add(s3_store.url("cold.bin"), str(downloads), **s3_store.options()))
    assert info.state is State.FAILED
    assert "is archived (Glacier or Deep Archive): restore it" in info.message, info.message


@pytest.mark.parametrize("text", [
    "Sun, 06 Dec 2026 20:02:39 GMT", "2026-12-06T20:02:39.000Z", "2026-12-06T20:02:39Z",
    "2026-12-06T20:02:39+01:00", "1796587359", "Sunday, 06-Dec-26 20:02:39 GMT",
    "Sun Dec  6 20:02:39 2026"])
def test_timestamps_read_as_botocore_reads_them(text: str) -> None:
    from botocore.utils import parse_timestamp as botocore_parse

    assert parse_timestamp(text) == botocore_parse(text)
    assert parse_timestamp(text).utcoffset() == botocore_parse(text).utcoffset()


def test_the_clients_answers_carry_their_dates(s3_store: S3Store) -> None:
    s3_store.put("dated.bin", b"when")
    source = S3Source(Config())
    try:
        client = source._client(DownloadOptions(**s3_store.options()))
        head = client.head_object(Bucket=s3_store.bucket, Key="dated.bin")
        listed = client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    finally:
        source.close()
    assert head["LastModified"].tzinfo is not None
    assert [o["LastModified"] for o in listed if o["Key"] == "dated.bin"] == [
        head["LastModified"]]
