"""Retry and backoff as a value: per manager (Config, the settings file), per download (the
API, the command line, a manifest item), kept by the journal, and the kinds of error retried.

The waits are read from the test server's request log (when each request was answered), as
lower bounds only: full jitter waits between half the ceiling and the ceiling.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from laden.core.config import Config
from laden.core.errors import (
    HostNotFound,
    InputError,
    Permanent,
    Retryable,
    SlowDown,
)
from laden.core.options import DownloadOptions
from laden.core.retry import ERROR_KINDS, RetryPolicy, error_kind
from laden.core.states import State
from laden.store import settings
from servers.fixtures import random_bytes
from servers.http_server import Faults

from .helpers import FAST, manager, run_laden, sha256

SLOW = {"backoff": 1.2, "max_backoff": 1.2}
"""Every wait from 0.6 to 1.2 s: long enough to see in the request log, and longer than the
default policy's first wait (0.25 to 0.5 s)."""
QUICK = FAST.replace(retry_backoff=0.0, retry_max_backoff=0.0)
"""A manager that never waits between retries."""
REFUSED = "http://127.0.0.1:9/x.bin"
"""Nothing listens on the discard port: the connection is refused."""


def _serve(http_server, statuses: list[tuple[int, dict[str, str]]], size: int = 100_000):
    data = random_bytes(size, seed=len(statuses))
    return http_server.add_file("/f.bin", data, faults=Faults(status_sequence=statuses)), data


def _gaps(http_server, count: int) -> list[float]:
    """Seconds between the first `count` + 1 requests for /f.bin."""
    times = [r.at for r in http_server.requests if r.path.split("?")[0] == "/f.bin"]
    assert len(times) > count, times
    return [later - earlier for earlier, later in zip(times[:count], times[1:count + 1],
                                                    strict=True)]


def _requests(http_server) -> int:
    return sum(1 for r in http_server.requests if r.path.split("?")[0] == "/f.bin")


# -- per download and per manager, observed -----------------------------------------------------

def test_a_download_waits_as_its_own_policy_says(http_server, downloads: Path) -> None:
    url, data = _serve(http_server, [(503, {})] * 2)
    with manager(QUICK.replace(connections=1)) as m:
        info = m.wait(m.add(url, str(downloads), retry=RetryPolicy(**SLOW)), timeout=30)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert info.retries == 2
    assert min(_gaps(http_server, 2)) >= 0.6


def test_a_download_policy_overrides_a_patient_manager(http_server, downloads: Path) -> None:
    url, data = _serve(http_server, [(503, {})] * 2)
    patient = FAST.replace(retry_backoff=1000.0, retry_max_backoff=1000.0)
    with manager(patient) as m:
        quick = RetryPolicy(backoff=0, max_backoff=0)
        info = m.wait(m.add(url, str(downloads), retry=quick), timeout=30)
    # The manager's policy would wait 500 s or more before its second try.
    assert info.state is State.DONE, info.message


def test_the_managers_policy_applies_to_downloads_without_one(http_server,
                                                              downloads: Path) -> None:
    url, _ = _serve(http_server, [(503, {})] * 2)
    with manager(FAST.replace(retry_backoff=1.2, retry_max_backoff=1.2, connections=1)) as m:
        info = m.wait(m.add(url, str(downloads)), timeout=30)
    assert info.state is State.DONE, info.message
    assert min(_gaps(http_server, 2)) >= 0.6


def test_the_settings_file_policy_is_the_managers(http_server, downloads: Path,
                                                   laden_dirs: dict[str, Path]) -> None:
    (laden_dirs["config"] / "config.toml").write_text(
        "retry_backoff = 1.2\nretry_max_backoff = 1.2\nconnections = 1\n")
    url, _ = _serve(http_server, [(503, {})] * 2)
    from laden import DownloadManager

    with DownloadManager.from_settings() as m:
        info = m.wait(m.add(url, str(downloads)), timeout=30)
    assert info.state is State.DONE, info.message
    assert min(_gaps(http_server, 2)) >= 0.6


def test_a_long_retry_after_is_cut_to_the_policys_longest(http_server, downloads: Path) -> None:
    url, _ = _serve(http_server, [(503, {"Retry-After": "3600"})])
    with manager(QUICK) as m:
        policy = RetryPolicy(max_retry_after=0.5)
        info = m.wait(m.add(url, str(downloads), retry=policy), timeout=30)
    assert info.state is State.DONE, info.message
    assert _gaps(http_server, 1)[0] >= 0.5


def test_a_resumed_download_keeps_its_policy(http_server, downloads: Path) -> None:
    url, data = _serve(http_server, [(503, {})] * 2)
    policy = RetryPolicy(attempts=4, retry_on=["slow-down", "timeout"], **SLOW)
    with manager(QUICK) as m:
        download_id = m.add(url, str(downloads), retry=policy, start=False)
    with manager(QUICK.replace(connections=1)) as m:  # a later session, quick by default
        assert m.get(download_id).options["retry"] == policy.to_mapping()
        m.resume(download_id)
        info = m.wait(download_id, timeout=30)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert min(_gaps(http_server, 2)) >= 0.6


