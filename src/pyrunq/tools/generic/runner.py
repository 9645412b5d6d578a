"""Running any CO-RE object: ``Runner`` (the pieces) and ``run()`` (the whole).

A Runner opens an object file, sets its globals, loads it, attaches every
program libbpf can attach by section, and decodes its event maps (ring
buffers, perf event arrays) and other maps
by the rules in ``introspect``. ``pyrunq run`` is a Runner and a printer.
"""

from __future__ import annotations

import dataclasses
import errno
import select
import time
from typing import Any

from ...bpf import ARRAY_TYPES, BATCH_TYPES, RINGBUF, BPFObject, PerfBuffer, RingBuffer
from ...bpf import btf as B
from ...errors import BPFError
from ..base import Tool
from .introspect import event_map_structs, hist_shape, presenter, unit_of, value_kind
from .objfile import check_trust, open_object
from .settings import apply_settings


# -- maps, read and merged ---------------------------------------------------------

@dataclasses.dataclass
class MapReport:
    """One map at one moment. ``kind`` "entries": ``entries`` is [(key, value)];
    "hist": ``entries`` is [(key or None, slots, labels)] with ``unit``."""

    name: str
    kind: str
    entries: list
    unit: str | None = None


def merge_percpu(values: list):
    """One value from per-CPU values: numbers summed, recursively through
    structs and arrays; anything else from the first CPU that has it."""
    first = values[0]
    if isinstance(first, bool):
        return any(values)
    if isinstance(first, (int, float)):
        return sum(values)
    if isinstance(first, tuple):
        merged = [merge_percpu(list(col)) for col in zip(*values)]
        return type(first)(*merged) if hasattr(first, "_fields") else tuple(merged)
    return next((v for v in values if v), first)


def _is_zero(v) -> bool:
    if isinstance(v, (tuple, list)):
        return all(_is_zero(x) for x in v)
    if isinstance(v, (bytes, str)):
        return not (v.strip(b"\0") if isinstance(v, bytes) else v.strip("\0"))
    return not v


def read_map(obj: BPFObject, m) -> MapReport:
    btf = obj.btf
    items = [(k, merge_percpu(v) if m.percpu else v) for k, v in m.items()]
    try:
        items.sort(key=lambda kv: kv[0])
    except TypeError:
        pass
    shape = hist_shape(obj, m)
    present_key = presenter(btf, m.key_type_id)
    if shape == "index":
        slots = [0] * m.max_entries
        for k, v in items:
            slots[k] = v
        return MapReport(m.name, "hist", [(None, slots, {})], unit_of(m.name))
    if shape:
        hists = []
        for k, v in items:
            slots = v if shape == "value" else v.slots
            labels = {} if shape == "value" else {
                f: x for f, x in presenter(btf, m.value_type_id)(v).items() if f != "slots"}
            hists.append((present_key(k), list(slots), labels))
        return MapReport(m.name, "hist", hists, unit_of(m.name))
    present_value = presenter(btf, m.value_type_id)
    if m.type in ARRAY_TYPES:
        items = [(k, v) for k, v in items if not _is_zero(v)]
    return MapReport(m.name, "entries", [(present_key(k), present_value(v)) for k, v in items])


# -- running -------------------------------------------------------------------

@dataclasses.dataclass
class Stream:
    """An event map (ring buffer or perf event array) and how its records are decoded."""

    map: str
    struct: str | None
    columns: list[tuple[str, int]]  # (field, display width) for tables
    count: int = 0
    short: int = 0  # records smaller than the struct (zero-filled)


def _width(btf, tid: int, name: str) -> int:
    tid = btf.resolve(tid)
    kind, w = btf.kind(tid), 8
    if kind == B.INT:
        size, _, is_bool, _ = btf.int_info(tid)
        w = 5 if is_bool else {1: 4, 2: 6, 4: 7, 8: 12}.get(size, 8)
    elif kind in (B.ENUM, B.ENUM64):
        w = max((len(n) for n in btf.enum_values(tid)), default=8)
    elif value_kind(btf, tid) == "string":
        w = min(btf.array(tid)[1] - 1, 16)
    return max(len(name), w)


def _sleep(timeout: float | None, fd: int | None) -> bool:
    select.select([fd] if fd is not None else [], [], [], timeout)
    return False


