"""Which struct an event map's records are: one reading for every reader
(``BPFObject.ring_buffer()`` / ``perf_buffer()`` and the generic loader).

An event map ``M`` (a ring buffer or a perf event array) carries records of,
in this order: the struct named by the caller (``event=``), from BTF or
DWARF; the struct the map names as its value (``__type(value, struct
event)``: cilium/ebpf's way, whose loader drops the map's sizes and keeps the
type for the record; ``Map.drop_record_sizes``); ``struct M`` or ``struct
M`` without a trailing "s" (``events`` -> ``struct event``) in BTF; the
only event struct (see below) when the object has one event map and one
such struct; ``struct M`` or ``struct M`` without
its "s" in DWARF (by name, never a struct the kernel has: ``vmlinux.h``
brought it in). Otherwise the first record decides, once: the only struct of
its size (``struct_of_size``) among the event structs, or when none fits
among the structs only DWARF has (``dwarf_only_structs``), or then among the
object's own structs that its maps hold (``map_structs``). If none or
several fit, records stay bytes.

- A perf event array's record is its raw sample, padded with zeros so that
  with its 4-byte size it fills whole 8-byte words: a 32-byte struct arrives
  as 36 bytes. A struct fits a record of a perf event array when the record
  is at most 7 bytes longer, and a ring buffer's record only when it is
  exactly the struct's size.
- Structs only DWARF has: clang writes no BTF for a struct that a program
  keeps only in local variables, the usual case in published tools. They are
  read from the object's DWARF (``pyrunq.bpf.dwarf``) when a rule above needs
  them, and only then. The ones that can be records are the object's own:
  named, not part of another struct, not from ``vmlinux.h``.
- Event structs: named structs that a global variable points to (through
  qualifiers, typedefs and arrays too) and that no map uses as key or value.
  That is the idiom that keeps a record type in the object's BTF
  (``ANCHOR_IDIOM``). A global that holds a struct by value is data, not an
  event type.
"""

from __future__ import annotations

from ..errors import UsageError
from . import btf as B
from . import features
from .codecs import Layout
from .globals import DATA_SECTIONS
from .maps import EVENT_TYPES, RINGBUF

TYPE_CHECKING = False  # see globals.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    KernelAnswers = Callable[..., set[tuple[str, int]]]

    from .object import BPFObject

# The parameter UsageErrors name (``UsageError.param``), in the Python API's
# words; a front end with a flag for it (the CLI's --event) says its flag.
EVENT = "event"
# The line that keeps a record's struct in the object's BTF, for messages
ANCHOR_IDIOM = "const struct NAME *unused __attribute__((unused));"


def event_structs(obj: BPFObject) -> list[str]:
    """Names of the event structs (rule in the module docstring), in BTF order."""
    btf = obj.btf
    used = {btf.resolve(t) for m in obj.maps.values() for t in (m.key_type_id, m.value_type_id) if t}
    found: dict[int, str] = {}
    for section in DATA_SECTIONS:
        for _, tid, _, _ in btf.variables(section, static=False):
            tid, pointed = through_pointers(btf, tid)
            if pointed and btf.kind(tid) == B.STRUCT and btf.name(tid) and tid not in used:
                found[tid] = btf.name(tid)
    return [found[t] for t in sorted(found)]


def through_pointers(btf: Any, tid: int) -> tuple[int, bool]:
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


