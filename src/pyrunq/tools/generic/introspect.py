"""What any CO-RE object declares, read from its own BTF, and the rules that
decide how the generic tool shows it:

- An event map ``M`` (a ring buffer or a perf event array) carries records
  of, in this order: the struct named by ``events={M: STRUCT}`` (``--event
  M=STRUCT``); ``struct M``; ``struct M`` without a trailing "s" (``events``
  -> ``struct event``); the only event struct (see below) when the object
  has one event map and one such struct. Otherwise records are shown as hex
  bytes.
- Event structs: named structs that a global variable points to (through
  qualifiers, typedefs and arrays too) and that no map uses as key or value.
  That is the idiom that keeps a record type in the object's BTF:
  ``const struct event *unused __attribute__((unused));``. A global that holds
  a struct by value is data, not an event type.
- Log2 histograms: a map whose value is a struct with an integer array member
  ``slots`` (libbpf-tools' ``struct hist``); or whose name contains "hist" or
  "slots" and whose value is an integer array; or an array map of integers
  named so, one element per slot. At most 63 slots. The unit comes from the
  name: ``_ns``/``_us``/``_ms``/``_bytes`` -> nsecs/usecs/msecs/bytes, else "value".
- Other hash and array maps are shown entry by entry; array elements that are
  all zero are left out. Per-CPU values are summed across CPUs.
"""

from __future__ import annotations

import re

from ...bpf import ARRAY_TYPES, BATCH_TYPES, DATA_SECTIONS, EVENT_TYPES, BPFObject
from ...bpf import btf as B
from ...errors import UsageError
from .objfile import open_object

MAX_HIST_SLOTS = 63  # what render_log2 can print
_UNITS = {"ns": "nsecs", "nsecs": "nsecs", "us": "usecs", "usecs": "usecs", "ms": "msecs",
          "msecs": "msecs", "bytes": "bytes", "kb": "kbytes", "kbytes": "kbytes"}
# How messages name what the caller passed, in the Python API's words; a
# front end with a flag for it (the CLI's --event) puts its flag in its place.
EVENT = "event"


def event_structs(obj: BPFObject) -> list[str]:
    """Names of the event structs (rule in the module docstring), in BTF order."""
    btf = obj.btf
    used = {btf.resolve(t) for m in obj.maps.values()
            for t in (m.key_type_id, m.value_type_id) if t}
    found: dict[int, str] = {}
    for section in DATA_SECTIONS:
        for _, tid, _, _ in btf.variables(section, static=False):
            tid, pointed = _through_pointers(btf, tid)
            if pointed and btf.kind(tid) == B.STRUCT and btf.name(tid) and tid not in used:
                found[tid] = btf.name(tid)
    return [found[t] for t in sorted(found)]


def _through_pointers(btf, tid: int) -> tuple[int, bool]:
    """The type under pointers and arrays, and whether a pointer was passed."""
    pointed = False
    while True:
        tid = btf.resolve(tid)
        kind = btf.kind(tid)
        if kind == B.PTR:
            tid, pointed = btf.pointee(tid), True
        elif kind == B.ARRAY:
            tid = btf.array(tid)[0]
        else:
            return tid, pointed


def event_map_structs(obj: BPFObject, explicit: dict[str, str] | None = None
                      ) -> dict[str, str | None]:
    """Event map (ring buffer, perf event array) name -> the struct its records
    are decoded by (None: raw bytes)."""
    explicit = dict(explicit or {})
    rings = [m.name for m in obj.maps.values() if m.type in EVENT_TYPES]
    for name, struct_name in explicit.items():
        if name not in rings:
            raise UsageError(f"{EVENT} {name}={struct_name}: {obj.name} has no ring buffer or "
                             f"perf event array {name!r} (has: {', '.join(rings) or 'none'})")
        if not _has_struct(obj, struct_name):
            known = ", ".join(event_structs(obj)) or "none"
            raise UsageError(f"{EVENT} {name}={struct_name}: no struct {struct_name!r} in the "
                             f"object's BTF (event structs: {known})")
    candidates = event_structs(obj)
    out = {}
    for ring in rings:
        guesses = [explicit.get(ring), ring, ring[:-1] if ring.endswith("s") else None]
        out[ring] = next((g for g in guesses if g and _has_struct(obj, g)), None)
        if out[ring] is None and len(rings) == 1 and len(candidates) == 1:
            out[ring] = candidates[0]
    return out


def _has_struct(obj, name: str) -> bool:
    try:
        obj.btf.find(name)
        return True
    except KeyError:
        return False


def hist_shape(obj: BPFObject, m) -> str | None:
    """How map ``m`` holds log2 histograms: "index" (an array map, one element
    per slot), "value" (each value an integer array), "slots" (each value a
    struct with an integer array ``slots``), or None."""
    btf, named = obj.btf, any(w in m.name.lower() for w in ("hist", "slots"))
    if m.type not in BATCH_TYPES or not m.value_type_id:
        return None
    tid = btf.resolve(m.value_type_id)
    if m.type in ARRAY_TYPES and named and _is_int(btf, tid) \
            and 1 < m.max_entries <= MAX_HIST_SLOTS:
        return "index"
    if named and _is_int_array(btf, tid):
        return "value"
    if btf.kind(tid) == B.STRUCT and m.value_layout.record is not None and any(
            name == "slots" and _is_int_array(btf, btf.resolve(t))
            for name, t, _, _ in btf.members(tid)):
        return "slots"
    return None


