"""Python values from and to C data, with layouts read from an object's BTF.

A struct is declared once, in C; here its BTF becomes a ``Codec``: one
precompiled ``struct.Struct`` for the whole type plus a small tree that turns
the flat tuple it unpacks into Python values (int, str for ``char[]``, tuple
for other arrays, a namedtuple for structs) and back.
"""

from __future__ import annotations

import collections
import operator
import struct

from ..libbpf import ffi, lib

# BTF kinds (include/uapi/linux/btf.h)
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
_MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)
_INT_SIGNED, _INT_CHAR, _INT_BOOL = 1, 2, 4
_INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


class Codec:
    """Part of a layout: ``fmt`` yields ``count`` flat items, ``build`` joins them."""

    fmt: str
    count = 1
    size: int

    def build(self, items: tuple, i: int) -> object:
        return items[i]

    def flatten(self, value: object, out: list) -> None:
        out.append(value)


class Int(Codec):
    def __init__(self, size: int, signed: bool, is_bool: bool = False):
        self.size = size
        self.fmt = "?" if is_bool and size == 1 else _INT_FORMATS[size]
        if not signed and not is_bool:
            self.fmt = self.fmt.upper()

    def flatten(self, value, out):
        out.append(operator.index(value))


class Float(Codec):
    def __init__(self, size: int):
        self.size, self.fmt = size, {4: "f", 8: "d"}[size]


class Raw(Codec):
    """Bytes, for what has no better Python form (unions, bit-fields, void)."""

    def __init__(self, size: int):
        self.size, self.fmt = size, f"{size}s"

    def flatten(self, value, out):
        if len(value) != self.size:
            raise ValueError(f"expected {self.size} bytes, got {len(value)}")
        out.append(bytes(value))


class CString(Codec):
    """``char[N]``: a str without the trailing NULs."""

    def __init__(self, size: int):
        self.size, self.fmt = size, f"{size}s"

    def build(self, items, i):
        return items[i].split(b"\0", 1)[0].decode(errors="replace")

    def flatten(self, value, out):
        data = value.encode() if isinstance(value, str) else bytes(value)
        if len(data) > self.size:
            raise ValueError(f"{data!r} is longer than char[{self.size}]")
        out.append(data)


class Array(Codec):
    def __init__(self, elem: Codec, n: int):
        self.elem, self.n = elem, n
        self.size = elem.size * n
        self.count = elem.count * n
        self.fmt = f"{n}{elem.fmt}" if elem.count == 1 and isinstance(elem, Int) else elem.fmt * n
        self._scalar = type(elem) is Int

    def build(self, items, i):
        if self._scalar:
            return items[i : i + self.n]
        step = self.elem.count
        return tuple(self.elem.build(items, i + k * step) for k in range(self.n))

    def flatten(self, value, out):
        if len(value) != self.n:
            raise ValueError(f"expected {self.n} elements, got {len(value)}")
        for v in value:
            self.elem.flatten(v, out)


class Struct(Codec):
    """A struct as a namedtuple; padding is skipped, every member kept."""

    def __init__(self, name: str, size: int, members: list[tuple[str, int, Codec]]):
        self.size, self.members = size, members
        self.record = collections.namedtuple(  # type: ignore[misc]  # made from BTF at run time
            name or "anon", [m[0] or "_" for m in members], rename=True
        )
        fmt, pos = [], 0
        for _, offset, codec in members:
            fmt.append(f"{offset - pos}x" if offset > pos else "")
            fmt.append(codec.fmt)
            pos = offset + codec.size
        fmt.append(f"{size - pos}x" if size > pos else "")
        self.fmt = "".join(fmt)
        self.count = sum(c.count for _, _, c in members)
        self._plain = all(type(c) is Int for _, _, c in members)

    def build(self, items, i):
        if self._plain:
            return self.record._make(items[i : i + self.count])
        values = []
        for _, _, codec in self.members:
            values.append(codec.build(items, i))
            i += codec.count
        return self.record._make(values)

    def flatten(self, value, out):
        if isinstance(value, dict):
            unknown = set(value) - set(self.record._fields)
            if unknown:
                raise ValueError(f"no field {sorted(unknown)[0]!r} in struct {self.record.__name__}")
            value = [value.get(f, 0) for f in self.record._fields]
        elif len(value) != len(self.members):
            raise ValueError(
                f"struct {self.record.__name__} has {len(self.members)} fields, got {len(value)} values"
            )
        for v, (_, _, codec) in zip(value, self.members):
            codec.flatten(v, out)