def event_map_structs(
    obj: BPFObject, explicit: dict[str, str] | None = None, kernel: KernelAnswers | None = None
) -> dict[str, str | None]:
    """Event map (ring buffer, perf event array) name -> the struct its records
    are decoded by, as far as the object tells before any record (None: by
    the first record's size, see ``struct_of_size``, or raw bytes).
    ``kernel``: what answers "which of these the kernel's BTF has"
    (``features.kernel_btf_has`` by default; a caller that asks again and
    again keeps the answers)."""
    explicit = dict(explicit or {})
    rings = [m.name for m in obj.maps.values() if m.type in EVENT_TYPES]
    for name, struct_name in explicit.items():
        if name not in rings:
            raise UsageError(
                f"{name}={struct_name}: {obj.name} has no ring buffer or "
                f"perf event array {name!r} (has: {', '.join(rings) or 'none'})",
                EVENT,
            )
        if find_struct(obj, struct_name) is None:
            raise UsageError(f"{name}={struct_name}: {no_struct(obj, struct_name)}", EVENT)
    candidates = event_structs(obj)
    # not the kernel's own structs, which vmlinux.h brought in (bootstrap_legacy's
    # map "perf_buffer" carries no struct perf_buffer)
    kernels = _kernel_structs({g for ring in rings for g in named_after(ring)}, kernel)
    out = {}
    for ring in rings:
        record = obj.maps[ring].record_type_id  # __type(value, struct event), cilium/ebpf's way
        out[ring] = (
            explicit.get(ring)
            or (obj.btf.name(obj.btf.resolve(record)) if record else None)
            or next((g for g in named_after(ring) if g not in kernels and _in_btf(obj, g)), None)
        )
        if out[ring] is None and len(rings) == 1 and len(candidates) == 1:
            out[ring] = candidates[0]
    for ring in [r for r in rings if out[r] is None]:  # DWARF only for what BTF left
        dwarf = dwarf_of(obj)
        if dwarf is None:
            break
        out[ring] = next((g for g in named_after(ring) if g not in kernels and g in dwarf.structs()), None)
    return out


def likely_struct(obj: BPFObject, map_name: str) -> str | None:
    """The struct of event map ``map_name`` without a record to measure (for
    a skeleton): ``event_map_structs``' pairing, else the only struct of the
    first tier of ``struct_of_size`` that has any; None when that is not one."""
    paired = event_map_structs(obj).get(map_name)
    if paired:
        return paired
    for tier in (event_structs, dwarf_only_structs, map_structs):
        names = tier(obj)
        if names:
            return names[0] if len(names) == 1 else None
    return None


def no_struct(obj: BPFObject, name: str) -> str:
    """Why ``struct name`` cannot decode records: it is in neither the BTF nor
    the DWARF; the structs there are, and how to keep one in the BTF."""
    known = ", ".join(nameable_structs(obj)) or "none"
    return (
        f"no struct {name!r} in the object's BTF or DWARF (structs: {known}); a struct "
        f"that a program only keeps in local variables is in the BTF only with a line such as "
        f"`{ANCHOR_IDIOM.replace('NAME', name)}`, and in the DWARF only when built with clang -g"
    )


def named_after(ring: str) -> list[str]:
    return [ring, ring[:-1]] if ring.endswith("s") and len(ring) > 1 else [ring]


def _in_btf(obj: BPFObject, name: str) -> bool:
    try:
        obj.btf.find(name)
        return True
    except KeyError:
        return False


def dwarf_of(obj: BPFObject) -> Any:
    """``pyrunq.bpf.dwarf.dwarf_of``, imported when first needed (pyelftools
    and typing cost every start that never reads DWARF)."""
    from .dwarf import dwarf_of

    return dwarf_of(obj)


def find_struct(obj: BPFObject, name: str) -> tuple[Any, int] | None:
    """(types, type id) of ``struct name``: from the object's BTF, or else from
    its DWARF (a ``dwarf.DwarfTypes``, read then); None if neither has it.
    Both answer the same reading API (``layout``, ``members``...)."""
    try:
        return obj.btf, obj.btf.find(name)
    except KeyError:
        pass
    dwarf = dwarf_of(obj)
    if dwarf is not None and name in dwarf.structs():
        return dwarf, dwarf.find(name)
    return None


def dwarf_only_structs(obj: BPFObject) -> list[str]:
    """The object's own structs (see ``dwarf.DwarfTypes.own_structs``) that
    only its DWARF has: a program keeps them in local variables only."""
    dwarf = dwarf_of(obj)
    return [] if dwarf is None else [s for s in dwarf.own_structs() if not _in_btf(obj, s)]


def map_structs(obj: BPFObject, kernel: KernelAnswers | None = None) -> list[str]:
    """The object's own named structs that its maps hold as keys or values
    (javagc sends the struct data_t that its map data_map holds too), not
    the kernel's."""
    btf = obj.btf
    tids = [btf.resolve(t) for m in obj.maps.values() for t in (m.key_type_id, m.value_type_id) if t]
    names = [btf.name(t) for t in tids if btf.kind(t) == B.STRUCT and btf.name(t)]
    kernels = _kernel_structs(set(names), kernel)
    return [n for n in dict.fromkeys(names) if n not in kernels]


