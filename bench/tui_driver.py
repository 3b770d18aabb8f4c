"""Time one laden download by its files, the same way with the app open and headless.

    tui_driver.py OUT NAME CONNECTIONS -- LADEN_ARGV...

Runs LADEN_ARGV in a pseudo-terminal of 120x40 (the app needs one; the headless command gets
the same), with a settings file that saves into OUT with CONNECTIONS connections. The clock
starts when NAME's partial file appears and stops when NAME itself does (laden renames the
partial file only once it is complete), so the app's start-up and the interpreter's are left
out of both: the figure is the download's own speed. Then `q` quits the app; the headless
command ends by itself and never reads it. Prints `seconds S`; exits with laden's exit status.
Stdlib only, like the rest of bench/.
"""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

POLL = 0.002
PART_SUFFIX = ".laden-part"


def main() -> int:
    out, name, connections = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    argv = sys.argv[sys.argv.index("--") + 1:]
    config = Path(tempfile.mkdtemp(prefix="laden-config-"))
    (config / "config.toml").write_text(
        f'download_dir = "{out}"\nconnections = {connections}\n', encoding="utf-8")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "LADEN_CONFIG_DIR": str(config), "TERM": "xterm-256color",
           "COLUMNS": "120", "LINES": "40"}
    shown = bytearray()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                start_new_session=True)
        os.close(slave)
        # The screen must be read, or the app blocks writing to a full terminal.
        threading.Thread(target=_drain, args=(master, shown), daemon=True).start()
        began = ended = None
        while ended is None and proc.poll() is None:
            if began is None and (out / (name + PART_SUFFIX)).exists():
                began = time.perf_counter()
            if (out / name).exists():
                ended = time.perf_counter()
                began = began or ended
            time.sleep(POLL)
        if proc.poll() is None:
            # The app waits for `q`; a headless command ends by itself and never reads it.
            os.write(master, b"q")
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = 1
            print("laden did not quit within 30 s of `q`", file=sys.stderr)
        if ended is None or began is None:
            screen = bytes(shown[-2000:]).decode(errors="replace")
            print(f"{name} never appeared in {out}; last output: {screen!r}", file=sys.stderr)
            return rc or 1
        print(f"seconds {ended - began:.4f}")
        return rc
    finally:
        shutil.rmtree(config, ignore_errors=True)


def _drain(fd: int, shown: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        shown += chunk
        del shown[:-65536]


if __name__ == "__main__":
    sys.exit(main())
