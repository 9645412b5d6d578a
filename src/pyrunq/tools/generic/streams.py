"""Event maps' records decoded: a ``Stream`` says how one event map's records
are decoded (and how many came), a ``RecordDecoder`` turns a record's bytes
into plain data, by the struct known before any record or, at the first
record, the only struct of its size (``pyrunq.bpf.events``). ``btf``: the
object's own (a struct found elsewhere is DWARF's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from ...bpf import Record
from ...bpf import btf as B
from . import gadget, meanings
from .present import enums_naming, presenter
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
    path: tuple[str, ...] = ()  # the members to its value, when not the member ``name``


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
    # not decoded: whether the object has DWARF, where the structs of records
    # kept only in local variables are (``bpftool gen object`` and strip drop it)
    dwarf: bool = True
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


def _column(
    types, tid: int, name: str, path: tuple[str, ...], shown: dict, named: int | None = None
) -> Column:
    """A column of a member (``path`` from the record to it): as ``column``
    says, but "text" as wide as it usually is where a presenter turns the
    member's number into text (a wall-clock time, a user, a container), or
    ``named`` wide (a number shown by its name)."""
    if named:
        return Column(name, "text", named)
    value: object = shown
    for member in path:
        value = value.get(member) if isinstance(value, dict) else None
    plain = column(types, tid, name)
    if isinstance(value, str) and plain.kind not in ("string", "enum"):
        width = _TEXT_WIDTHS.get(name) or _TYPE_WIDTHS.get(types.name(types.resolve(tid)), 0)
        width = width or (len("255.255.255.255") if name.endswith("addr") else 8)
        plain = Column(name, "text", width)
    return plain._replace(path=path if path != (name,) else ())


# as wide as the longest name of each meaning (a syscall's: as most are)
_NAMED_WIDTHS = {
    meanings.TCP_STATE: len("TCP_ESTABLISHED"),
    meanings.SOFTIRQ: len("IRQ_POLL_SOFTIRQ"),
    meanings.SYSCALL: len("getpgid") + 5,
    meanings.DEV: len("254:0 vda"),
    meanings.SIGNAL: len("SIGRTMIN+15"),
    meanings.BLOCK_OPF: len("FWFS"),
    meanings.PACKET_TYPE: len("PACKET_OTHERHOST"),
}
_TEXT_WIDTHS = {"container": 12, "timestamp": 26, "flags": 18, "mode": 10, "uid": 8, "gid": 8, "error": 7}
# Inspektor Gadget's endpoints, as an IPv4 one is shown (255.255.255.255:65535)
_TYPE_WIDTHS = {"gadget_l4endpoint_t": 21, "gadget_l3endpoint_t": 15}


def _named_widths(types, tid: int, held: dict[int, str]) -> dict[str, int]:
    """Member of struct ``tid`` whose numbers are shown by name -> as wide as
    its names: an enum's (``present.enums_naming``), or a meaning's (``held``:
    byte offset -> what the number there holds, ``origins``)."""
    out = {n: max(map(len, types.enum_values(e)), default=8) for n, e in enums_naming(types, tid).items()}
    for n, _, offset, bits in types.fields(tid):
        if not bits and offset // 8 in held:
            out[n] = _NAMED_WIDTHS.get(held[offset // 8], 12)
    return out


def _strings_at_end(types, tid: int) -> tuple[str, int] | None:
    """(name, byte offset) of struct ``tid``'s last member when it is a char
    array. A record that ends inside it (execsnoop sends only the arguments it
    has) holds there the NUL-separated strings it sent: shown joined by
    spaces, as its C front end does."""
    members = types.fields(tid)
    if not members or members[-1][3] or value_kind(types, members[-1][1]) != "string":
        return None
    return members[-1][0], members[-1][2] // 8


def as_record(raw, shown):
    """A decoded struct (``raw``, a ``pyrunq.bpf.Record``) holding its values
    as shown (``present``: enums by name, stacks as function names...): a
    record of the struct's own class, as ``BPFObject.ring_buffer()`` gives,
    nested structs too."""
    if isinstance(raw, Record) and isinstance(shown, dict):
        return raw._make(as_record(r, shown.get(f)) for f, r in zip(raw._fields, raw))
    if isinstance(raw, tuple) and isinstance(shown, list) and len(raw) == len(shown):
        return [as_record(r, s) for r, s in zip(raw, shown)]
    return shown


class RecordDecoder:
    """Records of one event map to ``pyrunq.bpf.Record``s of its struct (the
    shape ``BPFObject.ring_buffer()`` gives), their values as shown (``as_record``):
    by ``struct_name`` (from the
    object's BTF or DWARF: ``find``) when it is known before any record;
    else, at the first record, by the only struct of its size
    (``pair(size)``: a struct name or None, and the structs to name instead); ``on_pairing(stream)`` hears of
    that, once. A record no struct decodes stays bytes.
    ``name_stacks(record, members)`` names the stacks of decoded records,
    ``stack_members(types, tid)`` says which members hold them. ``host_order``
    and ``meanings`` (the record's, ``origins``): as ``present.presenter`` takes them."""

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
        host_order: bool = False,
        meanings: dict[int, str] | None = None,
    ):
        self._btf, self.stream, self._find, self._pair, self._on_pairing = btf, stream, find, pair, on_pairing
        self._stack_members, self._name_stacks = stack_members, name_stacks
        self._host_order, self._meanings = host_order, meanings
        self._pending = struct_name is None
        self._decode: Callable[[bytes], Record] | None = self._decoder(struct_name) if struct_name else None

    def __call__(self, data: bytes) -> Record | bytes:
        if self._pending:
            self._pending = False
            self._decode = self._by_size(len(data))
        self.stream.count += 1
        if self._decode is None:
            return bytes(data)
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
        present = presenter(types, tid, host_order=self._host_order, meanings=self._meanings)
        stacks = self._stack_members(types, tid)
        name_stacks = self._name_stacks
        # the record's field names: anonymous members are renamed there
        stream.stacks = stacks.ids + stacks.inline + stacks.user if stacks else []
        # laid out as the collection's loader lays them out (``gadget.columns``)
        shown = present(layout.decode(bytes(layout.size)))
        named = _named_widths(types, tid, self._meanings or {})
        stream.columns = [
            _column(types, mtid, name, path, shown, named.get(name) if path == (name,) else None)
            for name, path, mtid in gadget.columns(types, tid)
            if path[0] not in stream.stacks
        ]
        stream.raw = False
        size = layout.size
        strings = _strings_at_end(types, tid)

        def decode(data: bytes):
            short = len(data) < size
            if short:
                if not (strings and len(data) >= strings[1]):  # not a record of strings that ended early
                    stream.short += 1
                raw = layout.decode(data + bytes(size - len(data)))
            else:
                raw = layout.decode(data)
            record = present(raw)
            if short and strings:
                name, offset = strings
                record[name] = " ".join(s.decode(errors="replace") for s in data[offset:].split(b"\0") if s)
            return as_record(raw, name_stacks(record, stacks) if stacks else record)

        return decode