class Runner(Tool):
    """An object file loaded, configured, attached and read; ``close()`` detaches
    and unloads everything.

    ``settings``: global name -> value (str parsed by its type, or a Python
    value); ``events``: event map -> struct name; ``on_event(map, record)``
    receives each record as plain data (without it records queue in
    ``events``). Programs libbpf cannot attach by section are listed in
    ``not_attached`` as (name, section) instead of failing.
    """

    def __init__(self, path: str, settings: dict | None = None, events: dict | None = None,
                 on_event=None, allow_untrusted: bool = False):
        if not allow_untrusted:
            check_trust(path)
        self.path, self._settings, self._events = path, settings or {}, events
        self.events: list[tuple[str, dict]] = []
        self._on_event = on_event or (lambda m, r: self.events.append((m, r)))
        self.streams: dict[str, Stream] = {}
        self.not_attached: list[tuple[str, str]] = []
        self.links: list = []
        self.ring: RingBuffer | None = None  # all the ring buffers
        self.perf: dict[str, PerfBuffer] = {}  # one per perf event array
        self._readable: select.epoll | None = None  # when there are several
        self._stopped = False
        super().__init__()

    def open(self) -> BPFObject:
        obj, self.facts = open_object(self.path)
        return obj

    def configure(self, obj: BPFObject) -> None:
        super().configure(obj)
        apply_settings(obj, self._settings)
        self._rings = event_map_structs(obj, self._events)
        # a pinned map would outlive the run, and could be another program's
        self.unpinned = [(m.name, m.pin_path) for m in obj.maps.values() if m.pin_path]
        for m in obj.maps.values():
            m.pin_path = None

    def loaded(self, obj: BPFObject) -> None:
        super().loaded(obj)  # the readers first: no record is missed
        for name, struct_name in self._rings.items():
            self._read(name, struct_name)
        sources = self._sources()
        if len(sources) > 1:
            self._readable = select.epoll()
            for source in sources:
                self._readable.register(source.fileno(), select.EPOLLIN)

    def attach(self, obj: BPFObject) -> None:
        for prog in obj.programs.values():
            if not prog.autoload:
                continue
            try:
                self.links.append(prog.attach())
            except BPFError as e:
                # libbpf's answer for a section it cannot attach alone (SEC("uprobe"), "xdp"...)
                if e.errno != errno.EOPNOTSUPP:
                    raise
                self.not_attached.append((prog.name, prog.section))

    def _read(self, name: str, struct_name: str | None) -> None:
        btf = self.obj.btf
        layout: Any = None
        present: Any = None
        columns = [("data", 32)]
        if struct_name:
            tid = btf.find(struct_name)
            layout = btf.layout(tid)
            if layout.record is None:  # bit-fields: no byte layout, show the bytes
                layout = None
            else:
                present = presenter(btf, tid)
                # the record's field names: anonymous members are renamed there
                columns = [(f, _width(btf, m[1], f))
                           for f, m in zip(layout.record._fields, btf.members(tid))]
        stream = self.streams[name] = Stream(name, struct_name, columns)
        on_event = self._on_event

        def on_record(data: bytes) -> None:
            stream.count += 1
            if layout is None:
                on_event(name, {"data": data.hex()})
                return
            if len(data) < layout.size:
                stream.short += 1
                data += bytes(layout.size - len(data))
            on_event(name, present(layout.decode(data)))

        if self.obj.maps[name].type != RINGBUF:
            self.perf[name] = self.obj.perf_buffer(name, callback=on_record)
        elif self.ring is None:
            self.ring = self.obj.ring_buffer(name, callback=on_record)
        else:
            self.ring.add(self.obj.maps[name], callback=on_record)

    def _sources(self) -> list:
        return ([self.ring] if self.ring is not None else []) + list(self.perf.values())

    def poll(self, timeout: float | None = 0, limit: int = 4096) -> int:
        """Wait up to ``timeout`` seconds, then hand over the records of every
        event map (at most ``limit`` from each); 0 if there is none."""
        sources = self._sources()
        if len(sources) == 1:
            return sources[0].poll(timeout, limit)
        if self._readable is not None and timeout != 0:
            select.select([self._readable.fileno()], [], [], timeout)
        return sum(source.poll(0, limit) for source in sources)

    def fileno(self) -> int | None:
        """Readable when records wait in any event map; None without one."""
        if self._readable is not None:
            return self._readable.fileno()
        sources = self._sources()
        return sources[0].fileno() if sources else None

    @property
    def lost(self) -> int:
        """Records the perf buffers dropped so far (a ring buffer cannot tell)."""
        return sum(pb.lost for pb in self.perf.values())

    def maps(self) -> list[MapReport]:
        """Every hash and array map, decoded (histograms as slot lists)."""
        return [read_map(self.obj, m) for m in self.obj.maps.values() if m.type in BATCH_TYPES]

    def loop(self, duration: float | None = None, interval: float | None = None,
             on_maps=None, wait=_sleep) -> None:
        """Deliver records until ``duration`` seconds pass or ``wait(timeout, fd)``
        returns True; call ``on_maps(self.maps())`` every ``interval`` seconds.
        Then stop (detach, hand over what is left)."""
        now = time.monotonic()
        deadline = None if duration is None else now + duration
        tick = now + interval if interval and on_maps else None
        while True:
            handled = self.poll(0)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if tick is not None and now >= tick:
                on_maps(self.maps())
                tick = max(tick + (interval or 0.0), now)
            waits = [t - now for t in (deadline, tick) if t is not None]
            if wait(0 if handled else (min(waits) if waits else None), self.fileno()):
                break
        self.stop()

    def stop(self) -> None:
        """Detach every program, then hand over the records already written."""
        if self._stopped:
            return
        self._stopped = True
        super().stop()
        for source in self._sources():
            source.consume()

    def close(self) -> None:
        if self._readable is not None:
            self._readable.close()
        super().close()


@dataclasses.dataclass
class RunResult:
    events: list  # (event map, record) pairs, unless on_event took them
    maps: list  # MapReport, read after the programs were detached
    not_attached: list  # (program, section) that libbpf could not attach by itself
    lost: dict  # perf event array -> records its perf buffer dropped (when full)


def run(path: str, *, set: dict | None = None, events: dict | None = None,
        duration: float | None = None, interval: float | None = None, on_event=None,
        on_maps=None, allow_untrusted: bool = False) -> RunResult:
    """Load ``path``, set its globals, attach its programs and collect records
    until ``duration`` seconds pass or Ctrl-C; then detach and return what the
    event maps and other maps held. Needs root (or CAP_BPF and CAP_PERFMON)."""
    with Runner(path, settings=set, events=events, on_event=on_event,
                allow_untrusted=allow_untrusted) as r:
        try:
            r.loop(duration, interval, on_maps)
        except KeyboardInterrupt:
            r.stop()
        return RunResult(r.events, r.maps(), r.not_attached,
                         {name: pb.lost for name, pb in r.perf.items()})
