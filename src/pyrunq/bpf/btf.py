"""BTF, the types of an object, read and printed through libbpf's BTF API.

``BTF`` answers what a type is (its kind, name, size, members, enumerators...),
gives the ``Layout`` (``pyrunq.bpf.codecs``) that decodes and encodes values
of a type, and prints types as C with libbpf's ``btf_dump``: a declaration
(``const volatile __u32 target_tgid``) or a whole definition. ``BTF.new()``
makes an empty BTF to fill with types from elsewhere (an object's DWARF), so
that they too are printed by libbpf.
"""

from __future__ import annotations

import re

from .. import libbpf
from ..errors import MalformedObject
from ..libbpf import ffi, lib
from .codecs import INT_FORMATS, Array, Codec, CString, Float, Int, Layout, Raw, Record, Struct, Union

# BTF kinds (include/uapi/linux/btf.h)
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
_MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)
_INT_SIGNED, _INT_CHAR, _INT_BOOL = 1, 2, 4
MAX_CHAIN = 256  # typedefs and qualifiers over one type: C code has a handful
_BODIES = (STRUCT, UNION, ENUM, ENUM64)  # what a definition prints whole
_DECL_OPTS = "struct btf_dump_emit_type_decl_opts"
# btf_dump writes `const volatile x` (the order clang and people write) as `volatile const x`
_VOLATILE_CONST = re.compile(r"\bvolatile const\b")


@ffi.def_extern(onerror=libbpf.keep_interrupt)
def pyrunq_dump_text(ctx, text):
    ffi.from_handle(ctx).append(ffi.string(text).decode(errors="replace"))


