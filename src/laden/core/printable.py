"""Text made safe to show on a terminal, whoever wrote it.

Names, addresses, ETags, status lines and error messages come from servers and from people, and
a terminal obeys what it is sent: `ESC ] 0;title BEL` retitles the window, `ESC [2J` clears it,
U+009B is the same CSI in one byte, and a bidi override (U+202E) shows `invoice\\u202egpj.exe`
as `invoiceexe.jpg`. `printable` turns every such character into a visible escape (`\\x1b`,
`\\u202e`), so what reaches a person is exactly what was sent, and only ever text.
"""

from __future__ import annotations

import re

from .urls import without_signatures

_INVISIBLE_LETTERS = re.compile("[\u115f\u1160\u3164\uffa0]")
"""Hangul fillers: letters by category, yet they draw nothing, so they can hide text too."""
_SPACES = frozenset("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                    "\u200a\u202f\u205f\u3000")
"""Unicode's other spaces (category Zs): blank, but they neither move the cursor nor hide text.
Listed rather than looked up, so showing a line never needs unicodedata's tables."""
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with everything that is not plain visible text replaced by a visible escape.

    Escaped: C0 and C1 controls, DEL, format characters (bidi embeddings, overrides, isolates
    and marks, zero-width characters, the byte order mark, ...), line and paragraph separators,
    lone surrogates, private-use and unassigned code points, and the invisible Hangul fillers:
    all that `str.isprintable` refuses, except spaces of every width. Nothing is dropped, so the
    escapes show the user what a server sent; only the signatures and tokens of signed
    addresses are replaced (`urls.without_signatures`), since whoever reads them can use them.

    Args:
        text: Anything headed for a terminal, a toast or the log file.
        newlines: Keep `\\n` as it is, for output that is meant to span lines.

    Returns:
        The text itself when it was already safe (the common case, checked at C speed).
    """
    text = without_signatures(text)
    if newlines and "\n" in text:
        # Line by line keeps the fast path for each line of multi-line output.
        return "\n".join(printable(line) for line in text.split("\n"))
    if text.isprintable() and (text.isascii() or not _INVISIBLE_LETTERS.search(text)):
        return text
    return "".join(map(_shown, text))


def _shown(char: str) -> str:
    if char.isprintable():
        return _escape(char) if _INVISIBLE_LETTERS.match(char) else char
    return char if char in _SPACES else _escape(char)


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shortened(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters with an ellipsis, for a name quoted in a message."""
    return text if len(text) <= limit else text[:limit] + "…"
