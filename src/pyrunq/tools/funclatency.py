"""FuncLatency: a user-space function's latency as a log2 histogram
(bpf/funclatency.bpf.c): a uprobe at the function's entry, a uretprobe at
its return.

The kernel keeps cumulative counters in ``struct funclat`` (a global); each
``snapshot()`` is the difference from the previous one, so nothing counted
between two reads is lost.
"""

from __future__ import annotations

from typing import NamedTuple

from ..hist import render_log2_bcc
from ..symbols import Target, resolve_function
from .base import Tool, check_choice

UNITS = {"nsecs": 1, "usecs": 1000, "msecs": 1_000_000}


class Latency(NamedTuple):
    """Calls that returned in one interval: ``slots[i]`` counts latencies of
    2**i .. 2**(i+1)-1 ``unit`` (slot 0 also holds 0)."""

    slots: tuple[int, ...]
    unit: str
    count: int  # type: ignore[assignment]  # the field, not tuple.count
    sum_ns: int
    missed: int  # calls not timed: too many calls in flight at once

    @property
    def average(self) -> int:
        """Mean latency in ``unit`` (0 without calls)."""
        return self.sum_ns // UNITS[self.unit] // self.count if self.count else 0

    def render(self) -> str:
        """The histogram as bcc's funclatency prints it."""
        return render_log2_bcc(self.slots, self.unit)

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "count": self.count,
            "sum_ns": self.sum_ns,
            "average": self.average,
            "missed": self.missed,
            "buckets": [
                {"low": 1 << i if i else 0, "high": (2 << i) - 1, "count": c}
                for i, c in enumerate(self.slots)
                if c
            ],
        }


class FuncLatency(Tool):
    """Latency of ``function``: ``"BINARY:FUNCTION"`` (a path, or a library
    name such as ``"c"``), or a bare ``"FUNCTION"`` with ``pid``, searched in
    the process's executable and libraries. ``pid`` also limits tracing to
    that process; ``unit`` is "nsecs", "usecs" or "msecs"."""

    object_name = "funclatency"

    def __init__(self, function: str, pid: int | None = None, unit: str = "nsecs"):
        check_choice("unit", unit, UNITS)
        self.unit, self.pid = unit, pid
        self.target: Target = resolve_function(function, pid)
        self._previous: tuple[int, ...] | None = None
        super().__init__()

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["unit_ns"] = UNITS[self.unit]

    def attach(self, obj) -> None:
        binary, offset = self.target.path, self.target.offset
        pid = -1 if self.pid is None else self.pid
        obj.programs["func_entry"].attach_uprobe(binary, offset, pid)
        obj.programs["func_return"].attach_uprobe(binary, offset, pid, retprobe=True)

    @property
    def max_in_flight(self) -> int:
        """Calls that can be timed at once (the rest count as ``missed``)."""
        return self.obj.maps["starts"].max_entries

    def _totals(self) -> tuple[int, ...]:
        t = self.obj.bss["totals"]
        return (*t.slots, t.count, t.sum_ns, t.missed)

    def snapshot(self) -> Latency:
        """What happened since the previous snapshot (or since attaching)."""
        now = self._totals()
        d = [a - b for a, b in zip(now, self._previous or (0,) * len(now))]
        self._previous = now
        return Latency(tuple(d[:-3]), self.unit, *d[-3:])
