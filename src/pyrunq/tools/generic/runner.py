"""Running any CO-RE object: ``Runner`` (the pieces) and ``run()`` (the whole).

The pipeline: the file is read once (``objfile.ObjectFile``); each load of
it is planned (which programs run: ``twins``; where uprobes go: ``targets``;
globals and map sizes: ``settings``; how each map is shown: ``plan``),
loaded, its event maps opened (``sources``, decoded by ``streams``) and its
programs attached (``attach``); then records are collected and the maps
read (``reports``) for a front end to present. A load the kernel refuses
for one program, or a chosen twin that cannot attach, is planned and loaded
again without it, from the same reading of the file.
"""

from __future__ import annotations

import dataclasses
import select
import time

from ...bpf import RINGBUF, BPFObject, Link, Record, features
from ...errors import BPFError, NotAttached, NothingAttached
from ..base import Tool, check_positive
from .attach import TRACEFS_HOW, attach_program, is_iterator, needs_tracefs, not_attached, refused_program
from . import exporter_maps, gadget
from .exporter_cgroups import SYNC_EVERY
from .exporter_config import kaddr_settings
from .exporter_maps import CONFIG_AUTO, Metrics, SpanDecoder
from . import gadget_yaml
from .gadget import Gadget
from .objfile import ObjectFile, check_trust
from .origins import RECORD, SEQ_WRITE
from .plan import View, reveals, view
from .present import presenter
from .reports import MapReport, difference, read
from .fills import Entry, Unfilled, check_entries, fill, orphaned, split_entry, unfilled, zero_globals
from .settings import apply_max_entries, apply_settings
from .sources import Sources
from .stacks import Stacks
from .streams import RecordDecoder, Stream
from .targets import (
    check_cgroup,
    check_perf_events,
    check_sockets,
    is_socket_filter,
    library_targets,
    perf_event_for,
    perf_event_of,
    set_section_types,
    uprobe_targets,
    usdt_targets,
)
from .twins import Choice, Selection, choose
from ...bpf.events import find_struct, struct_of_size, struct_types


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


@dataclasses.dataclass
class Attempt:
    """What one load of the object decided and opened. A new load (a retry)
    starts from a new one: nothing of a failed load is kept by mistake."""

    selection: Selection = dataclasses.field(default_factory=lambda: Selection([], [], {}))
    targets: dict = dataclasses.field(default_factory=dict)  # program -> its uprobe/USDT targets
    not_attached: list[NotAttached] = dataclasses.field(default_factory=list)
    attached: list[str] = dataclasses.field(default_factory=list)  # programs
    links: list = dataclasses.field(default_factory=list)
    iterator_links: dict[str, Link] = dataclasses.field(default_factory=dict)
    # the socket filters attached: (program, section)
    socket_filters: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    view: View = dataclasses.field(default_factory=lambda: View([]))
    sized: dict[str, int] = dataclasses.field(default_factory=dict)  # map given the default size -> it
    unpinned: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (map, its pin path)
    streams: dict[str, Stream] = dataclasses.field(default_factory=dict)
    # what the object's own user space fills and the settings did not
    unfilled: list[Unfilled] = dataclasses.field(default_factory=list)
    entries: list = dataclasses.field(default_factory=list)  # map entries from settings: (map, key, value)
    sources: Sources = dataclasses.field(default_factory=Sources)
    stacks: Stacks | None = None
    # chosen twins that failed to attach: loaded again without them
    passed_over: dict[str, str] = dataclasses.field(default_factory=dict)


