"""StackCount: how often each distinct user stack calls a function
(bpf/stackcount.bpf.c), symbolized from the ELF files each process maps.

A stack is symbolized the first time it is read, with the maps of the
process that made it: read often (``counts()``) to name the stacks of
processes that exit early. Once a process is gone, only the frames in the
traced file itself can still be named (the top frame, the probed function's
first instruction, tells where that file was loaded); the others read as
``[unknown]``.
"""

from __future__ import annotations

from typing import NamedTuple

from ..symbols import Frame, Target, elf_symbols, resolve_function
from .base import Tool, check_pid, check_positive
from .ustack import Symbolizer, stack_addresses


class StackCounts(NamedTuple):
    """One distinct stack of one process: ``frames`` top (the function) first."""

    pid: int
    comm: str
    count: int  # type: ignore[assignment]  # the field, not tuple.count
    frames: list[Frame]


class StackCount(Tool):
    """Counts the user stacks that reach the function ``spec`` names.

    ``spec``: ``BINARY:FUNCTION`` (BINARY a path or a library name such as
    ``c``), or a bare ``FUNCTION`` with ``pid``. ``pid``: only that process
    (its maps are read at once); None: every process that runs the binary.
    ``stack_entries``: room for distinct stacks; a stack that finds its hash
    bucket taken by another is counted in ``stats()["stack_collisions"]``.
    """

    object_name = "stackcount"

    def __init__(
        self, spec: str, pid: int | None = None, stack_entries: int = 16384, max_stacks: int = 10240
    ):
        self.pid = None if pid is None else check_pid(pid)
        self._sizes = {
            "stacks": check_positive("stack_entries", stack_entries),
            "counts": check_positive("max_stacks", max_stacks),
        }
        self.target: Target = resolve_function(spec, pid)
        self._symbols = Symbolizer()
        self._frames: dict[tuple[int, int], list[Frame]] = {}
        if pid is not None:
            self._symbols.watch(pid)
        super().__init__()

    def configure(self, obj) -> None:
        super().configure(obj)
        for name, size in self._sizes.items():
            obj.maps[name].max_entries = size

    def attach(self, obj) -> None:
        obj.programs["stackcount_hit"].attach_uprobe(
            self.target.path, self.target.offset, pid=-1 if self.pid is None else self.pid
        )

    def counts(self) -> list[StackCounts]:
        """Every stack counted so far, the most frequent first. Stacks are
        symbolized once, the first time they are read."""
        stacks = self.obj.maps["stacks"]
        out = []
        for key, value in self.obj.maps["counts"].items():
            frames = self._frames.get((key.tgid, key.stack_id))
            if frames is None:
                frames = self._symbolize(key.tgid, stack_addresses(stacks, key.stack_id))
                self._frames[(key.tgid, key.stack_id)] = frames
            out.append(StackCounts(key.tgid, value.comm, value.count, frames))
        out.sort(key=lambda s: s.count, reverse=True)
        return out

    def _symbolize(self, pid: int, addresses: list[int]) -> list[Frame]:
        frames = self._symbols.frames(pid, addresses)
        if addresses and not any(f.module for f in frames):  # gone before we read its maps
            return self._in_target(addresses)
        return frames

    def _in_target(self, addresses: list[int]) -> list[Frame]:
        """Frames named from the traced file alone: the first address is the
        probed function's entry, so it gives where the file was loaded."""
        elf = elf_symbols(self.target.path)
        entry = elf.vaddr(self.target.offset)
        if entry is None:  # the probed offset is in no loaded segment: nothing to name
            return [Frame(address, None, 0, "") for address in addresses]
        bias = addresses[0] - entry
        frames = []
        for address in addresses:
            found = elf.function_at(address - bias)
            frames.append(Frame(address, *found, self.target.path) if found else Frame(address, None, 0, ""))
        return frames
