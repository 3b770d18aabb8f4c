"""The headless sub-commands. Each returns the process exit code."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.config import Config
from ..core.errors import InputError, LadenError, StateDirBusy
from ..core.options import DownloadOptions
from ..core.printable import printable
from ..core.snapshots import DownloadInfo
from ..core.states import SETTLED, State
from ..core.units import format_size, parse_rate
from ..core.urls import strip_credentials
from ..engine import events, formats, sharing
from . import progress, waiting
from .credentials import user_and_password, warn_if_insecure
from .logs import setup_logging
from .put import cmd_put as cmd_put  # `laden put` too
from .resuming import tell_paused, tell_restarting
from .run import cmd_run as cmd_run  # `laden run` lives in its own module

MIN_REDRAW = 0.05
"""At most twenty looks at the downloads a second, however many events arrive."""


def cmd_get(args: argparse.Namespace) -> int:
    from ..sources.registry import scheme_of
    from .input_file import read_input_file

    setup_logging(args.log_level)
    entries: list[tuple[str, dict[str, Any]]] = [(url, {}) for url in args.urls]
    if args.input_file:
        entries += read_input_file(args.input_file, default_dir=_folder(args.output))
    if not entries:
        raise InputError("no URL given (laden get URL..., or -i FILE)")
    if args.name and len(entries) > 1:
        raise InputError("--name works with one URL only")
    for url, _ in entries:
        scheme_of(url)
    config = _config(args)
    options = with_retry(download_options(args), config, args)
    if args.force and options.conflict is None:
        options = _with(options, {"conflict": "overwrite"})  # again, in place of the old copy
    # The ranks of a training job may all ask for the same thing at once: one fetches, the
    # others wait for it (see `engine.sharing`).
    requests = [sharing.Request(url, extra.get("dest") or _folder(args.output), args.name)
                for url, extra in entries]
    while True:
        with contextlib.ExitStack() as stack:
            try:
                manager = stack.enter_context(open_manager(config))
            except StateDirBusy as busy:
                if args.no_wait:
                    raise
                code = waiting.wait_for_owner(requests, busy, args)
                if code is None:
                    continue  # the owner stopped without finishing: take over from the journal
                return code
            marks = sharing.Marks(manager.state_dir, requests).hold()
            stack.callback(marks.release)  # unless finished: a waiter then takes over
            stack.enter_context(json_events(manager, args))
            code, ids = _fetch(manager, entries, options, args)
            if code != 130:  # paused by Ctrl-C: a waiter resumes it instead
                # Asked for again, one at a time: keeping the summary's snapshots of a list
                # of thousands until here cost 2 KiB a file at the peak.
                marks.finish({request.key: sharing.outcome_of(code, map(manager.get, own))
                              for request, own in zip(requests, ids, strict=True)})
            return code


def _fetch(manager: Any, entries: list[tuple[str, dict[str, Any]]], options: DownloadOptions,
           args: argparse.Namespace) -> tuple[int, list[list[int]]]:
    """Queue every entry and watch them to the end: the exit code, and each entry's
    downloads."""
    per_entry: list[list[int]] = []
    found: dict[int, str] = {}
    added: set[int] = set()

    def on_event(event: events.Event) -> None:
        if isinstance(event, events.AlreadyDownloaded):
            found.setdefault(event.download_id, event.checked)
        elif isinstance(event, events.Added):
            added.add(event.download_id)

    unsubscribe = manager.subscribe(on_event, progress=False)
    try:
        with manager.adding_many():
            for url, extra in entries:
                extra = dict(extra)
                dest = extra.pop("dest", None) or _folder(args.output)
                per_entry.append(manager.add_all(url, dest, options=_with(options, extra),
                                                 again=args.force, rehash=args.verify))
            fetching = list(dict.fromkeys(i for ids in per_entry for i in ids if i not in found))
            # Only a download added before can have bytes to drop.
            tell_restarting(manager.get(i) for i in fetching if i not in added)
    finally:
        unsubscribe()
    for download_id, checked in found.items():
        if not (args.quiet or args.json):
            print(f"already downloaded: {manager.get(download_id).dest} ({checked}); "
                  "--force fetches it again")
    return (watch(manager, fetching, args) if fetching else 0), per_entry


def cmd_resume(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    if not args.ids and not args.all:
        raise InputError("say which downloads to resume: laden resume ID... or --all")
    credentials = download_options(args)
    with open_manager(_config(args)) as manager, json_events(manager, args):
        if args.all:
            ids = [i.id for i in manager.list(done=False) if i.state is not State.CANCELLED]
        else:
            ids = [manager.get(_id(i)).id for i in args.ids]
        # Resumed one by one, each would start on a thread of its own after a count of the
        # whole queue: 2,000 small files took a fifth longer.
        with manager.adding_many():
            for download_id in ids:
                manager.update_credentials(download_id, credentials)
                manager.resume(download_id)
        if not ids:
            print("nothing to resume")
            return 0
        return watch(manager, ids, args)


def cmd_pause(args: argparse.Namespace) -> int:
    with open_manager(_config(None)) as manager:
        for download_id in args.ids:
            info = manager.get(_id(download_id))
            if manager.pause(info.id):
                print(f"[{info.id}] {info.name}: paused")
            else:
                why = _NOT_PAUSED.get(info.state, info.state.value)
                print(f"[{info.id}] {info.name}: not paused: {why}")
    return 0


_NOT_PAUSED = {
    State.DONE: "it is already done",
    State.PAUSED: "it was paused already",
    State.FAILED: "it failed and is not running (laden resume tries it again)",
    State.CANCELLED: "it was cancelled",
}


def cmd_remove(args: argparse.Namespace) -> int:
    from .unfinished import remove_unfinished

    setup_logging(args.log_level)
    if not args.ids and not args.unfinished_uploads:
        raise InputError("say what to remove: laden remove ID... or --unfinished-uploads")
    credentials = download_options(args)  # an upload's service is asked to abort it
    with open_manager(_config(None)) as manager:
        if args.unfinished_uploads:
            ids = [manager.get(_id(i)).id for i in args.ids]
            for download_id in ids or [u.id for u in manager.unfinished_uploads()]:
                manager.update_credentials(download_id, credentials)
            return remove_unfinished(manager, ids)
        for download_id in args.ids:
            info = manager.get(_id(download_id))
            manager.update_credentials(info.id, credentials)
            manager.remove(info.id, delete_file=args.delete_file)
            deleted = " and deleted its file" if args.delete_file and info.state is State.DONE \
                else ""
            print(f"[{info.id}] removed {info.name}{deleted}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    failed = 0
    if not args.targets and not args.all:
        raise InputError("say what to verify: laden verify ID|PATH... or --all")
    # Credentials only: the checksum typed is what to compare with, not the download's own.
    credentials = _with(download_options(args), {"checksum": None})
    with open_manager(_config(None)) as manager:
        targets = list(args.targets)
        if args.all:
            targets += [str(i.id) for i in manager.list() if i.state is State.DONE]
            if not targets:
                print("nothing finished to verify")
        for target in targets:
            info = manager.find(target) if not target.isdigit() else manager.get(int(target))
            if info is not None:
                manager.update_credentials(info.id, credentials)  # an upload asks its service
            if info is None and formats.kind_of(target) and os.path.isfile(target):
                failed += not check_model_file(target)  # a file laden did not download
                continue
            if info is None:
                raise InputError(f"{target} is neither a download id nor a file laden downloaded")
            result = manager.verify(info.id, expected=args.checksum, record=args.record or None)
            mark = "ok" if result.ok else "FAILED"
            where = f"{result.path}: " if result.path else ""
            print(f"[{info.id}] {mark}: {where}{result.message}")
            if not result.ok and args.checksum and not args.record and result.actual:
                print(f"[{info.id}] its state is unchanged ({manager.state(info.id).value}); "
                      "--record marks it failed")
            if result.damaged:
                print(f"[{info.id}] laden repair {info.id} fetches only the damaged bytes again")
            failed += not result.ok
    return 1 if failed else 0


def check_model_file(path: str) -> bool:
    """`laden verify PATH` of a model file laden did not download: its structure alone."""
    try:
        report = formats.check_file(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if report is None:  # a .bin that is no PyTorch checkpoint
        print(printable(f"not checked: {path}: not a PyTorch checkpoint, and laden did not "
                        "download it (no checksum to compare)"))
        return True
    mark = "ok" if report.ok else "FAILED"
    print(printable(f"{mark}: {report.message(path)}"))
    return report.ok


def cmd_repair(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)  # the download's story goes to laden.log, not the terminal
    failed = 0
    credentials = download_options(args)
    with open_manager(_config(None)) as manager:
        for target in args.targets:
            info = manager.find(target) if not target.isdigit() else manager.get(int(target))
            if info is None:
                raise InputError(f"{target} is neither a download id nor a file laden downloaded")
            manager.update_credentials(info.id, credentials)
            result = manager.repair(info.id)
            mark = "repaired" if result.ok and result.fetched else "ok" if result.ok else "FAILED"
            where = f"{result.path}: " if result.path else ""
            print(f"[{info.id}] {mark}: {where}{result.message}")
            failed += not result.ok
    return 1 if failed else 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..store import paths
    from ..store.journal import Journal
    from ..store.lock import holder

    folder = paths.state_dir()
    if args.at and not args.unfinished_uploads:
        raise InputError("--at goes with --unfinished-uploads")
    if not os.path.exists(os.path.join(folder, "journal.sqlite3")) and not args.at:
        if not args.json:
            print("no unfinished uploads" if args.unfinished_uploads else "no downloads yet")
        return 0
    # Reading needs no lock: list works while another laden is downloading.
    records: list[Any] = []
    if os.path.exists(os.path.join(folder, "journal.sqlite3")):
        journal = Journal(folder)
        tell_if_journal_recovered(journal)
        try:
            records = sorted(journal.load_all(), key=lambda r: r.position)
        finally:
            journal.close()
    running = holder(folder)
    states = {r.id: shown_state(r.state, running is not None) for r in records}
    if args.unfinished_uploads:
        from .unfinished import print_unfinished

        return print_unfinished(records, states, args)
    if args.json:
        for r in records:
            done = sum(e - s for s, e in r.done_ranges)
            print(json.dumps({"id": r.id, "direction": r.direction, "url": r.url,
                              "dest": r.dest or r.dest_dir,
                              "state": states[r.id], "size": r.size, "done": done,
                              "message": r.message, "group": r.group}))
        return 0
    if not records:
        print("no downloads yet")
        return 0
    if running:
        print(f"another laden is at work here ({running}); its downloads show as running")
    print(f"{'ID':>4}  {'STATE':<11} {'DONE':>6}  {'SIZE':>10}  NAME")
    for r in records:
        done = sum(e - s for s, e in r.done_ranges)
        percent = f"{100 * done / r.size:5.1f}%" if r.size else ("100.0%" if r.state == "done"
                                                                else "     ?")
        name = os.path.basename(r.dest) if r.dest else r.url
        if r.direction == "upload":  # which way it goes: the local name, then where to
            name = f"{name} -> {strip_credentials(r.url)}"
        note = f"  ({r.message})" if r.message and r.state in ("failed", "paused") else ""
        # One row per download, even for an address or a message holding a newline.
        print(printable(f"{r.id:>4}  {states[r.id]:<11} {percent:>6}  "
                        f"{format_size(r.size):>10}  {name}{note}"))
    if "interrupted" in states.values():
        print("interrupted: no laden is running them; laden resume --all (or the app) "
              "continues them")
    return 0


def shown_state(journalled: str, laden_running: bool) -> str:
    """A download's state as `laden list` tells it: the journal's state is what the last laden
    to hold the download wrote, and stays "downloading" after it quits or is killed.

    Args:
        journalled: The state in the journal.
        laden_running: Another laden holds the state folder now (see `store.lock.holder`).
            It journals a download it takes up at once, so an active state is its own.
    """
    if journalled not in ("queued", "connecting", "downloading", "uploading", "verifying"):
        return journalled
    if not laden_running:
        return "interrupted"
    # It journals "connecting" but not every later step: the download is running, in it.
    return "running" if journalled in ("connecting", "downloading", "uploading") else journalled


def cmd_settings(args: argparse.Namespace) -> int:
    import tomli_w

    from ..store import paths, settings

    path = paths.settings_path()
    config = settings.load(path)
    exists = "" if os.path.exists(path) else " (does not exist: defaults)"
    print(f"# {path}{exists}")
    print(tomli_w.dumps(config.to_mapping()), end="")
    return 0


# -- shared pieces ---------------------------------------------------------------------------


@contextmanager
def open_manager(config: Config) -> Iterator[Any]:
    from ..engine.manager import DownloadManager

    manager = DownloadManager(config)
    tell_if_journal_recovered(manager.journal)
    try:
        yield manager
    finally:
        manager.close()


def tell_if_journal_recovered(journal: Any) -> None:
    """One line on stderr when the journal was unreadable and laden started a fresh one."""
    aside = getattr(journal, "recovered_from", None)
    if aside:
        print(f"laden: the journal {journal.path} could not be read; it was moved to {aside} "
              "and a new one started", file=sys.stderr)


@contextmanager
def json_events(manager: Any, args: argparse.Namespace) -> Iterator[None]:
    """With --json, every event from the first `added` on, one JSON object per line."""
    unsubscribe = manager.subscribe(progress.JsonPrinter()) if args.json else None
    try:
        yield
    finally:
        if unsubscribe:
            unsubscribe()


def watch(manager: Any, ids: list[int], args: argparse.Namespace) -> int:
    """Show progress until every download settles; Ctrl-C or SIGTERM pauses and saves them."""
    display = progress.choose(args.quiet, args.json)
    stop = threading.Event()
    changed = threading.Event()
    # Wake at once when a download settles, rather than on the next tick: a small file is
    # done in milliseconds and should not wait a quarter second to say so. Redraws are still
    # throttled, except after the last download settles.
    watched, unsettled = frozenset(ids), set(ids)
    all_settled = threading.Event()

    def on_event(event: events.Event) -> None:
        if not isinstance(event, events.Progress):
            changed.set()
        if isinstance(event, events.StateChanged) and event.download_id in watched:
            (unsettled.discard if event.new in SETTLED else unsettled.add)(event.download_id)
            if not unsettled:
                all_settled.set()

    unsubscribe_changes = manager.subscribe(on_event, progress=False)
    # What is shown comes from the events; the downloads are asked for once, here.
    latest = progress.Latest(ids)
    unsubscribe_latest = manager.subscribe(latest) if display.shows_progress else None
    if unsubscribe_latest is not None:
        latest.seed(manager.get(i) for i in ids)

    def on_sigterm(*_: object) -> None:
        stop.set()
        changed.set()
        all_settled.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    interrupted = False
    settled: list[DownloadInfo] | None = None
    pending = list(ids)
    try:
        while True:
            began = time.monotonic()
            changed.clear()
            # Only what can still change: with hundreds of small files, asking for every
            # download on every event made the watching cost more than the downloading.
            if display.shows_progress:
                infos = latest.infos(pending)
                display.update(infos)
                pending = [i.id for i in infos if i.state not in SETTLED]
            else:
                pending = [i for i in pending if manager.state(i) not in SETTLED]
            if not pending:
                # Each transfer finishes telling its listeners; what `wait` returns then is
                # what the summary shows.
                settled = [manager.wait(download_id, timeout=10) for download_id in ids]
                break
            try:
                # With nothing to show, only the end matters: asking for hundreds of small
                # files' states at every change cost more CPU than some of the downloads.
                (changed if display.shows_progress else all_settled).wait(0.25)
                all_settled.wait(max(0.0, MIN_REDRAW - (time.monotonic() - began)))
                if stop.is_set():
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                interrupted = True
                for download_id in ids:
                    manager.pause(download_id)
                for download_id in ids:
                    manager.wait(download_id, timeout=30)
                display.update([manager.get(i) for i in ids])
                break
    finally:
        display.close()
        signal.signal(signal.SIGTERM, previous)
        unsubscribe_changes()
        if unsubscribe_latest is not None:
            unsubscribe_latest()
    infos = settled if settled is not None else [manager.get(i) for i in ids]
    if interrupted and any(i.state is not State.DONE for i in infos):  # some finished anyway
        tell_paused(i for i in infos if i.state is not State.DONE)
        return 130
    return summarise(infos, quiet=args.quiet or args.json)


def summarise(infos: list[DownloadInfo], *, quiet: bool) -> int:
    code = 0
    for info in infos:
        if info.state is State.DONE:
            if quiet:
                continue
            if info.direction == "upload":
                # The message says what was compared: CRC32C, MD5, or the size alone (FTP).
                print(f"skipped {info.dest}: {info.message.removesuffix('; skipped')}"
                      if info.skipped else
                      f"uploaded {info.dest} to {info.url} ({format_size(info.size)})")
            elif info.skipped:
                print(f"skipped {info.dest}: a file is already there (--conflict skip); "
                      "nothing was downloaded")
            else:
                print(f"saved {info.dest} ({format_size(info.size)})"
                      + (f": {info.message}" if info.message else ""))
        else:
            code = 1
            reason = info.message or info.state.value
            print(f"laden: {info.name or info.url}: {reason}", file=sys.stderr)
    return code


def download_options(args: argparse.Namespace) -> DownloadOptions:
    headers: dict[str, str] = {}
    for header in args.header:
        name, found, value = header.partition(":")
        if not found or not name.strip():
            raise InputError(f"header must look like 'Name: value', not {header!r}")
        headers[name.strip()] = value.strip()
    username = password = None
    if args.user:
        username, password = user_and_password(args.user)
    warn_if_insecure(args.insecure, quiet=getattr(args, "quiet", False))
    fields: dict[str, Any] = dict(
        headers=headers, username=username, password=password, bearer_token=args.bearer,
        netrc=not args.no_netrc, ca_bundle=args.ca_bundle, insecure=args.insecure,
        proxy=args.proxy,
    )
    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        raise InputError(f"CA bundle {args.ca_bundle} does not exist")
    for name in ("checksum", "conflict", "connections"):
        if getattr(args, name, None) is not None:
            fields[name] = getattr(args, name)
    if getattr(args, "name", None):
        fields["filename"] = args.name
    if getattr(args, "no_format_check", False):
        fields["format_check"] = False
    fields["source_settings"], fields["secrets"] = source_settings(args)
    if fields.get("checksum"):
        from ..core.checksums import parse_checksum

        parse_checksum(fields["checksum"])
    return DownloadOptions(**fields)


def source_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The object-store and hub options as (source_settings, secrets) for DownloadOptions."""
    from .parser import CLOUD_OPTIONS, SECRET_CLOUD_OPTIONS

    settings: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name in ("glob", "revision", "include", "exclude"):
        if getattr(args, name, None):
            settings[name] = getattr(args, name)
    for flag, metavar, _ in CLOUD_OPTIONS:
        name = flag[2:].replace("-", "_")
        value = getattr(args, name, None)
        if not value:
            continue
        if name in SECRET_CLOUD_OPTIONS:
            secrets[name] = value
            continue
        if metavar == "FILE":
            value = os.path.abspath(os.path.expanduser(value))  # resumed from anywhere
            if not os.path.exists(value):
                raise InputError(f"{flag} {value}: no such file")
            if not os.path.isfile(value):  # a FIFO or a device would hang or never end
                raise InputError(f"{flag} {value}: not a regular file")
        settings[name] = value
    if getattr(args, "anonymous", False):
        settings["anonymous"] = True
    return settings, secrets


