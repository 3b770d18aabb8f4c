"""The one status table, the sources' wordings of it, and the foreign-exception tables."""

from __future__ import annotations

import ftplib
import socket
import ssl

import pytest

from laden.core.errors import (
    HostNotFound,
    InputError,
    LadenError,
    Permanent,
    RemoteChanged,
    Retryable,
    SlowDown,
)
from laden.core.retry import error_kind
from laden.sources import ftp_protocol, http_errors
from laden.sources.foreign_errors import Becomes, ErrorTable
from laden.sources.statuses import FTP_REPLIES, HTTP_STATUSES, Wording

HTTP_KINDS = [
    (429, SlowDown), (503, SlowDown),
    (408, Retryable), (425, Retryable), (500, Retryable), (502, Retryable), (599, Retryable),
    (None, Retryable),
    (400, Permanent), (401, Permanent), (403, Permanent), (404, Permanent), (410, Permanent),
    (412, Permanent), (416, Permanent), (451, Permanent),
]


@pytest.mark.parametrize(("status", "kind"), HTTP_KINDS)
def test_one_table_for_every_http_status(status: int | None, kind: type) -> None:
    assert HTTP_STATUSES.kind(status) is kind


@pytest.mark.parametrize(("code", "kind"), [(421, SlowDown), (425, Retryable), (450, Retryable),
                                            (530, Permanent), (550, Permanent)])
def test_ftp_replies(code: int, kind: type) -> None:
    assert FTP_REPLIES.kind(code) is kind


WORDING = Wording(
    slow_down="{host} asks for fewer requests ({said})",
    server_error="{host} failed with {said}",
    refused="{host} refused ({said})",
    statuses={404: "no such thing at {host}"},
    changed={412: "it changed at {host}"},
    codes={"Busy": 503, "Gone": 404},
    code_lines={"NoBox": "no box {box} at {host}"},
)


def test_the_class_comes_from_the_table_and_the_words_from_the_source() -> None:
    slow = WORDING.error(503, retry_after=7.0, host="h")
    assert (type(slow), str(slow), slow.status, slow.retry_after) == (
        SlowDown, "h asks for fewer requests (503)", 503, 7.0)
    error = WORDING.error(500, retry_after=3.0, host="h")
    assert (type(error), str(error), error.retry_after) == (Retryable, "h failed with 500", 3.0)
    refused = WORDING.error(403, retry_after=3.0, host="h")
    assert (type(refused), str(refused), refused.retry_after) == (
        Permanent, "h refused (403)", None)
    assert str(WORDING.error(404, host="h")) == "no such thing at h"
    changed = WORDING.error(412, host="h")
    assert (type(changed), str(changed)) == (RemoteChanged, "it changed at h")


def test_a_known_code_decides_over_the_status() -> None:
    busy = WORDING.error(500, code="Busy", host="h")
    assert (type(busy), str(busy), busy.status) == (SlowDown, "h asks for fewer requests (Busy)",
                                                    500)
    assert str(WORDING.error(400, code="Gone", host="h")) == "no such thing at h"
    box = WORDING.error(404, code="NoBox", host="h", box="b")
    assert (type(box), str(box)) == (Permanent, "no box b at h")
    unknown = WORDING.error(409, code="Odd", host="h")
    assert (type(unknown), str(unknown)) == (Permanent, "h refused (Odd)")


def test_more_lines_for_reads_pinned_to_a_version() -> None:
    reading = WORDING.with_lines(changed={404: "gone from {host}"})
    assert isinstance(reading.error(404, host="h"), RemoteChanged)
    assert isinstance(WORDING.error(404, host="h"), Permanent)  # the original is unchanged


def test_the_http_source_words_statuses_as_before() -> None:
    url = "http://example.com:8080/dir/c.bin"
    assert str(http_errors.error_for_status(404, {}, url)) == (
        "HTTP 404 Not Found from example.com:8080: no such file (/dir/c.bin)")
    slow = http_errors.error_for_status(429, {"retry-after": "5"}, url)
    assert (type(slow), slow.retry_after) == (SlowDown, 5.0)
    assert str(slow) == ("HTTP 429 Too Many Requests from example.com:8080: the server asks for "
                         "fewer requests")
    late = http_errors.error_for_status(408, {}, url)
    assert (type(late), error_kind(late)) == (Retryable, "timeout")
    odd = http_errors.error_for_status(799, {}, url)
    assert type(odd) is Retryable and "HTTP 799" in str(odd)


