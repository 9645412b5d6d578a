"""Python values from and to C data: how bytes become Python values and back.

A ``Layout`` is one precompiled ``struct.Struct`` for a whole type plus a
small tree of codecs that turns the flat tuple it unpacks into Python values
(int, float, str for ``char[]``, tuple for other arrays, a ``Record`` for
structs, bytes for what has no better form) and back. As in C, the members
of an anonymous struct or union are the enclosing struct's own: its record
has them under their names (``connect4``, ``port16``), a union's each
decoded from the same bytes. Type readers build the
tree: ``BTF`` (``pyrunq.bpf.btf``) from an object's BTF, and the generic
loader's DWARF reader for the structs an object's BTF lacks.
"""

from __future__ import annotations

import keyword
import operator
import struct
from collections import Counter, namedtuple
from collections.abc import Iterable

INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}  # the integer sizes an Int takes


class Record(tuple):
    """A decoded struct: a tuple with one attribute per C member, in order.

    Every member keeps its C name (``_pad``, ``from_``...): a Python keyword
    gets a trailing ``_``, and so does a name that is one of the record's
    own (``_fields``, ``_make``, ``_asdict``, ``_replace``). The members of
    an anonymous struct or union are the record's own, as in C (``e.port16``
    for ``union { __be32 ports; __be16 port16[2]; }``; a union's each decoded
    from its bytes); only one whose names clash with another member's stays
    a member without a name, ``_N``, N its position.
    Like a namedtuple: ``_fields``, ``_make``, ``_asdict()``, ``_replace()``.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @classmethod
    def _make(cls, values: Iterable[object]) -> Record:
        """From an iterable, unchecked: the decoders' way."""
        return tuple.__new__(cls, values)

    def __new__(cls, *values: object) -> Record:
        if len(values) != len(cls._fields):
            raise TypeError(f"{cls.__name__} has {len(cls._fields)} members, got {len(values)} values")
        return tuple.__new__(cls, values)

    def __getnewargs__(self) -> tuple[object, ...]:  # copy and pickle call __new__ with these
        return tuple(self)

    def _asdict(self) -> dict[str, object]:
        return dict(zip(self._fields, self))

    def _replace(self, **changes: object) -> Record:
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise ValueError(f"no field {sorted(unknown)[0]!r} in {type(self).__name__}")
        return self._make(changes.get(f, v) for f, v in zip(self._fields, self))

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
        return f"{type(self).__name__}({inner})"


_OWN = {"_fields", "_make", "_asdict", "_replace"}


def field_names(members: list[str]) -> list[str]:
    """The Python names of C members (``Record``'s rule): a keyword or one
    of the record's own names gets a trailing ``_``, a nameless member is
    ``_N``; a name taken by an earlier member gets one more ``_``."""
    out: list[str] = []
    for i, name in enumerate(members):
        if not name or not name.isidentifier():
            name = f"_{i}"
        while keyword.iskeyword(name) or name in _OWN or name in out:
            name += "_"
        out.append(name)
    return out


def record_class(name: str, members: list[str]) -> type[Record]:
    """A ``Record`` subclass named ``name`` for C members ``members``."""
    fields = field_names(members)
    body: dict[str, object] = {"__slots__": (), "_fields": tuple(fields)}
    for i, f in enumerate(fields):
        body[f] = member(i, f"member {members[i] or i}")
    return type(name, (Record,), body)


def member(index: int, doc: str) -> object:
    """The attribute that reads item ``index`` of a record: namedtuple's own
    accessor (in C, a third faster than a property) where CPython has it."""
    try:
        from collections import _tuplegetter  # type: ignore[attr-defined]

        return _tuplegetter(index, doc)
    except ImportError:
        return property(operator.itemgetter(index), doc=doc)


