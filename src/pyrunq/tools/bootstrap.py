"""Bootstrap: process execs and exits, with exit codes and lifetimes
(bpf/bootstrap.bpf.c), as libbpf-bootstrap's example reports them.

Events come through a BPF ring buffer. When it is full the kernel side counts
the lost event instead of blocking; ``lost`` reports that count.
"""

from __future__ import annotations

from ..bpf import BPFObject
from ..errors import UsageError
from .base import EventTool

class Bootstrap(EventTool):
    """Every exec and every process exit (threads' exits are not reported).

    ``min_duration_ms``: report only exits of processes that lived at least
    that long since their exec, and no execs (0: everything).
    ``callback``: called with each event; without it, read ``events()``.
    Each event has ``exit_event`` (1: exit, 0: exec), ``pid``, ``ppid``,
    ``comm``, and ``filename`` (exec) or ``exit_code`` and ``duration_ns``
    (exit; 0 when the exec came before tracing started).
    """

    STATS = ("lost", "start_full")  # enum bootstrap_stat

    def __init__(self, min_duration_ms: int = 0, callback=None, ring_bytes: int = 256 * 1024):
        if isinstance(min_duration_ms, bool) or not isinstance(min_duration_ms, int) \
                or min_duration_ms < 0:
            raise UsageError(f"invalid min_duration_ms {min_duration_ms!r}:"
                             " a number of milliseconds >= 0")
        if ring_bytes < 4096 or ring_bytes & (ring_bytes - 1):
            raise UsageError(f"ring_bytes must be a power of two >= 4096, not {ring_bytes}")
        self.min_duration_ms = min_duration_ms
        self.obj = BPFObject.open("bootstrap")
        try:
            self.obj.rodata["min_duration_ns"] = min_duration_ms * 1_000_000
            self.obj.maps["events"].max_entries = ring_bytes
            self.obj.load()
            self.ring = self.obj.ring_buffer("events", event="bootstrap_event", callback=callback)
            self.obj.attach()
        except BaseException:
            self.obj.close()  # nothing left half-attached
            raise