def _kernel_structs(names: set[str], kernel: KernelAnswers | None = None) -> set[str]:
    """Those of ``names`` that are structs of the running kernel too: vmlinux.h
    brought them into the object, they are not its own."""
    ask = kernel or features.kernel_btf_has
    return {n for n, _ in ask(*((n, B.STRUCT) for n in names))} if names else set()


def candidate_tiers(obj: BPFObject, kernel: KernelAnswers | None = None) -> list[list[str]]:
    """The structs records may be, in the order they are tried: event
    structs, the structs only DWARF has (read then), the object's own structs
    that its maps hold."""
    return [event_structs(obj), dwarf_only_structs(obj), map_structs(obj, kernel)]


def nameable_structs(obj: BPFObject) -> list[str]:
    """The structs a user would pick from to decode records: event structs,
    the structs only DWARF has, then those the object's maps hold."""
    return list(dict.fromkeys(event_structs(obj) + dwarf_only_structs(obj) + map_structs(obj)))


def fits(struct_size: int, record_size: int, perf: bool) -> bool:
    """Whether a record of ``record_size`` bytes can hold one struct of
    ``struct_size``: exactly in a ring buffer; in a perf event array, whose
    samples are padded to 8 bytes with their 4-byte size, up to 7 bytes more."""
    if struct_size <= 0:
        return False
    return 0 <= record_size - struct_size < 8 if perf else record_size == struct_size


def struct_of_size(
    obj: BPFObject, record_size: int, perf: bool, tiers: list[list[str]] | None = None
) -> tuple[str | None, list[str]]:
    """The struct that records of ``record_size`` bytes are decoded by when
    nothing else names one, and the structs that fit: the only event struct
    that fits, or if none does, the only struct only DWARF has that fits
    (DWARF is read only then), or the only struct of the object's maps that
    fits. None when none or several fit."""
    for names in tiers if tiers is not None else candidate_tiers(obj):
        fitting = []
        for name in names:
            found = find_struct(obj, name)
            if found is not None and fits(found[0].size(found[1]), record_size, perf):
                fitting.append(name)
        if fitting:
            return (fitting[0] if len(fitting) == 1 else None), fitting
    return None, []


def struct_types(obj: BPFObject, name: str) -> tuple[Any, int]:
    """``find_struct``, or a UsageError that lists the candidates."""
    found = find_struct(obj, name)
    if found is None:
        raise UsageError(no_struct(obj, name))
    return found


def struct_layout(obj: BPFObject, name: str) -> Layout:
    """The layout of ``struct name`` from the object's BTF or DWARF; a
    UsageError that lists the candidates when neither has it."""
    types, tid = struct_types(obj, name)
    return types.layout(tid)


class BySize:
    """A record layout picked at the first record, by its size
    (``struct_of_size``), for a map whose struct nothing else names; records
    stay bytes when none or several fit. ``struct`` says which, once known."""

    def __init__(self, obj: BPFObject, map_name: str, perf: bool):
        self._obj, self._perf, self.map_name = obj, perf, map_name
        self.struct: str | None = None
        self._decode: Any = None

    def decode(self, data: Any, offset: int = 0) -> object:
        if self._decode is None:
            self.struct, _ = struct_of_size(self._obj, len(data), self._perf)
            self._decode = struct_layout(self._obj, self.struct).decode if self.struct else bytes
        return self._decode(data)


def record_layout(obj: BPFObject, map_name: str, event: str | None) -> Layout | BySize:
    """How the records of event map ``map_name`` are decoded: by ``struct
    event`` when given, else by the pairing of ``event_map_structs``, else
    by the first record's size (``BySize``)."""
    if event:
        return struct_layout(obj, event)
    paired = event_map_structs(obj).get(map_name)
    if paired:
        return struct_layout(obj, paired)
    return BySize(obj, map_name, obj.maps[map_name].type != RINGBUF)
