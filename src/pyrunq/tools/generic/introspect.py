"""What any CO-RE object declares, read from its own BTF (and, for the
structs its BTF lacks, its DWARF), and the rules that decide how the generic
tool shows it:

- Event maps: which struct their records are is ``pyrunq.bpf.events``'s
  reading (the one ``BPFObject.ring_buffer()`` uses too).
- Log2 histograms: a map whose value is a struct with an integer array member
  ``slots`` (libbpf-tools' ``struct hist``); or whose name contains "hist" or
  "slots" and whose value is an integer array; or an array map of integers
  named so, one element per slot. At most 63 slots. The unit comes from the
  name: ``_ns``/``_us``/``_ms``/``_bytes`` -> nsecs/usecs/msecs/bytes, else "value".
- Other hash and array maps are shown entry by entry; array elements that are
  all zero are left out. Per-CPU values are summed across CPUs.
- Results kept in globals: every ``.bss`` and ``.data`` variable but those
  that hold pointers (``.rodata`` is configuration). A histogram when it is an
  integer array named "hist"/"slots" (one element per slot), an array of such
  arrays named so, or a struct with an integer array ``slots`` (or an array of
  them: one histogram per index, all-zero ones left out); other arrays element
  by element (all-zero elements left out); anything else as one value.
- What is shown by default (``view``): event maps, histograms, globals, and
  the other hash and array maps but working state, which is: a map the
  object's own programs delete entries from (start times kept from one probe
  to the next), or one that a program only writes and another only reads
  (start times never deleted), libbpf's own (``__bpf_usdt_specs``...), and, in
  an object that keeps histograms, every other map
  (what the histograms are made of). Working state is shown when named, and
  every map when the object has nothing else to show.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from typing import NamedTuple

from ...bpf import ARRAY_TYPES, BATCH_TYPES, DATA_SECTIONS, EVENT_TYPES, BPFObject
from ...bpf import btf as B
from ...errors import UsageError
from ...bpf.dwarf import dwarf_of
from ...bpf.events import (  # noqa: F401  # the pairing, read here by the generic tool's modules
    EVENT,
    through_pointers,
    dwarf_only_structs,
    event_map_structs,
    event_structs,
    find_struct,
    struct_types,
    fits,
    map_structs,
    nameable_structs,
    struct_of_size,
)
from . import gadget, present
from .objfile import open_object

MAX_HIST_SLOTS = 63  # what render_log2 can print
_UNITS = {
    "ns": "nsecs",
    "nsecs": "nsecs",
    "us": "usecs",
    "usecs": "usecs",
    "ms": "msecs",
    "msecs": "msecs",
    "bytes": "bytes",
    "kb": "kbytes",
    "kbytes": "kbytes",
}
# How messages name what the caller passed, in the Python API's words; a
# front end with a flag for it (the CLI's --show) puts its flag in its place.
SHOW, UNITS = "show", "units"
RESULT_SECTIONS = (".bss", ".data")  # .rodata is configuration


def hist_shape(obj: BPFObject, m) -> str | None:
    """How map ``m`` holds log2 histograms: "index" (an array map, one element
    per slot), "value" (each value an integer array), "slots" (each value a
    struct with an integer array ``slots``), or None."""
    btf, named = obj.btf, any(w in m.name.lower() for w in ("hist", "slots"))
    if m.type not in BATCH_TYPES or not m.value_type_id:
        return None
    tid = btf.resolve(m.value_type_id)
    if m.type in ARRAY_TYPES and named and _is_int(btf, tid) and 1 < m.max_entries <= MAX_HIST_SLOTS:
        return "index"
    if named and _is_int_array(btf, tid):
        return "value"
    if btf.kind(tid) == B.STRUCT and m.value_layout.record is not None and slots_member(btf, tid):
        return "slots"
    return None


def slots_member(btf, tid: int) -> str | None:
    """The member of struct ``tid`` that holds a log2 histogram: an integer
    array ``slots`` (libbpf-tools'), or an array of Inspektor Gadget's
    ``gadget_histogram_slot__*`` under any name (its ``latency[27]``)."""
    if any(name == "slots" and _is_int_array(btf, btf.resolve(t)) for name, t, _, _ in btf.members(tid)):
        return "slots"
    member = gadget.hist_slots_member(btf, tid)
    types = {name: t for name, t, _, _ in btf.members(tid)}
    return member if member and _is_int_array(btf, btf.resolve(types[member])) else None


def _is_int(btf, tid: int) -> bool:
    return btf.kind(tid) == B.INT and not btf.int_info(tid)[2] and not btf.int_info(tid)[3]


def _is_int_array(btf, tid: int) -> bool:
    if btf.kind(tid) != B.ARRAY:
        return False
    elem, n = btf.array(tid)
    return _is_int(btf, btf.resolve(elem)) and 0 < n <= MAX_HIST_SLOTS


def unit_of(name: str) -> str:
    return next((_UNITS[w] for w in re.split(r"[^a-z]+", name.lower()) if w in _UNITS), "value")


# -- globals that hold results ---------------------------------------------------


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


def global_hist_shape(btf, name: str, tid: int) -> str | None:
    """How a global holds log2 histograms: "index" (an integer array named
    "hist"/"slots", one element per slot), "value" (an array of integer arrays
    named so: one histogram per index), "slots" (an array of structs with an
    integer array ``slots``: one per index), "struct" (one such struct), or None."""
    tid = btf.resolve(tid)
    kind = btf.kind(tid)
    if kind == B.STRUCT:
        return "struct" if _has_slots(btf, tid) else None
    if kind != B.ARRAY:
        return None
    named = any(w in name.lower() for w in ("hist", "slots"))
    elem, n = btf.array(tid)
    elem = btf.resolve(elem)
    if named and _is_int(btf, elem) and 1 < n <= MAX_HIST_SLOTS:
        return "index"
    if named and _is_int_array(btf, elem):
        return "value"
    if btf.kind(elem) == B.STRUCT and _has_slots(btf, elem):
        return "slots"
    return None


def _has_slots(btf, tid: int) -> bool:
    """A struct with an integer array member ``slots`` and a byte layout."""
    return btf.layout(tid).record is not None and any(
        name == "slots" and _is_int_array(btf, btf.resolve(t)) for name, t, _, _ in btf.members(tid)
    )


# -- what `run` shows by default -------------------------------------------------

# enum bpf_func_id
BPF_FUNC_MAP_LOOKUP_ELEM, BPF_FUNC_MAP_UPDATE_ELEM, BPF_FUNC_MAP_DELETE_ELEM = 1, 2, 3
BPF_FUNC_TRACE_PRINTK, BPF_FUNC_TRACE_VPRINTK = 6, 177
_SHF_EXECINSTR = 0x4
DELETED = "working state: its programs delete its entries"
HANDED_OVER = "working state: one program writes it, another only reads it"
BESIDE_HISTOGRAMS = "working state beside the object's histograms"
LIBBPF_OWN = "libbpf's own: where USDT arguments are"


def working_state(calls: list[Calls]) -> dict[str, str]:
    """Maps the object's own programs keep state in (map -> why): those they
    delete entries from (runqslower's start times), and those one program
    only writes and another only reads (syscount's start times, never
    deleted). A program that both reads and writes a map keeps results there."""
    state = {}
    only: dict[int, set[str]] = {BPF_FUNC_MAP_UPDATE_ELEM: set(), BPF_FUNC_MAP_LOOKUP_ELEM: set()}
    for section in calls:
        for m, helpers in section.maps.items():
            if BPF_FUNC_MAP_DELETE_ELEM in helpers:
                state[m] = DELETED
            elif len(helpers) == 1 and next(iter(helpers)) in only:
                only[next(iter(helpers))].add(m)
    for m in only[BPF_FUNC_MAP_UPDATE_ELEM] & only[BPF_FUNC_MAP_LOOKUP_ELEM]:
        state.setdefault(m, HANDED_OVER)
    return state


def writes_trace_pipe(calls: list[Calls]) -> bool:
    """Whether the object's programs call bpf_printk (bpf_trace_printk or
    bpf_trace_vprintk): lines that go to tracefs' trace_pipe, not to a map."""
    printk = {BPF_FUNC_TRACE_PRINTK, BPF_FUNC_TRACE_VPRINTK}
    return any(section.helpers & printk for section in calls)


class Calls(NamedTuple):
    """The helper calls of one code section."""

    helpers: set[int]  # every helper called
    maps: dict[str, set[int]]  # map -> the helpers called with it in r1


def helper_calls(path: str) -> list[Calls]:
    """For each code section of the object (a program, mostly): the helpers
    it calls, and with which map in r1 (bpf_map_lookup_elem, _update_elem...),
    read from the ELF's instructions and their relocations. One linear pass
    per section, following register moves: enough for what clang emits (it
    loads the map right before the call). Empty when the ELF cannot be read
    this way."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            sections = list(elf.iter_sections())
            map_sections = {i for i, s in enumerate(sections) if s.name in (".maps", "maps")}
            code = {
                i
                for i, sec in enumerate(sections)
                if sec.header.sh_type == "SHT_PROGBITS" and sec.header.sh_flags & _SHF_EXECINSTR
            }
            refs: dict[int, dict[int, str]] = {}  # section -> instruction -> map it loads
            for rel in sections:
                # only the relocations of code: those of the DWARF are many, and slow to read
                if not isinstance(rel, RelocationSection) or rel.header.sh_info not in code:
                    continue
                symbols = elf.get_section(rel.header.sh_link)
                if not isinstance(symbols, SymbolTableSection):
                    continue
                for r in rel.iter_relocations():
                    sym = symbols.get_symbol(r["r_info_sym"])
                    if sym["st_shndx"] in map_sections:
                        refs.setdefault(rel.header.sh_info, {})[r["r_offset"] // 8] = sym.name
            return [_calls(sections[i].data(), refs.get(i, {}), elf.little_endian) for i in sorted(code)]
    except (OSError, ELFError, struct.error):
        return []


def _calls(code: bytes, loads: dict[int, str], little: bool) -> Calls:
    """The helper calls of this code (``loads``: instruction index -> the map
    its ld_imm64 loads)."""
    insn = struct.Struct("<BBhi" if little else ">BBhi")
    regs: dict[int, str] = {}  # register -> the map it holds
    found = Calls(set(), {})
    i, n = 0, len(code) // 8
    while i < n:
        op, reg_byte, _, imm = insn.unpack_from(code, 8 * i)
        dst, src = (reg_byte & 0xF, reg_byte >> 4) if little else (reg_byte >> 4, reg_byte & 0xF)
        cls = op & 0x07
        if op == 0x18:  # ld_imm64: two slots
            regs.pop(dst, None)
            if i in loads:
                regs[dst] = loads[i]
            i += 2
            continue
        if op == 0x85:  # call: r0-r5 are clobbered
            if src == 0:  # a helper (1: a BPF function, 2: a kfunc)
                found.helpers.add(imm)
                if 1 in regs:
                    found.maps.setdefault(regs[1], set()).add(imm)
            for r in range(6):
                regs.pop(r, None)
        elif op == 0xBF:  # r_dst = r_src (64-bit move)
            if src in regs:
                regs[dst] = regs[src]
            else:
                regs.pop(dst, None)
        elif cls in (0x00, 0x01, 0x04, 0x07):  # other loads and ALU ops write dst
            regs.pop(dst, None)
        elif cls == 0x03 and op & 0xE0 == 0xC0:  # atomics may write src and r0
            regs.pop(src, None)
            regs.pop(0, None)
        i += 1
    return found


@dataclasses.dataclass
class View:
    """What the generic tool reads and shows of an object (rules in the module
    docstring): ``maps`` (hash and array maps, in object order), ``globals``
    ((section, name, type id)), ``hidden`` (map -> why it is not shown), the
    units of histograms (``unit(name)``), the histograms' names, and
    whether the programs write lines with bpf_printk (``trace_pipe``: they go
    to tracefs, not to anything shown here)."""

    maps: list[str]
    globals: list[tuple[str, str, int]]
    hidden: dict[str, str]
    histograms: list[str]
    units: dict
    trace_pipe: bool = False

    def unit(self, name: str) -> str:
        return self.units.get(name) or self.units.get(None) or unit_of(name)


def view(obj: BPFObject, path: str, show=(), units: dict | None = None) -> View:
    """The view of ``obj`` (opened from ``path``): the default, plus the maps
    named in ``show`` ("all": every map). ``units``: histogram name (None: all
    of them) -> the unit shown instead of the one its name suggests."""
    batch = [m for m in obj.maps.values() if m.type in BATCH_TYPES]
    results = result_globals(obj)
    hists = [m.name for m in batch if hist_shape(obj, m)]
    hists += [name for _, name, tid in results if global_hist_shape(obj.btf, name, tid)]
    calls = helper_calls(path)  # the object's instructions, read once
    state = working_state(calls)
    ig = gadget.markers(obj.btf)  # Inspektor Gadget's: its results and its machinery
    machinery = ig.machinery(list(obj.maps)) if ig else {}
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
            hidden[m.name] = BESIDE_HISTOGRAMS
    events = any(m.type in EVENT_TYPES for m in obj.maps.values())
    if not (events or results or len(hidden) < len(batch)):
        hidden = {}  # nothing else to show
    names = [show] if isinstance(show, str) else list(show or ())
    for name in names:
        if name == "all":
            hidden = {}
        elif name not in obj.maps or obj.maps[name].type not in BATCH_TYPES | EVENT_TYPES:
            readable = [m.name for m in obj.maps.values() if m.type in BATCH_TYPES | EVENT_TYPES]
            raise UsageError(
                f"{SHOW} {name}: no hash, array or event map {name!r} in {obj.name} "
                f"(has: {', '.join(readable) or 'none'}; or all)"
            )
        else:
            hidden.pop(name, None)
    units = dict(units or {})
    for name, unit in units.items():
        what = f"{UNITS} {unit}" if name is None else f"{UNITS} {name}={unit}"
        if not re.fullmatch(r"[A-Za-z][\w/]*", str(unit)):
            raise UsageError(f"{what}: a unit is a word (usecs, msecs, nsecs, bytes...)")
        if name is not None and name not in hists:
            raise UsageError(
                f"{what}: no histogram {name!r} in {obj.name} (has: {', '.join(hists) or 'none'})"
            )
    shown = [m.name for m in batch if m.name not in hidden]
    return View(shown, results, hidden, hists, units, writes_trace_pipe(calls))


def record_structs(obj: BPFObject, explicit: dict | None = None) -> dict[str, str | None]:
    """``event_map_structs``, and where the object is an Inspektor Gadget
    gadget, the struct its ``GADGET_TRACER`` names for a map not in ``explicit``."""
    out = event_map_structs(obj, explicit)
    for ring, struct_name in gadget.markers(obj.btf).tracers.items():
        if ring in out and ring not in (explicit or {}) and find_struct(obj, struct_name) is not None:
            out[ring] = struct_name
    return out


def _describe_gadget(obj: BPFObject) -> dict | None:
    """Inspektor Gadget's markers (``gadget``), None when the object has none."""
    ig = gadget.markers(obj.btf)
    if not ig:
        return None
    rodata = {name: tid for name, tid, _, _ in obj.btf.variables(".rodata", static=False)}
    return {
        "tracers": ig.tracers,
        "mapiters": ig.mapiters,
        "iterators": {p: {"name": it.name, "struct": it.struct} for p, it in ig.iterators.items()},
        "params": [
            {
                "name": name,
                "declaration": obj.btf.declaration(rodata[name], name),
                "kind": value_kind(obj.btf, rodata[name]),
                "default": present.presenter(obj.btf, rodata[name])(obj.rodata[name]),
            }
            for name in ig.params
            if name in rodata
        ],
    }


def describe(path: str) -> dict:
    """Everything ``pyrunq inspect`` shows, as plain data (no privileges needed)."""
    obj, facts = open_object(path)
    with obj:
        rings = record_structs(obj)
        btf = obj.btf
        dwarf = dwarf_of(obj)
        own = [struct_types(obj, s) for s in dwarf_only_structs(obj)]
        hidden = view(obj, path).hidden
        results = {(section, name) for section, name, _ in result_globals(obj)}
        return {
            "object": obj.name,
            "path": path,
            "license": facts.license,
            "core": facts.core,
            "programs": [
                {
                    "name": p.name,
                    "section": p.section,
                    "type": p.type_name,
                    "attach_target": attach_target(p.section),
                    "autoload": p.autoload,
                    "instructions": p.insn_count,
                }
                for p in obj.programs.values()
            ],
            "maps": [_describe_map(obj, m, rings, hidden) for m in obj.maps.values()],
            "globals": [
                _describe_global(obj, section, name, tid, (section, name) in results)
                for section in DATA_SECTIONS
                for name, tid, _, _ in btf.variables(section, static=False)
            ],
            "event_structs": [
                {"name": s, "size": btf.size(btf.find(s)), "definition": btf.definition(btf.find(s))}
                for s in event_structs(obj)
            ],
            "gadget": _describe_gadget(obj),
            "dwarf": dwarf is not None,
            "dwarf_structs": [
                {"name": types.name(tid), "size": types.size(tid), "definition": types.definition(tid)}
                for types, tid in own
            ],
        }


def _describe_map(obj: BPFObject, m, rings: dict, hidden: dict) -> dict:
    btf = obj.btf
    shown: str | None
    if m.type in EVENT_TYPES:
        struct_name = rings[m.name]
        if struct_name:
            types, _ = struct_types(obj, struct_name)
            shown = f"events of struct {struct_name}" + (" (DWARF)" if types is not btf else "")
        else:
            choices = nameable_structs(obj)
            shown = f"events of the struct of their size ({', '.join(choices)})" if choices else "raw records"
    elif hist_shape(obj, m):
        shown = f"log2 histogram ({unit_of(m.name)})"
    else:
        shown = "entries" if m.type in BATCH_TYPES else None  # None: not shown by run
        if m.name in hidden:
            shown = f"entries (not by default: {hidden[m.name]})"
    return {
        "name": m.name,
        "type": m.type_name,
        "key": btf.declaration(m.key_type_id) if m.key_type_id else None,
        "value": btf.declaration(m.value_type_id) if m.value_type_id else None,
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "pinning": m.pin_path,
        "shown_as": shown,
    }


def _describe_global(obj: BPFObject, section: str, name: str, tid: int, result: bool) -> dict:
    btf = obj.btf
    default = getattr(obj, section[1:])[name]  # the object's initial image, before load
    shape = global_hist_shape(btf, name, tid) if result else None
    shown = None  # .rodata (configuration) and pointers: not shown by run
    if shape:
        many = "s" if shape in ("value", "slots") else ""
        shown = f"log2 histogram{many} ({unit_of(name)})"
    elif result:
        rid = btf.resolve(tid)
        array = btf.kind(rid) == B.ARRAY and value_kind(btf, rid) != "string"
        shown = "elements" if array else "value"
    return {
        "name": name,
        "section": section,
        "declaration": btf.declaration(tid, name),
        "kind": value_kind(btf, tid),
        "default": present.presenter(btf, tid)(default),
        "shown_as": shown,
    }


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
