"""Struct layouts from an object's DWARF, for the structs its BTF lacks.

clang writes BTF only for the types that a map, a global, a function's
signature or a CO-RE relocation uses. A struct that a program keeps only in a
local variable (``struct event e; ... bpf_perf_event_output(ctx, &events,
BPF_F_CURRENT_CPU, &e, sizeof(e));``, or ``struct event *e =
bpf_ringbuf_reserve(&rb, sizeof(*e), 0);``) is not in the object's BTF: that
is how most published tools declare their records. Built with ``-g`` and not
stripped, the object's DWARF (``.debug_info``) still describes it.

``DwarfTypes`` reads that DWARF with pyelftools and answers with the reading
API of ``pyrunq.bpf.BTF`` (``find``, ``layout``, ``resolve``, ``kind``,
``members``, ``fields``, ``array``, ``int_info``, ``enum_values``, ``definition``...) and
BTF's type kinds, over type ids of its own (0 is void). A struct from DWARF
so becomes the same codecs (``Struct`` of ``Int``, ``CString``, ``Array``,
``Raw``...) as one from BTF, and is shown by the same code. What has no byte
layout is ``Raw``: named unions, and a struct with bit-fields as a whole (as
BTF layouts do); an anonymous union is a ``Union``, whose members the
struct that holds it spreads into its own. Pointers are 64-bit unsigned integers. Its C (``declaration``,
``definition``) is printed by libbpf, from a small BTF made of the type and
the types it refers to (``BTF.new()``), as BTF's own types are.

``dwarf_of(obj)`` reads an object's DWARF the first time it is asked, and
only then: an object whose structs are all in its BTF never pays for it.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any, NamedTuple

from ..errors import BPFError, MalformedObject
from . import btf as B
from . import btfcheck
from .btf import BTF
from .codecs import Array, Codec, CString, Float, Int, Layout, Raw, Record, Struct, Union

TYPE_CHECKING = False  # see globals.py
if TYPE_CHECKING:
    from collections.abc import Callable

    from .object import BPFObject

log = logging.getLogger(__name__)

_AGGREGATES = {"DW_TAG_structure_type": B.STRUCT, "DW_TAG_class_type": B.STRUCT, "DW_TAG_union_type": B.UNION}
_QUALIFIERS = {
    "DW_TAG_typedef": B.TYPEDEF,
    "DW_TAG_const_type": B.CONST,
    "DW_TAG_volatile_type": B.VOLATILE,
    "DW_TAG_restrict_type": B.RESTRICT,
}
_TRANSPARENT = {"DW_TAG_atomic_type", "DW_TAG_immutable_type", "DW_TAG_shared_type"}  # no BTF kind
_TYPE_TAGS = {
    *_AGGREGATES,
    *_QUALIFIERS,
    *_TRANSPARENT,
    "DW_TAG_base_type",
    "DW_TAG_pointer_type",
    "DW_TAG_array_type",
    "DW_TAG_enumeration_type",
    "DW_TAG_subroutine_type",
}
_PARTS = {"DW_TAG_member", "DW_TAG_enumerator", "DW_TAG_subrange_type"}  # what types are made of
_REF_FORMS = {"DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref_udata"}
_MODIFIERS = (B.TYPEDEF, B.CONST, B.VOLATILE, B.RESTRICT)
# DW_ATE_* base type encodings
_ATE_BOOLEAN, _ATE_FLOAT, _ATE_SIGNED, _ATE_SIGNED_CHAR, _ATE_UNSIGNED_CHAR = 2, 4, 5, 6, 8
_CHAR_NAMES = ("char", "signed char", "unsigned char")
_POINTER_SIZE = 8  # BPF is a 64-bit target
_DW_OP_PLUS_UCONST = 0x23


class _Die(NamedTuple):
    """What is kept of one DIE: references already made absolute offsets."""

    tag: str
    attrs: dict
    children: list  # offsets
    cu: int  # offset of its compile unit


class _Type(NamedTuple):
    kind: int  # a BTF kind (pyrunq.bpf.btf), 0: void
    name: str
    size: int
    ref: int  # the type id referred to: pointee, element, qualified or returned type
    extra: Any = None  # per kind: members, (enumerators, signed), element count, int flags


_VOID = _Type(0, "", 0, 0)


class DwarfTypes:
    """The types that an object's DWARF describes, read through the same API
    as ``pyrunq.bpf.BTF``. Make one with ``read(path)``."""

    def __init__(self, dies: dict[int, _Die], files: dict[int, list[str]]):
        self._dies, self._files = dies, files
        self.records: dict[str, type[Record]] = {}  # as BTF.records: a skeleton's classes
        self._ids: dict[tuple[int, int], int] = {}
        self._keys: list[tuple[int, int]] = [(0, 0)]  # type id -> (DIE offset, array dimension)
        self._types: dict[int, _Type] = {}
        self._layouts: dict[int, Layout] = {}
        self._btfs: dict[int, tuple[BTF, dict[int, int]]] = {}
        self._named: dict[tuple[int, str], int] = {}  # (kind, name) -> DIE offset
        parts: set[int] = set()  # structs and unions that a member of another refers to
        for off, die in dies.items():
            kind = _AGGREGATES.get(die.tag) or (B.ENUM if die.tag == "DW_TAG_enumeration_type" else 0)
            name = die.attrs.get("DW_AT_name")
            if kind and name and not die.attrs.get("DW_AT_declaration"):
                self._named.setdefault((kind, name), off)
            if die.tag == "DW_TAG_member":
                parts.add(self._under(die.attrs.get("DW_AT_type", 0)))
        self._parts = parts

    @classmethod
    def read(cls, path: str) -> DwarfTypes | None:
        """The DWARF of the object file at ``path``; None when it has none
        (built without -g, or stripped)."""
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as f:
            elf = ELFFile(f)
            if elf.get_section_by_name(".debug_info") is None:
                return None
            # Types need no relocation: in a BPF object those of .debug_info are
            # REL entries against section symbols of value 0 (the offset is in
            # place) or against variables' addresses, which are not read here;
            # applying them was over a second of start-up.
            info = elf.get_dwarf_info(relocate_dwarf_sections=False)
            dies: dict[int, _Die] = {}
            files: dict[int, list[str]] = {}
            for cu in info.iter_CUs():
                _walk(cu.get_top_DIE(), cu.cu_offset, dies)
                program = info.line_program_for_CU(cu)
                if program is not None:
                    names = [os.path.basename(_text(e.name)) for e in program.header.file_entry]
                    # DWARF 5 numbers files from 0, earlier versions from 1
                    files[cu.cu_offset] = names if program.header.version >= 5 else ["", *names]
        return cls(dies, files)

    # -- what the object declares ----------------------------------------------

    def structs(self) -> list[str]:
        """Names of every complete named struct, in the order of the DWARF."""
        return [name for kind, name in self._named if kind == B.STRUCT]

    def own_structs(self) -> list[str]:
        """The structs that can be records of their own: named, complete, not
        part of another struct or union (as a member, an array or through a
        pointer), and not declared in a kernel header (``vmlinux.h``)."""
        return [
            name
            for (kind, name), off in self._named.items()
            if kind == B.STRUCT and off not in self._parts and not self._in_vmlinux(off)
        ]

    def enums(self) -> dict[str, int]:
        """Name -> id of each named enum the object declares itself (not in
        ``vmlinux.h``): its front end's header's, which clang keeps where the
        code uses one of its values."""
        return {
            name: self._id(off)
            for (kind, name), off in self._named.items()
            if kind == B.ENUM and not self._in_vmlinux(off)
        }

    def _in_vmlinux(self, off: int) -> bool:
        """Whether the DIE at ``off`` was declared in a kernel header (``vmlinux.h``)."""
        die = self._dies[off]
        files = self._files.get(die.cu, [])
        index = die.attrs.get("DW_AT_decl_file")
        header = files[index] if isinstance(index, int) and 0 <= index < len(files) else ""
        return header.startswith("vmlinux")

    def find(self, name: str, kind: int = B.STRUCT) -> int:
        """The id of a complete named struct (union, enum); KeyError if there is none."""
        off = self._named.get((kind, name))
        if off is None:
            raise KeyError(name)
        tid = self._id(off)
        try:
            self._btf(tid)  # checked: a type that contains itself is refused before a reader follows it
        except BPFError:  # a type BTF cannot hold: printed without libbpf (declaration, definition)
            pass
        return tid

    # -- the reading API of pyrunq.bpf.BTF --------------------------------------

    def layout(self, tid: int, size: int | None = None) -> Layout:
        """How to decode a value of type ``tid`` (``size`` bytes: raw otherwise)."""
        if tid not in self._layouts:
            try:
                self._layouts[tid] = Layout(self._codec(tid), self.type_name(tid))
            except AssertionError:  # the codecs disagree with DWARF's size: keep the bytes
                self._layouts[tid] = Layout(Raw(self.size(tid)), self.type_name(tid))
        layout = self._layouts[tid]
        if size is not None and layout.size != size:
            return Layout(Raw(size))
        return layout

    def resolve(self, tid: int) -> int:
        """The type under typedefs and qualifiers."""
        for _ in range(B.MAX_CHAIN):  # find() refuses cycles; this bound is the last guard
            if self._t(tid).kind not in _MODIFIERS:
                return tid
            tid = self._t(tid).ref
        raise MalformedObject(f"DWARF type {self.name(tid)!r}: typedefs and qualifiers that do not end")

    def kind(self, tid: int) -> int:
        return self._t(tid).kind

    def name(self, tid: int) -> str:
        return self._t(tid).name

    def size(self, tid: int) -> int:
        t = self._t(tid)
        if t.kind in _MODIFIERS:
            return self.size(t.ref)
        if t.kind == B.ARRAY:
            return int(t.extra) * self.size(t.ref)
        if t.kind == B.PTR:
            return _POINTER_SIZE
        return t.size if t.kind in (B.INT, B.FLOAT, B.ENUM, B.STRUCT, B.UNION) else 0

    def members(self, tid: int) -> list[tuple[str, int, int, int]]:
        """(name, type id, bit offset, bit-field size or 0) of a struct or union."""
        t = self._t(tid)
        return list(t.extra) if t.kind in (B.STRUCT, B.UNION) else []

    def pointee(self, tid: int) -> int:
        """The type a pointer, typedef or qualifier refers to."""
        return self._t(tid).ref

    def array(self, tid: int) -> tuple[int, int]:
        """(element type id, number of elements) of an array."""
        t = self._t(tid)
        return t.ref, int(t.extra)

    def int_info(self, tid: int) -> tuple[int, bool, bool, bool]:
        """(size in bytes, signed, bool, char) of an integer type."""
        t = self._t(tid)
        signed, is_bool, char = t.extra if t.kind == B.INT else (False, False, False)
        return t.size, signed, is_bool, char

    def enum_signed(self, tid: int) -> bool:
        return bool(self._t(tid).extra[1])

    def enum_values(self, tid: int) -> dict[str, int]:
        """Enumerator name -> value, in declaration order."""
        return dict(self._t(tid).extra[0])

    def type_name(self, tid: int) -> str:
        t = self._t(tid)
        prefix = {B.STRUCT: "struct ", B.UNION: "union ", B.ENUM: "enum "}.get(t.kind, "")
        if t.kind == B.FWD:
            prefix = "union " if t.extra else "struct "
        if t.name:
            return prefix + t.name
        if t.kind in _MODIFIERS:
            return self.type_name(t.ref)
        if t.kind == B.ARRAY:
            return f"{self.type_name(t.ref)}[{t.extra}]"
        return prefix + "(anon)" if t.kind else "void"

    def declaration(self, tid: int, name: str = "") -> str:
        """A C declaration of ``name`` with type ``tid`` on one line (``char
        comm[16]``, ``struct event *e``), as libbpf prints it: see ``definition``."""
        try:
            btf, ids = self._btf(tid)
        except BPFError:  # a type BTF cannot hold: odd DWARF
            return f"{self.type_name(tid)} {name}".rstrip()
        return btf.declaration(ids[tid], name)

    def definition(self, tid: int) -> str:
        """C source of a struct, union or enum type, one member per line.

        libbpf prints it, as it prints the types of BTF: from a BTF made of
        this type and the types it refers to."""
        try:
            btf, ids = self._btf(tid)
        except BPFError as e:  # a type BTF cannot hold: odd DWARF
            return f"{self.type_name(tid)} {{ /* cannot print: {e} */ }};"
        return btf.definition(ids[tid])

    def _btf(self, tid: int) -> tuple[BTF, dict[int, int]]:
        """A BTF of type ``tid`` and every type it refers to, and their ids in
        it; checked (``btfcheck``): DWARF can describe a typedef of itself, and
        libbpf's btf_dump would follow it until the stack is gone."""
        if tid not in self._btfs:
            btf, ids = self._build(tid)
            btfcheck.check_btf(btf.raw(), f"the BTF made from DWARF type {self.name(tid) or tid!r}")
            self._btfs[tid] = btf, ids
        return self._btfs[tid]

    def _build(self, tid: int) -> tuple[BTF, dict[int, int]]:
        ids, todo = {0: 0}, [tid]
        order: list[int] = []
        while todo:
            t = todo.pop()
            if t not in ids:
                ids[t] = len(order) + 1  # BTF ids follow the order types are added in
                order.append(t)
                todo += [self._t(t).ref, *(m[1] for m in self.members(t))]
        btf = BTF.new()
        for t in order:
            typ = self._t(t)
            kind, name, ref = typ.kind, typ.name, ids[typ.ref]
            if kind == B.INT:
                btf.add_int(name, typ.size, typ.extra[0], typ.extra[1])
            elif kind == B.FLOAT:
                btf.add_float(name, typ.size)
            elif kind == B.ARRAY:
                btf.add_array(ref, typ.extra)
            elif kind in (B.STRUCT, B.UNION):
                members = [(m, ids[mt], off, bits) for m, mt, off, bits in typ.extra]
                btf.add_struct(kind, name, typ.size, members)
            elif kind == B.ENUM:
                btf.add_enum(name, typ.size or 4, dict(typ.extra[0]), typ.extra[1])  # 0: only declared
            elif kind == B.FWD:
                btf.add_fwd(name, typ.extra)
            else:  # pointers, typedefs, qualifiers, function prototypes
                btf.add_ref(kind, ref, name)
        return btf, ids

    # -- from DIEs to types -------------------------------------------------------

    def _under(self, off: int) -> int:
        """The DIE offset of the struct or union under pointers, arrays and
        qualifiers (0 if there is none)."""
        for _ in range(64):  # a cycle only through a malformed DWARF
            die = self._dies.get(off)
            if die is None or die.tag in _AGGREGATES:
                return off if die is not None else 0
            off = die.attrs.get("DW_AT_type", 0)
        return 0

    def _id(self, off: int, dim: int = 0) -> int:
        """The type id of the DIE at ``off`` (of its ``dim``-th dimension, for an array)."""
        for _ in range(64):
            die = self._dies.get(off)
            if die is None or die.tag not in _TRANSPARENT:
                break
            off = die.attrs.get("DW_AT_type", 0)
        if off not in self._dies:
            return 0  # void, or a kind of type BPF objects do not have
        key = (off, dim)
        if key not in self._ids:
            self._ids[key] = len(self._keys)
            self._keys.append(key)
        return self._ids[key]

    def _t(self, tid: int) -> _Type:
        t = self._types.get(tid)
        if t is None:
            t = self._types[tid] = self._make(*self._keys[tid]) if tid else _VOID
        return t

    def _make(self, off: int, dim: int) -> _Type:
        die = self._dies[off]
        tag, a = die.tag, die.attrs
        name, size = a.get("DW_AT_name", ""), a.get("DW_AT_byte_size", 0)
        ref = self._id(a.get("DW_AT_type", 0))
        if tag == "DW_TAG_base_type":
            enc = a.get("DW_AT_encoding", 0)
            if enc == _ATE_FLOAT:
                return _Type(B.FLOAT, name, size, 0)
            return _Type(
                B.INT,
                name,
                size,
                0,
                (
                    enc in (_ATE_SIGNED, _ATE_SIGNED_CHAR),
                    enc == _ATE_BOOLEAN,
                    enc in (_ATE_SIGNED_CHAR, _ATE_UNSIGNED_CHAR) or name in _CHAR_NAMES,
                ),
            )
        if tag == "DW_TAG_pointer_type":
            return _Type(B.PTR, "", _POINTER_SIZE, ref)
        if tag == "DW_TAG_array_type":
            dims = [
                _count(self._dies[c]) for c in die.children if self._dies[c].tag == "DW_TAG_subrange_type"
            ] or [0]
            elem = self._id(off, dim + 1) if dim + 1 < len(dims) else ref
            return _Type(B.ARRAY, "", 0, elem, dims[dim])
        if tag in _AGGREGATES:
            if a.get("DW_AT_declaration"):
                return _Type(B.FWD, name, 0, 0, tag == "DW_TAG_union_type")
            return _Type(
                _AGGREGATES[tag],
                name,
                size,
                0,
                [self._member(self._dies[c]) for c in die.children if self._dies[c].tag == "DW_TAG_member"],
            )
        if tag == "DW_TAG_enumeration_type":
            return self._enum(die, name, size, ref)
        if tag in _QUALIFIERS:
            return _Type(_QUALIFIERS[tag], name if tag == "DW_TAG_typedef" else "", 0, ref)
        if tag == "DW_TAG_subroutine_type":
            return _Type(B.FUNC_PROTO, "", 0, ref)
        return _Type(B.UNION, name, size, 0, [])  # no kind for it: its bytes

    def _member(self, die: _Die) -> tuple[str, int, int, int]:
        a = die.attrs
        where = _location(a.get("DW_AT_data_member_location", 0)) * 8
        bits = a.get("DW_AT_bit_size", 0)
        if "DW_AT_data_bit_offset" in a:  # DWARF 4 and later
            where = a["DW_AT_data_bit_offset"]
        elif bits and "DW_AT_bit_offset" in a:  # DWARF 2: counted from the storage unit's top bit
            unit = a.get("DW_AT_byte_size") or self.size(self._id(a.get("DW_AT_type", 0)))
            where += unit * 8 - a["DW_AT_bit_offset"] - bits
        return a.get("DW_AT_name", ""), self._id(a.get("DW_AT_type", 0)), where, bits

    def _enum(self, die: _Die, name: str, size: int, ref: int) -> _Type:
        values = [
            (self._dies[c].attrs.get("DW_AT_name", ""), self._dies[c].attrs.get("DW_AT_const_value", 0))
            for c in die.children
            if self._dies[c].tag == "DW_TAG_enumerator"
        ]
        base = self.resolve(ref)
        signed = self.int_info(base)[1] if self.kind(base) == B.INT else any(v < 0 for _, v in values)
        bits = 8 * size
        if signed and bits:  # data forms are read unsigned
            values = [(n, v - (1 << bits) if v >= 1 << (bits - 1) else v) for n, v in values]
        return _Type(B.ENUM, name, size, 0, (values, signed))

    def _codec(self, tid: int) -> Codec:
        tid = self.resolve(tid)
        kind, size = self.kind(tid), self.size(tid)
        if kind == B.INT:
            _, signed, is_bool, _ = self.int_info(tid)
            return Int(size, signed, is_bool) if size in (1, 2, 4, 8) else Raw(size)
        if kind == B.ENUM:
            if size not in (1, 2, 4, 8):
                return Raw(size)
            return Int(size, self.enum_signed(tid), values=self.enum_values(tid))
        if kind == B.PTR:
            return Int(_POINTER_SIZE, False)
        if kind == B.FLOAT and size in (4, 8):
            return Float(size)
        if kind == B.ARRAY:
            elem_tid, n = self.array(tid)
            elem = self._codec(elem_tid)
            if isinstance(elem, Int) and elem.size == 1 and self.int_info(self.resolve(elem_tid))[3]:
                return CString(n)
            return Array(elem, n) if n else Raw(0)
        if kind == B.STRUCT:
            members = self._byte_members(tid, size, True)
            if members is None:
                return Raw(size)  # bit-fields, overlaps: no byte layout to give
            name = self.name(tid)
            return Struct(name, size, members, self.records.get(name))
        return Raw(size)

    def _byte_members(self, tid: int, size: int, apart: bool) -> list[tuple[str, int, Codec]] | None:
        """(name, byte offset, codec) of a struct's (``apart``: members that
        do not overlap) or union's members, an anonymous union's a
        ``Union``; None for a bit-field, an overlap or a member past the end."""
        members, end = [], 0
        for name, mtid, bit_offset, bits in self.members(tid):
            if bits or bit_offset % 8 or apart and bit_offset // 8 < end:
                return None
            rid = self.resolve(mtid)
            codec = self._union(rid) if not name and self.kind(rid) == B.UNION else self._codec(mtid)
            members.append((name, bit_offset // 8, codec))
            end = max(end, bit_offset // 8 + codec.size)
        return members if end <= size else None

    def _union(self, tid: int) -> Codec:
        """An anonymous union, spread into the struct that holds it (``codecs.Union``)."""
        size = self.size(tid)
        members = self._byte_members(tid, size, False)
        return Union(size, members) if members is not None else Raw(size)

    def fields(self, tid: int) -> list[tuple[str, int, int, int]]:
        """``members()`` of struct ``tid`` as its decoded record has them (``btf.record_members``)."""
        return B.record_members(self, tid)


def _walk(die, cu: int, out: dict[int, _Die]) -> bool:
    """Keep the DIEs under ``die`` that describe types (wherever they are
    declared: a function may declare a struct). True if ``die`` was kept."""
    children = [c.offset for c in die.iter_children() if _walk(c, cu, out)]
    if die.tag not in _TYPE_TAGS and die.tag not in _PARTS:
        return False
    attrs = {}
    for name, attr in die.attributes.items():
        value = attr.value
        if attr.form in _REF_FORMS:
            value += cu
        elif isinstance(value, bytes):
            value = _text(value)
        if name == "DW_AT_name" and not isinstance(value, str):  # a broken string form: no name
            value = ""
        attrs[name] = value
    out[die.offset] = _Die(die.tag, attrs, children, cu)
    return True


def _text(raw) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _count(subrange: _Die) -> int:
    """Elements of one array dimension; 0 for a flexible array member."""
    a = subrange.attrs
    if isinstance(a.get("DW_AT_count"), int):
        return a["DW_AT_count"]
    if isinstance(a.get("DW_AT_upper_bound"), int):
        return a["DW_AT_upper_bound"] - a.get("DW_AT_lower_bound", 0) + 1
    return 0


def _location(value) -> int:
    """A member's byte offset: a constant, or DWARF 2's ``DW_OP_plus_uconst N``."""
    if isinstance(value, int):
        return value
    if isinstance(value, list) and value and value[0] == _DW_OP_PLUS_UCONST:
        n, shift = 0, 0
        for byte in value[1:]:
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return n
    return 0


_cache: weakref.WeakKeyDictionary[BPFObject, DwarfTypes | None] = weakref.WeakKeyDictionary()


_readers: weakref.WeakKeyDictionary[BPFObject, Callable[[], DwarfTypes | None]] = weakref.WeakKeyDictionary()


def share(obj: BPFObject, read: Callable[[], DwarfTypes | None]) -> None:
    """Have ``dwarf_of(obj)`` ask ``read()`` (called at most once, when first
    needed) instead of reading the file: a caller that opens the same file
    again and again (the generic loader's retries) reads its DWARF once."""
    _readers[obj] = read


def read_dwarf(path: str) -> DwarfTypes | None:
    """``DwarfTypes.read(path)``, or None, logged, when pyelftools cannot read it."""
    try:
        return DwarfTypes.read(path)
    except Exception as e:  # a foreign object's odd DWARF: go on without it
        log.warning("cannot read the DWARF of %s: %s", path, e)
        return None


def dwarf_of(obj: BPFObject) -> DwarfTypes | None:
    """The DWARF types of ``obj``'s file, read once, at the first call; None
    when the object has no DWARF or pyelftools cannot read it."""
    if obj not in _cache:
        read = _readers.get(obj)
        _cache[obj] = types = read() if read is not None else read_dwarf(obj.path)
        if types is not None and read is None:
            types.records = obj.btf.records
    return _cache[obj]
