"""The model-file check of a download (see `formats`): after its bytes are verified, before the
final rename, and again by `laden verify`.

On by default for the suffixes `formats.KINDS` lists; the `format_check` setting turns it off
for every download, the download option of the same name (`--no-format-check`) for one. The
verdict is kept in the journal record (`extra["format_check"]`), so the app's detail screen
shows it in later sessions too, and told to listeners as a `FormatChecked` event.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING

from ..core.errors import FormatError
from . import events
from .formats import FormatReport, check_file, kind_of

if TYPE_CHECKING:
    from ..core.config import Config
    from .checking import VerifyResult
    from .download import Download
    from .seam import Run

log = logging.getLogger("laden")
JOURNAL_KEY = "format_check"


def wanted(download: Download, config: Config) -> bool:
    """Whether this download's file is checked: a model file's name, and the check not off."""
    chosen = download.options.format_check
    on = config.format_check if chosen is None else chosen
    return on and kind_of(download.record.dest or "") is not None


def check_before_rename(run: Run, path: str, head: bytes | None = None) -> None:
    """Check the partial file at `path` as the file it is about to become; `head`: its first
    bytes, when they are in memory (see `formats.check_file`).

    Raises:
        FormatError: it is not a whole file of its kind; it keeps its partial name.
    """
    download = run.download
    if not wanted(download, run.config):
        return
    name = os.path.basename(download.record.dest or "")
    try:
        report = check_file(path, name, head=head)
    except OSError as exc:  # the hashing before this read it: say so, do not guess
        log.warning("download %s: the model-file check could not read %s: %s",
                    download.id, path, exc)
        return
    if report is None:
        return
    note(download, report)
    run.save()
    run.emit(events.FormatChecked(download.id, report.kind, report.ok, report.detail,
                                  download.info()))
    if not report.ok:
        raise FormatError(report.detail, kind=report.kind)


def check_finished(download: Download, path: str) -> FormatReport | None:
    """Check a finished file again (`laden verify`), noting the verdict in its record. Runs
    whatever the settings say: a check asked for by name is never skipped."""
    try:
        report = check_file(path, os.path.basename(download.record.dest or path))
    except OSError:
        return None  # the checksum step already said why the file cannot be read
    if report is not None:
        note(download, report)
    return report


def note(download: Download, report: FormatReport) -> None:
    with download.lock:
        download.record.extra[JOURNAL_KEY] = report.to_journal()


def report_of(extra: dict[str, object]) -> FormatReport | None:
    """The verdict a journal record holds, if any."""
    return FormatReport.from_journal(extra.get(JOURNAL_KEY))


def after_recheck(download: Download, result: VerifyResult) -> VerifyResult:
    """`laden verify`'s result with the model-file check added: a file whose checksum matches
    (or was just recorded) can still be cut short, if the server's copy was."""
    if not result.ok or not result.path or not os.path.isfile(result.path):
        return result
    report = check_finished(download, result.path)
    if report is None:
        return result
    if not report.ok:
        return dataclasses.replace(result, ok=False,
                                   message=f"{report.detail} ({result.message})")
    return dataclasses.replace(result, message=f"{result.message}; {report.kind} structure "
                                               f"checked: {report.detail}")
