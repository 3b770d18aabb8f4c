"""What the command line asks for, or says once, about credentials and TLS (-u and -k)."""

from __future__ import annotations

import getpass
import sys

from ..core.errors import InputError

SHOWN_USER = 40
"""Characters of a user name a prompt or a message repeats."""


def user_and_password(text: str) -> tuple[str, str]:
    """`-u USER[:PASSWORD]` as (user, password).

    A user without a password is asked for one on the terminal, as curl does (`-u USER:` is an
    empty password, given on purpose); getpass reads it without echo. Without a terminal to ask
    on (a script, a pipe, a container), that is an error rather than an empty password sent in
    silence.

    Raises:
        InputError: no terminal to ask on, or the terminal closed before a password came.
    """
    user, found, password = text.partition(":")
    if found:
        return user, password
    shown = user if len(user) <= SHOWN_USER else user[:SHOWN_USER] + "…"
    if not sys.stdin.isatty():
        raise InputError(f"-u {shown!r} gives no password and there is no terminal to ask for "
                         "it on: give -u USER:PASSWORD (-u USER: for an empty one), or the "
                         "password in ~/.netrc")
    try:
        return user, getpass.getpass(f"password for {shown}: ")
    except EOFError:
        raise InputError(f"no password given for {shown!r}") from None


def warn_if_insecure(insecure: bool, *, quiet: bool = False) -> None:
    """Say once that certificates are not checked (`-k`); the HTTP source keeps urllib3 from
    saying it again for every connection."""
    if insecure and not quiet:
        print("laden: warning: -k: TLS certificates are not checked, so anyone between you and "
              "the server can read and change what is downloaded", file=sys.stderr)
