"""Python values from and to C data: how bytes become Python values and back.

A ``Layout`` is one precompiled ``struct.Struct`` for a whole type plus a
small tree of codecs that turns the flat tuple it unpacks into Python values
(int, float, str for ``char[]``, tuple for other arrays, a namedtuple for
structs, bytes for what has no better form) and back. Type readers build the
tree: ``BTF`` (``pyrunq.bpf.btf``) from an object's BTF, and the generic
loader's DWARF reader for the structs an object's BTF lacks.
"""

from __future__ import annotations

import collections
import keyword
import operator
import struct

INT_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}  # the integer sizes an Int takes


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
    """An integer of 1, 2, 4 or 8 bytes (``bool`` for a 1-byte bool)."""

    def __init__(self, size: int, signed: bool, is_bool: bool = False):
        self.size = size
        self.fmt = "?" if is_bool and size == 1 else INT_FORMATS[size]
        if not signed and not is_bool:
            self.fmt = self.fmt.upper()

    def flatten(self, value, out):
        out.append(operator.index(value))


class Float(Codec):
    """A float or a double."""

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


class Struct(Codec):
    """A struct as a namedtuple; padding is skipped, every member kept."""

    def __init__(self, name: str, size: int, members: list[tuple[str, int, Codec]]):
        self.size, self.members = size, members
        if keyword.iskeyword(name) or not name.isidentifier():  # the kernel's struct class
            name = f"struct_{name}" if name.isidentifier() else "anon"
        self.record = collections.namedtuple(  # type: ignore[misc]  # made from a type at run time
            name, [m[0] or "_" for m in members], rename=True
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
