"""What the pictures (``flamegraph``, ``heatmap``) share: text from the traced
system made safe inside an SVG document, and the document's frame.

A process can name itself anything, markup and control characters included:
every name goes through ``text()``, so it shows as the characters it holds
and never becomes an element, an attribute or a broken document. The files
are self-contained: no reference leaves the file (no fonts, images or
scripts from elsewhere), so opening one fetches nothing.
"""

from __future__ import annotations

import os
import re

# Characters XML 1.0 does not allow at all, not even as &#N; references
# (C0 controls but tab and line breaks, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_MARKUP = re.compile("[&<>\"']")

FONT = "Verdana, 'DejaVu Sans', sans-serif"  # installed fonts only: nothing to fetch


def text(value: object) -> str:
    """``value`` as SVG character data or a quoted attribute's value: markup
    characters escaped, characters XML cannot hold as U+FFFD."""
    s = _NOT_XML.sub("\ufffd", str(value))
    return _MARKUP.sub(lambda m: _ESCAPES[m.group()], s)


def script(code: str) -> str:
    """A ``<script>`` element around our own code (CDATA: it holds ``<`` and ``&``)."""
    assert "]]>" not in code
    return f'<script type="text/ecmascript"><![CDATA[\n{code}\n]]></script>\n'


def document(width: float, height: float, body: str, style: str = "", onload: str = "") -> str:
    """A complete standalone SVG document of ``width`` x ``height`` pixels."""
    load = f' onload="{text(onload)}"' if onload else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}"'
        f' viewBox="0 0 {width:g} {height:g}"{load}>\n'
        f'<style type="text/css">\ntext {{ font-family: {FONT}; font-size: 12px; fill: rgb(0,0,0); }}\n'
        f"{style}</style>\n"
        f"{body}</svg>\n"
    )


def write_file(path: str, document_text: str) -> None:
    """``document_text`` written to ``path`` whole: a reader never sees half a
    file (a tool that rewrites it every interval replaces it)."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pyrunq-", suffix=".svg", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(document_text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