class Base(Exception):
    pass


class Specific(Base):
    pass


class Other(Exception):
    pass


class Both(Other, Specific):
    pass


def test_the_most_specific_row_decides_wherever_it_is_listed() -> None:
    loads = []

    def rows() -> dict:
        loads.append(1)
        return {
            Base: Becomes(Permanent, "base: {exc}"),
            Other: Becomes(Retryable, "other at {url}"),
            Specific: Becomes(SlowDown, "specific: {first_line}"),
        }

    table = ErrorTable(rows)
    assert loads == []  # nothing is imported before an error needs it
    assert str(table.translate(Specific("one\ntwo"), url="u")) == "specific: one"
    assert isinstance(table.translate(Specific(), url="u"), SlowDown)
    assert str(table.translate(Base("b"), url="u")) == "base: b"
    # Of two unrelated families, the row listed first.
    assert str(table.translate(Both(), url="u")) == "other at u"
    assert loads == [1]


def test_a_row_may_decline_and_a_bug_stays_a_bug() -> None:
    table = ErrorTable(lambda: {
        KeyError: lambda exc, facts: None if facts["decline"] else InputError("mine"),
        LookupError: Becomes(Permanent, "looked up"),
    })
    assert str(table.translate(KeyError("k"), decline=False)) == "mine"
    assert str(table.translate(KeyError("k"), decline=True)) == "looked up"
    bug = ZeroDivisionError("bug")
    assert table.translate(bug, decline=False) is bug
    ours = Retryable("already laden's")
    assert table.translate(ours, decline=False) is ours


def test_translating_raises_laden_errors_without_the_foreign_context() -> None:
    table = ErrorTable(lambda: {OSError: Becomes(Retryable, "connection to {host} failed")})
    with pytest.raises(Retryable, match="connection to h failed") as caught, \
            table.translating(host="h"):
        raise ConnectionResetError("reset")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(ZeroDivisionError), table.translating(host="h"):
        raise ZeroDivisionError("a bug keeps its traceback")


FTP_CASES = [
    (ftplib.error_temp("421 Too many connections"), SlowDown,
     "h:21 has too many connections: 421 Too many connections", 421),
    (ftplib.error_temp("450 busy"), Retryable, "h:21 failed the download: 450 busy", 450),
    (ftplib.error_temp("4xx garbled"), Retryable, "h:21 failed the download: 4xx garbled", None),
    (ftplib.error_perm("550 No such file"), Permanent,
     "h:21: no such file or no permission: 550 No such file", 550),
    (ftplib.error_perm("530 Login incorrect"), Permanent,
     "h:21 refused the download: 530 Login incorrect", 530),
    (ftplib.error_perm("5zz garbled"), Permanent, "h:21 refused the download: 5zz garbled", None),
    (TimeoutError(), Retryable, "timed out talking to h:21", None),
    (ConnectionRefusedError(111, "refused"), Retryable, "h:21 refused the connection", None),
    (socket.gaierror(-2, "Name or service not known"), HostNotFound,
     "cannot resolve host h:21: no such name, or no DNS server answered", None),
    (ssl.SSLCertVerificationError(1, "bad"), Permanent,
     "the TLS certificate of h:21 is not trusted; pass --ca-bundle FILE if you trust it", None),
    (EOFError(), Retryable, "connection to h:21 failed: EOFError", None),
]


@pytest.mark.parametrize(("exc", "kind", "message", "status"), FTP_CASES)
def test_ftp_errors(exc: BaseException, kind: type, message: str, status: int | None) -> None:
    error = ftp_protocol.classified(exc, "ftp://h:21/f", "the download")
    assert (type(error), str(error), getattr(error, "status", None)) == (
        kind, message, status)


def test_every_sources_table_loads_against_the_installed_sdks() -> None:
    """A row naming a class an SDK no longer has would only fail at the first error."""
    from laden.sources import azure, gcs, hf, s3

    for table in (s3.ERRORS, gcs.ERRORS, azure.ERRORS, hf.ERRORS, ftp_protocol.ERRORS,
                  http_errors.READ_ERRORS, http_errors.REDIRECT_ERRORS):
        rows = table.rows()
        assert rows and all(isinstance(cls, type) and issubclass(cls, BaseException)
                            for cls in rows)
        assert all(isinstance(row, Becomes) or callable(row) for row in rows.values())
        for row in rows.values():
            if isinstance(row, Becomes):
                assert issubclass(row.error, LadenError)