class Codec:
    """Part of a layout: ``fmt`` yields ``count`` flat items, ``build`` joins them."""

    fmt: str
    count = 1
    size: int

    def build(self, items: tuple, i: int) -> object:
        """The value whose flattened items start at ``items[i]``."""
        return items[i]

    def flatten(self, value: object, out: list) -> None:
        """Append ``value``'s items to ``out``, in the order ``fmt`` packs them."""
        out.append(value)


class Int(Codec):
    """An integer of 1, 2, 4 or 8 bytes (``bool`` for a 1-byte bool); an
    enum's when ``values`` (enumerator name -> value) is given. Encoding
    checks the range: a bool takes 0 or 1 only, an enum its enumerators (or
    their names) only, any other integer what its width and sign hold."""

    def __init__(self, size: int, signed: bool, is_bool: bool = False, values: dict[str, int] | None = None):
        self.size, self.signed, self.is_bool, self.values = size, signed, is_bool, values
        self.fmt = "?" if is_bool and size == 1 else INT_FORMATS[size]
        if not signed and not is_bool:
            self.fmt = self.fmt.upper()
        bits = size * 8
        self.lo, self.hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if is_bool:
            self.lo, self.hi = 0, 1

    def flatten(self, value, out):
        if self.values is not None and isinstance(value, str) and value in self.values:
            value = self.values[value]
        v = operator.index(value)
        if self.values is not None and self.values and v not in self.values.values():
            named = ", ".join(f"{k} ({n})" for k, n in self.values.items())
            raise ValueError(f"{value!r} is not a value of the enum: one of {named}")
        if not self.lo <= v <= self.hi:
            raise ValueError(f"{value!r} is out of range for {self.describe()}: {self.lo}..{self.hi}")
        out.append(v)

    def describe(self) -> str:
        """The C type in words: "bool", "a signed 32-bit integer"."""
        if self.is_bool:
            return "a bool"
        return f"{'a signed' if self.signed else 'an unsigned'} {self.size * 8}-bit integer"


class Float(Codec):
    """A float or a double."""

    def __init__(self, size: int):
        self.size, self.fmt = size, {4: "f", 8: "d"}[size]


class Raw(Codec):
    """Bytes, for what has no better Python form (named unions, bit-fields, void)."""

    def __init__(self, size: int):
        self.size, self.fmt = size, f"{size}s"

    def flatten(self, value, out):
        if len(value) != self.size:
            raise ValueError(f"expected {self.size} bytes, got {len(value)}")
        out.append(bytes(value))


class CString(Codec):
    """``char[N]``: a str without the trailing NULs. ``unsigned char[N]``
    whose bytes are all 0 or 1 (and not all 0) is a bitmap, not text
    (Inspektor Gadget's advise_seccomp keeps one byte per syscall): the
    indexes of its 1s, as a ``Bitmap``."""

    def __init__(self, size: int, bitmap: bool = False):
        self.size, self.fmt, self.bitmap = size, f"{size}s", bitmap

    def build(self, items, i):
        data = items[i]
        if self.bitmap and b"\1" in data and not data.translate(None, b"\0\1"):
            return Bitmap(k for k, byte in enumerate(data) if byte)
        return data.split(b"\0", 1)[0].decode(errors="replace")

    def flatten(self, value, out):
        data = value.encode() if isinstance(value, str) else bytes(value)
        if len(data) > self.size:
            raise ValueError(f"{data!r} is longer than char[{self.size}]")
        out.append(data)


class Bitmap(tuple):
    """The indexes of the bytes set in an ``unsigned char`` array that is a bitmap."""


class Array(Codec):
    """``n`` elements of one codec, as a tuple."""

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


# a member of a record: its C name (``_N`` for one without a name that stays
# so), its byte offset in the struct, its codec, and the path of member
# indexes that reaches it (two or more deep in an anonymous struct or union);
# collections' namedtuple, not typing's: a tool's start imports no typing
Field = namedtuple("Field", "name offset codec path")


