"""MemLeak: a process's outstanding libc allocations, by allocating stack
(bpf/memleak.bpf.c), as bcc's memleak reports them for user processes.

The kernel side keeps every block that is allocated and not yet freed
(address -> size, stack id, time); ``outstanding()`` groups them by stack.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from ..bpf import BPFObject
from ..errors import UsageError
from ..symbols import Frame, find_library, process_maps, resolve_function
from .base import Tool
from .ustack import Symbolizer, stack_addresses


# (libc function, entry program, return program, required)
PROBES = (
    ("malloc", "malloc_enter", "alloc_return", True),
    ("calloc", "calloc_enter", "alloc_return", True),
    ("realloc", "realloc_enter", "alloc_return", True),
    ("posix_memalign", "posix_memalign_enter", "posix_memalign_return", True),
    ("aligned_alloc", "aligned_alloc_enter", "alloc_return", False),  # C11: older libcs lack it
    ("free", "free_enter", None, True),
)


class Outstanding(NamedTuple):
    """Blocks allocated from one stack and not freed: ``frames`` top (the
    allocator's caller) first."""

    bytes: int
    allocations: int
    stack_id: int
    frames: list[Frame]


def libc_of(pid: int) -> str:
    """The C library process ``pid`` has mapped."""
    path = find_library(pid, "c")
    if path is None or path not in {m.path for m in process_maps(pid)}:
        raise UsageError(f"process {pid} maps no libc (statically linked?)")
    return path


class MemLeak(Tool):
    """Tracks the blocks process ``pid`` allocates with libc's malloc, calloc,
    realloc, posix_memalign and aligned_alloc, until it frees them.

    Only allocations made after the start are seen. ``max_allocs``: blocks
    tracked at once; ``stack_entries``: room for distinct stacks. What does
    not fit is counted in ``stats()``.
    """

    STATS = ("stack_collisions", "stack_errors", "allocs_full",  # enum memleak_stat
             "pending_full")

    def __init__(self, pid: int, max_allocs: int = 1 << 20, stack_entries: int = 16384):
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise UsageError(f"invalid PID {pid!r}")
        if not os.path.exists(f"/proc/{pid}"):
            raise UsageError(f"no process with PID {pid}")
        for name, n in (("max_allocs", max_allocs), ("stack_entries", stack_entries)):
            if not isinstance(n, int) or n <= 0:
                raise UsageError(f"{name} must be a positive number, not {n!r}")
        self.pid = pid
        self.library = libc_of(pid)
        targets = self._targets()
        self._symbols = Symbolizer()
        self._symbols.watch(pid)
        self._frames: dict[int, list[Frame]] = {}
        self.obj = BPFObject.open("memleak")
        try:
            self.obj.maps["allocs"].max_entries = max_allocs
            self.obj.maps["stacks"].max_entries = stack_entries
            self.obj.load()
            self._attach(targets)
        except BaseException:
            self.obj.close()  # nothing left half-attached
            raise

    def _targets(self) -> list:
        out = []
        for function, enter, ret, required in PROBES:
            try:
                target = resolve_function(f"{self.library}:{function}")
            except UsageError:
                if required:
                    raise
                continue
            out.append((target, enter, ret))
        return out

    def _attach(self, targets) -> None:
        programs = self.obj.programs
        for target, enter, ret in targets:
            # the return probe first: an entry without its return would
            # leave a pending size behind
            if ret:
                programs[ret].attach_uprobe(target.path, target.offset, self.pid, retprobe=True)
            programs[enter].attach_uprobe(target.path, target.offset, self.pid)

    def outstanding(self, top: int | None = None, min_age_ns: int = 0) -> list[Outstanding]:
        """Blocks not freed yet, grouped by allocating stack, the most bytes
        first; only blocks at least ``min_age_ns`` old; at most ``top`` stacks.
        Blocks whose stack was lost are left out (counted in ``stats()``)."""
        newest = time.monotonic_ns() - min_age_ns  # bpf_ktime_get_ns: CLOCK_MONOTONIC
        by_stack: dict[int, list[int]] = {}
        for _, info in self.obj.maps["allocs"].items():
            if info.stack_id < 0 or info.timestamp_ns > newest:
                continue
            total = by_stack.setdefault(info.stack_id, [0, 0])
            total[0] += info.size
            total[1] += 1
        ranked = sorted(by_stack.items(), key=lambda kv: kv[1][0], reverse=True)[:top]
        return [Outstanding(size, n, sid, self._stack(sid)) for sid, (size, n) in ranked]

    def _stack(self, stack_id: int) -> list[Frame]:
        if stack_id not in self._frames:
            addresses = stack_addresses(self.obj.maps["stacks"], stack_id)
            self._frames[stack_id] = self._symbols.frames(self.pid, addresses)
        return self._frames[stack_id]

    @property
    def lost(self) -> int:
        return sum(self.stats().values())

    def stop(self) -> None:
        """Detach: what is outstanding stays readable."""
        self.obj.detach()
