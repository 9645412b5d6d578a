"""OffCpuTime: how long threads stay off the CPU, by the kernel and user
stacks they left it in (bpf/offcputime.bpf.c), from sched_switch alone.

User stacks are symbolized with each process's own maps, and the files they
name are read in its mount namespace (``/proc/PID/root``): a containerised
process's functions are named from the container's binaries. A stack is
symbolized the first time it is read: read often (``stacks()``) to name the
stacks of processes that exit early.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import NamedTuple

from ..cgroup import Names
from ..errors import UsageError
from ..folded import KERNEL_SUFFIX
from ..symbols import Frame, KernelSymbols, kernel_symbols
from .base import check_positive, check_threshold
from .tasktracer import TaskTracer
from .ustack import Symbolizer, stack_addresses

__all__ = ["OffCpuStack", "OffCpuTime", "TRACING_FRAMES"]

# The frames of the tracing itself at the top of a kernel stack read in
# sched_switch (the BPF program, the tracepoint's caller): not where the
# thread blocked, so left out.
TRACING_FRAMES = ("bpf_prog_", "bpf_trace_run", "__traceiter_", "__bpf_trace_")


class OffCpuStack(NamedTuple):
    """Off-CPU time of one thread in one pair of stacks: ``kernel`` and
    ``user`` leaf first; None when the stack was not captured (the stack
    table was full, or its bucket taken), ``[]`` when there is none (a
    kernel thread's user stack)."""

    pid: int
    tid: int
    comm: str
    cgroup: str
    total_ns: int
    count: int  # type: ignore[assignment]  # the field, not tuple.count
    kernel: list[Frame] | None
    user: list[Frame] | None

    @property
    def total_us(self) -> int:
        return self.total_ns // 1000

    def folded_frames(self, kernel: bool = True, user: bool = True, delimiter: bool = False) -> list[str]:
        """Root to leaf, as bcc's ``offcputime -f`` joins them: the comm, the
        user frames, then the kernel frames (marked ``_[k]``); a stack not
        captured is one ``[Missed User Stack]`` / ``[Missed Kernel Stack]``
        frame; ``delimiter``: ``-`` between the two."""
        out = [self.comm]
        if user:
            out += ["[Missed User Stack]"] if self.user is None else [str(f) for f in reversed(self.user)]
        if kernel:
            if delimiter and self.user and self.kernel:
                out.append("-")
            if self.kernel is None:
                out.append("[Missed Kernel Stack]")
            else:
                out += [str(f) + KERNEL_SUFFIX for f in reversed(self.kernel)]
        return out


def no_user_stack(stack_id: int) -> bool:
    """A user stack id that says there is none (a kernel thread; -EFAULT: a
    user thread with no user context), as opposed to one not captured."""
    return stack_id in (-1, -errno.EFAULT)


class OffCpuTime(TaskTracer):
    """Off-CPU time by stack, traced from construction until ``close()``;
    read with ``stacks()``.

    ``pids``/``tid``/``cgroup``/``cgroup_ids``: which threads (as
    ``TaskTracer``; PIDs as this process sees them, in a container its own).
    ``user_threads_only`` / ``kernel_threads_only``; ``state``: only blocks
    that began in this task state (e.g. 2, TASK_UNINTERRUPTIBLE);
    ``min_block_us`` / ``max_block_us``: only blocks that long (inclusive).
    ``stack_entries``: room for distinct stacks; ``max_stacks``: for
    distinct (thread, stacks) sums.
    """

    object_name = "offcputime"
    programs: tuple[str, ...] = ("handle_switch",)

    def __init__(
        self,
        pids=None,
        tid: int | None = None,
        cgroup: str | None = None,
        cgroup_ids=None,
        user_threads_only: bool = False,
        kernel_threads_only: bool = False,
        state: int | None = None,
        min_block_us: int = 1,
        max_block_us: int | None = None,
        stack_entries: int = 16384,
        max_stacks: int = 10240,
    ):
        if user_threads_only and kernel_threads_only:
            raise UsageError("user_threads_only and kernel_threads_only exclude each other")
        check_threshold("min_block_us", min_block_us, "microseconds")
        if (
            max_block_us is not None
            and check_threshold("max_block_us", max_block_us, "microseconds") <= min_block_us
        ):
            raise UsageError(f"max_block_us ({max_block_us}) must be above min_block_us ({min_block_us})")
        if state is not None:
            check_threshold("state", state, "a task state bitmask")
        self._settings = {
            "user_threads_only": bool(user_threads_only),
            "kernel_threads_only": bool(kernel_threads_only),
            "targ_state": -1 if state is None else state,
            "min_block_ns": min_block_us * 1000,
            "max_block_ns": (1 << 64) - 1 if max_block_us is None else max_block_us * 1000,
        }
        self._sizes = {
            "stacks": check_positive("stack_entries", stack_entries),
            "counts": check_positive("max_stacks", max_stacks),
        }
        self._users = Symbolizer()
        self._kernel: KernelSymbols | None = None
        self._cgroups = Names()
        self._kernel_frames: dict[int, list[Frame] | None] = {}
        self._user_frames: dict[tuple[int, int], list[Frame] | None] = {}
        for pid in pids or ():
            self._users.watch(pid)  # their maps now, while they surely live
        super().__init__(pids=pids, tid=tid, cgroup_path=cgroup, cgroup_ids=cgroup_ids)

    def configure(self, obj) -> None:
        super().configure(obj)
        for name, value in self._settings.items():
            obj.rodata[name] = value
        for name, size in self._sizes.items():
            obj.maps[name].max_entries = size

    def stacks(self) -> list[OffCpuStack]:
        """Every (thread, stacks) off the CPU so far, the longest first.
        Stacks are symbolized once, the first time they are read."""
        out = [self._decode(key, val) for key, val in self.obj.maps["counts"].items()]
        out.sort(key=lambda s: s.total_ns, reverse=True)
        return out

    def _decode(self, key, val):
        """One entry of ``counts`` (struct offcpu_key, struct offcpu_val)."""
        return OffCpuStack(
            key.tgid,
            key.tid,
            val.comm,
            self._cgroups(val.cgroup_id),
            val.total_ns,
            val.count,
            self._kernel_stack(key.kern_stack_id),
            self._user_stack(key.tgid, key.user_stack_id),
        )

    def folded(self, stacks=None, **kw) -> Iterator[tuple[list[str], int]]:
        """(frames root to leaf, microseconds) per stack: what
        ``pyrunq.folded.lines()`` (and a flame graph) takes. ``kw`` as
        ``OffCpuStack.folded_frames``."""
        for s in self.stacks() if stacks is None else stacks:
            yield s.folded_frames(**kw), s.total_us

    def _kernel_stack(self, stack_id: int) -> list[Frame] | None:
        if stack_id not in self._kernel_frames:
            addresses = stack_addresses(self.obj.maps["stacks"], stack_id) if stack_id >= 0 else None
            if addresses is None:
                self._kernel_frames[stack_id] = None
            else:
                if self._kernel is None:
                    self._kernel = kernel_symbols()
                frames = [self._kernel.resolve(a) for a in addresses]
                while frames and frames[0].name and frames[0].name.startswith(TRACING_FRAMES):
                    frames.pop(0)
                self._kernel_frames[stack_id] = frames
        return self._kernel_frames[stack_id]

    def _user_stack(self, pid: int, stack_id: int) -> list[Frame] | None:
        if no_user_stack(stack_id):
            return []
        if stack_id < 0:
            return None
        key = (pid, stack_id)
        if key not in self._user_frames:
            self._user_frames[key] = self._users.frames(
                pid, stack_addresses(self.obj.maps["stacks"], stack_id)
            )
        return self._user_frames[key]
