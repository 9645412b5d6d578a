"""RunqSlower: each run queue delay above a threshold (bpf/runqslower.bpf.c).

Events come through a BPF ring buffer. When it is full the kernel side counts
the lost event instead of blocking; ``lost`` reports that count.
"""

from __future__ import annotations

import dataclasses

from ..bpf import EventRows
from ..errors import UsageError
from .base import EventTool, check_threshold
from .blame import Culprit, Kinds, enum_names, merged
from .runqtracer import RunqTracer

TYPE_CHECKING = False  # see pyrunq.bpf.globals
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .records import RunqSlowerEvent


@dataclasses.dataclass(frozen=True)
class BlamedEvent:
    """An event of ``RunqSlower(blame=True)``: the members of struct event,
    and what ran on the CPU instead: ``culprits`` (one per task, largest
    first) and ``unattributed_ns``, which add up to ``delta_ns``, and
    ``why`` part is unattributed ("" if none is)."""

    task: str
    pid: int
    tid: int
    delta_ns: int
    cpu: int
    prev_task: str
    prev_pid: int
    prev_tid: int
    culprits: tuple[Culprit, ...]
    unattributed_ns: int
    why: str


class RunqSlower(RunqTracer, EventTool):
    """Delays of at least ``min_us`` microseconds (0: every delay).

    ``pid``: only threads of that process; ``tid``: only that thread.
    ``callback``: called with each event; without it, read ``events()``.
    Each event has ``task``, ``pid``, ``tid``, ``delta_ns``, ``cpu`` and the
    task it replaced on the CPU: ``prev_task``, ``prev_pid``, ``prev_tid``.
    ``text``: no event objects; each event becomes libbpf-tools' runqslower
    row, written in C (``previous``: with the previous task's columns), and
    ``take_text()`` returns the rows polled so far. ``blame``: each event is
    a ``BlamedEvent``, which also says who held the CPU during the wait
    (with ``text``: the row ends with the culprits, as
    ``pyrunq.cli.runqslower.blame_text`` writes them).
    """

    object_name = "runqslower"

    def __init__(
        self,
        min_us: int = 10000,
        pid: int | None = None,
        tid: int | None = None,
        callback=None,
        ring_bytes: int = 1 << 20,
        text: bool = False,
        previous: bool = False,
        blame: bool = False,
    ):
        self.min_us = check_threshold("min_us", min_us, "microseconds")
        if text and callback is not None:
            raise UsageError("RunqSlower: text=True writes rows itself: no callback")
        self._text, self._previous, self._rows = text, previous, None
        super().__init__(
            pids=None if pid is None else [pid],
            tid=tid,
            callback=callback,
            ring_bytes=ring_bytes,
            blame=blame,
        )

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["min_us"] = self.min_us

    def open_ring(self, obj):
        if self.blame and not self._text:
            return self._blame_ring(obj)
        if not self._text:
            return super().open_ring(obj)
        if self.blame:
            kinds = Kinds(obj.btf)
            self._rows = EventRows.blamed(
                obj.btf.layout(obj.btf.find("blame_event")),
                self._previous,
                enum_names(obj.btf, "blame_kind"),
                {raw: kinds.why(raw) for raw in enum_names(obj.btf, "blame_why")},
                kinds.cgroup,
            )
        else:
            self._rows = EventRows(obj.btf.layout(obj.btf.find(self.event_struct)), self._previous)
        return obj.ring_buffer(self.ring_map, rows=self._rows)

    def events(self, timeout: float | None = None) -> Iterator[RunqSlowerEvent]:
        """Yield events as they come; stop after ``timeout`` seconds without
        any. With ``blame`` each is a ``BlamedEvent`` (``blamed_events()``
        says so to a type checker)."""
        return self.ring.events(timeout)

    def blamed_events(self, timeout: float | None = None) -> Iterator[BlamedEvent]:
        """``events()`` of ``RunqSlower(blame=True)``, typed as what they are."""
        if not self.blame:
            raise UsageError("blamed_events() needs RunqSlower(blame=True)")
        return self.ring.events(timeout)

    def take_text(self) -> bytes:
        """The rows of the events polled since the last call (``text=True``)."""
        if self._rows is None:
            raise UsageError("take_text() needs RunqSlower(text=True)")
        return self._rows.take()

    def _blame_ring(self, obj):
        """The ring of struct blame_event, each decoded into a BlamedEvent
        for the callback or for ``events()``."""
        decode, callback = BlameRecords(obj.btf, Kinds(obj.btf)), self._callback

        def on_record(data: bytes) -> None:
            event = decode(data)
            if callback is None:
                self.ring.pending.append(event)
            else:
                callback(event)

        return obj.ring_buffer(self.ring_map, callback=on_record, raw=True)


class BlameRecords:
    """struct blame_event's bytes -> BlamedEvent. Only the culprits a record
    holds are decoded: most of its 16 slots are empty, and decoding them all
    was nine tenths of the time an event took."""

    def __init__(self, btf, kinds: Kinds):
        tid = btf.find("blame_event")
        self._members = {name: (btf.layout(t), bits // 8) for name, t, bits, _ in btf.members(tid)}
        self._culprit = btf.layout(btf.find("culprit"))
        self._slots = self._members["culprits"][0].size // self._culprit.size
        self._kinds = kinds

    def _get(self, data: bytes, name: str):
        layout, offset = self._members[name]
        return layout.decode(data, offset)

    def __call__(self, data: bytes) -> BlamedEvent:
        e, n = self._get(data, "e"), self._get(data, "nculprits")
        first, size = self._members["culprits"][1], self._culprit.size
        culprits = (self._culprit.decode(data, first + i * size) for i in range(min(n, self._slots)))
        return BlamedEvent(
            e.task,
            e.pid,
            e.tid,
            e.delta_ns,
            e.cpu,
            e.prev_task,
            e.prev_pid,
            e.prev_tid,
            tuple(merged(self._kinds.culprit(c) for c in culprits)),
            self._get(data, "unattributed_ns"),
            self._kinds.why(self._get(data, "why")),
        )