class BTF:
    """Types of one object (or of our own, from ``new()``), read and printed
    through libbpf's BTF API."""

    def __init__(self, btf_ptr, records: dict[str, type[Record]] | None = None):
        self.ptr = btf_ptr
        self._layouts: dict[int, Layout] = {}
        self._enums: tuple[int, dict[str, int]] = (0, {})  # (type count, name -> id)
        # struct name -> the class its values decode to (a skeleton's); others get one made
        self.records: dict[str, type[Record]] = dict(records or {})

    def _type(self, tid: int):
        return lib.btf__type_by_id(self.ptr, tid)

    def _name(self, off: int) -> str:
        return ffi.string(lib.btf__name_by_offset(self.ptr, off)).decode()

    @staticmethod
    def _kind(t) -> int:
        return (t.info >> 24) & 0x1F

    def find(self, name: str, kind: int = STRUCT) -> int:
        """The id of a named type; KeyError if the object has none."""
        tid = lib.btf__find_by_name_kind(self.ptr, name.encode(), kind)
        if tid < 0:
            raise KeyError(name)
        return tid

    def layout(self, tid: int, size: int | None = None) -> Layout:
        """The layout of type ``tid``; without a type, an unsigned int of ``size``
        (4 or 8 bytes: array indexes, internal maps) or raw bytes."""
        if not tid:
            return Layout(Int(size, False) if size in (4, 8) else Raw(size or 0))
        if tid not in self._layouts:
            codec = self._codec(tid)
            self._layouts[tid] = Layout(codec, self.type_name(tid))
        layout = self._layouts[tid]
        if size is not None and layout.size != size:
            return Layout(Raw(size))
        return layout

    def resolve(self, tid: int) -> int:
        """The type ``tid`` stands for, through typedefs and qualifiers."""
        for _ in range(MAX_CHAIN):  # btfcheck refuses cycles; this bound is the last guard
            if self._kind(self._type(tid)) not in _MODIFIERS:
                return tid
            tid = self._type(tid).type
        raise MalformedObject(f"BTF type {tid}: typedefs and qualifiers that do not end")

    def raw(self) -> bytes:
        """The BTF as bytes, as a .BTF section holds it (for ``btfcheck``)."""
        size = ffi.new("__u32 *")
        data = libbpf.check_ptr(lib.btf__raw_data(self.ptr, size), "write BTF")
        return bytes(ffi.buffer(data, size[0]))

    def type_name(self, tid: int) -> str:
        """The C name of type ``tid`` ("struct event", "__u32"...)."""
        t = self._type(tid)
        name = self._name(t.name_off)
        kind = self._kind(t)
        prefix = {STRUCT: "struct ", UNION: "union ", ENUM: "enum ", ENUM64: "enum "}.get(kind, "")
        if name:
            return prefix + name
        if kind in _MODIFIERS:
            return self.type_name(t.type)
        if kind == ARRAY:
            arr = ffi.cast("struct btf_array *", t + 1)
            return f"{self.type_name(arr.type)}[{arr.nelems}]"
        return prefix + "(anon)"

    def _codec(self, tid: int) -> Codec:
        tid = self.resolve(tid)
        t = self._type(tid)
        kind = self._kind(t)
        if kind == INT:
            enc = ffi.cast("__u32 *", t + 1)[0]
            bits, flags = enc & 0xFF, (enc >> 24) & 0xF
            if bits != t.size * 8 or t.size not in INT_FORMATS:
                return Raw(t.size)
            return Int(t.size, bool(flags & _INT_SIGNED), bool(flags & _INT_BOOL))
        if kind in (ENUM, ENUM64):
            if t.size not in INT_FORMATS:
                return Raw(t.size)
            return Int(t.size, bool(t.info >> 31), values=self.enum_values(tid))
        if kind == PTR:
            return Int(8, False)
        if kind == FLOAT:
            return Float(t.size)
        if kind == ARRAY:
            arr = ffi.cast("struct btf_array *", t + 1)
            elem = self._codec(arr.type)
            if isinstance(elem, Int) and elem.size == 1 and self._is_char(arr.type):
                return CString(arr.nelems, bitmap=not elem.signed)
            return Array(elem, arr.nelems) if arr.nelems else Raw(0)
        if kind == STRUCT:
            return self._struct(tid)
        size = lib.btf__resolve_size(self.ptr, tid)
        return Raw(max(size, 0))

    def _is_char(self, tid: int) -> bool:
        return self.int_info(self.resolve(tid))[3]

    def _struct(self, tid: int) -> Codec:
        t = self._type(tid)
        members = self._byte_members(tid)
        if members is None:
            return Raw(t.size)  # bit-fields: no byte layout to give
        name = self._name(t.name_off)
        return Struct(name, t.size, members, self.records.get(name) if name else None)

    def _byte_members(self, tid: int) -> list[tuple[str, int, Codec]] | None:
        """(name, byte offset, codec) of a struct's or union's members, an
        anonymous union's a ``Union``; None if one is a bit-field."""
        members = []
        for name, mtid, bit_offset, bits in self.members(tid):
            if bits or bit_offset % 8:
                return None
            rid = self.resolve(mtid)
            codec = self._union(rid) if not name and self.kind(rid) == UNION else self._codec(mtid)
            members.append((name, bit_offset // 8, codec))
        return members

    def _union(self, tid: int) -> Codec:
        """An anonymous union, spread into the struct that holds it (``codecs.Union``)."""
        size = self.size(tid)
        members = self._byte_members(tid)
        if members is None or any(offset + c.size > size for _, offset, c in members):
            return Raw(size)
        return Union(size, members)

    def fields(self, tid: int) -> list[tuple[str, int, int, int]]:
        """``members()`` of struct ``tid`` as its decoded record has them (``record_members``)."""
        return record_members(self, tid)

    def datasec(self, section: str) -> dict[str, tuple[int, Layout]]:
        """Variables of a data section (``.rodata``, ``.bss``...): name -> (offset, layout)."""
        return {name: (offset, self.layout(tid, size)) for name, tid, offset, size in self.variables(section)}

    def variables(self, section: str, static: bool = True) -> list[tuple[str, int, int, int]]:
        """(name, type id, offset, size) of each variable of a data section;
        ``static=False`` leaves out static ones (a function's ``static`` locals)."""
        try:
            tid = self.find(section, DATASEC)
        except KeyError:
            return []
        t = self._type(tid)
        infos = ffi.cast("struct btf_var_secinfo *", t + 1)
        out = []
        for k in range(t.info & 0xFFFF):
            var = self._type(infos[k].type)
            if not static and ffi.cast("__u32 *", var + 1)[0] == 0:  # BTF_VAR_STATIC
                continue
            out.append((self._name(var.name_off), var.type, infos[k].offset, infos[k].size))
        return out

    # -- type introspection, for tools that know nothing of the object ---------

    def kind(self, tid: int) -> int:
        """The BTF kind of type ``tid`` (``INT``, ``STRUCT``...)."""
        return self._kind(self._type(tid)) if tid else 0

    def name(self, tid: int) -> str:
        """The type's own name ("" for anonymous types and void)."""
        return self._name(self._type(tid).name_off) if tid else ""

    def size(self, tid: int) -> int:
        """The size of type ``tid`` in bytes."""
        return max(lib.btf__resolve_size(self.ptr, tid), 0) if tid else 0

    def members(self, tid: int) -> list[tuple[str, int, int, int]]:
        """(name, type id, bit offset, bit-field size or 0) of a struct or union."""
        t = self._type(tid)
        kflag = t.info >> 31
        raw = ffi.cast("struct btf_member *", t + 1)
        return [
            (
                self._name(m.name_off),
                m.type,
                m.offset & 0xFFFFFF if kflag else m.offset,
                m.offset >> 24 if kflag else 0,
            )
            for m in raw[0 : t.info & 0xFFFF]
        ]

    def params(self, tid: int) -> list[tuple[str, int]]:
        """(name, type id) of each parameter of a function prototype (or of
        the function ``tid`` is)."""
        t = self._type(tid)
        if self._kind(t) == FUNC:
            t = self._type(t.type)
        words = ffi.cast("__u32 *", t + 1)  # struct btf_param: name_off, type
        return [(self._name(words[2 * k]), words[2 * k + 1]) for k in range(t.info & 0xFFFF)]

    def pointee(self, tid: int) -> int:
        """The type a pointer, typedef or qualifier refers to."""
        return self._type(tid).type

    def array(self, tid: int) -> tuple[int, int]:
        """(element type id, number of elements) of an array."""
        arr = ffi.cast("struct btf_array *", self._type(tid) + 1)
        return arr.type, arr.nelems

    def int_info(self, tid: int) -> tuple[int, bool, bool, bool]:
        """(size in bytes, signed, bool, char) of an integer type."""
        t = self._type(tid)
        enc = ffi.cast("__u32 *", t + 1)[0]
        flags = (enc >> 24) & 0xF
        char = bool(flags & _INT_CHAR) or self._name(t.name_off) in ("char", "signed char", "unsigned char")
        return t.size, bool(flags & _INT_SIGNED), bool(flags & _INT_BOOL), char

    def enum_signed(self, tid: int) -> bool:
        """Whether enum ``tid`` holds signed values."""
        return bool(self._type(tid).info >> 31)

    def enum_values(self, tid: int) -> dict[str, int]:
        """Enumerator name -> value, in declaration order (ENUM and ENUM64)."""
        t = self._type(tid)
        signed, n = self.enum_signed(tid), t.info & 0xFFFF
        words = ffi.cast("__u32 *", t + 1)
        out = {}
        for k in range(n):
            if self._kind(t) == ENUM64:
                name_off, value = words[3 * k], words[3 * k + 1] | words[3 * k + 2] << 32
                bits = 64
            else:
                name_off, value, bits = words[2 * k], words[2 * k + 1], 32
            if signed and value >> (bits - 1):
                value -= 1 << bits
            out[self._name(name_off)] = value
        return out

    def enum(self, name: str) -> dict[str, int]:
        """Enumerator name -> value of ``enum name``; KeyError if the object has none."""
        for kind in (ENUM, ENUM64):
            tid = lib.btf__find_by_name_kind(self.ptr, name.encode(), kind)
            if tid > 0:
                return self.enum_values(tid)
        raise KeyError(f"enum {name}")

    def enums(self) -> dict[str, int]:
        """Name -> id of each named enum (the object's own and its vmlinux.h's
        alike: BTF does not say which header declared a type)."""
        count = lib.btf__type_cnt(self.ptr)
        if self._enums[0] != count:  # read once (again when types were added)
            out: dict[str, int] = {}
            for tid in range(1, count):
                t = self._type(tid)
                if self._kind(t) in (ENUM, ENUM64) and t.name_off:
                    out.setdefault(self._name(t.name_off), tid)
            self._enums = (count, out)
        return dict(self._enums[1])

    def enum_with(self, enumerator: str) -> dict[str, int]:
        """Enumerator name -> value of the first enum that has ``enumerator``
        (the kernel's TCP states and softirq vectors are anonymous enums:
        found by ``TCP_ESTABLISHED``, ``HI_SOFTIRQ``); KeyError if none has it."""
        for tid in range(1, lib.btf__type_cnt(self.ptr)):
            if self._kind(self._type(tid)) in (ENUM, ENUM64):
                values = self.enum_values(tid)
                if enumerator in values:
                    return values
        raise KeyError(f"enum with {enumerator}")

    # -- C, as libbpf's btf_dump prints it ----------------------------------------

    def declaration(self, tid: int, name: str = "") -> str:
        """A C declaration of ``name`` with type ``tid``, on one line: ``char comm[16]``,
        ``const volatile __u32 pid``, ``struct event *e``; the body of an
        anonymous struct, union or enum is ``{...}``."""
        return _one_line(self._declaration(tid, name))

    def definition(self, tid: int) -> str:
        """C source of a type: a named struct, union or enum whole, one member
        per line, indented by tabs; any other type as a declaration."""
        t = self._type(tid) if 0 < tid < lib.btf__type_cnt(self.ptr) else None
        if t is not None and self._kind(t) in _BODIES and t.name_off:
            # btf_dump prints first what the type needs (typedefs, enums, other
            # structs), a paragraph each, and the type itself last
            text = self._dump(lambda d: lib.btf_dump__dump_type(d, tid), tid)
            return text.rstrip("\n").rsplit("\n\n", 1)[-1]
        return self._declaration(tid) + ";"

    def _declaration(self, tid: int, name: str = "") -> str:
        field = ffi.new("char[]", name.encode())
        opts = ffi.new(f"{_DECL_OPTS} *", {"sz": ffi.sizeof(_DECL_OPTS), "field_name": field})
        return self._dump(lambda d: lib.btf_dump__emit_type_decl(d, tid, opts), tid)

    def _dump(self, emit, tid: int) -> str:
        """The text that ``emit(dumper)`` makes libbpf's btf_dump print of type ``tid``."""
        if not 0 <= tid < lib.btf__type_cnt(self.ptr):  # btf_dump would read past its types
            raise ValueError(f"no type {tid} in this BTF")
        pieces: list[str] = []
        handle = ffi.new_handle(pieces)
        dumper = libbpf.check_ptr(lib.pyrunq_btf_dump_new(self.ptr, handle), "print BTF as C")
        try:
            libbpf.check(emit(dumper), f"print type {tid} as C")
        finally:
            lib.btf_dump__free(dumper)
        return _VOLATILE_CONST.sub("const volatile", "".join(pieces))

    # -- a BTF of our own, for types from elsewhere --------------------------------

    @classmethod
    def kernel(cls) -> BTF:
        """The running kernel's BTF (vmlinux), to read or to add types to
        (``add_*``): a loader that supplies types the kernel lacks writes it
        out (``raw()``) for ``BPFObject(btf_custom_path=...)``."""
        ptr = libbpf.check_ptr(lib.btf__load_vmlinux_btf(), "read the kernel's BTF")
        return cls(ffi.gc(ptr, lib.btf__free))

    @classmethod
    def new(cls) -> BTF:
        """An empty BTF in memory, to fill with the ``add_*`` methods. Each
        returns the new type's id (1, 2, ... in the order of the calls); a
        type may refer to an id added after it. Freed with the object."""
        ptr = libbpf.check_ptr(lib.btf__new_empty(), "create BTF")
        return cls(ffi.gc(ptr, lib.btf__free))

    def add_int(self, name: str, size: int, signed: bool = False, is_bool: bool = False) -> int:
        """An integer type of ``size`` bytes (1, 2, 4, 8 or 16)."""
        flags = (_INT_SIGNED if signed else 0) | (_INT_BOOL if is_bool else 0)
        return self._added(lib.btf__add_int(self.ptr, name.encode(), size, flags), name)

    def add_float(self, name: str, size: int) -> int:
        """A floating-point type of ``size`` bytes."""
        return self._added(lib.btf__add_float(self.ptr, name.encode(), size), name)

    def add_ref(self, kind: int, ref: int, name: str = "") -> int:
        """A type over type ``ref``: PTR, CONST, VOLATILE, RESTRICT, TYPEDEF
        (named ``name``) or FUNC_PROTO (returning ``ref``, parameters unknown)."""
        if kind == TYPEDEF:
            return self._added(lib.btf__add_typedef(self.ptr, name.encode(), ref), name)
        add = {
            PTR: lib.btf__add_ptr,
            CONST: lib.btf__add_const,
            VOLATILE: lib.btf__add_volatile,
            RESTRICT: lib.btf__add_restrict,
            FUNC_PROTO: lib.btf__add_func_proto,
        }[kind]
        return self._added(add(self.ptr, ref), name)

    def add_array(self, elem: int, n: int) -> int:
        """An array of ``n`` elements of type ``elem``."""
        return self._added(lib.btf__add_array(self.ptr, 0, elem, n))  # index type: void, unused here

    def add_struct(self, kind: int, name: str, size: int, members: list[tuple[str, int, int, int]]) -> int:
        """A STRUCT or UNION of ``members`` as ``members()`` gives them: (name,
        type id, bit offset, bit-field size or 0)."""
        add = lib.btf__add_union if kind == UNION else lib.btf__add_struct
        tid = self._added(add(self.ptr, name.encode(), size), name)
        for member, mtid, bit_offset, bits in members:
            self._added(lib.btf__add_field(self.ptr, member.encode(), mtid, bit_offset, bits), name)
        return tid

    def add_enum(self, name: str, size: int, values: dict[str, int], signed: bool) -> int:
        """An enum of ``values`` (name -> value); an ENUM64 when it is 8 bytes
        or a value needs more than 32 bits."""
        if size < 8 and all(-(1 << 31) <= v < 1 << 32 for v in values.values()):
            tid = self._added(lib.btf__add_enum(self.ptr, name.encode(), size), name)
            for k, v in values.items():
                self._added(lib.btf__add_enum_value(self.ptr, k.encode(), v), name)
            return tid
        tid = self._added(lib.btf__add_enum64(self.ptr, name.encode(), size, signed), name)
        for k, v in values.items():
            self._added(lib.btf__add_enum64_value(self.ptr, k.encode(), v & (1 << 64) - 1), name)
        return tid

    def add_fwd(self, name: str, union: bool = False) -> int:
        """A forward declaration: ``struct name`` (``union name``) without members."""
        kind = lib.BTF_FWD_UNION if union else lib.BTF_FWD_STRUCT
        return self._added(lib.btf__add_fwd(self.ptr, name.encode(), kind), name)

    @staticmethod
    def _added(ret: int, name: str = "") -> int:
        return libbpf.check(ret, "add to BTF the type", name or None)


def record_members(types, tid: int) -> list[tuple[str, int, int, int]]:
    """(name, type id, bit offset, bit-field size or 0) of struct ``tid``'s
    members (in BTF or DWARF types) as its decoded record has them: those of
    an anonymous struct or union in its place, at their offsets in the
    struct (``codecs.spread``; one that stays a member is named ``_N``);
    ``members()`` when the struct decodes to no record."""
    tid = types.resolve(tid)
    codec = types.layout(tid).codec
    if not isinstance(codec, Struct):
        return types.members(tid)
    out = []
    for field in codec.fields:
        mtid, bit_offset, bits = tid, 0, 0
        for i in field.path:
            _, mtid, offset, bits = types.members(types.resolve(mtid))[i]
            bit_offset += offset
        out.append((field.name, mtid, bit_offset, bits))
    return out


def _one_line(decl: str) -> str:
    """``decl`` with the body of each anonymous struct, union or enum as ``{...}``."""
    if "{" not in decl:
        return decl
    out, depth = [], 0
    for c in decl:
        if c == "{":
            out.append("{...}" if depth == 0 else "")
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)