# -- which errors retry ---------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "retry_on"), [(503, ["timeout", "server-error"]),
                                                  (429, ["5xx"]),
                                                  (500, ["slow-down", "dropped"])])
def test_an_error_of_a_kind_not_retried_fails_at_once(http_server, downloads: Path, status: int,
                                                      retry_on: list[str]) -> None:
    url, _ = _serve(http_server, [(status, {})] * 3)
    with manager(QUICK) as m:
        policy = RetryPolicy(retry_on=retry_on)
        info = m.wait(m.add(url, str(downloads), retry=policy), timeout=30)
    assert info.state is State.FAILED
    assert str(status) in info.message
    assert info.retries == 0
    assert _requests(http_server) == 1


@pytest.mark.parametrize(("status", "retry_on"), [(503, ["503"]), (429, ["slow-down"]),
                                                  (500, ["5xx"]), (502, ["server_error"])])
def test_an_error_of_a_kind_retried_is_retried(http_server, downloads: Path, status: int,
                                               retry_on: list[str]) -> None:
    url, data = _serve(http_server, [(status, {})] * 2)
    with manager(QUICK) as m:
        info = m.wait(m.add(url, str(downloads), retry=RetryPolicy(retry_on=retry_on)),
                      timeout=30)
    assert info.state is State.DONE, info.message
    assert sha256(Path(info.dest)) == sha256(data)
    assert info.retries == 2


def test_a_refused_connection_retries_only_when_refused_is_a_kind(downloads: Path) -> None:
    with manager(QUICK) as m:
        never = m.add(REFUSED, str(downloads), retry=RetryPolicy(retry_on=["timeout"]))
        twice = m.add(REFUSED, str(downloads / "again") + "/",
                      retry=RetryPolicy(attempts=2, retry_on=["refused"]))
        never_info, twice_info = m.wait(never, timeout=30), m.wait(twice, timeout=30)
    assert never_info.state is twice_info.state is State.FAILED
    assert "refused" in never_info.message
    assert never_info.retries == 0
    assert twice_info.retries == 2


def test_the_defaults_are_unchanged() -> None:
    policy = Config().retry_policy
    assert policy == RetryPolicy()
    assert (policy.attempts, policy.backoff, policy.max_backoff, policy.max_retry_after) == (
        5, 0.5, 30.0, 300.0)
    assert policy.retry_on == ERROR_KINDS
    assert policy.allowed(HostNotFound("nowhere.invalid")) == 1  # a typo says so quickly
    assert policy.allowed(Retryable("connection lost: reset")) == 5


def test_errors_are_sorted_into_kinds_by_one_table() -> None:
    cases = {
        "timeout": [Retryable("timed out connecting to example.com"),
                    Retryable("the connection stalled (no data before the stall timeout)"),
                    Retryable("HTTP 408 Request Timeout", status=408)],
        "refused": [Retryable("example.com refused the connection"),
                    Retryable("cannot reach the proxy p: it refused the connection")],
        "dropped": [Retryable("connection lost: reset by peer"),
                    Retryable("the server sent 10 of 20 bytes")],
        "server-error": [Retryable("HTTP 500", status=500), Retryable("HTTP 502", status=502)],
        "slow-down": [SlowDown("HTTP 429", status=429), SlowDown("HTTP 503", status=503),
                      SlowDown("too many connections", status=421)],
        "unresolved": [HostNotFound("nowhere.invalid")],
    }
    for kind, errors in cases.items():
        for error in errors:
            assert error_kind(error) == kind, error
    # Not retryable at all: no policy retries them, whatever it lists.
    assert error_kind(Permanent("HTTP 404", status=404)) is None
    assert error_kind(ValueError("a bug")) is None
    assert RetryPolicy(retry_on=[]).exhausted(1, Retryable("HTTP 500", status=500))


# -- the settings file, the journal, manifests -------------------------------------------------

def test_the_settings_file_round_trip(laden_dirs: dict[str, Path]) -> None:
    path = laden_dirs["config"] / "config.toml"
    path.write_text('retries = 3\nretry_backoff = 2\nretry_max_backoff = 60\n'
                    'max_retry_after = 10\nretry_on = ["timeout", "5xx"]\n')
    config = settings.load(str(path))
    wanted = RetryPolicy(attempts=3, backoff=2, max_backoff=60, max_retry_after=10,
                         retry_on=("timeout", "server-error"))
    assert config.retry_policy == wanted
    settings.save(config, str(path))
    assert settings.load(str(path)).retry_policy == wanted
    assert '"5xx"' in path.read_text()  # what the user wrote stays as written
    changed = config.replace(retry_on=("refused",), retry_backoff=1.5)
    settings.save(changed, str(path))
    again = settings.load(str(path))
    assert again.retry_policy == wanted.replace(retry_on=("refused",), backoff=1.5)


def test_an_old_settings_file_with_retries_alone_still_works(laden_dirs: dict[str, Path]) -> None:
    path = laden_dirs["config"] / "config.toml"
    path.write_text("retries = 2\n")
    assert settings.load(str(path)).retry_policy == RetryPolicy(attempts=2)


