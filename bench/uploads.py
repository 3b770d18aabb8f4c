"""The upload scenarios' parts for bench.py: the server, laden's and the peers' commands, the table.

    put-s3      one file to moto: laden (its default connections, and -c 16), boto3's
                upload_file (s3transfer, 16 at once), s5cmd cp (16 at once), rclone copy (16 at
                once)
    put-azure   one file to Azurite: laden -c 16, the Azure SDK's upload_blob(max_concurrency=16)

The servers run in a process of their own (bench/upload_servers.py, with the venv's Python),
never under the timed client, so a client's CPU seconds are its own. Before each run the server
is emptied (moto reset; a new Azurite), and after it the object is checked there: its size,
then the sha256 of a GET of it. Commands hold "{endpoint}" and environments "{connection}":
the server's address and connection string, known only once it is (re)started. Stdlib only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import DEVNULL, PIPE, GiB, md_table, spread, tail
from peers import STREAMS, Peers, rclone

BENCH = Path(__file__).resolve().parent
CONTAINER = "bench"  # the bucket or container (upload_servers.CONTAINER)
S3_ENV = {
    # moto's test keys, for every tool alike; no one's own AWS configuration is read
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
AZURE_ENV = {"AZURE_STORAGE_CONNECTION_STRING": "{connection}"}
Spec = tuple[str, list[str], dict[str, str]]
"""(label, argv, environment) of one command; "{endpoint}" and "{connection}" are filled in
before each run."""


class ServiceHost:
    """bench/upload_servers.py in a process of its own: `fresh()` before a run, `check()` after."""

    def __init__(self, python: str, kind: str) -> None:
        # moto keeps objects and parts in temporary files: in RAM, so the server's disk is not
        # part of any client's time.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.tmp = Path(tempfile.mkdtemp(prefix="laden-bench-server-", dir=shm))
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [python, str(BENCH / "upload_servers.py"), kind], stdin=PIPE, stdout=PIPE,
            stderr=self.errors, text=True, env={**os.environ, "TMPDIR": str(self.tmp)})
        self.last: dict[str, str] = {}

    def ask(self, line: str) -> dict[str, str]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            self.errors.seek(0)
            said = tail(self.errors.read().decode(errors="replace"))
            raise RuntimeError(f"the {line.split()[0]} request found the server gone "
                               f"(exit {self.proc.wait()}: {said})")
        return json.loads(answer)

    def fresh(self) -> dict[str, str]:
        """An empty bucket or container; the placeholders' values for the next run."""
        answer = self.ask("fresh")
        if answer.get("error"):
            raise RuntimeError(f"the server could not start afresh: {answer['error']}")
        self.last = answer
        return {"{endpoint}": answer["endpoint"],
                "{connection}": answer.get("connection_string", "")}

    def check(self, name: str, size: int, sha: str) -> str:
        try:
            return self.ask(f"check {name} {size} {sha}").get("error", "")
        except (OSError, RuntimeError, ValueError) as exc:
            return f"the check failed: {exc}"

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.errors.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- laden


@dataclass
class Put:
    """What `laden put --help` offers."""

    argv: list[str]
    conns: bool = False
    s3: bool = False
    default_conns: str = ""


