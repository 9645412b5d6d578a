"""How the generic tool shows each map and global of an object, and why:
one ``MapPlan`` each, decided once, before load, from the object's BTF and
its programs' helper calls (``bytecode``). ``reports`` applies the plans to
what the maps hold; ``describe`` (``pyrunq inspect``) shows them.

- Event maps (ring buffers, perf event arrays): their records, decoded by
  the struct ``pyrunq.bpf.events`` pairs them with (else by the first
  record's size).
- Histograms (``shapes``), in maps and in globals: log2, or linear where
  the programs' instructions show it (``shapes.scale_of``).
- Other hash and array maps, entry by entry; array elements that are all
  zero are left out. Per-CPU values are summed across CPUs (``measures``).
- Results kept in globals: every ``.bss`` and ``.data`` variable but those
  that hold pointers (``.rodata`` is configuration): an array element by
  element (all-zero elements left out), anything else as one value.
- What is shown by default: event maps, histograms, globals, and the other
  hash and array maps but working state, which is: a map the object's own
  programs delete entries from (start times kept from one probe to the
  next) unless one of them adds to it (reads and writes it without
  deleting: a per-process summary that another program drops when the
  process exits is a result), or one that a program only writes and
  another only reads (start times never deleted), libbpf's own
  (``__bpf_usdt_specs``...), and, in an object that keeps histograms,
  every other map (what the histograms are made of) but those whose keys
  are kernel addresses (counts by function). Working state is shown when
  named, and every map when the object has nothing else to show. A plan
  says why a map is hidden; nothing is hidden without a reason the front
  ends can say.
- Inspektor Gadget's gadgets (``gadget``): the struct its ``GADGET_TRACER``
  names decodes its records; a ``GADGET_MAPITER`` map is shown; the gadget
  library's own maps (scratch buffers, filters, lost-sample counters) are
  not.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from ...bpf import ARRAY_TYPES, BATCH_TYPES, EVENT_TYPES, BPFObject
from ...bpf import btf as B
from ...bpf.events import event_map_structs, find_struct, through_pointers
from ...errors import UsageError
from . import exporter_maps, gadget, origins
from .bytecode import MAP_DELETE_ELEM, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, Calls, writes_trace_pipe
from .objfile import ObjectFile
from .present import is_kernel_address, meaning_presenter, presenter
from .settings import value_kind
from .shapes import (
    LOG2,
    Scale,
    global_hist_shape,
    map_hist_shape,
    scale_of,
    slot_array,
    slots_member,
    unit_of,
)
from .stacks import STACK_TRACE, StackMembers, stack_members

# The parameters UsageErrors name (``UsageError.param``), in the Python API's
# words; a front end with a flag for one (the CLI's --map, --unit) says its flag.
SHOW, UNITS = "show", "units"
RESULT_SECTIONS = (".bss", ".data")  # .rodata is configuration

# Why a map is hidden (working state) or shown
DELETED = "working state: its programs delete its entries"
HANDED_OVER = "working state: one program writes it, another only reads it"
BESIDE_HISTOGRAMS = "working state beside the object's histograms"
UNLESS_FUNCTIONS = f"{BESIDE_HISTOGRAMS}, unless its keys are kernel functions (counts by function)"
LIBBPF_OWN = "libbpf's own: where USDT arguments are"
NAMED = "named to be shown"
RESULTS = "results: its programs keep them there"
SUMMARY = "results: a program adds to its entries, another deletes them (as a process exits)"
BY_ADDRESS = "results: counts by kernel address beside the histograms"
ONLY_MAPS = "the object shows nothing else"
HISTOGRAM = "log2 histograms"
LINEAR = "linear histograms: its programs count a value read, or divided by a constant, into its slots"
EVENTS = "records its programs send"
RESULT_GLOBAL = "a result kept in a global (.bss/.data)"
# where a histogram's unit comes from, when not from --unit, a YAML or its name
MEASURED = "durations its programs count into its slots (bpf_ktime_get_ns() differences{divided})"
_DIVIDED = {"nsecs": "", "usecs": " / 1000", "msecs": " / 1000000", "secs": " / 1000000000"}


@dataclasses.dataclass(frozen=True)
class MapPlan:
    """How one map, or one .bss/.data global (``section`` says which), is
    read and shown. ``kind``: "events" (records), "hist" (histograms: what
    their slots hold is ``scale``) or "entries"; ``shape``: how a histogram is held (``shapes``: "index",
    "value", "slots", "struct"), or for entries "array" (elements by index,
    all-zero ones left out), "hash" or "value" (a global's own value);
    ``shown`` by default or not, and ``why``; ``key``/``value``: the
    presenters of its keys and values (for a histogram of structs: of the
    struct, whose other members are the histogram's labels); the stack
    members of its keys and values (``stacks``); ``struct``: of an event
    map, the struct its records are decoded by when known before any record
    (and ``source``, "BTF" or "DWARF")."""

    name: str
    kind: str
    shape: str
    shown: bool
    why: str
    section: str | None = None
    unit: str | None = None
    key: Callable | None = None
    value: Callable | None = None
    key_stacks: StackMembers | None = None
    value_stacks: StackMembers | None = None
    type_id: int = 0  # a global's type
    struct: str | None = None
    source: str | None = None
    slots: str = "slots"  # the member of a histogram's struct that holds its slots
    # hidden, but shown when every key read is a kernel function (a bare
    # 64-bit key beside histograms: a count by function, or a start time)
    reveal: bool = False
    exporter: exporter_maps.Metrics | None = None  # an ebpf_exporter map (shape "exporter")
    shown_as: str | None = None  # what inspect says of it, when its shape decides it
    scale: Scale = LOG2  # what a histogram's slots hold
    unit_why: str | None = None  # where a histogram's unit comes from: its programs (``MEASURED``)

    @property
    def stacks(self) -> list[str]:
        """The names of its key's and value's members that hold stacks."""
        return [
            n
            for part in (self.key_stacks, self.value_stacks)
            if part
            for n in part.ids + part.inline + part.user
        ]


@dataclasses.dataclass
class View:
    """The plans of an object's maps (in object order) and result globals,
    and whether its programs write lines with bpf_printk (``trace_pipe``:
    they go to tracefs, not to anything shown here)."""

    plans: list[MapPlan]
    trace_pipe: bool = False

    @property
    def shown(self) -> list[MapPlan]:
        """What is shown at each interval: shown maps, then globals."""
        return [p for p in self.plans if p.shown and p.kind != "events"]

    @property
    def read(self) -> list[MapPlan]:
        """What is read at each interval: ``shown``, and the hidden maps
        whose keys may show them (``MapPlan.reveal``), in object order."""
        return [p for p in self.plans if (p.shown or p.reveal) and p.kind != "events"]

    @property
    def maps(self) -> list[str]:
        """The hash and array maps shown."""
        return [p.name for p in self.shown if p.section is None]

    @property
    def globals(self) -> list[MapPlan]:
        return [p for p in self.plans if p.section is not None]

    @property
    def hidden(self) -> dict[str, str]:
        """Map not shown -> why."""
        return {p.name: p.why for p in self.plans if not p.shown and p.section is None}

    @property
    def histograms(self) -> list[str]:
        return [p.name for p in self.plans if p.kind == "hist"]

    def plan(self, name: str, section: str | None = None) -> MapPlan:
        return next(p for p in self.plans if p.name == name and p.section == section)


def working_state(calls: list[Calls]) -> dict[str, str]:
    """Maps the object's own programs keep state in (map -> why): those they
    delete entries from (runqslower's start times: read once, then
    deleted), and those one program only writes and another only reads
    (syscount's start times, never deleted). A program that both reads and
    writes a map, and does not delete from it, adds to it: results, even
    when another program deletes its entries (a per-process summary,
    dropped when the process exits)."""
    use = _uses(calls)
    state = dict.fromkeys(use["deleted"] - use["added"], DELETED)
    for m in use["written only"] & use["read only"]:
        state.setdefault(m, HANDED_OVER)
    return state


def summaries(calls: list[Calls]) -> set[str]:
    """The maps one program adds to (reads and writes) and another deletes
    from: results kept per process, thread or object, dropped when it goes."""
    use = _uses(calls)
    return use["deleted"] & use["added"]


def _uses(calls: list[Calls]) -> dict[str, set[str]]:
    """The maps some program deletes from ("deleted"), adds to (reads and
    writes, no delete: "added"), only writes or only reads."""
    use: dict[str, set[str]] = {"deleted": set(), "added": set(), "written only": set(), "read only": set()}
    for section in calls:
        for m, helpers in section.maps.items():
            if MAP_DELETE_ELEM in helpers:
                use["deleted"].add(m)
            elif {MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM} <= helpers:
                use["added"].add(m)
            elif helpers == {MAP_UPDATE_ELEM}:
                use["written only"].add(m)
            elif helpers == {MAP_LOOKUP_ELEM}:
                use["read only"].add(m)
    return use


def result_globals(obj: BPFObject) -> list[tuple[str, str, int]]:
    """(section, name, type id) of each .bss/.data variable that holds a result:
    static ones (a function's locals) and pointers (kept to keep a type in BTF)
    left out."""
    out = []
    for section in RESULT_SECTIONS:
        held = getattr(obj, section[1:])
        for name, tid, _, _ in obj.btf.variables(section, static=False):
            if name in held and not through_pointers(obj.btf, tid)[1]:
                out.append((section, name, tid))
    return out


def view(
    objfile: ObjectFile,
    obj: BPFObject,
    show=(),
    units: dict | None = None,
    events: dict | None = None,
    metrics=None,
) -> View:
    """The plans of ``obj`` (a load of ``objfile``): the default view, plus
    the maps named in ``show`` ("all": every map). ``units``: histogram name
    (None: all of them) -> the unit shown instead of the one its name
    suggests; ``events``: event map -> the struct its records are;
    ``metrics`` (``exporter_maps.Metrics``): ebpf_exporter's maps, as its
    YAML (or, without one, their shape) says: results, never working state."""
    btf = obj.btf
    metrics = metrics or exporter_maps.Metrics(None)
    stack_map = any(m.type == STACK_TRACE for m in obj.maps.values())
    batch = [m for m in obj.maps.values() if m.type in BATCH_TYPES]
    results = result_globals(obj)
    exporter = {m.name for m in batch if exporter_maps.shape(obj, m, metrics)}
    shapes = {m.name: None if m.name in exporter else map_hist_shape(btf, m) for m in batch}
    hists = [name for name, shape in shapes.items() if shape]
    hists += [m.name for m in batch if m.name in exporter and exporter_maps.is_histogram(obj, m, metrics)]
    hists += [name for _, name, tid in results if global_hist_shape(btf, name, tid)]
    ig = gadget.markers(btf)  # Inspektor Gadget's: its results and its machinery
    machinery = ig.machinery(list(obj.maps)) if ig else {}
    hidden = {
        k: v for k, v in _hidden(btf, objfile.calls, batch, hists, ig, machinery).items() if k not in exporter
    }
    hidden.update(
        (k, v) for k, v in metrics.hidden().items() if k in obj.maps and obj.maps[k].type in BATCH_TYPES
    )
    kept = summaries(objfile.calls)
    anything = results or any(m.type in EVENT_TYPES for m in obj.maps.values()) or len(hidden) < len(batch)
    why_shown = {} if anything else dict.fromkeys(hidden, ONLY_MAPS)
    if not anything:
        hidden = {}  # nothing else to show
    for name in [show] if isinstance(show, str) else list(show or ()):
        if name == "all":
            why_shown.update((n, NAMED) for n in hidden)
            hidden = {}
        elif name not in obj.maps or obj.maps[name].type not in BATCH_TYPES | EVENT_TYPES:
            readable = [m.name for m in obj.maps.values() if m.type in BATCH_TYPES | EVENT_TYPES]
            raise UsageError(
                f"{name}: no hash, array or event map {name!r} in {obj.name} "
                f"(has: {', '.join(readable) or 'none'}; or all)",
                SHOW,
            )
        elif hidden.pop(name, None) is not None:
            why_shown[name] = NAMED
    units = _checked_units(units, hists, obj.name)

    measured = objfile.units(obj)

    def unit(name: str, section: str | None = None) -> str:
        """Given (``units``), else its name's, else what its programs measure."""
        named = unit_of(name)
        given = units.get(name) or units.get(None)
        return given or (named if named != "value" else measured.get(_where(name, section), named))

    def unit_why(name: str, section: str | None = None) -> str | None:
        found = measured.get(_where(name, section))
        if found is None or unit(name, section) != found or units.get(name) or units.get(None):
            return None
        return MEASURED.format(unit=found, divided=_DIVIDED[found])

    pairing = record_structs(obj, events, objfile.kernel_has)
    plans = []
    for m in obj.maps.values():
        if m.type in EVENT_TYPES:
            plans.append(_event_plan(obj, m.name, pairing[m.name]))
        elif m.name in exporter:
            shown = m.name not in hidden
            why = why_shown.get(m.name) or exporter_maps.WHY
            given = units.get(m.name) or units.get(None)  # else the YAML's, or the name's
            kind = "hist" if m.name in hists else "entries"
            text = exporter_maps.describe(obj, m, metrics)
            plans.append(
                MapPlan(m.name, kind, "exporter", shown, why, None, given, exporter=metrics, shown_as=text)
            )
        elif m.type in BATCH_TYPES:
            shape = shapes[m.name]
            shown = m.name not in hidden
            why = hidden.get(m.name) or why_shown.get(m.name) or (HISTOGRAM if shape else RESULTS)
            if why == RESULTS and m.name in kept:
                why = SUMMARY
            elif why == RESULTS and hists and address_key(btf, m.key_type_id) == "named":
                why = BY_ADDRESS
            meanings = objfile.meanings(obj).get(m.name, {})
            plan = _map_plan(
                btf, m, shape, shown, why, unit(m.name), stack_map, objfile.host_order_ipv4, meanings
            )
            unit_from = unit_why(m.name) if shape else None
            plans.append(dataclasses.replace(plan, reveal=why == UNLESS_FUNCTIONS, unit_why=unit_from))
    found = objfile.meanings(obj)
    for section, name, tid in results:
        index = found.get(origins.global_name(section, name), {}).get(origins.INDEX, {}).get(0)
        plan = _global_plan(btf, section, name, tid, unit(name, section), objfile.host_order_ipv4, index)
        measured_why = unit_why(name, section) if plan.kind == "hist" else None
        plans.append(dataclasses.replace(plan, unit_why=measured_why))
    return View([_scaled(obj, p, objfile.calls) for p in plans], writes_trace_pipe(objfile.calls))


def _where(name: str, section: str | None) -> str:
    """Where ``origins`` puts what it finds of a map, or of a global of ``section``."""
    return name if section is None else origins.global_name(section, name)


def _scaled(obj: BPFObject, plan: MapPlan, calls: list[Calls]) -> MapPlan:
    """A histogram's plan with what its slots hold, from the programs'
    stores and atomic adds into it (``shapes.scale_of``)."""
    if plan.kind != "hist" or plan.shape == "exporter":
        return plan
    btf = obj.btf
    writes = [w for c in calls for w in c.writes]
    if plan.section is None:
        m = obj.maps[plan.name]
        size, slots = slot_array(btf, m.value_type_id, plan.shape, plan.slots)
        keyed = plan.shape == "index"  # an array map looked up by slot
        mine = [w for w in writes if w.target == ("map", m.name)]
        scale = scale_of(mine, size, m.max_entries if keyed else slots, keyed)
    else:
        start, size = next((o, n) for name, _, o, n in btf.variables(plan.section) if name == plan.name)
        mine = [w for w in writes if w.target[0] == plan.section and start <= w.target[1] < start + size]
        scale = scale_of(mine, *slot_array(btf, plan.type_id, plan.shape, plan.slots), False)
    if scale.kind != "linear":
        return plan
    return dataclasses.replace(plan, scale=scale, why=LINEAR if plan.why == HISTOGRAM else plan.why)


def record_structs(obj: BPFObject, explicit: dict | None = None, kernel_has=None) -> dict[str, str | None]:
    """``event_map_structs``, and where the object is an Inspektor Gadget
    gadget, the struct its ``GADGET_TRACER`` names for a map not in ``explicit``."""
    out = event_map_structs(obj, explicit, kernel_has)
    for ring, struct_name in gadget.markers(obj.btf).tracers.items():
        if ring in out and ring not in (explicit or {}) and find_struct(obj, struct_name) is not None:
            out[ring] = struct_name
    return out


def _hidden(
    btf, calls: list[Calls], batch: list, hists: list[str], ig: gadget.Gadget, machinery: dict[str, str]
) -> dict[str, str]:
    """Map -> why it is working state (the rules in the module docstring)."""
    state = working_state(calls)
    hidden = {}
    for m in batch:
        if m.name in hists or m.name in ig.mapiters:
            continue
        if m.name.startswith("__bpf_"):  # usdt.bpf.h's __bpf_usdt_specs...
            hidden[m.name] = LIBBPF_OWN
        elif m.name in machinery:
            hidden[m.name] = machinery[m.name]
        elif m.name in state:
            hidden[m.name] = state[m.name]
        elif hists:
            address = address_key(btf, m.key_type_id)
            if address != "named":
                hidden[m.name] = UNLESS_FUNCTIONS if address == "bare" else BESIDE_HISTOGRAMS
    return hidden


def address_key(btf, tid: int) -> str | None:
    """Whether a map's keys may be kernel addresses (a function counted by
    its address, as bpftrace's ``@[ksym(ip)]``: results, not what a
    histogram is made of): "named" when the key is a struct with a member
    named for one (``present.named_number``'s rule: ``ip``, ``func``,
    ``caller``...); "bare" when it is a bare unsigned 64-bit integer (only
    its values can tell: ``MapPlan.reveal``); else None."""
    tid = btf.resolve(tid) if tid else 0
    if not tid:
        return None
    if btf.kind(tid) == B.INT:
        return "bare" if is_kernel_address("", btf.size(tid), btf.int_info(tid)[1]) else None
    if btf.kind(tid) != B.STRUCT:
        return None
    for name, member, _, bits in btf.fields(tid):
        member = btf.resolve(member)
        if not bits and btf.kind(member) == B.INT and name:
            if is_kernel_address(name, btf.size(member), btf.int_info(member)[1]):
                return "named"
    return None


def _checked_units(units: dict | None, hists: list[str], obj_name: str) -> dict:
    units = dict(units or {})
    for name, unit in units.items():
        what = f"{unit}" if name is None else f"{name}={unit}"
        if not re.fullmatch(r"[A-Za-z][\w/]*", str(unit)):
            raise UsageError(f"{what}: a unit is a word (usecs, msecs, nsecs, bytes...)", UNITS)
        if name is not None and name not in hists:
            known = ", ".join(hists) or "none"
            raise UsageError(f"{what}: no histogram {name!r} in {obj_name} (has: {known})", UNITS)
    return units


def _event_plan(obj: BPFObject, name: str, struct_name: str | None) -> MapPlan:
    source = None
    if struct_name:
        found = find_struct(obj, struct_name)
        source = "BTF" if found is None or found[0] is obj.btf else "DWARF"
    return MapPlan(name, "events", "records", True, EVENTS, struct=struct_name, source=source)


def _map_plan(
    btf,
    m,
    shape: str | None,
    shown: bool,
    why: str,
    unit: str,
    stack_map: bool,
    host_order: bool,
    meanings: dict[str, dict[int, str]],
) -> MapPlan:
    key = presenter(btf, m.key_type_id, host_order=host_order, meanings=meanings.get(origins.KEY))
    value = presenter(btf, m.value_type_id, host_order=host_order, meanings=meanings.get(origins.VALUE))
    key_stacks = stack_members(btf, m.key_type_id, stack_map)
    # a histogram's value is its slots: a histogram per stack is named by its key
    value_stacks = None if shape else stack_members(btf, m.value_type_id, stack_map)
    if shape:
        member = slots_member(btf, btf.resolve(m.value_type_id)) if shape == "slots" else None
        return MapPlan(
            m.name, "hist", shape, shown, why, None, unit, key, value, key_stacks, slots=member or "slots"
        )
    entries = "array" if m.type in ARRAY_TYPES else "hash"
    return MapPlan(m.name, "entries", entries, shown, why, None, None, key, value, key_stacks, value_stacks)


def _global_plan(
    btf, section: str, name: str, tid: int, unit: str, host_order: bool, index: str | None = None
) -> MapPlan:
    """``index``: what an array's index holds (``origins``), which names it."""
    shape = global_hist_shape(btf, name, tid)
    rid = btf.resolve(tid)
    key = meaning_presenter(index) if index and btf.kind(rid) == B.ARRAY else None
    if shape:
        present = presenter(btf, rid if shape == "struct" else btf.array(rid)[0], host_order=host_order)
        return MapPlan(name, "hist", shape, True, HISTOGRAM, section, unit, key, present, type_id=tid)
    if btf.kind(rid) == B.ARRAY and value_kind(btf, rid) != "string":
        present = presenter(btf, btf.array(rid)[0], host_order=host_order)
        return MapPlan(
            name, "entries", "array", True, RESULT_GLOBAL, section, None, key, present, type_id=tid
        )
    return MapPlan(
        name,
        "entries",
        "value",
        True,
        RESULT_GLOBAL,
        section,
        None,
        None,
        presenter(btf, tid, host_order=host_order),
        type_id=tid,
    )


def reveals(report) -> bool:
    """Whether a hidden map's reading shows it (``MapPlan.reveal``): it has
    entries, and every key is a kernel function (``present`` named it)."""
    return bool(report.entries) and all(isinstance(key, str) for key, *_ in report.entries)
