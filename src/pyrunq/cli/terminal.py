"""Text from files pyrunq did not write, made safe for a terminal.

Names in an object (sections, programs, maps, types, members), strings in its
records and file names can hold control characters: raw, they would let a
file clear the screen, set the terminal's title or forge lines of output.
What ``escape`` gives instead is the character's Python escape, ``\\x1b``
(C0 controls but newline and tab, DEL, and the C1 controls U+0080..U+009F,
which some terminals act on as ESC sequences); a byte that was not UTF-8,
``\\x80`` too. JSON needs nothing here:
``json.dumps`` writes every non-ASCII and control character as ``\\u001b``,
valid JSON that gives the name back exactly.

``EscapingWriter`` wraps a text stream so that nothing written through it
reaches the terminal raw: the tools that read objects someone else made
(``inspect``, ``run``) write through one, so no name can be forgotten.
"""

from __future__ import annotations

import re

# all but \t and \n; and the bytes of a name that were not UTF-8, which
# pyrunq keeps as surrogates (U+DC80..U+DCFF: pyrunq.libbpf.name)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\udc80-\udcff]")
_LINE_BREAKS = re.compile("[\n\t]")


def _hex(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}"


def escape(text: str, one_line: bool = False) -> str:
    """``text`` with control characters as ``\\xNN``; ``one_line``: newlines
    and tabs too (an error message is one line, whatever a name holds)."""
    text = _CONTROLS.sub(_hex, text)
    return _LINE_BREAKS.sub(_hex, text) if one_line else text


class EscapingWriter:
    """A text stream whose writes are ``escape``d; all else is the stream's."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        if _CONTROLS.search(text):
            text = escape(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)
