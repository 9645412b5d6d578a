"""EventRows: runqslower's text rows, written in C by the ring buffer's own
callback (the extension's ``pyrunq_rows_*``), no Python object per event.

The text is what libbpf-tools' runqslower prints for each event; the Python
version (``pyrunq.cli.runqslower.Rows``) is the reference the tests compare
with.
"""

from __future__ import annotations

from .. import libbpf
from ..libbpf import ffi, lib
from .codecs import Layout

# struct event's members the rows show, in the order of native/rows.c's PYRUNQ_ROW_*
FIELDS = ("task", "prev_task", "delta_ns", "tid", "prev_tid")


class EventRows:
    """Rows of runqslower events (``layout``: the object's ``struct event``,
    from its BTF), with the previous task's columns if ``previous``. Give it
    to ``RingBuffer.add(..., rows=)``; ``take()`` returns the text so far."""

    def __init__(self, layout: Layout, previous: bool = False):
        members = {name: (offset, codec) for name, offset, codec in getattr(layout.codec, "members", ())}
        try:
            offsets = ffi.new("size_t[]", [members[name][0] for name in FIELDS])
        except KeyError as e:
            raise ValueError(f"not runqslower's event: no member {e.args[0]}") from None
        ptr = lib.pyrunq_rows_new(offsets, members["task"][1].size, layout.size, previous)
        if ptr == ffi.NULL:
            raise ValueError(f"not runqslower's event layout ({layout.size} bytes), or out of memory")
        self.ptr = ffi.gc(ptr, lib.pyrunq_rows_free)
        self.sample = ffi.addressof(lib, "pyrunq_rows_sample")
        self._text = ffi.new("const char **")

    def start(self, budget: int) -> None:
        """Before a poll: stop after ``budget`` records (0: no limit)."""
        lib.pyrunq_rows_start(self.ptr, budget)

    @property
    def handled(self) -> int:
        """Records handled by the last poll."""
        return lib.pyrunq_rows_handled(self.ptr)

    def take(self) -> bytes:
        """The rows written since the last take."""
        n = libbpf.check(lib.pyrunq_rows_take(self.ptr, self._text), "format runqslower rows")
        return ffi.buffer(self._text[0], n)[:]
