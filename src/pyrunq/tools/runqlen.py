"""RunqLen: how many tasks wait on each CPU's run queue, sampled by a
software CPU clock on every CPU (bpf/runqlen.bpf.c).

The length is the CPU's (struct rq), every runnable task there but the one
running, whatever its task group: right from inside a container, where a
task group's count is the container's alone. The kernel's counters are
cumulative; each snapshot is the difference from the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Tool, check_positive

__all__ = ["QueueLengths", "RunqLen"]


@dataclass(frozen=True)
class QueueLengths:
    """Samples of one CPU (or of all) by queue length: ``counts[n]`` samples
    found ``n`` tasks waiting; the last count holds that length and longer."""

    counts: tuple[int, ...]

    @property
    def samples(self) -> int:
        return sum(self.counts)

    @property
    def occupancy(self) -> float:
        """The share of samples with at least one task waiting (0..1)."""
        return (self.samples - self.counts[0]) / max(1, self.samples)

    @property
    def mean(self) -> float | None:
        return sum(n * c for n, c in enumerate(self.counts)) / self.samples if self.samples else None

    def __add__(self, other: QueueLengths) -> QueueLengths:
        return QueueLengths(tuple(a + b for a, b in zip(self.counts, other.counts)))

    def to_dict(self) -> dict:
        return {
            "samples": self.samples,
            "occupancy": self.occupancy,
            "mean": self.mean,
            "lengths": [{"length": n, "count": c} for n, c in enumerate(self.counts) if c],
        }


class RunqLen(Tool):
    """Run queue lengths sampled ``frequency`` times a second on each online
    CPU (or on ``cpus``), from construction until ``close()``; read with
    ``snapshot()``."""

    object_name = "runqlen"

    def __init__(self, frequency: int = 99, cpus=None):
        self.frequency = check_positive("frequency", frequency)
        self._cpus = None if cpus is None else sorted(set(cpus))
        self._previous: list[tuple[int, ...]] | None = None
        super().__init__()

    def attach(self, obj) -> None:
        obj.programs["sample"].attach_cpu_clock(self.frequency, self._cpus)

    def snapshot(self, clear: bool = True) -> dict[int, QueueLengths]:
        """{cpu: QueueLengths} of the samples since the last cleared snapshot,
        for every possible CPU (a CPU not sampled has none)."""
        (per_cpu,) = self.obj.maps["hists"].values()
        now = [tuple(h.slots) for h in per_cpu]
        before = self._previous or [(0,) * len(c) for c in now]
        if clear:
            self._previous = now
        return {
            cpu: QueueLengths(tuple(a - b for a, b in zip(n, p)))
            for cpu, (n, p) in enumerate(zip(now, before))
        }


def combined(per_cpu: dict[int, QueueLengths]) -> QueueLengths:
    """Every CPU's samples together, as the C tool's histogram without -C."""
    total = None
    for q in per_cpu.values():
        total = q if total is None else total + q
    return total if total is not None else QueueLengths((0,))
