"""What the user-stack tools share (bpf/ustack.h): reading a stack out of a
STACK_TRACE map, and naming its addresses with each process's own maps."""

from __future__ import annotations

import struct

from ..errors import UsageError
from ..symbols import Frame, ProcessSymbols


def stack_addresses(stacks, stack_id: int) -> list[int]:
    """The return addresses of stack ``stack_id`` in a STACK_TRACE map, top first."""
    try:
        raw = stacks.lookup_bytes(stack_id)
    except KeyError:
        return []
    # the map's value size, not a copy of USTACK_MAX_DEPTH; 0 after the last frame
    addresses = struct.unpack(f"{len(raw) // 8}Q", raw)
    return list(addresses[: addresses.index(0)] if 0 in addresses else addresses)


class Symbolizer:
    """Addresses -> Frames, with one ProcessSymbols per process, made on first
    use and kept (the maps of a process that has exited cannot be read)."""

    def __init__(self):
        self._procs: dict[int, ProcessSymbols | None] = {}
        self._unmapped: dict[int, set[int]] = {}  # pid -> addresses in no mapping, after a reread

    def watch(self, pid: int) -> None:
        """Read ``pid``'s maps now, while it surely lives."""
        self._process(pid)

    def _process(self, pid: int) -> ProcessSymbols | None:
        if pid not in self._procs:
            try:
                self._procs[pid] = ProcessSymbols(pid)
            except UsageError:  # gone
                self._procs[pid] = None
        return self._procs[pid]

    def frames(self, pid: int, addresses: list[int]) -> list[Frame]:
        proc = self._process(pid)
        if proc is None:
            return [Frame(a, None, 0, "") for a in addresses]
        frames = [proc.resolve(a) for a in addresses]
        unmapped = {f.address for f in frames if not f.module} - self._unmapped.setdefault(pid, set())
        if unmapped:  # a library mapped since we looked? Reread once per such address
            self._unmapped[pid] |= unmapped
            try:
                proc.refresh()
            except UsageError:
                return frames
            frames = [proc.resolve(a) for a in addresses]
        return frames
