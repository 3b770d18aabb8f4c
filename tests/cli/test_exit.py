"""How the `laden` command ends (`cli.entry`): without the interpreter's teardown, with the
exit code and output `main` gave, and with one line when the output cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENTRY = "from laden.cli import entry; entry()"


def laden(*args: str, stdout: object = subprocess.PIPE, shell_tail: str = ""
          ) -> subprocess.CompletedProcess[str]:
    """The console script's code path (`entry`), in a subprocess."""
    if shell_tail:  # a redirection the shell makes, such as a closed stdout
        quoted = " ".join(f"'{a}'" for a in (sys.executable, "-c", ENTRY, *args))
        return subprocess.run(f"{quoted} {shell_tail}", shell=True, stderr=subprocess.PIPE,
                              text=True, timeout=60, env=os.environ.copy())
    return subprocess.run([sys.executable, "-c", ENTRY, *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=60, env=os.environ.copy())


def test_the_exit_code_and_output_are_mains(http_server, downloads: Path) -> None:
    url = http_server.add_file("/e.bin", b"e" * 70_000)
    done = laden("get", "-o", str(downloads), url)
    assert done.returncode == 0, done.stderr
    assert (downloads / "e.bin").read_bytes() == b"e" * 70_000
    listing = laden("list")
    assert listing.returncode == 0 and "e.bin" in listing.stdout
    bad = laden("get", "nothing-like-an-address")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith("laden: error: ")


def test_output_that_cannot_be_written_is_one_line_and_exit_1() -> None:
    with open("/dev/full", "w") as full:
        result = laden("settings", stdout=full)
    assert result.returncode == 1
    assert result.stderr == "laden: error: cannot write the output: No space left on device\n"


def test_a_closed_stdout_is_no_error() -> None:
    result = laden("list", shell_tail=">&-")
    assert result.returncode == 0 and result.stderr == ""
