"""What the generic tool reads from an object's maps and globals, as their
plans (``plan``) say: reports of their entries (histograms as slot lists,
per-CPU values as one where they can be, ``measures``), and the difference
between two readings (each interval's own counts). Nothing is decided here."""

from __future__ import annotations

import dataclasses

from ...bpf import BPFObject
from .measures import PerCpu, frozen, is_zero, merge_percpu, minus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .plan import MapPlan


@dataclasses.dataclass
class MapReport:
    """One map, or one .bss/.data global (``section`` says which), at one
    moment. ``kind`` "entries": ``entries`` is [(key, value)] (a global that
    is not an array: one entry, key None; array elements by index);
    "hist": ``entries`` is [(key or None, slots, labels)] with ``unit``."""

    name: str
    kind: str
    entries: list
    unit: str | None = None
    section: str | None = None  # ".bss" or ".data" for a global; None for a map
    stacks: list = dataclasses.field(default_factory=list)  # key/value members that are stacks (names)
    kernel_stacks: list = dataclasses.field(default_factory=list)  # those of them that hold kernel stacks
    merged: int = 0  # entries added into others: their stacks name the same functions
    # ebpf_exporter's maps (``exporter_maps``): how its histograms' slots are
    # bucketed, which slot holds the sum, what one unit of a slot is in ``unit``
    buckets: object = None  # buckets.Buckets
    sum_slot: int | None = None
    scale: float = 1.0
    help: str | None = None  # the metric's help, from its YAML
    labelled: bool = False  # keys are the metric's labels (name -> value), from its YAML
    slot_scale: object = None  # what a histogram's slots hold (shapes.Scale; None: log2)


def read(obj: BPFObject, plan: MapPlan) -> MapReport:
    """What the map or global of ``plan`` holds now, as the plan says to show it."""
    if plan.shape == "exporter" and plan.exporter is not None:
        from . import exporter_maps

        return exporter_maps.read(obj, obj.maps[plan.name], plan.exporter, plan.unit, MapReport)
    if plan.section is None:
        report = _read_map(obj.maps[plan.name], plan)
    else:
        report = _read_global(getattr(obj, plan.section[1:])[plan.name], plan)
    if report.kind == "hist":
        report.slot_scale = plan.scale
    return report


def _read_map(m, plan: MapPlan) -> MapReport:
    items = [(k, merge_percpu(v) if m.percpu else v) for k, v in m.items()]
    try:
        items.sort(key=lambda kv: kv[0])
    except TypeError:
        pass
    key, value = plan.key or _plain, plan.value or _plain
    if plan.shape == "index":  # an array map, one element per slot
        slots = [0] * m.max_entries
        for k, v in items:
            slots[k] = v
        return MapReport(m.name, "hist", [(None, slots, {})], plan.unit)
    if plan.kind == "hist":
        hists = [(key(k), *_slots(v, plan.shape, value, plan.slots)) for k, v in items]
        return MapReport(m.name, "hist", hists, plan.unit)
    if plan.shape == "array":
        items = [(k, v) for k, v in items if not is_zero(v)]

    def present(v):
        return [value(x) for x in v] if isinstance(v, PerCpu) else value(v)

    return MapReport(m.name, "entries", [(key(k), present(v)) for k, v in items])


def _read_global(value, plan: MapPlan) -> MapReport:
    """A .bss/.data global, read live (through its section's map once loaded)."""
    name, section, present = plan.name, plan.section, plan.value or _plain
    index = plan.key or _plain  # an array's index, named where the object says what it holds
    if plan.shape in ("index", "struct"):
        return MapReport(name, "hist", [(None, *_slots(value, plan.shape, present))], plan.unit, section)
    if plan.kind == "hist":  # one histogram per index: those with counts
        hists = [(index(i), *_slots(v, plan.shape, present)) for i, v in enumerate(value)]
        return MapReport(name, "hist", [h for h in hists if any(h[1])], plan.unit, section)
    if plan.shape == "array" and isinstance(value, tuple):  # not char[]: that is text
        return MapReport(
            name,
            "entries",
            [(index(i), present(v)) for i, v in enumerate(value) if not is_zero(v)],
            None,
            section,
        )
    return MapReport(name, "entries", [(None, present(value))], None, section)


def _slots(value, shape: str | None, present, member: str = "slots") -> tuple[list, dict]:
    """(slots, labels) of one histogram: an integer array, or a struct whose
    ``member`` (``slots``, or an Inspektor Gadget's ``latency``...) is one
    and whose other members label it."""
    if shape in ("index", "value"):
        return list(value), {}
    return list(getattr(value, member)), {f: x for f, x in present(value).items() if f != member}


def _plain(v):
    return v


def difference(now: MapReport, before: MapReport | None) -> MapReport:
    """What happened between two readings of one map or global: measures
    (counts, histogram slots, sums: ``measures``) minus the earlier reading;
    entries that did not change left out (but a global's own value, key
    None); an entry whose sums went down or whose identities changed was
    restarted (deleted and made anew by the object's programs): shown as it
    is now. Nothing is deleted in the kernel."""
    old = {} if before is None else {frozen(e[0]): e for e in before.entries}
    out = []
    for entry in now.entries:
        key, value = entry[0], entry[1]
        prev = old.get(frozen(key))
        if prev is not None and value == prev[1] and key is not None:
            continue  # unchanged
        if prev is not None:
            delta, went_down = minus(value, prev[1])
            value = value if went_down else delta
        if now.kind == "hist" and key is not None and not any(value):
            continue
        out.append((key, value, *entry[2:]))
    return dataclasses.replace(now, entries=out)