class Layout:
    """A whole type: decode bytes to a value, encode a value to bytes."""

    def __init__(self, codec: Codec, name: str = ""):
        self.codec, self.name = codec, name
        self.struct = struct.Struct("=" + codec.fmt)
        self.size = self.struct.size
        if self.size != codec.size:
            raise AssertionError(f"layout of {name or 'type'}: {self.size} != BTF size {codec.size}")
        self.record = getattr(codec, "record", None)

    def decode(self, data, offset: int = 0) -> object:
        return self.codec.build(self.struct.unpack_from(data, offset), 0)

    def encode(self, value: object) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)) and not isinstance(self.codec, (Raw, CString)):
            if len(value) != self.size:
                raise ValueError(f"{name_of(self)} is {self.size} bytes, got {len(value)}")
            return bytes(value)
        items: list = []
        try:
            self.codec.flatten(value, items)
            return self.struct.pack(*items)
        except (TypeError, struct.error) as e:
            raise ValueError(f"cannot convert {value!r} to {name_of(self)}: {e}") from None


def name_of(layout: Layout) -> str:
    return layout.name or f"a {layout.size}-byte value"


class BTF:
    """Types of one object, read through libbpf's BTF API."""

    def __init__(self, btf_ptr):
        self.ptr = btf_ptr
        self._layouts: dict[int, Layout] = {}

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
        while self._kind(self._type(tid)) in _MODIFIERS:
            tid = self._type(tid).type
        return tid

    def type_name(self, tid: int) -> str:
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
            if bits != t.size * 8 or t.size not in _INT_FORMATS:
                return Raw(t.size)
            return Int(t.size, bool(flags & _INT_SIGNED), bool(flags & _INT_BOOL))
        if kind in (ENUM, ENUM64):
            return Int(t.size, bool(t.info >> 31)) if t.size in _INT_FORMATS else Raw(t.size)
        if kind == PTR:
            return Int(8, False)
        if kind == FLOAT:
            return Float(t.size)
        if kind == ARRAY:
            arr = ffi.cast("struct btf_array *", t + 1)
            elem = self._codec(arr.type)
            if isinstance(elem, Int) and elem.size == 1 and self._is_char(arr.type):
                return CString(arr.nelems)
            return Array(elem, arr.nelems) if arr.nelems else Raw(0)
        if kind == STRUCT:
            return self._struct(tid)
        size = lib.btf__resolve_size(self.ptr, tid)
        return Raw(max(size, 0))

    def _is_char(self, tid: int) -> bool:
        return self.int_info(self.resolve(tid))[3]

    def _struct(self, tid: int) -> Codec:
        t = self._type(tid)
        members = []
        for name, mtid, bit_offset, bits in self.members(tid):
            if bits or bit_offset % 8:
                return Raw(t.size)  # bit-fields: no byte layout to give
            members.append((name, bit_offset // 8, self._codec(mtid)))
        return Struct(self._name(t.name_off), t.size, members)

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
        return self._kind(self._type(tid)) if tid else 0

    def name(self, tid: int) -> str:
        """The type's own name ("" for anonymous types and void)."""
        return self._name(self._type(tid).name_off) if tid else ""

    def size(self, tid: int) -> int:
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

    def declaration(self, tid: int, name: str = "") -> str:
        """A C declaration of ``name`` with type ``tid``: ``char comm[16]``,
        ``const volatile __u32 pid``, ``struct event *e``."""
        kind = self.kind(tid)
        own = self.name(tid)
        if kind == PTR:
            target = self.pointee(tid)
            inner = f"*{name}"
            if self.kind(target) in (ARRAY, FUNC_PROTO):
                inner = f"({inner})"
            return self.declaration(target, inner)
        if kind == ARRAY:
            elem, n = self.array(tid)
            return self.declaration(elem, f"{name}[{n}]")
        if kind in (CONST, VOLATILE, RESTRICT):
            qual = {CONST: "const", VOLATILE: "volatile", RESTRICT: "restrict"}[kind]
            target = self.pointee(tid)
            if self.kind(target) == PTR:  # int *const p
                return self.declaration(target, f"{qual} {name}".strip())
            return f"{qual} {self.declaration(target, name)}"
        if kind == TYPE_TAG:
            return self.declaration(self.pointee(tid), name)
        if kind == FUNC_PROTO:
            return self.declaration(self.pointee(tid), f"{name}(...)")
        if kind == FWD:
            base = ("union " if self._type(tid).info >> 31 else "struct ") + own
        elif kind in (STRUCT, UNION, ENUM, ENUM64):
            base = self.type_name(tid) if own else self.type_name(tid).replace("(anon)", "{...}")
        else:
            base = own or "void"
        return f"{base} {name}".rstrip() if not name.startswith("[") else base + name

    def definition(self, tid: int) -> str:
        """C source of a struct, union or enum type, one member per line."""
        kind = self.kind(tid)
        if kind in (ENUM, ENUM64):
            body = "".join(f"\t{k} = {v},\n" for k, v in self.enum_values(tid).items())
        elif kind in (STRUCT, UNION):
            lines = []
            for mname, mtid, _, bits in self.members(tid):
                decl = self.declaration(mtid, mname)
                lines.append(f"\t{decl}{f' : {bits}' if bits else ''};\n")
            body = "".join(lines)
        else:
            return self.declaration(tid) + ";"
        return f"{self.type_name(tid)} {{\n{body}}};"
