"""RunqSlower: each run queue delay above a threshold (bpf/runqslower.bpf.c).

Events come through a BPF ring buffer. When it is full the kernel side counts
the lost event instead of blocking; ``lost`` reports that count.
"""

from __future__ import annotations

from ..bpf import EventRows
from ..errors import UsageError
from .base import EventTool, check_threshold
from .runqtracer import RunqTracer


class RunqSlower(RunqTracer, EventTool):
    """Delays of at least ``min_us`` microseconds (0: every delay).

    ``pid``: only threads of that process; ``tid``: only that thread.
    ``callback``: called with each event; without it, read ``events()``.
    Each event has ``task``, ``pid``, ``tid``, ``delta_ns``, ``cpu`` and the
    task it replaced on the CPU: ``prev_task``, ``prev_pid``, ``prev_tid``.
    ``text``: no event objects; each event becomes libbpf-tools' runqslower
    row, written in C (``previous``: with the previous task's columns), and
    ``take_text()`` returns the rows polled so far.
    """

    object_name = "runqslower"

    def __init__(
        self,
        min_us: int = 10000,
        pid: int | None = None,
        tid: int | None = None,
        callback=None,
        ring_bytes: int = 1 << 20,
        text: bool = False,
        previous: bool = False,
    ):
        self.min_us = check_threshold("min_us", min_us, "microseconds")
        if text and callback is not None:
            raise UsageError("RunqSlower: text=True writes rows itself: no callback")
        self._text, self._previous, self._rows = text, previous, None
        super().__init__(
            pids=None if pid is None else [pid], tid=tid, callback=callback, ring_bytes=ring_bytes
        )

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["min_us"] = self.min_us

    def open_ring(self, obj):
        if not self._text:
            return super().open_ring(obj)
        self._rows = EventRows(obj.btf.layout(obj.btf.find(self.event_struct)), self._previous)
        return obj.ring_buffer(self.ring_map, rows=self._rows)

    def take_text(self) -> bytes:
        """The rows of the events polled since the last call (``text=True``)."""
        if self._rows is None:
            raise UsageError("take_text() needs RunqSlower(text=True)")
        return self._rows.take()
