"""Running any CO-RE object: ``Runner`` (the pieces) and ``run()`` (the whole).

A Runner opens an object file, sets its globals, loads it, attaches every
program libbpf can attach by section, and decodes its event maps (ring
buffers, perf event arrays) and other maps
by the rules in ``introspect``. ``pyrunq run`` is a Runner and a printer.
"""

from __future__ import annotations

import dataclasses
import select
import tempfile
import time

from ...bpf import RINGBUF, BPFObject, PerfBuffer, RingBuffer
from ...bpf import Link, features
from ...bpf import btf as B
from ...errors import BPFError
from ..base import Tool, check_positive
from .attach import (
    TRACEFS_HOW,
    Choice,
    NotAttached,
    NothingAttached,
    attach_program,
    choose,
    is_iterator,
    library_targets,
    needs_tracefs,
    reason,
    refused_program,
    uprobe_targets,
    usdt_targets,
)
from . import gadget
from .introspect import (
    View,
    find_struct,
    nameable_structs,
    record_structs,
    struct_of_size,
    struct_types,
    value_kind,
    view,
)
from .objfile import check_trust, open_object
from .present import presenter
from .reports import MapReport, difference, read_global, read_map
from .settings import apply_max_entries, apply_settings
from .stacks import Stacks


class _Fallback(Exception):
    """Chosen twins failed to attach: load again without them."""

    def __init__(self, passed_over: dict[str, str]):
        super().__init__(passed_over)
        self.passed_over = passed_over


@dataclasses.dataclass
class Stream:
    """An event map (ring buffer or perf event array) and how its records are decoded."""

    map: str
    struct: str | None
    columns: list[tuple[str, int]]  # (field, display width) for tables
    count: int = 0
    short: int = 0  # records smaller than the struct (zero-filled)
    raw: bool = True  # records handed over as {"size", "data" (hex)}: no struct decodes them
    source: str = ""  # where the struct's layout comes from: "BTF" or "DWARF"
    size: int = 0  # the struct's size in bytes
    by_size: bool = False  # paired at the first record: the only struct of its size
    record_size: int = 0  # the first record's size (when its size decided)
    choices: list[str] = dataclasses.field(default_factory=list)  # not decoded: structs to name
    stacks: list[str] = dataclasses.field(default_factory=list)  # members named as stacks (not columns)


RAW_COLUMNS = [("size", 5), ("data", 35)]  # records no struct decodes


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


def _shown_width(name: str, value) -> int:
    """A column's width for a field the record's struct does not name
    (Inspektor Gadget's flattened and formatted ones)."""
    w = {"comm": 16, "pcomm": 16, "container": 12, "timestamp": 26}.get(name, 7)
    return max(len(name), w if not isinstance(value, str) or name in ("comm", "pcomm") else max(w, 8))


def _strings_at_end(types, tid: int) -> tuple[str, int] | None:
    """(name, byte offset) of struct ``tid``'s last member when it is a char
    array. A record that ends inside it (execsnoop sends only the arguments it
    has) holds there the NUL-separated strings it sent: shown joined by
    spaces, as its C front end does."""
    members = types.members(tid)
    if not members or members[-1][3] or value_kind(types, members[-1][1]) != "string":
        return None
    return members[-1][0], members[-1][2] // 8