def _is_int(btf, tid: int) -> bool:
    return btf.kind(tid) == B.INT and not btf.int_info(tid)[2] and not btf.int_info(tid)[3]


def _is_int_array(btf, tid: int) -> bool:
    if btf.kind(tid) != B.ARRAY:
        return False
    elem, n = btf.array(tid)
    return _is_int(btf, btf.resolve(elem)) and 0 < n <= MAX_HIST_SLOTS


def unit_of(name: str) -> str:
    return next((_UNITS[w] for w in re.split(r"[^a-z]+", name.lower()) if w in _UNITS), "value")


def describe(path: str) -> dict:
    """Everything ``pyrunq inspect`` shows, as plain data (no privileges needed)."""
    obj, facts = open_object(path)
    with obj:
        rings = event_map_structs(obj)
        btf = obj.btf
        return {
            "object": obj.name, "path": path, "license": facts.license, "core": facts.core,
            "programs": [{"name": p.name, "section": p.section, "type": p.type_name,
                          "attach_target": attach_target(p.section), "autoload": p.autoload,
                          "instructions": p.insn_count} for p in obj.programs.values()],
            "maps": [_describe_map(obj, m, rings) for m in obj.maps.values()],
            "globals": [_describe_global(obj, section, name, tid) for section in DATA_SECTIONS
                        for name, tid, _, _ in btf.variables(section, static=False)],
            "event_structs": [{"name": s, "size": btf.size(btf.find(s)),
                               "definition": btf.definition(btf.find(s))}
                              for s in event_structs(obj)],
        }


def _describe_map(obj: BPFObject, m, rings: dict) -> dict:
    btf = obj.btf
    shown: str | None
    if m.type in EVENT_TYPES:
        shown = f"events of struct {rings[m.name]}" if rings[m.name] else "raw records"
    elif hist_shape(obj, m):
        shown = f"log2 histogram ({unit_of(m.name)})"
    else:
        shown = "entries" if m.type in BATCH_TYPES else None  # None: not shown by run
    return {"name": m.name, "type": m.type_name,
            "key": btf.declaration(m.key_type_id) if m.key_type_id else None,
            "value": btf.declaration(m.value_type_id) if m.value_type_id else None,
            "key_size": m.key_size, "value_size": m.value_size,
            "max_entries": m.max_entries, "pinning": m.pin_path, "shown_as": shown}


def _describe_global(obj: BPFObject, section: str, name: str, tid: int) -> dict:
    btf = obj.btf
    default = getattr(obj, section[1:])[name]  # the object's initial image, before load
    return {"name": name, "section": section, "declaration": btf.declaration(tid, name),
            "kind": value_kind(btf, tid), "default": presenter(btf, tid)(default)}


def value_kind(btf, tid: int) -> str:
    """What ``--set`` accepts for a type: "int", "bool", "enum", "string", or "other"."""
    tid = btf.resolve(tid)
    kind = btf.kind(tid)
    if kind == B.INT:
        return "bool" if btf.int_info(tid)[2] else "int"
    if kind in (B.ENUM, B.ENUM64):
        return "enum"
    if kind == B.ARRAY:
        elem = btf.resolve(btf.array(tid)[0])
        if btf.kind(elem) == B.INT and btf.int_info(elem)[3]:
            return "string"
    return "other"


def attach_target(section: str) -> str | None:
    """What a section names after its type: ``raw_tp/sys_enter`` -> ``sys_enter``."""
    return section.split("/", 1)[1] if "/" in section else None


# -- values -----------------------------------------------------------------

def presenter(btf, tid: int):
    """A function from a value decoded by ``btf.layout(tid)`` to plain data:
    enums by name, structs as dicts, arrays as lists, bytes as hex."""
    tid = btf.resolve(tid) if tid else 0
    kind = btf.kind(tid)
    if kind in (B.ENUM, B.ENUM64):
        names: dict[int, str] = {}
        for name, value in btf.enum_values(tid).items():
            names.setdefault(value, name)
        return lambda v: _plain(names.get(v, v) if isinstance(v, int) else v)
    if kind == B.STRUCT:
        fields = [presenter(btf, t) for _, t, _, _ in btf.members(tid)]

        def struct(rec):
            if not hasattr(rec, "_fields"):
                return _plain(rec)
            return {name: f(v) for name, f, v in zip(rec._fields, fields, rec)}
        return struct
    if kind == B.ARRAY:
        elem = presenter(btf, btf.array(tid)[0])

        def array(v):
            if isinstance(v, (str, bytes)):  # char[] is text; bytes: no better form
                return _plain(v)
            return [elem(x) for x in v]
        return array
    return _plain


def _plain(v):
    return v.hex() if isinstance(v, (bytes, bytearray)) else v
