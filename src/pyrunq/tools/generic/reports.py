"""What the generic tool reads from an object's maps and globals: reports of
their entries (histograms as slot lists, per-CPU values as one where they
can be, ``measures``), and the difference between two readings (each
interval's own counts)."""

from __future__ import annotations

import dataclasses

from ...bpf import ARRAY_TYPES, BPFObject
from ...bpf import btf as B
from .introspect import global_hist_shape, hist_shape, slots_member, unit_of
from .present import presenter
from .measures import PerCpu, is_zero, merge_percpu, minus


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


def read_map(obj: BPFObject, m, unit: str | None = None) -> MapReport:
    """Map ``m`` decoded by the rules in ``introspect`` (``unit``: of its histograms,
    instead of the one its name suggests)."""
    btf = obj.btf
    unit = unit or unit_of(m.name)
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
        return MapReport(m.name, "hist", [(None, slots, {})], unit)
    if shape:
        hists = []
        member = slots_member(btf, btf.resolve(m.value_type_id)) if shape == "slots" else None
        for k, v in items:
            slots = v if member is None else getattr(v, member)
            labels = (
                {}
                if member is None
                else {f: x for f, x in presenter(btf, m.value_type_id)(v).items() if f != member}
            )
            hists.append((present_key(k), list(slots), labels))
        return MapReport(m.name, "hist", hists, unit)
    present_one = presenter(btf, m.value_type_id)

    def present_value(v):
        return [present_one(x) for x in v] if isinstance(v, PerCpu) else present_one(v)

    if m.type in ARRAY_TYPES:
        items = [(k, v) for k, v in items if not is_zero(v)]
    return MapReport(m.name, "entries", [(present_key(k), present_value(v)) for k, v in items])


def read_global(obj: BPFObject, section: str, name: str, tid: int, unit: str | None = None) -> MapReport:
    """A .bss/.data global, read live (through its section's map once loaded),
    as a MapReport: a histogram by ``introspect.global_hist_shape``, an array
    element by element (all-zero ones left out), anything else one entry."""
    btf = obj.btf
    value = getattr(obj, section[1:])[name]
    shape = global_hist_shape(btf, name, tid)
    rid = btf.resolve(tid)
    unit = unit or unit_of(name)
    if shape in ("index", "struct"):
        slots = value if shape == "index" else value.slots
        labels = (
            {} if shape == "index" else {f: x for f, x in presenter(btf, rid)(value).items() if f != "slots"}
        )
        return MapReport(name, "hist", [(None, list(slots), labels)], unit, section)
    if shape:  # one histogram per index: those with counts
        elem = btf.array(rid)[0]
        hists = []
        for i, v in enumerate(value):
            slots = v if shape == "value" else v.slots
            labels = (
                {} if shape == "value" else {f: x for f, x in presenter(btf, elem)(v).items() if f != "slots"}
            )
            if any(slots):
                hists.append((i, list(slots), labels))
        return MapReport(name, "hist", hists, unit, section)
    if btf.kind(rid) == B.ARRAY and isinstance(value, tuple):  # not char[]: that is text
        present = presenter(btf, btf.array(rid)[0])
        return MapReport(
            name, "entries", [(i, present(v)) for i, v in enumerate(value) if not is_zero(v)], None, section
        )
    return MapReport(name, "entries", [(None, presenter(btf, tid)(value))], None, section)


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


def frozen(key):
    """A presented key (dicts and lists for struct and array keys) as something hashable."""
    if isinstance(key, dict):
        return tuple((k, frozen(v)) for k, v in key.items())
    if isinstance(key, list):
        return tuple(frozen(v) for v in key)
    return key


# -- running -------------------------------------------------------------------
