"""The one lifecycle every tool shares, and the argument checks they share.

A tool declares its object (``object_name``) and fills in the steps it needs;
``Tool.__init__`` runs them in order, open -> ``configure`` -> load ->
``loaded`` -> ``attach``, and closes the object if any step fails, so nothing
is left half-attached in the kernel. Subclasses check their arguments first,
then call ``super().__init__()``; each step calls ``super()`` so that mixed-in
steps (a ring buffer, the runq filters) run too.
"""

from __future__ import annotations

from ..bpf import BPFObject
from ..errors import UsageError

TYPE_CHECKING = False  # importing typing would cost every start 2 ms; mypy reads the block
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TypeVar

    T = TypeVar("T", bound="Tool")


class Tool:
    """Owns one BPF object, ``self.obj``: ``close()`` releases it (twice is
    fine), ``with`` closes it."""

    object_name = ""

    def __init__(self) -> None:
        self.obj = self.open()
        try:
            self.configure(self.obj)
            self.obj.load()
            self.loaded(self.obj)
            self.attach(self.obj)
        except BaseException:
            self.obj.close()
            raise

    def open(self) -> BPFObject:
        """The object, opened: the packaged ``object_name`` by default."""
        return BPFObject.open(self.object_name)

    def configure(self, obj: BPFObject) -> None:
        """Before load: globals, map sizes, which programs load."""

    def loaded(self, obj: BPFObject) -> None:
        """After load, before attach: fill maps, open ring buffers."""

    def attach(self, obj: BPFObject) -> None:
        """Attach the programs: every one that loaded, by its section."""
        obj.attach()

    def stats(self) -> dict[str, int]:
        """What the kernel side had to drop or could not count, by reason, since
        start: the per-CPU ``stats`` map of bpf/stats.bpf.h, each reason named
        after the tool's enumerator in the object's BTF (``RUNQ_STAT_CLOCK_SKEW``:
        "clock_skew"). Empty for a tool without that map."""
        counters = self.obj.maps.get("stats")
        return counters.counters() if counters is not None and counters.counter_names() else {}

    def program_stats(self) -> dict[str, tuple[int, int]]:
        """(runs, nanoseconds) of each loaded program, which the kernel counts
        only while kernel.bpf_stats_enabled is 1."""
        return {name: prog.stats() for name, prog in self.obj.programs.items() if prog.autoload}

    def detached(self) -> list[str]:
        """The loaded programs that have no link now (none while attached)."""
        linked = set(self.obj.attached())
        return [name for name, prog in self.obj.programs.items() if prog.autoload and name not in linked]

    @property
    def lost(self) -> int:
        """What the kernel side could not count so far, for any reason."""
        return sum(self.stats().values())

    def stop(self) -> None:
        """Detach: nothing new is counted; what was counted stays readable."""
        self.obj.detach()

    def close(self) -> None:
        """Detach and unload everything the tool loaded; twice is fine."""
        self.obj.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventTool(Tool):
    """A tool whose records come through the ring buffer map ``ring_map``,
    decoded as ``event_struct`` into ``self.ring``; the kernel side counts
    the records a full ring drops as stat "lost"."""

    ring_map, event_struct = "events", "event"

    def __init__(self, callback=None, ring_bytes: int = 1 << 20) -> None:
        if (
            isinstance(ring_bytes, bool)
            or not isinstance(ring_bytes, int)
            or ring_bytes < 4096
            or ring_bytes & (ring_bytes - 1)
        ):
            raise UsageError(f"ring_bytes must be a power of two >= 4096, not {ring_bytes!r}")
        self._callback, self._ring_bytes = callback, ring_bytes
        super().__init__()

    def configure(self, obj: BPFObject) -> None:
        super().configure(obj)
        obj.maps[self.ring_map].max_entries = self._ring_bytes

    def loaded(self, obj: BPFObject) -> None:
        super().loaded(obj)  # before attach: no record is missed
        self.ring = self.open_ring(obj)

    def open_ring(self, obj: BPFObject):
        """The ring buffer the records come through (a subclass may read it otherwise)."""
        return obj.ring_buffer(self.ring_map, event=self.event_struct, callback=self._callback)

    def events(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield events as they come; stop after ``timeout`` seconds without any."""
        return self.ring.events(timeout)

    def poll(self, timeout: float | None = None, limit: int = 0) -> int:
        """Wait up to ``timeout`` seconds and hand over events (at most ``limit``)."""
        return self.ring.poll(timeout, limit)

    def fileno(self) -> int:
        """Readable when events wait: for selectors / asyncio."""
        return self.ring.fileno()

    def stop(self) -> int:  # type: ignore[override]
        """Detach, then hand over what is already in the ring buffer."""
        super().stop()
        return self.ring.consume()

    def detached(self) -> list[str]:
        """The loaded programs that have no link now (none while attached)."""
        linked = set(self.obj.attached())
        return [name for name, prog in self.obj.programs.items() if prog.autoload and name not in linked]

    @property
    def lost(self) -> int:
        """Events dropped so far because the ring buffer was full."""
        return self.stats()["lost"]


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_pid(value, what: str = "PID") -> int:
    """A PID or TID: a positive integer."""
    if not _integer(value) or value <= 0:
        raise UsageError(f"invalid {what} {value!r}")
    return value


def check_positive(name: str, value) -> int:
    """A size or count: a positive integer."""
    if not _integer(value) or value <= 0:
        raise UsageError(f"{name} must be a positive number, not {value!r}")
    return value


def check_threshold(name: str, value, unit: str) -> int:
    """A threshold in ``unit``: an integer >= 0."""
    if not _integer(value) or value < 0:
        raise UsageError(f"invalid {name} {value!r}: a number of {unit} >= 0")
    return value


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")
