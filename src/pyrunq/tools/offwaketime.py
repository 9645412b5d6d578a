"""OffWakeTime: off-CPU time by the blocked thread's stacks, joined with who
woke it and from where (bpf/offwaketime.bpf.c), from sched_switch and
sched_waking alone.

A wakeup made from an interrupt (a timer, a device, a softirq) runs with
the interrupted task as the current one. The kernel side tells those by
their kernel frames, which reach the interrupt's entry code (its address
ranges, from kallsyms, set before load), and keeps only the frames down to
that entry: such a waker is named for the context ("[irq]", "[softirq]"),
without the interrupted task's name or stacks. A softirq run in a task's
own context (``local_bh_enable``, ksoftirqd) is told by its frames' names.
"""

from __future__ import annotations

from typing import NamedTuple

from ..folded import KERNEL_SUFFIX
from ..symbols import Frame, kernel_symbols
from .offcputime import TRACING_FRAMES, OffCpuStack, OffCpuTime

__all__ = ["OffWakeStack", "OffWakeTime", "Waker", "wake_context"]

# Frames (prefixes) that enter an interrupt or run softirqs, on x86_64 and arm64.
HARDIRQ_FRAMES = (
    "asm_sysvec_",
    "sysvec_",
    "__sysvec_",
    "asm_common_interrupt",
    "common_interrupt",
    "handle_irq_event",
    "hrtimer_interrupt",
    "el0_interrupt",
    "el1_interrupt",
    "gic_handle_irq",
)
SOFTIRQ_FRAMES = ("handle_softirqs", "__do_softirq", "do_softirq")


def wake_context(kernel: list[Frame] | None) -> str | None:
    """ "softirq" or "irq" when the waker's kernel stack (leaf first) shows
    the wakeup made in that context (the nearer the leaf wins: a softirq run
    at an interrupt's exit is a softirq's), else None (the task itself)."""
    for f in kernel or ():
        name = f.name or ""
        if name.startswith(SOFTIRQ_FRAMES):
            return "softirq"
        if name.startswith(HARDIRQ_FRAMES):
            return "irq"
    return None


class Waker(NamedTuple):
    """Who woke a thread: ``context`` "irq" or "softirq" for a wakeup from
    an interrupt (then ``comm`` is that context in brackets, ``pid`` and
    ``tid`` 0, ``user`` [] : not the task it interrupted)."""

    pid: int
    tid: int
    comm: str
    context: str | None
    kernel: list[Frame] | None
    user: list[Frame] | None


class OffWakeStack(NamedTuple):
    """Off-CPU time of one thread in one pair of stacks, woken by ``waker``."""

    target: OffCpuStack
    waker: Waker

    @property
    def total_ns(self) -> int:
        return self.target.total_ns

    @property
    def total_us(self) -> int:
        return self.target.total_us

    def folded_frames(self, kernel: bool = True, user: bool = True, delimiter: bool = False) -> list[str]:
        """bcc's offwaketime -f: the target's frames root to leaf (as
        offcputime's), ``--``, the waker's kernel then user frames leaf to
        root, the waker's name."""
        out = self.target.folded_frames(kernel=kernel, user=user, delimiter=delimiter)
        out.append("--")
        w = self.waker
        if kernel:
            out += (
                ["[Missed Kernel Stack]"] if w.kernel is None else [str(f) + KERNEL_SUFFIX for f in w.kernel]
            )
        if user:
            if delimiter and w.kernel and w.user:
                out.append("-")
            out += ["[Missed User Stack]"] if w.user is None else [str(f) for f in w.user]
        out.append(w.comm)
        return out


class OffWakeTime(OffCpuTime):
    """Off-CPU time by stack and waker, traced from construction until
    ``close()``; read with ``stacks()`` (OffWakeStack, the longest first).
    Arguments as ``OffCpuTime``'s; the filters choose the blocked threads,
    whoever wakes them. Blocks that no wakeup ended (preemptions, and
    wakeups before tracing began) are left out."""

    object_name = "offwaketime"
    programs = ("handle_waking", "handle_switch")

    def configure(self, obj) -> None:
        super().configure(obj)
        (obj.maps["wakes"] if self.raw_tp else obj.maps["wakes_hash"]).skip_creation()
        for (start, end), (name, end_name) in zip(
            (
                ("irq_text_start", "irq_text_end"),
                ("softirq_text_start", "softirq_text_end"),
                ("softirq_fn_start", "softirq_fn_end"),
            ),
            (
                ("__irqentry_text_start", "__irqentry_text_end"),
                ("__softirqentry_text_start", "__softirqentry_text_end"),
                ("handle_softirqs", None),
            ),
        ):
            found = self._text_range(name, end_name)
            if found:
                obj.rodata[start], obj.rodata[end] = found

    def _text_range(self, name: str, end_name: str | None) -> tuple[int, int] | None:
        """[start, end) of a text section between two markers, or of a function."""
        if self._kernel is None:
            self._kernel = kernel_symbols()
        if end_name is None:
            return self._kernel.span(name)
        start, end = self._kernel.address(name), self._kernel.address(end_name)
        return (start, end) if start and end and start < end else None

    def stacks(self) -> list[OffWakeStack]:  # type: ignore[override]
        """Every (thread, stacks, waker, waker's stacks) off the CPU so far,
        the longest first, symbolized once, the first time they are read."""
        return super().stacks()  # type: ignore[return-value]

    def _decode(self, key, val):
        target = super()._decode(key.target, val)
        if key.waker_context:  # enum wake_context: WAKE_IRQ, WAKE_SOFTIRQ
            context = "irq" if key.waker_context == 1 else "softirq"
            return OffWakeStack(
                target, Waker(0, 0, f"[{context}]", context, self._frames(key.waker_frames), [])
            )
        kernel = self._kernel_stack(key.waker_kern_stack_id)
        context = wake_context(kernel)
        if context is not None:
            waker = Waker(0, 0, f"[{context}]", context, kernel, [])
        else:
            user = self._user_stack(key.waker_tgid, key.waker_user_stack_id)
            waker = Waker(key.waker_tgid, key.waker_tid, key.waker_comm, None, kernel, user)
        return OffWakeStack(target, waker)

    def _frames(self, addresses) -> list[Frame]:
        """Kernel frames from addresses (0 after the last), the tracing's own left out."""
        assert self._kernel is not None  # configure() read kallsyms
        frames = [self._kernel.resolve(a) for a in addresses if a]
        while frames and frames[0].name and frames[0].name.startswith(TRACING_FRAMES):
            frames.pop(0)
        return frames
