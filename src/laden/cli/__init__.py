"""The `laden` command: the app by default, headless sub-commands for scripts and CI.

Every expected failure ends as one line on stderr and a non-zero exit code, never a traceback:
2 for bad input, 3 when another laden owns the state folder, 1 when a download failed, 130 when
interrupted (the downloads are paused and saved; the same command resumes them). Everything
printed passes through `printable` (see `terminal`): no server or address can send the
terminal an escape sequence.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

from ..core.errors import LadenError
from .terminal import printable_output


def entry() -> NoReturn:
    """The `laden` command: `main`, then the end of the process without the interpreter's
    teardown.

    The teardown (every module and object freed one by one) took 25 to 40 ms of every command
    on the benchmark VM: a tenth of a 200 MiB download, more of a small one. Nothing needs it
    by then: the journal and the files are closed, and laden is built to survive being killed
    at any moment anyway. What the interpreter does before it is still done here.
    (`python -m laden` keeps the teardown, for the tools that run it and report afterwards:
    coverage, cProfile.)
    """
    code = main()
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None:  # not CPython: its own exit
        sys.exit(code)
    try:
        # As the interpreter does (and multiprocessing's children): wait for the threads that
        # are not daemons, then run the exit handlers (the log's flush among them).
        shutdown()
    except KeyboardInterrupt:
        code = 130
    atexit._run_exitfuncs()
    os._exit(_flushed(code))


def _flushed(code: int) -> int:
    """`code` once stdout and stderr are flushed; 1 if what was printed could not all be
    written (a closed pipe, a full disk), as the interpreter would fail too."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that descriptor closed
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            code = code or 1  # the reader left: quietly, as `main` does
        except (OSError, ValueError) as exc:
            code = code or 1
            if stream is sys.stdout and sys.stderr is not None:
                with contextlib.suppress(OSError, ValueError):
                    print(f"laden: error: cannot write the output: {exc}", file=sys.stderr,
                          flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _skip_httpx_cli()
    with printable_output():
        try:
            return _dispatch(argv)
        except LadenError as exc:
            _say(f"laden: error: {exc}")
            return exc.exit_code
        except KeyboardInterrupt:
            _say("laden: interrupted")
            return 130
        except BrokenPipeError:
            return 1


def _say(line: str) -> None:
    """`line` on stderr, unless stderr itself cannot be written: the exit code still tells."""
    with contextlib.suppress(OSError, LadenError):
        print(line, file=sys.stderr)


def _skip_httpx_cli() -> None:
    """Keep httpx from importing its own command-line client.

    httpx's `__init__` imports `httpx._main` (click, rich, pygments) whenever those are
    installed, and textual installs them: about 60 ms of every `laden get` (measured with
    hyperfine, `import httpx` 141 ms vs 76 ms). A None entry in sys.modules makes that import
    fail, and httpx falls back to a stub `httpx.main`. Done only here, in the `laden` process;
    programs that import laden as a library keep httpx as it is.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]


def _dispatch(argv: list[str]) -> int:
    from . import parser as grammar

    first = _first_word(argv)
    wants_help = any(a in ("-h", "--help", "--version") for a in argv)
    if first is not None and first not in grammar.COMMANDS and "://" not in first:
        return _not_a_command(first, grammar.COMMANDS)
    if (first is None and not wants_help and not argv) or (
        first is not None and first not in grammar.COMMANDS and not wants_help
    ):
        return _app(argv)
    args = grammar.build().parse_args(argv)
    from . import commands

    if args.command is None:
        return _app([])
    return int(getattr(commands, f"cmd_{args.command}")(args))


def _first_word(argv: list[str]) -> str | None:
    """The first argument that is not an option or an option's value."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--log-level":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _not_a_command(word: str, commands: tuple[str, ...]) -> int:
    """A first word that is neither a command nor an address: a usage error, not the app
    with an address it cannot add."""
    import difflib

    from ..core.printable import printable

    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.5)
    hint = (f"did you mean laden {close[0]}?" if close
            else f"the commands are {', '.join(commands)}")
    shown = printable(word if len(word) <= 40 else word[:40] + "…")
    print(f"laden: error: {shown!r} is neither a command nor an address; {hint} (see laden "
          "--help)", file=sys.stderr)
    return 2


def _has_terminal() -> bool:
    """The app draws on stdout and reads keys from stdin: both must be a terminal."""
    try:
        return sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _app(argv: list[str]) -> int:
    from .logs import setup_logging

    log_level = None
    urls = []
    iterator = iter(argv)
    for arg in iterator:
        if arg == "--log-level":
            log_level = next(iterator, None)
        elif arg.startswith("--log-level="):
            log_level = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            print(f"laden: error: unknown option {arg} (see laden --help)", file=sys.stderr)
            return 2
        else:
            urls.append(arg)
    if not _has_terminal():
        # Without one the app would draw escape codes into a pipe, spinning, for ever.
        what = "laden get URL... downloads them headless" if urls else (
            "laden get URL... downloads headless, laden list shows the downloads")
        print(f"laden: error: the app needs a terminal (stdin and stdout are not one); {what}",
              file=sys.stderr)
        return 2
    setup_logging(log_level)
    from ..tui.app import run_app

    return run_app(urls)
