"""Machinery for bench.py: tools, test data, a private nginx, timed runs. Stdlib only."""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import hashlib
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

MiB, GiB = 1 << 20, 1 << 30
TIME = "/usr/bin/time"
BUCKET = "bucket"  # the S3 bucket nginx serves the data folder as (Nginx.config)
REQUIRED = {"nginx": "nginx", "aria2c": "aria2", "curl": "curl", "wget": "wget", TIME: "time"}
DEVNULL, PIPE = subprocess.DEVNULL, subprocess.PIPE


def parse_size(s: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)i?B?", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {s!r} (use e.g. 256K, 400M, 2G)")
    return int(float(m[1]) * {"": 1, "K": 1 << 10, "M": MiB, "G": GiB}[m[2].upper()])


def human(n: int) -> str:
    for unit, k in (("G", GiB), ("M", MiB), ("K", 1 << 10)):
        if n >= k and n % k == 0:
            return f"{n // k}{unit}"
    return f"{n}B"


def sha256_file(p: Path) -> str:
    h, buf = hashlib.sha256(), bytearray(8 * MiB)
    view = memoryview(buf)
    with open(p, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def tail(s: str, n: int = 300) -> str:
    return " ".join(s.split())[-n:]


def find_tool(name: str) -> str | None:
    if name.startswith("/"):
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def apt_install(pkgs: list[str]) -> None:
    """Install Debian packages when root with apt-get; anyone else keeps what is there."""
    if not (pkgs and os.geteuid() == 0 and shutil.which("apt-get")):
        return
    print(f"installing {' '.join(pkgs)} with apt-get ...", flush=True)
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    subprocess.run(["apt-get", *lock, "update", "-q"], check=False, stdout=DEVNULL)
    subprocess.run(["apt-get", *lock, "install", "-y", "-q", *pkgs], check=False, stdout=DEVNULL,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def ensure_tools() -> dict[str, str | None]:
    missing = [t for t in REQUIRED if not find_tool(t)]
    if missing:
        optional = set() if find_tool("hyperfine") else {"hyperfine"}
        apt_install(sorted({REQUIRED[t] for t in missing} | optional))
        missing = [t for t in REQUIRED if not find_tool(t)]
        if missing:
            sys.exit(f"bench: missing {', '.join(missing)}; install them with\n"
                     f"  sudo apt-get install -y {' '.join(REQUIRED[t] for t in missing)}")
    return {t: find_tool(t) for t in [*REQUIRED, "hyperfine"]}


def version(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (p.stdout + p.stderr).strip().splitlines()
    if p.returncode or not lines:
        return f"unknown (exit {p.returncode})"
    return re.split(r" \(| built on| - | \| Copyright", lines[0].strip())[0]


def machine_info(tools: dict[str, str | None], laden: list[str] | None) -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    vers = {
        "nginx": version([str(tools["nginx"]), "-v"]), "aria2c": version(["aria2c", "--version"]),
        "curl": version(["curl", "--version"]), "wget": version(["wget", "--version"]),
        "hyperfine": version(["hyperfine", "--version"]) if tools["hyperfine"] else "absent",
        "laden": version([*laden, "--version"]) if laden else "absent",
        "python": platform.python_version(),
    }
    mem = Path("/proc/meminfo").read_text().split()[1]
    return {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(),
            "mem_gib": round(int(mem) / (1 << 20), 1), "versions": vers,
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


# ---------------------------------------------------------------- tables


def spread(xs: list[float], fmt: str = "{:.2f}", base: bool = False) -> str:
    if base:
        return "1 (base)"
    if not xs:
        return "–"
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def md_table(hdr: list[str], rows: list[list[str]]) -> str:
    lines = [hdr, ["---"] * len(hdr), *rows]
    return "\n".join("| " + " | ".join(r) + " |" for r in lines)


# ---------------------------------------------------------------- test data


def ensure_blob(data: Path, size: int) -> tuple[str, str]:
    """A random file of `size` bytes, reused (with its cached sha256) if already there."""
    name = f"blob-{human(size)}.bin"
    path, side = data / name, data / f"{name}.sha256"
    if path.exists() and path.stat().st_size == size and side.exists() \
            and side.stat().st_mtime >= path.stat().st_mtime:
        return name, side.read_text().strip()
    print(f"  generating {name} ...", flush=True)
    h, left, part = hashlib.sha256(), size, path.with_suffix(".part")
    with open(part, "wb") as f:
        while left:
            block = os.urandom(min(left, 64 * MiB))
            h.update(block)
            f.write(block)
            left -= len(block)
    part.rename(path)
    side.write_text(h.hexdigest() + "\n")
    return name, h.hexdigest()


def ensure_small(data: Path, count: int, size: int) -> tuple[str, list[tuple[str, str]]]:
    sub = f"small-{count}x{human(size)}"
    d, sums = data / sub, data / sub / "SHA256SUMS"
    names = [f"f{i:0{max(4, len(str(count - 1)))}d}.bin" for i in range(count)]
    if sums.exists() and all((d / n).exists() and (d / n).stat().st_size == size for n in names):
        pairs = [tuple(ln.split()[::-1]) for ln in sums.read_text().splitlines()]
        return sub, [(n, s) for n, s in pairs]
    print(f"  generating {sub}/ ...", flush=True)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        block = os.urandom(size)
        (d / n).write_bytes(block)
        out.append((n, hashlib.sha256(block).hexdigest()))
    sums.write_text("".join(f"{s}  {n}\n" for n, s in out))
    return sub, out


# ---------------------------------------------------------------- nginx


LIST_PAGE = 1000  # keys per ListObjectsV2 answer, as S3 gives them


def write_listing(lists: Path, data: Path, folder: str) -> None:
    """Static ListObjectsV2 answers for the objects under `folder`/ of BUCKET, for nginx to
    serve (see Nginx.config): nginx lists no bucket, and a listing server in Python would be
    measured with the tools. The first page is named after the folder, the next ones by their
    continuation token. ETags are nginx's own ("mtime-size" in hex), the ones its GETs of the
    objects answer, so no tool sees an object change between its listing and its GET."""
    files = sorted(p for p in (data / folder).iterdir() if p.is_file())
    pages = [files[i:i + LIST_PAGE] for i in range(0, len(files), LIST_PAGE)] or [[]]
    lists.mkdir(parents=True, exist_ok=True)
    for n, page in enumerate(pages):
        rows = []
        for path in page:
            st = path.stat()
            when = dt.datetime.fromtimestamp(int(st.st_mtime), dt.UTC)
            rows.append(f"<Contents><Key>{folder}/{path.name}</Key><LastModified>"
                        f"{when:%Y-%m-%dT%H:%M:%S}.000Z</LastModified><ETag>&quot;"
                        f"{int(st.st_mtime):x}-{st.st_size:x}&quot;</ETag><Size>{st.st_size}"
                        "</Size><StorageClass>STANDARD</StorageClass></Contents>")
        more = n + 1 < len(pages)
        token = f"<ContinuationToken>{folder}-p{n}</ContinuationToken>" if n else ""
        following = f"<NextContinuationToken>{folder}-p{n + 1}</NextContinuationToken>" \
            if more else ""
        (lists / (f"{folder}-p{n}.xml" if n else f"{folder}.xml")).write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns='
            f'"http://s3.amazonaws.com/doc/2006-03-01/"><Name>{BUCKET}</Name><Prefix>{folder}/'
            f"</Prefix>{token}<KeyCount>{len(page)}</KeyCount><MaxKeys>{LIST_PAGE}</MaxKeys>"
            f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>{following}"
            + "".join(rows) + "</ListBucketResult>\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, binary: str, work: Path, data: Path) -> None:
        self.binary, self.dir, self.data = binary, work / "nginx", data
        self.lists = self.dir / "lists"  # see write_listing
        self.port, self.capped_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        d = self.dir
        temps = "".join(f"  {k}_temp_path {d}/tmp-{k};\n"
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        server = "  server {{ listen 127.0.0.1:{}; root " + str(self.data) + "; {}}}\n"
        # The unlimited server is also an anonymous path-style S3 endpoint with one bucket, the
        # data folder: HEAD and ranged GET of an object are all an anonymous download asks, and
        # s5cmd first HEADs the bucket itself. A ListObjectsV2 of a folder written by
        # `write_listing` is answered from its pages (the map below picks the page from the
        # prefix or the continuation token). autoindex gives rclone's :http: remote, wget2 -r
        # and laden a folder page to read.
        s3 = (f"autoindex on; location = /{BUCKET} {{ if ($s3_listing) {{ rewrite ^ "
              "$s3_listing last; } return 200; } "
              f"location /_lists/ {{ internal; alias {self.lists}/; "
              "default_type application/xml; } "
              # A key is a file: a folder's name is no object (rclone HEADs the prefix first).
              f"location /{BUCKET}/ {{ alias {self.data}/; autoindex off; try_files $uri =404; }} ")
        listing = ("  map $args $s3_listing {\n    default \"\";\n"
                   '    "~(^|&)continuation-token=(?<token>[A-Za-z0-9._-]+)(&|$)" '
                   '"/_lists/$token.xml";\n'
                   '    "~(^|&)prefix=(?<folder>[A-Za-z0-9._-]+)(%2F|/)(&|$)" '
                   '"/_lists/$folder.xml";\n  }\n')
        # as root, nginx would switch its workers to "nobody": keep them as the current user
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        return (f"{user}worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\n"
                f"error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\nhttp {{\n"
                "  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
                "  keepalive_requests 100000;\n"
                "  types {}\n  default_type application/octet-stream;\n" + temps + listing
                + server.format(self.port, s3) + server.format(self.capped_port, "limit_rate 20m; ")
                + "}\n")

    def __enter__(self) -> Nginx:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "nginx.conf").write_text(self.config())
        log = self.dir / "error.log"
        self.errf = open(self.dir / "stderr.log", "wb")  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            [self.binary, "-p", f"{self.dir}/", "-e", str(log), "-c", str(self.dir / "nginx.conf")],
            stdin=DEVNULL, stdout=DEVNULL, stderr=self.errf, start_new_session=True)
        deadline = time.monotonic() + 15
        for port in (self.port, self.capped_port):
            while True:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    errs = (self.dir / "stderr.log").read_text() + (log.read_text() if log.exists()
                                                                    else "")
                    sys.exit(f"bench: nginx did not start: {tail(errs, 800)}")
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown, the master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.errf.close()


# ---------------------------------------------------------------- running


def read_into_cache(files: list[Path]) -> None:
    """Read the files nginx is about to serve, so every run is served from memory. This VM's
    host takes cached pages back at will (a 1.9 GiB file read minutes before was 0.5 % cached),
    and whichever tool ran first after that measured the disk, not itself."""
    buf = bytearray(8 * MiB)
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def fresh_laden_state() -> None:
    """Each run starts as a first-time user: an empty journal (aria2c keeps no state either),
    and never the journal of whoever runs the benchmark."""
    state = os.environ.get("LADEN_STATE_DIR")
    if state:
        shutil.rmtree(state, ignore_errors=True)


def timed(argv: list[str], cwd: Path, tfile: Path, timeout: float, capture: bool,
          env: dict[str, str] | None = None
          ) -> tuple[int, float, tuple[float, float, int], str, str]:
    """Run argv under GNU time, with `env` added to the environment; returns (rc, wall s,
    (user s, sys s, max RSS KiB), out, err)."""
    tfile.unlink(missing_ok=True)
    fresh_laden_state()
    t0 = time.perf_counter()
    p = subprocess.Popen([TIME, "-f", "%e %U %S %M", "-o", str(tfile), *argv], cwd=cwd,
                         stdin=DEVNULL, stdout=PIPE if capture else DEVNULL, stderr=PIPE,
                         text=True, errors="replace", start_new_session=True,
                         env={**os.environ, **env} if env else None)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return -9, time.perf_counter() - t0, (0.0, 0.0, 0), "", f"timeout after {timeout:.0f}s"
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        raise
    wall = time.perf_counter() - t0
    try:
        _, u, s, m = tfile.read_text().split()[-4:]
        usage = (float(u), float(s), int(m))
    except (OSError, ValueError):
        usage = (0.0, 0.0, 0)
    return p.returncode, wall, usage, out or "", err


_LIBC = ctypes.CDLL(None, use_errno=True)


def flush(folder: Path) -> float:
    """Seconds to write back every dirty page of the filesystem that holds `folder`: syncfs(2),
    so other filesystems' writeback is not counted (sync(2) where libc has no syncfs). A tool
    that leaves its bytes in the page cache pays here what it did not pay in its wall time."""
    t0 = time.perf_counter()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if not hasattr(_LIBC, "syncfs") or _LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def check_sha(out: Path, expect: list[tuple[str, str]]) -> str:
    """"" if every (name, sha256) is a file in out with that hash, else why not."""
    for name, sha in expect:
        p = out / name
        if not p.is_file():
            return f"missing {name} (dir has: {', '.join(sorted(os.listdir(out))[:5]) or '-'})"
        if sha256_file(p) != sha:
            return f"sha256 mismatch for {name} ({p.stat().st_size} bytes)"
    return ""
