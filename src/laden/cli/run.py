"""`laden run MANIFEST`: every item of a manifest, headless, with a summary and an exit code.

Exit codes: 0 when every item succeeded, 1 when one failed and another try may succeed (or, with
--dry-run, when something cannot be resolved or does not fit on the disk), 4 when one failed for
good (not found, forbidden, a checksum mismatch: see `errors.exit_code_of`; with --shard, see
`run_shards`), 2 for an invalid manifest, 130 when interrupted
(Ctrl-C or SIGTERM: the downloads are paused and saved, and the same command resumes them).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any, TextIO

from ..core.config import Config
from ..core.errors import InputError
from ..core.printable import printable
from ..core.snapshots import DownloadInfo
from ..core.states import SETTLED, State
from ..core.units import format_rate, format_size
from ..core.urls import strip_credentials
from . import progress
from .logs import setup_logging
from .resuming import tell_paused, tell_restarting

DEFAULT_WORKERS = 8  # Kaiwo's default for --max-workers


def cmd_run(args: argparse.Namespace) -> int:
    from ..manifest import load_manifest
    from ..manifest.plan import expand, measure
    from ..manifest.run import ManifestRun
    from ..manifest.shard_results import failures_of
    from . import run_shards  # here, like the manifest: `laden get` pays for neither
    from .commands import json_events, open_manager

    setup_logging(getattr(args, "log_level", None))
    shard = run_shards.chosen(args)  # --shard I/N, or --shards N and the job's index
    if args.status:
        return run_shards.print_status(args, shard)
    manifest = load_manifest(args.manifest)  # every problem is reported before any transfer
    config = _config(args)
    if args.dry_run:
        from ..sources.registry import SourceRegistry

        registry = SourceRegistry({"config": config})
        try:
            planned, _ = run_shards.plan(expand(manifest, registry), manifest, shard)
            measure(planned, registry)
        finally:
            registry.close()
        return print_plan(planned, args)
    with open_manager(config) as manager, json_events(manager, args):
        planned, present = run_shards.plan(expand(manifest, manager.sources), manifest, shard,
                                           manager)
        run = ManifestRun(manifest, planned, manager, rehash=args.verify)
        with manager.adding_many():  # nothing starts before the rerun's warnings are out
            run.start()
            tell_restarting(run.infos())
        interrupted = follow(run, args)
        ended = run.infos()
        results = run.results(ended)
        failures = failures_of(run, ended)
        unfinished = [i for i in ended if i.state is not State.DONE]
    code = run_shards.ended(manifest, shard, results, failures, present, interrupted)
    if interrupted:
        tell_paused(unfinished)
        return 130
    summary = print_summary(results, args)
    return code or summary


def _config(args: argparse.Namespace) -> Config:
    from ..store import settings

    workers = DEFAULT_WORKERS if args.max_workers is None else args.max_workers
    if not 1 <= workers <= 1000:
        raise InputError(f"--max-workers must be from 1 to 1000, not {workers}")
    return settings.load().replace(max_active=workers)


def follow(run: Any, args: argparse.Namespace) -> bool:
    """Show progress until every download settles; True when Ctrl-C or SIGTERM paused them."""

    manager = run.manager
    if args.json:
        display: progress.Display = progress.Display()  # the events are the output
    elif not args.quiet and not sys.stdout.isatty():
        display = RunLines(sys.stdout)
    else:
        display = progress.choose(args.quiet, False)
    stop, changed = threading.Event(), threading.Event()

    def note(event: Any) -> None:
        # The run notes each state change as it happens, so the summary's times stay true;
        # the loop wakes early only when the last download settles. (Waking on every change
        # read every download's snapshot each time: for 500 files, 1,155 rounds of 500.)
        info = getattr(event, "info", None)
        if info is not None and run.note(info):
            changed.set()

    unsubscribe = manager.subscribe(note, progress=False)
    # What is shown and timed comes from the events; the downloads are asked for once, here.
    latest = progress.Latest(run.ids)
    unsubscribe_latest = manager.subscribe(latest, progress=display.shows_progress)
    latest.seed(run.infos())
    run.observe(latest.infos(run.ids))  # what settled before `note` listened; events do the rest

    def terminate(*_: object) -> None:  # Kubernetes stops a pod with SIGTERM
        stop.set()
        changed.set()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        while True:
            changed.clear()
            infos = latest.infos(run.ids)
            display.update(infos)
            if all(i.state in SETTLED for i in infos):
                for download_id in run.ids:  # until their last events are out
                    manager.wait(download_id, timeout=30)
                return False
            try:
                changed.wait(0.25)
                if stop.is_set():
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                for download_id in run.ids:
                    manager.pause(download_id)
                for download_id in run.ids:
                    manager.wait(download_id, timeout=30)
                return True
    finally:
        display.close()
        signal.signal(signal.SIGTERM, previous)
        unsubscribe()
        unsubscribe_latest()


class RunLines(progress.Display):
    """For logs: one line when a file ends, and every few seconds one per running download
    plus a line for the whole run."""

    shows_progress = True

    def __init__(self, out: TextIO, interval: float = progress.PLAIN_INTERVAL) -> None:
        self._out = out
        self._interval = interval
        self._last = time.monotonic()
        self._ended: set[int] = set()

    def update(self, infos: Any) -> None:
        infos = list(infos)
        for info in infos:
            if info.state in SETTLED and info.id not in self._ended:
                self._ended.add(info.id)
                self._out.write(progress.plain_line(info) + "\n")
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            for info in infos:
                if info.state.is_moving:
                    self._out.write(progress.plain_line(info) + "\n")
            self._out.write(overall_line(infos) + "\n")
        self._out.flush()


def overall_line(infos: list[DownloadInfo]) -> str:
    done = sum(1 for i in infos if i.state is State.DONE)
    failed = sum(1 for i in infos if i.state is State.FAILED)
    active = sum(1 for i in infos if i.state.is_active and i.state is not State.VERIFYING)
    size = sum(i.size or 0 for i in infos)
    speed = sum(i.speed for i in infos)
    text = (f"[run] {done}/{len(infos)} files done, {active} active, "
            f"{format_size(sum(i.done for i in infos))}/{format_size(size)}, {format_rate(speed)}")
    return text + (f", {failed} failed" if failed else "")


# -- what is printed at the end ----------------------------------------------------------------


def print_summary(results: list[Any], args: argparse.Namespace) -> int:
    failed = [r for r in results if not r.ok]
    for result in failed:
        for error in result.errors:
            print(f"laden: {result.title}: {error}", file=sys.stderr)
    if args.json:
        for r in results:
            _json({"event": "item", "item": r.title, "ok": r.ok, "files": r.files,
                   "done": r.done, "skipped": r.skipped, "earlier": r.earlier, "bytes": r.bytes,
                   "seconds": None if r.seconds is None else round(r.seconds, 3),
                   "verified": r.verified, "errors": r.errors})
        _json({"event": "summary", "ok": not failed, "items": len(results),
               "failed": len(failed)})
    elif not args.quiet or failed:
        rows = [[r.title, _files(r), format_size(r.bytes), _seconds(r.seconds), r.verified,
                 _first_error(r)] for r in results]
        print_table(["ITEM", "FILES", "BYTES", "TIME", "VERIFIED", "ERROR"], rows)
        total = sum(r.bytes for r in results)
        print(f"{len(results) - len(failed)} of {len(results)} items succeeded "
              f"({format_size(total)})")
    return 1 if failed else 0


def print_plan(planned: list[Any], args: argparse.Namespace) -> int:
    from ..manifest.plan import disk_checks

    checks = disk_checks(planned)
    broken = [p for p in planned if p.errors]
    files = [f for p in planned for f in p.files]
    unknown = sum(1 for f in files if f.size is None)
    total = sum(f.size or 0 for f in files)
    if args.json:
        for p in planned:
            _json({"event": "plan", "item": p.item.title, "errors": p.errors, "files": [
                {"url": strip_credentials(f.url), "dest": f.dest, "size": f.size,
                 "direction": "download" if f.upload is None else "upload"}
                for f in p.files]})
        for c in checks:
            _json({"event": "disk", "folder": c.folder, "needed": c.needed, "free": c.free,
                   "unknown": c.unknown, "fits": c.fits})
    else:
        rows = []
        for p in planned:
            size = sum(f.size or 0 for f in p.files)
            rows.append([p.item.title, str(len(p.files)), format_size(size),
                         "; ".join(p.errors)])
            if not args.quiet:
                rows += [[f"  {f.label}", "", format_size(f.size), ""] for f in p.files]
        print_table(["ITEM", "FILES", "SIZE", "ERROR"], rows)
        note = f" ({unknown} of unknown size)" if unknown else ""
        print(f"total: {len(files)} files, {format_size(total)}{note}")
        for c in checks:
            verdict = "fits" if c.fits else "DOES NOT FIT"
            print(f"disk: {c.folder}: {format_size(c.needed)} needed, "
                  f"{format_size(c.free)} free: {verdict}")
    for p in broken:
        for error in p.errors:
            print(f"laden: {p.item.title}: {error}", file=sys.stderr)
    return 1 if broken or not all(c.fits for c in checks) else 0


def print_table(header: list[str], rows: list[list[str]]) -> None:
    # Printable before measuring: an escape is wider than the character it stands for, and a
    # newline in a cell must not start a row of its own.
    table = [[printable(str(cell)) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    widths[-1] = 0  # the last column (errors) is never padded
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())


def _files(result: Any) -> str:
    notes = [f"{n} {what}" for n, what in ((result.skipped, "skipped"),
                                          (result.earlier, "done before")) if n]
    return f"{result.done}/{result.files}" + (f" ({', '.join(notes)})" if notes else "")


def _first_error(result: Any) -> str:
    if not result.errors:
        return ""
    more = len(result.errors) - 1
    return result.errors[0] + (f" (+{more} more)" if more else "")


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()

