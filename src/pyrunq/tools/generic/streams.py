"""Event maps' records decoded: a ``Stream`` says how one event map's records
are decoded (and how many came), a ``RecordDecoder`` turns a record's bytes
into plain data, by the struct known before any record or, at the first
record, the only struct of its size (``pyrunq.bpf.events``). ``btf``: the
object's own (a struct found elsewhere is DWARF's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from ...bpf import btf as B
from .present import presenter
from .settings import value_kind


class Column(NamedTuple):
    """A member of an event struct as a column: its name, what it holds
    (``settings.value_kind``: "int", "bool", "enum", "string", "other"; or
    "text": a field a presenter made, ``size`` characters wide) and
    how big that is (an integer's bytes, an enum's longest name, the
    characters a string holds with its NUL)."""

    name: str
    kind: str
    size: int


@dataclasses.dataclass
class Stream:
    """An event map (ring buffer or perf event array) and how its records are decoded."""

    map: str
    struct: str | None
    columns: list[Column] = dataclasses.field(default_factory=list)
    count: int = 0
    short: int = 0  # records smaller than the struct (zero-filled)
    raw: bool = True  # records handed over as {"size", "data" (hex)}: no struct decodes them
    source: str = ""  # where the struct's layout comes from: "BTF" or "DWARF"
    size: int = 0  # the struct's size in bytes
    by_size: bool = False  # paired at the first record: the only struct of its size
    record_size: int = 0  # the first record's size (when its size decided)
    choices: list[str] = dataclasses.field(default_factory=list)  # not decoded: structs to name
    stacks: list[str] = dataclasses.field(default_factory=list)  # members named as stacks (not columns)


def column(types, tid: int, name: str) -> Column:
    tid = types.resolve(tid)
    kind = types.kind(tid)
    if kind == B.INT:
        size, _, is_bool, _ = types.int_info(tid)
        return Column(name, "bool" if is_bool else "int", size)
    if kind in (B.ENUM, B.ENUM64):
        return Column(name, "enum", max((len(n) for n in types.enum_values(tid)), default=0))
    if value_kind(types, tid) == "string":
        return Column(name, "string", types.array(tid)[1])
    return Column(name, "other", 0)


_SHOWN_WIDTHS = {"comm": 16, "pcomm": 16, "container": 12, "timestamp": 26, "flags": 18, "mode": 10}


def _shown_column(name: str, value) -> Column:
    """A column for a field the record's struct does not name (Inspektor
    Gadget's flattened and formatted ones): "text" as wide as it usually
    is (``size``: characters), or a 4-byte integer."""
    if isinstance(value, str):
        return Column(name, "text", _SHOWN_WIDTHS.get(name, 8))
    return Column(name, "int", 4)


def _strings_at_end(types, tid: int) -> tuple[str, int] | None:
    """(name, byte offset) of struct ``tid``'s last member when it is a char
    array. A record that ends inside it (execsnoop sends only the arguments it
    has) holds there the NUL-separated strings it sent: shown joined by
    spaces, as its C front end does."""
    members = types.members(tid)
    if not members or members[-1][3] or value_kind(types, members[-1][1]) != "string":
        return None
    return members[-1][0], members[-1][2] // 8


class RecordDecoder:
    """Records of one event map to plain data: by ``struct_name`` (from the
    object's BTF or DWARF: ``find``) when it is known before any record;
    else, at the first record, by the only struct of its size
    (``pair(size)``: a struct name or None, and the structs to name instead); ``on_pairing(stream)`` hears of
    that, once. A record no struct decodes is ``{"size": N, "data": hex}``.
    ``name_stacks(record, members)`` names the stacks of decoded records,
    ``stack_members(types, tid)`` says which members hold them."""

    def __init__(
        self,
        btf,
        stream: Stream,
        struct_name: str | None,
        find: Callable,
        pair: Callable[[int], tuple[str | None, list[str]]],
        on_pairing: Callable[[Stream], None],
        stack_members: Callable,
        name_stacks: Callable,
    ):
        self._btf, self.stream, self._find, self._pair, self._on_pairing = btf, stream, find, pair, on_pairing
        self._stack_members, self._name_stacks = stack_members, name_stacks
        self._pending = struct_name is None
        self._decode: Callable[[bytes], dict] | None = self._decoder(struct_name) if struct_name else None

    def __call__(self, data: bytes) -> dict:
        if self._pending:
            self._pending = False
            self._decode = self._by_size(len(data))
        self.stream.count += 1
        if self._decode is None:
            return {"size": len(data), "data": data.hex()}
        return self._decode(data)

    def _by_size(self, record_size: int):
        stream = self.stream
        stream.record_size = record_size
        struct_name, choices = self._pair(record_size)
        decode = self._decoder(struct_name) if struct_name else None
        stream.by_size = decode is not None
        if decode is None:
            stream.struct, stream.choices = None, choices
        self._on_pairing(stream)
        return decode

    def _decoder(self, struct_name: str):
        """A function from a record's bytes to plain data, or None when the
        struct has no byte layout (bit-fields): records stay bytes."""
        stream = self.stream
        types, tid = self._find(struct_name)
        layout = types.layout(tid)
        stream.struct, stream.size = struct_name, layout.size
        stream.source = "BTF" if types is self._btf else "DWARF"
        if layout.record is None:
            return None
        present = presenter(types, tid)
        stacks = self._stack_members(types, tid)
        name_stacks = self._name_stacks
        # the record's field names: anonymous members are renamed there
        stream.stacks = stacks.ids + stacks.inline + stacks.user if stacks else []
        # the columns are what a record is shown as: Inspektor Gadget's
        # structs flatten some members and rename others (``gadget``)
        members = dict(zip(layout.record._fields, types.members(tid)))
        shown = present(layout.decode(bytes(layout.size)))
        stream.columns = [
            column(types, members[f][1], f) if f in members else _shown_column(f, v)
            for f, v in shown.items()
            if f not in stream.stacks
        ]
        stream.raw = False
        size = layout.size
        strings = _strings_at_end(types, tid)

        def decode(data: bytes):
            short = len(data) < size
            if short:
                if not (strings and len(data) >= strings[1]):  # not a record of strings that ended early
                    stream.short += 1
                record = present(layout.decode(data + bytes(size - len(data))))
            else:
                record = present(layout.decode(data))
            if short and strings:
                name, offset = strings
                record[name] = " ".join(s.decode(errors="replace") for s in data[offset:].split(b"\0") if s)
            return name_stacks(record, stacks) if stacks else record

        return decode
