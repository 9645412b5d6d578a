"""RunqSlower: each run queue delay above a threshold (bpf/runqslower.bpf.c).

Events come through a BPF ring buffer. When it is full the kernel side counts
the lost event instead of blocking; ``lost`` reports that count.
"""

from __future__ import annotations

from ..errors import UsageError
from .base import EventTool
from .runq import RunqTracer


class RunqSlower(RunqTracer, EventTool):
    """Delays of at least ``min_us`` microseconds (0: every delay).

    ``pid``: only threads of that process; ``tid``: only that thread.
    ``callback``: called with each event; without it, read ``events()``.
    Each event has ``task``, ``pid``, ``tid``, ``delta_ns``, ``cpu`` and the
    task it replaced on the CPU: ``prev_task``, ``prev_pid``, ``prev_tid``.
    """

    object_name = "runqslower"

    def __init__(self, min_us: int = 10000, pid: int | None = None, tid: int | None = None,
                 callback=None, ring_bytes: int = 1 << 20):
        if not isinstance(min_us, int) or min_us < 0:
            raise UsageError(f"invalid min_us {min_us!r}: a number of microseconds >= 0")
        if ring_bytes < 4096 or ring_bytes & (ring_bytes - 1):
            raise UsageError(f"ring_bytes must be a power of two >= 4096, not {ring_bytes}")
        self.min_us, self._ring_bytes = min_us, ring_bytes
        super().__init__(pids=None if pid is None else [pid], tid=tid)
        try:
            self.ring = self.obj.ring_buffer("events", event="event", callback=callback)
        except BaseException:
            self.close()
            raise

    def configure(self, obj) -> None:
        obj.rodata["min_us"] = self.min_us
        obj.maps["events"].max_entries = self._ring_bytes
