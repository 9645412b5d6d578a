"""RunqSlower: each run queue delay above a threshold (bpf/runqslower.bpf.c).

Events come through a BPF ring buffer. When it is full the kernel side counts
the lost event instead of blocking; ``lost`` reports that count.
"""

from __future__ import annotations

from .base import EventTool, check_threshold
from .runqtracer import RunqTracer


class RunqSlower(RunqTracer, EventTool):
    """Delays of at least ``min_us`` microseconds (0: every delay).

    ``pid``: only threads of that process; ``tid``: only that thread.
    ``callback``: called with each event; without it, read ``events()``.
    Each event has ``task``, ``pid``, ``tid``, ``delta_ns``, ``cpu`` and the
    task it replaced on the CPU: ``prev_task``, ``prev_pid``, ``prev_tid``.
    """

    object_name = "runqslower"

    def __init__(
        self,
        min_us: int = 10000,
        pid: int | None = None,
        tid: int | None = None,
        callback=None,
        ring_bytes: int = 1 << 20,
    ):
        self.min_us = check_threshold("min_us", min_us, "microseconds")
        super().__init__(
            pids=None if pid is None else [pid], tid=tid, callback=callback, ring_bytes=ring_bytes
        )

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["min_us"] = self.min_us