class _OfAttempt:
    """A Runner attribute that is the current load's (``Runner.now``)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, runner, owner=None):
        return self if runner is None else getattr(runner.now, self.name)


class Runner(Tool):
    """An object file loaded, configured, attached and read; ``close()`` detaches
    and unloads everything.

    ``settings``: global name -> value (str parsed by its type, or a Python
    value; an array global's as "1,2,3"), and ``"MAP[KEY]"`` -> VALUE for a
    map entry written before the programs attach (``fills``); ``unfilled``
    lists the maps and globals the object's own user space fills and
    ``settings`` did not; ``events``: event map -> struct name (in BTF or DWARF);
    ``on_event(map, record)`` receives each record (without it records
    queue in ``events``): a ``pyrunq.bpf.Record`` of its struct, as
    ``BPFObject.ring_buffer()`` gives, holding its values as shown (enums by
    name, stacks as lists of function names, addresses as text); bytes when
    no struct decodes it. ``streams`` says how each event map is decoded; when its
    first record decided it (by size, or that nothing decodes it),
    ``on_pairing(stream)`` is called once, before that record.

    Programs: ``programs``: only these load; ``skip``: not these; otherwise
    of each group of twins the best this kernel supports (``choices`` says
    which, ``twins``). A program that cannot attach is in ``not_attached``
    as (program, section, reason) and the rest run; the Runner fails only
    when none attached. ``SEC("perf_event")`` programs sample every CPU's
    clock ``frequency`` times a second (``SEC("perf_event/type=T,config=C")``
    ones the perf event they name, on every CPU); cgroup programs
    (``cgroup_skb/egress``, ``sockops``...) attach to ``cgroup`` (a cgroup v2
    directory, absolute or below the cgroup2 mount); socket filters
    (``SEC("socket")``, Inspektor Gadget's ``socket1``) to a raw packet
    socket of every interface of this network namespace, or of each of
    ``sockets`` (interface names, or one text of them separated by commas:
    ``"lo,eth0"``), which ``interfaces`` lists once checked; ``iterators()``
    reads iter/* ones.

    A program the kernel refuses to load is in ``not_attached`` too (the
    object is loaded again without it). Stack ids and inline stacks in maps
    and records are lists of function names (``stacks``: the rules).

    ``max_entries``: map name -> size before load (maps declared with 0 get
    a default, listed in ``sized``); ``show``: maps to show beside the
    default view ("all": every map; ``view.hidden`` says what is not shown,
    and why: ``view.plans``, how each map is shown); ``units``: histogram
    name (None: all) -> unit.

    ``config``: the object's ebpf_exporter YAML (default: the one beside
    it, ``NAME.yaml`` for ``NAME.bpf.o``, if any; None: none): its metrics'
    names, help, labels and buckets (``metrics``; ``exporter_maps``); its
    ``cgroup_id_map`` is filled before attach and kept in step by ``loop()``
    (``metrics.cgroups``; a caller that polls by itself calls
    ``metrics.sync()``). For an Inspektor Gadget object, ``config`` names
    its ``gadget.yaml`` instead (default: the one in its directory):
    ``gadget_yaml`` says what of it applies.
    """

    # the current load's (``now``): a retry starts from a new Attempt
    not_attached = _OfAttempt()
    attached = _OfAttempt()
    links = _OfAttempt()
    iterator_links = _OfAttempt()
    socket_filters = _OfAttempt()
    view = _OfAttempt()
    sized = _OfAttempt()
    unpinned = _OfAttempt()
    streams = _OfAttempt()
    stacks = _OfAttempt()
    unfilled = _OfAttempt()

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
        cgroup: str | None = None,
        config=CONFIG_AUTO,
        perf_events: dict | None = None,
        sockets=None,
    ):
        if not allow_untrusted:
            check_trust(path)
        check_positive("frequency", frequency)
        self.path = path
        self._programs, self._skip = programs, skip
        self.frequency = frequency  # of perf_event programs sampling the CPU clock, in Hz
        self._uprobe_specs, self._usdt_specs = uprobes or {}, usdts or {}
        self._cgroup_spec = cgroup
        self._perf_events = {name: perf_event_for(name, e) for name, e in (perf_events or {}).items()}
        # perf_event programs sampling the CPU clock because their section names no event
        self.clock_sampled: list[str] = []
        self.cgroup: str | None = None  # the cgroup v2 directory cgroup programs attach to
        self._socket_spec = sockets
        self.interfaces: list[str] = []  # socket filters' interfaces (none: every interface)
        self._settings, self._events = settings or {}, events
        self._max_entries, self._show, self._units = max_entries or {}, show, units or {}
        self._config = config
        self.metrics = Metrics(None)  # the object's ebpf_exporter YAML, once configured
        self.gadget_yaml: gadget_yaml.GadgetYaml | None = (
            None  # an Inspektor Gadget object's, once configured
        )
        self._passed_over: dict[str, str] = {}  # program -> why, when it failed to attach
        self._load_refused: dict[str, str] = {}  # program -> why the kernel refused to load it
        self._iterator_text: dict[str, str | bytes] = {}  # as read when the Runner stopped
        self.tracefs_mounted: str | None = None  # where this Runner mounted it
        self.tracefs_problem: str | None = None  # why it is missing
        self._previous: dict[tuple, MapReport] = {}  # the last reading, for differences
        self.events: list[tuple[str, Record | bytes]] = []
        self._on_event = on_event or (lambda m, r: self.events.append((m, r)))
        self._on_pairing = on_pairing or (lambda stream: None)
        self._stopped = False
        self._markers: Gadget | None = None
        self.objfile = ObjectFile(path)  # read once, for every load
        self.now = Attempt()
        self._start()

    def _start(self) -> None:
        """The lifecycle (``Tool.__init__``), once; again, with a new load,
        when a chosen twin failed to attach and another can take its place,
        or when the kernel refused to load one program (the others may run)
        (libbpf loads all programs of an object at once: the choice is made
        before load)."""
        while True:
            self.now = Attempt()
            try:
                super().__init__()
            except BPFError as e:  # Tool.__init__ closed the object
                self.now.sources.close()
                refused = refused_program(e)
                if refused is None or refused[0] in self._load_refused:
                    raise
                self._load_refused[refused[0]] = refused[1]
                continue
            except BaseException:
                self.now.sources.close()
                raise
            if not self.now.passed_over:
                return
            self._passed_over.update(self.now.passed_over)  # chosen twins failed to attach
            self.close()

    def open(self) -> BPFObject:
        return self.objfile.open()

    def configure(self, obj: BPFObject) -> None:
        super().configure(obj)
        now = self.now
        skip = list(self._skip or ()) + list(self._load_refused)
        set_section_types(obj)
        self.cgroup = check_cgroup(obj, self._cgroup_spec)
        self.interfaces = check_sockets(obj, self._socket_spec)
        now.selection = choose(obj, self._programs, skip, self._passed_over, self.objfile.kernel_has)
        check_perf_events(obj, self._perf_events)
        now.targets = {**uprobe_targets(obj, self._uprobe_specs), **usdt_targets(obj, self._usdt_specs)}
        libraries, missing = library_targets(obj, now.targets)
        now.targets.update(libraries)
        now.not_attached = list(now.selection.refused)
        for name, why in missing.items():  # not loaded: nowhere to attach
            obj.programs[name].autoload = False
            now.not_attached.append(NotAttached(name, obj.programs[name].section, why))
        for name, why in self._load_refused.items():
            now.not_attached.append(NotAttached(name, obj.programs[name].section, why))
        ig = gadget.markers(obj.btf)
        given_gadget = bool(ig) and self._config not in (None, CONFIG_AUTO)  # --config names its gadget.yaml
        self.metrics = exporter_maps.setup(obj, self.path, None if given_gadget else self._config)
        kaddrs = kaddr_settings(self.metrics.config) if self.metrics.config else {}
        self.gadget_yaml, defaults, units = self._gadget_yaml(obj, ig, given_gadget)
        globals_, entries = {}, []
        for name, value in self._settings.items():
            entry = split_entry(name)
            if entry:
                entries.append(Entry(entry[0], entry[1], value))
            else:
                globals_[name] = value
        apply_settings(obj, {**kaddrs, **defaults, **globals_})
        now.entries = check_entries(obj, entries)
        calls = self.objfile.calls
        filled = set(globals_) | set(kaddrs) | {e.map for e in entries} | set(self.metrics.hidden())
        now.unfilled = unfilled(obj, calls, filled, zero_globals(obj, calls))
        now.sized = apply_max_entries(obj, self._max_entries)  # map -> the default it got
        now.view = view(self.objfile, obj, self._show, {**units, **self._units}, self._events, self.metrics)
        # a pinned map would outlive the run, and could be another program's
        now.unpinned = [(m.name, m.pin_path) for m in obj.maps.values() if m.pin_path]
        for m in obj.maps.values():
            m.pin_path = None

    def _gadget_yaml(self, obj: BPFObject, ig: Gadget, given: bool):
        """An Inspektor Gadget object's gadget.yaml (the one ``config``
        names, or the one in its directory), and what of it applies: its
        parameters' defaults (globals that are ``GADGET_PARAM``s) and the
        units of its datasources' histograms (unless ``units`` names one for
        every histogram)."""
        where = self._config if given else gadget_yaml.beside(self.path) if ig and self._config else None
        if not where:
            return None, {}, {}
        found = gadget_yaml.load(where)
        defaults = {k: v for k, v in found.defaults.items() if k in ig.params}
        found.not_applied += [
            f"defaultValue (parameter {k}: no such global)" for k in found.defaults if k not in defaults
        ]
        units = {}
        if None not in self._units:
            for name, unit in found.map_units(ig.mapiters).items():
                m = obj.maps.get(name)
                if m is not None and gadget.hist_slots_member(obj.btf, m.value_type_id):
                    units[name] = unit
        return found, defaults, units

    @property
    def choices(self) -> list[Choice]:
        return self.now.selection.choices

    def loaded(self, obj: BPFObject) -> None:
        super().loaded(obj)
        fill(obj, self.now.entries)  # map entries from settings, before any program runs
        self.metrics.fill(obj)  # the YAML's cgroup_id_map: kept in step by loop()
        self.now.stacks = Stacks(obj)
        # the readers before attach: no record is missed
        for plan in self.now.view.plans:
            if plan.kind == "events":
                self._read(plan.name, plan.struct)
        self.now.sources.ready()

    def attach(self, obj: BPFObject) -> None:
        """Every loaded program by its section, perf_event ones on each CPU's
        clock, iterators as iterators. One that cannot attach (for any reason)
        is listed in ``not_attached`` and the others run; a chosen twin that
        cannot is passed over for the next one (a new load). Fails when
        nothing attached."""
        now = self.now
        failed: dict[str, str] = {}  # chosen twins, and why they are passed over
        for prog in obj.programs.values():
            if not prog.autoload:
                continue
            if needs_tracefs(prog):
                self._tracefs()
            event = self._perf_events.get(prog.name)
            try:
                links = attach_program(
                    prog, self.frequency, now.targets.get(prog.name), self.cgroup, event, self.interfaces
                )
            except OSError as e:
                missed = not_attached(prog, e, self.tracefs_problem is not None, event)
                why = missed.reason
                if prog.name in now.selection.fallbacks:
                    for twin in now.selection.fallbacks[prog.name]:
                        failed.setdefault(twin, f"passed over with {prog.name}")
                    failed[prog.name] = f"failed to attach: {why}"
                else:
                    now.not_attached.append(missed)
                continue
            now.links += links
            now.attached.append(prog.name)
            if prog.type_name == "perf_event" and event is None and perf_event_of(prog.section) is None:
                self.clock_sampled.append(prog.name)
            if is_iterator(prog):
                now.iterator_links[prog.name] = links[0]
            if is_socket_filter(prog):
                now.socket_filters.append((prog.name, prog.section))
        if failed:  # loaded again without them (_start)
            now.passed_over = failed
            return
        if not now.attached:
            extra = self.tracefs_problem and f"{self.tracefs_problem.split(', and ', 1)[-1]}; {TRACEFS_HOW}"
            if not extra and any(s.startswith(".struct_ops") for s in self.objfile.facts.sections):
                extra = (
                    "it is a struct_ops object (a BPF scheduler, a TCP congestion control...): "
                    "the kernel calls its programs once its struct_ops map is registered, which "
                    "would install them system-wide; run does not"
                )
            raise NothingAttached(obj.name, now.not_attached, extra)
        # maps only programs that did not attach fill (a demo's USDT probes)
        filled = {u.name for u in now.unfilled} | {e[0] for e in now.entries} | set(self.metrics.hidden())
        now.unfilled += orphaned(obj, self.objfile.calls, set(now.attached), filled)

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
        it = self.markers.iterators.get(program)
        if it is None or find_struct(self.obj, it.struct) is None:
            return _text_or_bytes(data)
        types, tid = struct_types(self.obj, it.struct)
        layout = types.layout(tid)
        if layout.record is None or not layout.size or len(data) % layout.size:
            return _text_or_bytes(data)
        meanings = self.objfile.meanings(self.obj).get(SEQ_WRITE, {}).get(RECORD)
        present, size = presenter(types, tid, meanings=meanings), layout.size
        return [present(layout.decode(data[i : i + size])) for i in range(0, len(data), size)]

    @property
    def markers(self) -> Gadget:
        """Inspektor Gadget's markers in the object (empty for other objects)."""
        if self._markers is None:
            self._markers = gadget.markers(self.obj.btf)
        return self._markers

    @property
    def supplied(self) -> list[str]:
        """Types added to the kernel's BTF for the object's CO-RE, as its own loader adds them."""
        return self.objfile.supplied

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
        once (``pyrunq.bpf.events.struct_of_size``), and ``on_pairing(stream)``
        hears of it, or that records stay bytes."""
        obj, objfile, stacks = self.obj, self.objfile, self.now.stacks
        assert stacks is not None
        stream = self.now.streams[name] = Stream(name, None)
        perf = obj.maps[name].type != RINGBUF

        def pair(size: int) -> tuple[str | None, list[str]]:
            found, _ = struct_of_size(obj, size, perf, objfile.candidates(obj))
            if not found:
                stream.dwarf = objfile.dwarf() is not None
            return found, [] if found else objfile.nameable(obj)

        decode = RecordDecoder(
            obj.btf,
            stream,
            struct_name,
            lambda s: struct_types(obj, s),
            pair,
            self._on_pairing,
            stacks.members,
            stacks.name,
            objfile.host_order_ipv4,
            objfile.meanings(obj).get(name, {}).get(RECORD),
        )
        on_event = self._on_event
        span = self.metrics.span(name)
        # ebpf_exporter's tracing span: its YAML's labels are the columns
        records = decode if span is None else SpanDecoder(stream, span, decode)
        self.now.sources.add(obj, name, lambda data: on_event(name, records(data)))

    def poll(self, timeout: float | None = 0, limit: int = 4096) -> int:
        """Wait up to ``timeout`` seconds, then hand over the records of every
        event map (at most ``limit`` from each); 0 if there is none."""
        return self.now.sources.poll(timeout, limit)

    def fileno(self) -> int | None:
        """Readable when records wait in any event map; None without one."""
        return self.now.sources.fileno()

    @property
    def lost(self) -> int:
        """Records the perf buffers dropped so far (a ring buffer cannot tell)."""
        return sum(self.now.sources.lost.values())

    def lost_by_map(self) -> dict[str, int]:
        """Perf event array -> the records its perf buffer dropped so far."""
        return self.now.sources.lost

    def maps(self, delta: bool = False) -> list[MapReport]:
        """The hash and array maps of the view (``self.view``), then the .bss and
        .data globals, read as their plans say. ``delta``: what happened since
        the previous ``delta`` reading (the first: since load), by
        ``difference``; the kernel's maps are left as they are."""
        plans, reports = [], []
        for plan in self.now.view.read:
            report = read(self.obj, plan)
            if plan.shown or reveals(report):
                plans.append(plan)
                reports.append(report)
        if delta:
            previous, self._previous = self._previous, {(r.section, r.name): r for r in reports}
            reports = [difference(r, previous.get((r.section, r.name))) for r in reports]
        reports = [self._name_stacks(r, p) for r, p in zip(reports, plans)]
        if self.gadget_yaml is None:
            return reports
        # labelled as its loader prints a datasource's metrics
        keys = self.gadget_yaml.metric_keys(self.markers.mapiters)
        return [gadget_yaml.metric_labels(r, keys[r.name]) if r.name in keys else r for r in reports]

    def _name_stacks(self, report: MapReport, plan) -> MapReport:
        """Stack ids and addresses as function names (``stacks``), after the
        difference was taken by id."""
        stacks = self.now.stacks
        if report.section is not None or not plan.stacks or stacks is None:
            return report
        key, value = plan.key_stacks, plan.value_stacks
        if report.kind == "hist":  # the slots and labels of equal stacks added, as entries' values are
            packed = [(k, (slots, labels)) for k, slots, labels in report.entries]
            named_entries, merged = stacks.name_entries(packed, key, None)
            entries = [(k, slots, labels) for k, (slots, labels) in named_entries]
        else:
            entries, merged = stacks.name_entries(report.entries, key, value)
        kernel = [name for name in plan.stacks if name in stacks.kernel_members]
        return dataclasses.replace(
            report, entries=entries, stacks=plan.stacks, merged=merged, kernel_stacks=kernel
        )

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
        # the cgroups of an ebpf_exporter YAML's cgroup_id_map, as they come and go
        resync = now + SYNC_EVERY if self.metrics.cgroups else None
        while True:
            handled = self.poll(0)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if resync is not None and now >= resync:
                self.metrics.sync()
                resync = now + SYNC_EVERY
            if tick is not None and now >= tick:
                texts = self.iterators() if on_iterators else {}  # first: what they write is read next
                on_maps(self.maps(delta=not cumulative))
                if on_iterators:
                    on_iterators(texts)
                tick = max(tick + (interval or 0.0), now)
            waits = [t - now for t in (deadline, tick, resync) if t is not None]
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
        self.now.sources.consume()

    def close(self) -> None:
        self.now.sources.close()
        super().close()
        self.objfile.close()


@dataclasses.dataclass
class RunResult:
    events: list  # (event map, Record or bytes) pairs, unless on_event took them
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
    duration: float | None = None,
    interval: float | None = None,
    on_maps=None,
    cumulative: bool = False,
    **options,
) -> RunResult:
    """Load ``path``, set its globals (``set``: as Runner's ``settings``),
    attach its programs and collect records until ``duration`` seconds pass
    or Ctrl-C; then detach and return what the event maps, other maps and
    globals held (totals). ``on_maps(reports)``, every ``interval`` seconds,
    gets what happened in that interval (``cumulative``: the totals so
    far). ``options``: as Runner takes them (``events``, ``on_event``,
    ``programs``, ``skip``, ``uprobes``, ``usdts``, ``cgroup``,
    ``perf_events``, ``frequency``, ``sockets``, ``max_entries``, ``show``,
    ``units``, ``config``, ``allow_untrusted``). Needs root (or CAP_BPF and
    CAP_PERFMON; socket filters CAP_NET_RAW too)."""
    with Runner(path, settings=set, **options) as r:
        try:
            r.loop(duration, interval, on_maps, cumulative=cumulative)
        except KeyboardInterrupt:
            r.stop()
        return RunResult(
            r.events,
            r.maps(),
            r.not_attached,
            r.lost_by_map(),
            dict(r.view.hidden),
            dict(r.sized),
            r.iterators(),
            r.choices,
        )