def spread(members: list[tuple[str, int, Codec]]) -> list[tuple[bool, tuple[Field, ...]]]:
    """Per member (C name, byte offset, codec): whether it is spread, and
    the fields it gives. As in C, an anonymous struct or union (a ``Struct``
    or ``Union`` without a name) is spread: its members are the enclosing
    struct's, under their own names; unless one of those names is another
    member's too (C refuses that; a type read from elsewhere may not), then
    it stays one member, ``_N``."""
    inner = [c.fields if not n and isinstance(c, (Struct, Union)) else None for n, _, c in members]
    names = Counter(
        name
        for (own, _, _), sub in zip(members, inner)
        for name in ([f.name for f in sub] if sub is not None else [own])
        if name
    )
    out: list[tuple[bool, tuple[Field, ...]]] = []
    for i, ((name, offset, codec), sub) in enumerate(zip(members, inner)):
        if sub is not None and all(names[f.name] == 1 for f in sub):
            out.append((True, tuple(Field(f.name, offset + f.offset, f.codec, (i, *f.path)) for f in sub)))
        else:
            out.append((False, (Field(name or f"_{i}", offset, codec, (i,)),)))
    return out


class Struct(Codec):
    """A struct as a ``Record``; padding is skipped, every member kept, and
    the members of an anonymous struct or union are its own (``spread``)."""

    def __init__(
        self,
        name: str,
        size: int,
        members: list[tuple[str, int, Codec]],
        record: type[Record] | None = None,
    ):
        self.size, self.members = size, members
        if keyword.iskeyword(name) or not name.isidentifier():  # the kernel's struct class
            name = f"struct_{name}" if name.isidentifier() else "anon"
        groups = spread(members)
        self.fields = [f for _, group in groups for f in group]
        names = [f.name for f in self.fields]
        # a skeleton's class for this struct (``pyrunq skel``), if its members are these
        if record is None or list(record._fields) != field_names(names):
            record = record_class(name, names)
        self.record = record
        self._by_c_name = {f.name: p for f, p in zip(self.fields, record._fields) if f.name != p}
        # what the format unpacks: (offset, codec, whether it is a union to spread)
        self._slots: list[tuple[int, Codec, bool]] = []
        for (_, offset, codec), (spread_, _) in zip(members, groups):
            if spread_ and isinstance(codec, Struct):
                self._slots += [(offset + o, c, u) for o, c, u in codec._slots]
            else:
                self._slots.append((offset, codec, spread_))
        fmt, pos = [], 0
        for offset, codec, _ in self._slots:
            fmt.append(f"{offset - pos}x" if offset > pos else "")
            fmt.append(codec.fmt)
            pos = offset + codec.size
        fmt.append(f"{size - pos}x" if size > pos else "")
        self.fmt = "".join(fmt)
        self.count = sum(c.count for _, c, _ in self._slots)
        self._plain = all(type(c) is Int for _, c, _ in self._slots)

    def build(self, items, i):
        if self._plain:
            return self.record._make(items[i : i + self.count])
        values: list = []
        for _, codec, union in self._slots:
            if union:
                values += codec.values(items[i])
            else:
                values.append(codec.build(items, i))
            i += codec.count
        return self.record._make(values)

    def flatten(self, value, out):
        fields = self.record._fields
        if isinstance(value, dict):
            # a member by its Python name (``from_``) or its C name (``from``)
            value = {self._by_c_name.get(k, k): v for k, v in value.items()}
            unknown = set(value) - set(fields)
            if unknown:
                raise ValueError(f"no field {sorted(unknown)[0]!r} in struct {self.record.__name__}")
            value = [value.get(f, 0) for f in fields]
        elif len(value) != len(fields):
            name, n = self.record.__name__, len(fields)
            raise ValueError(f"struct {name} has {n} fields, got {len(value)} values")
        k = 0
        for _, codec, union in self._slots:
            if union:
                n = len(codec.fields)
                out.append(codec.pack(value[k : k + n]))
                k += n
            else:
                codec.flatten(value[k], out)
                k += 1