def probe_put(argv: list[str]) -> tuple[Put | None, str]:
    try:
        p = subprocess.run([*argv, "put", "--help"], capture_output=True, text=True, timeout=60,
                           stdin=DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"laden rows skipped: `laden put --help` failed ({exc})"
    if p.returncode:
        return None, f"laden rows skipped: this laden has no `put` ({tail(p.stderr, 200)})"
    h = p.stdout
    default = re.search(r"per file.*?\(default (\d+)\)", " ".join(h.split()))
    return Put(argv, bool(re.search(r"(?<![\w-])-c\b", h)), "--s3-endpoint-url" in h,
               default[1] if default else ""), ""


def laden_put(put: Put, path: Path, remote: str, n: int | None, extra: tuple[str, ...] = ()
              ) -> list[str]:
    conns = ["-c", str(n)] if n and put.conns else []
    return [*put.argv, "put", "-q", *conns, *extra, str(path), remote]


def laden_s3(put: Put, path: Path, name: str) -> list[Spec]:
    remote, endpoint = f"s3://{CONTAINER}/{name}", ("--s3-endpoint-url", "{endpoint}")
    default = f"laden -c{put.default_conns} (default)" if put.default_conns else "laden (default)"
    specs = [(default, laden_put(put, path, remote, None, endpoint), S3_ENV)]
    if put.conns:
        specs.append((f"laden -c{STREAMS}", laden_put(put, path, remote, STREAMS, endpoint),
                      S3_ENV))
    return specs


def laden_azure(put: Put, path: Path, name: str) -> list[Spec]:
    """laden at its own default connections, and at the SDK's 16 (as put-s3's rows)."""
    remote = f"az://{CONTAINER}/{name}"
    default = f"laden -c{put.default_conns} (default)" if put.default_conns else "laden (default)"
    specs = [(default, laden_put(put, path, remote, None), AZURE_ENV)]
    if put.conns:
        specs.append((f"laden -c{STREAMS}", laden_put(put, path, remote, STREAMS), AZURE_ENV))
    return specs


def azure_probe(put: Put, host: ServiceHost, tiny: Path) -> str:
    """"" when this laden uploads to az:// (a small file to the fresh Azurite), else why not."""
    subs = host.fresh()
    env = {k: subs.get(v, v) for k, v in AZURE_ENV.items()}
    try:
        p = subprocess.run(laden_put(put, tiny, f"az://{CONTAINER}/{tiny.name}", None),
                           env={**os.environ, **env}, capture_output=True, text=True,
                           timeout=120, stdin=DEVNULL)
    except subprocess.TimeoutExpired:
        return "`laden put` of a small file to az:// took over 2 minutes"
    if p.returncode:
        return f"`laden put` does not take az:// here (exit {p.returncode}: {tail(p.stderr)})"
    return host.check(tiny.name, tiny.stat().st_size, _sha256(tiny))


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the peers


S3_PEERS = ("boto3", "s5cmd", "rclone")
AZURE_PEERS = ("azure",)


def peers_s3(peers: Peers, path: Path, name: str) -> list[Spec]:
    """Every installed peer uploading `path` to s3://CONTAINER/name, STREAMS parts at once, each
    at its own default part size."""
    specs: list[Spec] = []
    if "boto3" in peers:
        specs.append((f"boto3 upload_file {STREAMS}", [
            peers.paths["boto3"], str(BENCH / "s3_upload.py"), "{endpoint}", CONTAINER, name,
            str(path), str(STREAMS)], S3_ENV))
    if "s5cmd" in peers:
        specs.append((f"s5cmd cp -c{STREAMS}", [
            peers.paths["s5cmd"], "--endpoint-url", "{endpoint}", "cp", "--concurrency",
            str(STREAMS), str(path), f"s3://{CONTAINER}/{name}"], S3_ENV))
    if "rclone" in peers:
        # an on-the-fly remote, its keys on the command line (rclone reads no AWS_* alone)
        specs.append((f"rclone copy {STREAMS}", rclone(
            peers, "copy", str(path), f":s3:{CONTAINER}/", "--s3-provider", "Other",
            "--s3-endpoint", "{endpoint}", "--s3-access-key-id", S3_ENV["AWS_ACCESS_KEY_ID"],
            "--s3-secret-access-key", S3_ENV["AWS_SECRET_ACCESS_KEY"], "--s3-region",
            "us-east-1", "--s3-force-path-style=true", "--s3-upload-concurrency",
            str(STREAMS)), S3_ENV))
    return specs


def peers_azure(peers: Peers, path: Path, name: str) -> list[Spec]:
    if "azure" not in peers:
        return []
    sdk = [peers.paths["azure"], str(BENCH / "azure_upload.py"), str(path), CONTAINER, name,
           str(STREAMS)]
    # The default sends no checksum; validate_content sends each block's MD5, as laden does.
    return [(f"azure upload_blob {STREAMS}", sdk, AZURE_ENV),
            (f"azure upload_blob {STREAMS} validate_content", [*sdk, "md5"], AZURE_ENV)]


# ---------------------------------------------------------------- the table


def table(labels: list[str], peer_labels: list[str], cpu_base: str, runs: list[Any]
          ) -> tuple[str, list[dict], list[str]]:
    """The scenario's Markdown table, its summary and notes. Each ratio is taken in the same
    round: a tool's MiB/s over the fastest peer's in that round, and its CPU seconds per GiB
    over `cpu_base`'s."""
    ok = {(r.label, r.round): r for r in runs if r.ok}
    rounds = sorted({r.round for r in runs})
    best: dict[int, Any] = {}
    for i in rounds:
        there = [ok[p, i] for p in peer_labels if (p, i) in ok]
        if there:
            best[i] = max(there, key=lambda r: r.mibps)
    hdr = ["tool", "ok/total", "median MiB/s", "min–max MiB/s", "CPU s/GiB", "peak RSS MiB",
           "× fastest peer (same round)", f"CPU ÷ {cpu_base}'s (same round)"]
    rows, summary = [], []
    for lab in labels:
        mine = [r for r in runs if r.label == lab]
        good = [r for r in mine if r.ok]
        fails = len(mine) - len(good)
        cells = [lab, f"{len(good)}/{len(mine)}" + (f" **FAILED ×{fails}**" if fails else "")]
        if not good:
            rows.append(cells + ["–"] * (len(hdr) - 2))
            summary.append({"label": lab, "ok": 0, "total": len(mine)})
            continue
        speed = [r.mibps for r in good]
        cpu = [_cpu(r) for r in good]
        vs_best = [r.mibps / best[r.round].mibps for r in good if r.round in best]
        vs_cpu = [_cpu(r) / _cpu(ok[cpu_base, r.round]) for r in good
                  if (cpu_base, r.round) in ok and _cpu(ok[cpu_base, r.round]) > 0]
        s = {"label": lab, "ok": len(good), "total": len(mine),
             "mibps_median": statistics.median(speed), "mibps_min": min(speed),
             "mibps_max": max(speed), "cpu_s_per_gib": statistics.median(cpu),
             "peak_rss_mib": max(r.rss_kib for r in good) / 1024,
             "ratios_to_fastest_peer": vs_best, f"cpu_ratios_to_{cpu_base}": vs_cpu}
        cells += [f"{s['mibps_median']:.1f}", f"{min(speed):.1f}–{max(speed):.1f}",
                  f"{s['cpu_s_per_gib']:.2f}", f"{s['peak_rss_mib']:.1f}", spread(vs_best),
                  spread(vs_cpu, base=lab == cpu_base)]
        rows.append(cells)
        summary.append(s)
    fastest = [best[i].label for i in rounds if i in best]
    notes = [("fastest peer per round: " + ", ".join(
        f"{lab} ({fastest.count(lab)} of {len(fastest)})" for lab in dict.fromkeys(fastest)))
        if fastest else "no peer succeeded: no ratios"]
    return md_table(hdr, rows), summary, notes


def _cpu(run: Any) -> float:
    return (run.user + run.sys) / (run.nbytes / GiB)
