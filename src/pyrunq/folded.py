"""Stacks in the folded ("stack-collapse") format that flamegraph.pl, inferno
and speedscope read: one line per distinct stack, frames from the root to the
leaf joined by ``;``, then a space and the stack's weight (a count, or
nanoseconds where a tool measures time)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

KERNEL_SUFFIX = "_[k]"  # flamegraph.pl's annotation: kernel frames are coloured apart


def frame(name: str) -> str:
    """A frame name that cannot break a line: the format's separators (``;``,
    line breaks) become ``:`` and ``?``. A traced process can name itself
    anything."""
    return name.replace(";", ":").replace("\n", "?").replace("\r", "?")


def lines(stacks: Iterable[tuple[Sequence[str], int]]) -> list[str]:
    """Folded lines for (frames from root to leaf, weight) pairs: equal stacks
    summed, sorted by stack as stackcollapse scripts print them."""
    total: Counter[str] = Counter()
    for frames, weight in stacks:
        total[";".join(frame(f) for f in frames) or "[empty]"] += weight
    return [f"{stack} {weight}" for stack, weight in sorted(total.items())]