class Union(Codec):
    """An anonymous union, a member of a struct: bytes that the enclosing
    ``Struct`` spreads into its members' values, each decoded from them
    (which one is meant, only the object's own code knows); bytes where it
    stays one member (``spread``)."""

    def __init__(self, size: int, members: list[tuple[str, int, Codec]]):
        self.size, self.fmt = size, f"{size}s"
        self.fields = [f for _, group in spread(members) for f in group]
        self._layouts = [Layout(f.codec) for f in self.fields]

    def flatten(self, value, out):
        if len(value) != self.size:
            raise ValueError(f"expected {self.size} bytes, got {len(value)}")
        out.append(bytes(value))

    def values(self, data: bytes) -> tuple:
        """Each member's value, decoded from the union's bytes ``data``."""
        return tuple(layout.decode(data, f.offset) for f, layout in zip(self.fields, self._layouts))

    def pack(self, values) -> bytes:
        """The union's bytes from its members' ``values`` (0: left out). As
        decoded, the members agree; those that do not agree with the first
        (one changed by ``_replace``) win; if they disagree among themselves
        too, ValueError."""
        given = []
        for f, layout, v in zip(self.fields, self._layouts, values):
            if isinstance(v, int) and v == 0:  # left out (``Struct``'s default)
                continue
            data = layout.encode(v)
            if any(data):
                given.append((f, layout, data))
        out = self._merge(given)
        changed = [g for g in given if not self._holds(out, *g)]
        if changed:
            out = self._merge(changed + [g for g in given if g not in changed])
            if not all(self._holds(out, *g) for g in changed):
                names = " and ".join(f.name for f, _, _ in changed)
                raise ValueError(f"members {names} of an anonymous union give different bytes: give one")
        return out

    def _merge(self, given) -> bytes:
        """Each byte from the first member in ``given`` that holds it."""
        out, taken = bytearray(self.size), bytearray(self.size)
        for f, _, data in given:
            for k, byte in enumerate(data, f.offset):
                if not taken[k]:
                    out[k], taken[k] = byte, 1
        return bytes(out)

    @staticmethod
    def _holds(union: bytes, f: Field, layout: Layout, data: bytes) -> bool:
        """Whether the union's bytes hold the member's value (as decoded: a
        string up to its NUL)."""
        return layout.decode(union, f.offset) == layout.decode(data)


class Layout:
    """A whole type: decode bytes to a value, encode a value to bytes."""

    def __init__(self, codec: Codec, name: str = ""):
        self.codec, self.name = codec, name
        self.struct = struct.Struct("=" + codec.fmt)
        self.size = self.struct.size
        if self.size != codec.size:
            raise AssertionError(f"layout of {name or 'type'}: {self.size} != type size {codec.size}")
        self.record = getattr(codec, "record", None)

    def decode(self, data, offset: int = 0) -> object:
        """The value in ``data`` (bytes, or any buffer) at ``offset``."""
        return self.codec.build(self.struct.unpack_from(data, offset), 0)

    def encode(self, value: object) -> bytes:
        """The bytes of ``value``; ValueError if it does not fit the type."""
        if isinstance(value, (bytes, bytearray, memoryview)) and not isinstance(self.codec, (Raw, CString)):
            if len(value) != self.size:
                raise ValueError(f"{_name_of(self)} is {self.size} bytes, got {len(value)}")
            return bytes(value)
        items: list = []
        try:
            self.codec.flatten(value, items)
            return self.struct.pack(*items)
        except (TypeError, struct.error) as e:
            raise ValueError(f"cannot convert {value!r} to {_name_of(self)}: {e}") from None


def _name_of(layout: Layout) -> str:
    return layout.name or f"a {layout.size}-byte value"
