"""Is this answer of the version the download pinned? One comparison for every source.

The probe pins a version (`RemoteInfo.size`, `etag`, `version`, `last_modified`), and each
source asks for later ranges with a precondition on it (If-Match, ifGenerationMatch, an
unchanged size and MDTM). A service, proxy, cache or emulator that ignores the precondition
hands back bytes of another version, and writing those next to the first version's would
save a file that never existed. So every answer's own validators are compared with the pinned
ones as well, and any difference raises `RemoteChanged`: the engine starts again from zero.

The rules, so that a legitimate answer is never refused:

* A validator the answer does not carry proves nothing either way; one it carries must match.
* Entity tags are compared without their quotes and weakness flag (`W/"x"`, `"x"` and `x`
  are one tag): SDKs and proxies add and drop both.
* The size (a Content-Range total) and the service's version number (S3 VersionId, GCS
  generation) and published digests must be equal when both sides have them.
* Last-Modified decides only when no entity tag or version number could be compared, because
  a change of metadata alone (an S3 object copied onto itself) moves it without changing a byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ..core.errors import RemoteChanged

SHOWN = 80
"""Longest validator quoted in a message: a hostile server's header must not flood the screen."""


@dataclass(frozen=True)
class Validators:
    """What identifies one version of a remote file; None where it is not known."""

    size: int | None = None
    etag: str | None = None
    version: str | None = None
    """The number the service gives each version (an S3 VersionId, a GCS generation)."""
    modified: str | None = None
    """Last-Modified as an HTTP date, or any other timestamp text (an FTP MDTM)."""
    digests: tuple[tuple[str, str], ...] = ()
    """(algorithm, lowercase hex) pairs describing the whole file."""


def opaque_tag(etag: str | None) -> str | None:
    """The entity tag itself: `W/"abc"`, `"abc"` and `abc` are all `abc`; blank is None."""
    if etag is None:
        return None
    tag = etag.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:].lstrip()
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':
        tag = tag[1:-1]
    return tag or None


def difference(pinned: Validators, answer: Validators) -> str | None:
    """Why `answer` describes another version than `pinned`, in words; None when it does not."""
    if pinned.size is not None and answer.size is not None and pinned.size != answer.size:
        return f"its size went from {pinned.size} to {answer.size} bytes"
    compared = False
    if pinned.version and answer.version:
        if pinned.version.strip() != answer.version.strip():
            return f"version {_shown(pinned.version)} -> {_shown(answer.version)}"
        compared = True
    before, after = opaque_tag(pinned.etag), opaque_tag(answer.etag)
    if before and after:
        if before != after:
            return f"ETag {_shown(pinned.etag)} -> {_shown(answer.etag)}"
        compared = True
    wanted = dict(pinned.digests)
    for algorithm, digest in answer.digests:
        if algorithm in wanted and wanted[algorithm] != digest:
            return f"{algorithm} {_shown(wanted[algorithm])} -> {_shown(digest)}"
    if not compared and pinned.modified and answer.modified and not _same_time(
        pinned.modified, answer.modified
    ):
        return f"modified {_shown(pinned.modified)} -> {_shown(answer.modified)}"
    return None


def check_answer(pinned: Validators, answer: Validators, url: str) -> None:
    """Raise RemoteChanged when `answer` is not of the pinned version of `url`."""
    reason = difference(pinned, answer)
    if reason is not None:
        raise RemoteChanged(f"{url} changed during the download ({reason})")


def _same_time(a: str, b: str) -> bool:
    a, b = a.strip(), b.strip()
    if a == b:
        return True
    try:
        return parsedate_to_datetime(a) == parsedate_to_datetime(b)
    except (TypeError, ValueError):
        return False  # not HTTP dates (an MDTM): the texts already differ


def _shown(value: str) -> str:
    text = "".join(c if c.isprintable() else "?" for c in value.strip())
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