def _text_or_bytes(data: bytes) -> str | bytes:
    """Text when ``data`` is printable UTF-8 (tabs and newlines allowed)."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return data
    return text if all(c.isprintable() or c in "\t\n" for c in text) else data


def _sleep(timeout: float | None, fd: int | None) -> bool:
    select.select([fd] if fd is not None else [], [], [], timeout)
    return False


class Runner(Tool):
    """An object file loaded, configured, attached and read; ``close()`` detaches
    and unloads everything.

    ``settings``: global name -> value (str parsed by its type, or a Python
    value); ``events``: event map -> struct name (in BTF or DWARF);
    ``on_event(map, record)`` receives each record as plain data (without it
    records queue in ``events``); a record no struct decodes is ``{"size": N,
    "data": hex}``. ``streams`` says how each event map is decoded; when its
    first record decided it (by size, or that nothing decodes it),
    ``on_pairing(stream)`` is called once, before that record.

    Programs: ``programs``: only these load; ``skip``: not these; otherwise
    of each group of twins the best this kernel supports (``choices`` says
    which, ``attach``). A program that cannot attach is in ``not_attached``
    as (program, section, reason) and the rest run; the Runner fails only
    when none attached. ``SEC("perf_event")`` programs sample every CPU's
    clock ``frequency`` times a second; ``iterators()`` reads iter/* ones.

    A program the kernel refuses to load is in ``not_attached`` too (the
    object is loaded again without it). Stack ids and inline stacks in maps
    and records are lists of function names (``stacks``: the rules).

    ``max_entries``: map name -> size before load (maps declared with 0 get
    a default, listed in ``sized``); ``show``: maps to show beside the
    default view ("all": every map; ``view.hidden`` says what is not shown,
    and why); ``units``: histogram name (None: all) -> unit.
    """

    def __init__(
        self,
        path: str,
        settings: dict | None = None,
        events: dict | None = None,
        on_event=None,
        allow_untrusted: bool = False,
        max_entries: dict | None = None,
        show=None,
        units: dict | None = None,
        programs=None,
        skip=None,
        frequency: int = 99,
        uprobes: dict | None = None,
        on_pairing=None,
        usdts: dict | None = None,
    ):
        if not allow_untrusted:
            check_trust(path)
        check_positive("frequency", frequency)
        self._programs, self._skip, self._frequency = programs, skip, frequency
        self._uprobe_specs, self._usdt_specs = uprobes or {}, usdts or {}
        self._passed_over: dict[str, str] = {}  # program -> why, when it failed to attach
        self._load_refused: dict[str, str] = {}  # program -> why the kernel refused to load it
        self.choices: list[Choice] = []
        self.attached: list[str] = []  # programs
        self.iterator_links: dict[str, Link] = {}
        self._iterator_text: dict[str, str | bytes] = {}  # as read when the Runner stopped
        self.tracefs_mounted: str | None = None  # where this Runner mounted it
        self.tracefs_problem: str | None = None  # why it is missing
        self.path, self._settings, self._events = path, settings or {}, events
        self._max_entries, self._show, self._units = max_entries or {}, show, units
        self._previous: dict[tuple, MapReport] = {}  # the last reading, for differences
        self.events: list[tuple[str, dict]] = []
        self._on_event = on_event or (lambda m, r: self.events.append((m, r)))
        self._on_pairing = on_pairing or (lambda stream: None)
        self.streams: dict[str, Stream] = {}
        self.not_attached: list[NotAttached] = []
        self.links: list = []
        self.ring: RingBuffer | None = None  # all the ring buffers
        self.perf: dict[str, PerfBuffer] = {}  # one per perf event array
        self._readable: select.epoll | None = None  # when there are several
        self._stopped = False
        self._kernel_btf = None  # the kernel's BTF with types the object's loader adds (a file)
        self.supplied: list[str] = []  # those types
        self._start()

    def _start(self) -> None:
        """The lifecycle (``Tool.__init__``), once; again, with a new load,
        when a chosen twin failed to attach and another can take its place,
        or when the kernel refused to load one program (the others may run)
        (libbpf loads all programs of an object at once: the choice is made
        before load)."""
        while True:
            try:
                super().__init__()
                return
            except (_Fallback, BPFError) as e:  # Tool.__init__ closed the object
                if isinstance(e, _Fallback):
                    self._passed_over.update(e.passed_over)
                else:
                    refused = refused_program(e)
                    if refused is None or refused[0] in self._load_refused:
                        raise
                    self._load_refused[refused[0]] = refused[1]
                if self._readable is not None:
                    self._readable.close()
                self.streams, self.not_attached, self.links = {}, [], []
                self.ring, self.perf, self._readable = None, {}, None
                self.choices, self.attached, self.iterator_links = [], [], {}

    def open(self) -> BPFObject:
        obj, self.facts = open_object(self.path)
        enricher = gadget.socket_enricher_btf(obj.btf)
        if enricher is None:
            return obj
        # an Inspektor Gadget network gadget: its CO-RE wants the socket
        # enricher's type in the kernel's BTF, as its loader puts it there
        obj.close()
        self._kernel_btf = tempfile.NamedTemporaryFile(prefix="pyrunq-", suffix=".btf")
        self._kernel_btf.write(enricher)
        self._kernel_btf.flush()
        self.supplied = [f"struct {gadget.SOCKET_VALUE}"]
        return BPFObject(self.path, btf_custom_path=self._kernel_btf.name)

    def configure(self, obj: BPFObject) -> None:
        super().configure(obj)
        skip = list(self._skip or ()) + list(self._load_refused)
        self._plan = choose(obj, self._programs, skip, self._passed_over)
        self._targets: dict[str, list] = {
            **uprobe_targets(obj, self._uprobe_specs),
            **usdt_targets(obj, self._usdt_specs),
        }
        libraries, missing = library_targets(obj, self._targets)
        self._targets.update(libraries)
        self.choices, self.not_attached = self._plan.choices, list(self._plan.refused)
        for name, why in missing.items():  # not loaded: nowhere to attach
            obj.programs[name].autoload = False
            self.not_attached.append(NotAttached(name, obj.programs[name].section, why))
        for name, why in self._load_refused.items():
            self.not_attached.append(NotAttached(name, obj.programs[name].section, why))
        apply_settings(obj, self._settings)
        self.sized = apply_max_entries(obj, self._max_entries)  # map -> the default it got
        self.view: View = view(obj, self.path, self._show, self._units)
        self._rings = record_structs(obj, self._events)
        self.gadget = gadget.markers(obj.btf)  # Inspektor Gadget's markers, if any
        # a pinned map would outlive the run, and could be another program's
        self.unpinned = [(m.name, m.pin_path) for m in obj.maps.values() if m.pin_path]
        for m in obj.maps.values():
            m.pin_path = None

    def loaded(self, obj: BPFObject) -> None:
        super().loaded(obj)
        self.stacks = Stacks(obj)
        # the readers before attach: no record is missed
        for name, struct_name in self._rings.items():
            self._read(name, struct_name)
        sources = self._sources()
        if len(sources) > 1:
            self._readable = select.epoll()
            for source in sources:
                self._readable.register(source.fileno(), select.EPOLLIN)

    def attach(self, obj: BPFObject) -> None:
        """Every loaded program by its section, perf_event ones on each CPU's
        clock, iterators as iterators. One that cannot attach (for any reason)
        is listed in ``not_attached`` and the others run; a chosen twin that
        cannot is passed over for the next one (a new load). Fails when
        nothing attached."""
        failed: dict[str, str] = {}  # chosen twins, and why they are passed over
        for prog in obj.programs.values():
            if not prog.autoload:
                continue
            if needs_tracefs(prog):
                self._tracefs()
            try:
                links = attach_program(prog, self._frequency, self._targets.get(prog.name))
            except OSError as e:
                why = reason(prog, e, self.tracefs_problem is not None)
                if prog.name in self._plan.fallbacks:
                    for twin in self._plan.fallbacks[prog.name]:
                        failed.setdefault(twin, f"passed over with {prog.name}")
                    failed[prog.name] = f"failed to attach: {why}"
                else:
                    self.not_attached.append(NotAttached(prog.name, prog.section, why))
                continue
            self.links += links
            self.attached.append(prog.name)
            if is_iterator(prog):
                self.iterator_links[prog.name] = links[0]
        if failed:
            raise _Fallback(failed)
        if not self.attached:
            raise NothingAttached(
                obj.name,
                self.not_attached,
                self.tracefs_problem and f"{self.tracefs_problem.split(', and ', 1)[-1]}; {TRACEFS_HOW}",
            )

    def _tracefs(self) -> None:
        """Mount tracefs, once, when a tracepoint/ program needs it and it is
        missing (as perf does); it stays mounted."""
        if self.tracefs_mounted or self.tracefs_problem or features.tracefs_mounted():
            return
        try:
            features.mount_tracefs()
            self.tracefs_mounted = features.TRACEFS
        except OSError as e:
            self.tracefs_problem = (
                f"tracefs is not mounted, and mounting it at {features.TRACEFS} failed ({e.strerror})"
            )

    def iterators(self) -> dict[str, str | bytes]:
        """What each iter/* program wrote (program -> text, or bytes when it
        wrote binary records with bpf_seq_write), read now; after ``stop()``,
        as it was read when the Runner stopped."""
        if self._stopped:
            return dict(self._iterator_text)
        return {
            name: self._iterator_output(name, link.read_iter()) for name, link in self.iterator_links.items()
        }

    def _iterator_output(self, program: str, data: bytes):
        """Text, or the binary records of an Inspektor Gadget iterator
        (``GADGET_ITER``/``GADGET_SNAPSHOTTER`` name their struct) as a list
        of records, or bytes."""
        it = self.gadget.iterators.get(program)
        if it is None or find_struct(self.obj, it.struct) is None:
            return _text_or_bytes(data)
        types, tid = struct_types(self.obj, it.struct)
        layout = types.layout(tid)
        if layout.record is None or not layout.size or len(data) % layout.size:
            return _text_or_bytes(data)
        present, size = presenter(types, tid), layout.size
        return [present(layout.decode(data[i : i + size])) for i in range(0, len(data), size)]

    def lost_samples(self) -> dict[str, int]:
        """Event map -> the records an Inspektor Gadget program could not send
        (the ring buffer was full), as it counts them in ``<map>_lost_samples``."""
        out = {}
        for ring in self.streams:
            counter = self.obj.maps.get(ring + gadget.LOST)
            if counter is not None and counter.percpu:
                out[ring] = sum(sum(v) if isinstance(v, (list, tuple)) else v for _, v in counter.items())
        return out

    def _read(self, name: str, struct_name: str | None) -> None:
        """Read event map ``name``, its records decoded by ``struct_name`` (from
        BTF or DWARF); without one, the first record's size picks the struct,
        once (``introspect.struct_of_size``), and ``on_pairing(stream)`` hears
        of it, or that records stay bytes."""
        stream = self.streams[name] = Stream(name, None, list(RAW_COLUMNS))
        perf = self.obj.maps[name].type != RINGBUF
        decode = self._decoder(stream, struct_name) if struct_name else None
        pending = struct_name is None
        on_event = self._on_event

        def on_record(data: bytes) -> None:
            nonlocal decode, pending
            if pending:
                pending = False
                decode = self._pair_by_size(stream, len(data), perf)
            stream.count += 1
            if decode is None:
                on_event(name, {"size": len(data), "data": data.hex()})
            else:
                on_event(name, decode(data))

        if self.obj.maps[name].type != RINGBUF:
            self.perf[name] = self.obj.perf_buffer(name, callback=on_record, raw=True)
        elif self.ring is None:
            self.ring = self.obj.ring_buffer(name, callback=on_record, raw=True)
        else:
            self.ring.add(self.obj.maps[name], callback=on_record)

    def _decoder(self, stream: Stream, struct_name: str):
        """A function from a record's bytes to plain data by ``struct_name`` (in
        the object's BTF or, when it lacks it, its DWARF), or None when the
        struct has no byte layout (bit-fields): records stay bytes."""
        types, tid = struct_types(self.obj, struct_name)
        layout = types.layout(tid)
        stream.struct, stream.size = struct_name, layout.size
        stream.source = "BTF" if types is self.obj.btf else "DWARF"
        if layout.record is None:
            return None
        present = presenter(types, tid)
        stacks, name_stacks = self.stacks.members(types, tid), self.stacks.name
        # the record's field names: anonymous members are renamed there
        stream.stacks = stacks.ids + stacks.inline + stacks.user if stacks else []
        widths = {f: _width(types, m[1], f) for f, m in zip(layout.record._fields, types.members(tid))}
        # the columns are what a record is shown as: Inspektor Gadget's
        # structs flatten some members and rename others (``gadget``)
        shown = present(layout.decode(bytes(layout.size)))
        stream.columns = [
            (f, widths.get(f, _shown_width(f, v))) for f, v in shown.items() if f not in stream.stacks
        ]
        stream.raw = False
        size = layout.size
        strings = _strings_at_end(types, tid)

        def decode(data: bytes):
            short = len(data) < size
            if short:
                if not (strings and len(data) >= strings[1]):  # not a record of strings that ended early
                    stream.short += 1
                record = present(layout.decode(data + bytes(size - len(data))))
            else:
                record = present(layout.decode(data))
            if short and strings:
                name, offset = strings
                record[name] = " ".join(s.decode(errors="replace") for s in data[offset:].split(b"\0") if s)
            return name_stacks(record, stacks) if stacks else record

        return decode

    def _pair_by_size(self, stream: Stream, record_size: int, perf: bool):
        """At a map's first record, when nothing named its struct: the only
        struct of the record's size decodes this record and the next ones."""
        stream.record_size = record_size
        struct_name, _ = struct_of_size(self.obj, record_size, perf)
        decode = self._decoder(stream, struct_name) if struct_name else None
        stream.by_size = decode is not None
        if decode is None:
            stream.struct, stream.choices = None, nameable_structs(self.obj)
        self._on_pairing(stream)
        return decode

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

    def maps(self, delta: bool = False) -> list[MapReport]:
        """The hash and array maps of the view (``self.view``), then the .bss and
        .data globals, decoded (histograms as slot lists). ``delta``: what
        happened since the previous ``delta`` reading (the first: since load),
        by ``difference``; the kernel's maps are left as they are."""
        v = self.view
        reports = [read_map(self.obj, self.obj.maps[name], v.unit(name)) for name in v.maps]
        reports += [
            read_global(self.obj, section, name, tid, v.unit(name)) for section, name, tid in v.globals
        ]
        if delta:
            previous, self._previous = self._previous, {(r.section, r.name): r for r in reports}
            reports = [difference(r, previous.get((r.section, r.name))) for r in reports]
        return [self._name_stacks(r) for r in reports]

    def _name_stacks(self, report: MapReport) -> MapReport:
        """Stack ids and addresses as function names (``stacks``), after the
        difference was taken by id."""
        if report.section is not None:
            return report
        m = self.obj.maps[report.name]
        key, value = (self.stacks.members(self.obj.btf, tid) for tid in (m.key_type_id, m.value_type_id))
        if report.kind == "hist":  # futexctn's, biostacks': a histogram per stack
            value = None
        if not (key or value):
            return report
        named = [name for part in (key, value) if part for name in part.ids + part.inline + part.user]
        if report.kind == "hist":  # the slots and labels of equal stacks added, as entries' values are
            packed = [(k, (slots, labels)) for k, slots, labels in report.entries]
            named_entries, merged = self.stacks.name_entries(packed, key, None)
            entries = [(k, slots, labels) for k, (slots, labels) in named_entries]
        else:
            entries, merged = self.stacks.name_entries(report.entries, key, value)
        kernel = [name for name in named if name in self.stacks.kernel_members]
        return dataclasses.replace(report, entries=entries, stacks=named, merged=merged, kernel_stacks=kernel)

    def loop(
        self,
        duration: float | None = None,
        interval: float | None = None,
        on_maps=None,
        wait=_sleep,
        cumulative: bool = False,
        on_iterators=None,
    ) -> None:
        """Deliver records until ``duration`` seconds pass or ``wait(timeout, fd)``
        returns True; every ``interval`` seconds call ``on_maps(reports)`` with
        what happened in that interval (``cumulative``: the totals so far),
        then ``on_iterators(texts)`` with what the iterators wrote: they run
        before the maps are read, so what they write there is of this pass.
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
                texts = self.iterators() if on_iterators else {}  # first: what they write is read next
                on_maps(self.maps(delta=not cumulative))
                if on_iterators:
                    on_iterators(texts)
                tick = max(tick + (interval or 0.0), now)
            waits = [t - now for t in (deadline, tick) if t is not None]
            if wait(0 if handled else (min(waits) if waits else None), self.fileno()):
                break
        self.stop()

    def stop(self) -> None:
        """Detach every program, then hand over the records already written."""
        if self._stopped:
            return
        self._iterator_text = self.iterators()  # while they are attached
        self._stopped = True
        super().stop()
        for source in self._sources():
            source.consume()

    def close(self) -> None:
        if self._readable is not None:
            self._readable.close()
        super().close()
        if self._kernel_btf is not None:
            self._kernel_btf.close()
            self._kernel_btf = None


@dataclasses.dataclass
class RunResult:
    events: list  # (event map, record) pairs, unless on_event took them
    maps: list  # MapReport (maps, then globals), totals read after the programs were detached
    not_attached: list  # (program, section, reason) of each program that did not attach
    lost: dict  # perf event array -> records its perf buffer dropped (when full)
    hidden: dict = dataclasses.field(default_factory=dict)  # map not shown -> why
    sized: dict = dataclasses.field(default_factory=dict)  # map given the default size -> it
    iterators: dict = dataclasses.field(default_factory=dict)  # iter/* program -> text at the end
    choices: list = dataclasses.field(default_factory=list)  # Choice: which twins ran


def run(
    path: str,
    *,
    set: dict | None = None,
    events: dict | None = None,
    duration: float | None = None,
    interval: float | None = None,
    on_event=None,
    on_maps=None,
    allow_untrusted: bool = False,
    max_entries: dict | None = None,
    show=None,
    units: dict | None = None,
    cumulative: bool = False,
    programs=None,
    skip=None,
    frequency: int = 99,
    uprobes: dict | None = None,
    usdts: dict | None = None,
) -> RunResult:
    """Load ``path``, set its globals, attach its programs and collect records
    until ``duration`` seconds pass or Ctrl-C; then detach and return what the
    event maps, other maps and globals held (totals). ``on_maps(reports)``,
    every ``interval`` seconds, gets what happened in that interval
    (``cumulative``: the totals so far). ``max_entries``, ``show``, ``units``:
    as Runner takes them. ``programs``: only these load; ``skip``: not these;
    ``frequency``: of perf_event programs' sampling, in Hz; ``uprobes``:
    program -> "BINARY:FUNCTION" (or a list of them) for uprobe programs whose
    section names no target; ``usdts``: program -> "BINARY:PROVIDER:NAME" (or
    a list) for USDT programs. Needs root (or CAP_BPF and CAP_PERFMON)."""
    with Runner(
        path,
        settings=set,
        events=events,
        on_event=on_event,
        allow_untrusted=allow_untrusted,
        max_entries=max_entries,
        show=show,
        units=units,
        programs=programs,
        skip=skip,
        frequency=frequency,
        uprobes=uprobes,
        usdts=usdts,
    ) as r:
        try:
            r.loop(duration, interval, on_maps, cumulative=cumulative)
        except KeyboardInterrupt:
            r.stop()
        return RunResult(
            r.events,
            r.maps(),
            r.not_attached,
            {name: pb.lost for name, pb in r.perf.items()},
            dict(r.view.hidden),
            dict(r.sized),
            r.iterators(),
            r.choices,
        )