def test_the_journal_keeps_the_policy_and_no_more() -> None:
    policy = RetryPolicy(attempts=9, backoff=1, retry_on="timeout, dns")
    options = DownloadOptions(retry=policy, password="hunter2")
    journalled = options.to_journal()
    assert journalled["retry"] == {"attempts": 9, "backoff": 1.0, "max_backoff": 30.0,
                                   "max_retry_after": 300.0,
                                   "retry_on": ["timeout", "unresolved"]}
    assert "hunter2" not in str(journalled)
    assert DownloadOptions.from_journal(journalled).retry == policy
    # A record edited by hand into nonsense falls back to the manager's policy.
    assert DownloadOptions.from_journal({"retry": {"attempts": -1}}).retry is None


def test_a_manifest_item_may_carry_a_policy(tmp_path: Path) -> None:
    from laden.manifest import ManifestError, load_manifest

    item = {"type": "http", "url": "http://127.0.0.1:9/a.bin", "target_path": "a.bin",
            "retry": {"attempts": 10, "backoff": 2, "retry_on": ["timeout", "5xx"]}}
    path = tmp_path / "m.yaml"
    path.write_text(f"download_root: {tmp_path}\ndownload_items:\n"
                    f"  - type: http\n    url: {item['url']}\n    target_path: a.bin\n"
                    "    retry: {attempts: 10, backoff: 2, retry_on: [timeout, 5xx]}\n")
    target = load_manifest(str(path)).items[0].targets[0]
    assert target.options.retry == RetryPolicy(attempts=10, backoff=2,
                                               retry_on=("timeout", "server-error"))
    path.write_text(path.read_text().replace("backoff: 2", "bakoff: 2"))
    with pytest.raises(ManifestError, match="unknown key 'bakoff'"):
        load_manifest(str(path))


# -- bad values --------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "words"), [
    ({"attempts": -1}, "attempts must be between 0 and 1000"),
    ({"attempts": 1.5}, "attempts must be a whole number"),
    ({"backoff": -0.5}, "backoff must be a number of seconds from 0 to 3600"),
    ({"backoff": float("nan")}, "backoff must be a number of seconds"),
    ({"max_backoff": "soon"}, "max_backoff must be a number of seconds"),
    ({"max_retry_after": 1e9}, "max_retry_after must be a number of seconds from 0 to 86400"),
    ({"retry_on": ["timeouts"]}, "retry_on: 'timeouts' is not an error kind; the kinds are"),
    ({"retry_on": 5}, "retry_on must be a list of error kinds"),
])
def test_bad_values_are_refused_in_one_line(fields: dict, words: str, downloads: Path) -> None:
    with pytest.raises(InputError, match="^" + words.replace("(", r"\(")) as caught:
        RetryPolicy(**fields)
    assert "\n" not in str(caught.value)
    with manager(QUICK) as m, pytest.raises(InputError):
        m.add(REFUSED, str(downloads), retry=fields, start=False)
    with pytest.raises(InputError, match="retry must be a RetryPolicy"):
        DownloadOptions(retry=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "words"), [
    (["--retry-backoff", "-1"], "retry_backoff must be a number of seconds from 0 to 3600"),
    (["--retry-backoff", "soon"], "invalid float value"),
    (["--retry-max-backoff", "1e9"], "retry_max_backoff must be a number of seconds"),
    (["--max-retry-after", "inf"], "max_retry_after must be a number of seconds"),
    (["--retry-on", "timeout,bogus"], "'bogus' is not an error kind; the kinds are"),
])
def test_bad_retry_options_exit_2_with_one_line(args: list[str], words: str,
                                                downloads: Path) -> None:
    result = run_laden("get", *args, REFUSED, timeout=30, cwd=downloads)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_a_bad_retry_setting_names_the_file_and_line(laden_dirs: dict[str, Path]) -> None:
    path = laden_dirs["config"] / "config.toml"
    path.write_text('connections = 4\nretry_on = ["timeout", "sometimes"]\n')
    result = run_laden("settings", timeout=30)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{path}, line 2: retry_on: 'sometimes'" in lines[0], lines


# -- the command line ----------------------------------------------------------------------------

def test_retry_options_of_laden_get_are_kept_with_the_download(http_server,
                                                               downloads: Path) -> None:
    url, data = _serve(http_server, [(503, {})] * 2)
    result = run_laden("get", "-q", "-c", "1", "--retry-backoff", "1.2", "--retry-max-backoff",
                       "1.2", "--retry-on", "slow-down,timeout", url, "-o", str(downloads),
                       timeout=60)
    assert result.returncode == 0, result.stderr
    assert sha256(downloads / "f.bin") == sha256(data)
    assert min(_gaps(http_server, 2)) >= 0.6
    with manager(QUICK) as m:
        kept = m.list()[0].options["retry"]
    assert kept == RetryPolicy(retry_on=["slow-down", "timeout"], **SLOW).to_mapping()