def _config(args: argparse.Namespace | None) -> Config:
    from ..store import settings

    config = settings.load()
    if args is None:
        return config
    changes: dict[str, Any] = {}
    for name in ("connections", "max_active", *RETRY_OPTIONS):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "limit_rate", None):
        changes["limit_rate"] = parse_rate(args.limit_rate)
    wanted = changes.get("connections")
    if isinstance(wanted, int) and wanted > config.per_host_connections:
        # `-c 32` asked for explicitly: the per-host cap (a default meant for many downloads at
        # once) must not quietly halve it.
        changes["per_host_connections"] = wanted
    try:
        return config.replace(**changes)
    except LadenError:
        raise
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None


RETRY_OPTIONS = ("retries", "retry_backoff", "retry_max_backoff", "max_retry_after", "retry_on")
"""Command-line options that are `Config` retry settings, by their names there."""


def with_retry(options: DownloadOptions, config: Config,
               args: argparse.Namespace) -> DownloadOptions:
    """`options` carrying the retry policy in force when a retry option was given: kept with
    each download, so a resume in another session retries the same way."""
    if all(getattr(args, name, None) is None for name in RETRY_OPTIONS):
        return options
    return _with(options, {"retry": config.retry_policy})


def _folder(output: str | None) -> str | None:
    if output is None:
        return None
    return output if output.endswith(os.sep) else output + os.sep


def _with(options: DownloadOptions, extra: dict[str, Any]) -> DownloadOptions:
    import dataclasses

    return dataclasses.replace(options, **extra) if extra else options


def _id(text: str) -> int:
    if not str(text).isdigit():
        raise InputError(f"{text!r} is not a download id (see laden list)")
    return int(text)
