"""MemLeak: a process's outstanding libc allocations, by allocating stack
(bpf/memleak.bpf.c), as bcc's memleak reports them for user processes.

The kernel side keeps every block that is allocated and not yet freed
(address -> size, stack id, time); ``outstanding()`` groups them by stack.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from ..errors import UsageError
from ..symbols import Frame, find_library, process_maps, resolve_function
from .base import Tool, check_pid, check_positive
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

    object_name = "memleak"

    def __init__(self, pid: int, max_allocs: int = 1 << 20, stack_entries: int = 16384):
        self.pid = check_pid(pid)
        if not os.path.exists(f"/proc/{pid}"):
            raise UsageError(f"no process with PID {pid}")
        self._sizes = {
            "allocs": check_positive("max_allocs", max_allocs),
            "stacks": check_positive("stack_entries", stack_entries),
        }
        self.library = libc_of(pid)
        self._probes = self._targets()
        self._symbols = Symbolizer()
        self._symbols.watch(pid)
        self._frames: dict[int, list[Frame]] = {}
        super().__init__()

    def configure(self, obj) -> None:
        super().configure(obj)
        for name, size in self._sizes.items():
            obj.maps[name].max_entries = size

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

    def attach(self, obj) -> None:
        programs = obj.programs
        for target, enter, ret in self._probes:
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
