"""Malformed BTF refused before libbpf sees it.

libbpf 1.1.2 trusts an object's BTF: a type id out of range, a size or string
offset past its section, or a type that refers to itself crashes
``bpf_object__open_file``, ``btf__find_by_name_kind`` and ``btf_dump`` (SIGSEGV,
or a recursion until the stack is gone). The kernel checks BTF before it uses
it (kernel/bpf/btf.c); ``check_btf`` does the part of those checks that keeps
libbpf, and pyrunq's own readers, safe, on the raw bytes of a ``.BTF``
section (read with ``struct``, nothing of libbpf):

- the header: magic, version, the type and string sections inside the data;
- each type record: a known kind, its items inside the type section, every
  type id it refers to in range, sizes that a type of its kind can have,
  names inside the string section and printable;
- no cycle that does not pass through a pointer (a struct or array that
  contains itself), and none that does not pass through a named struct or
  union (a pointer, typedef or qualifier that refers to itself, an
  anonymous struct that points to itself: C cannot write such a type, and
  btf_dump follows it until the stack is gone);
- struct and union members inside their type's size; variables inside
  their data section.

``check_btf_ext`` checks the header and record tables of ``.BTF.ext`` (line
info, function info, CO-RE relocations) against that BTF. Both raise
``MalformedObject``, whose one line names the section and the type.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import MalformedObject

# kinds (include/uapi/linux/btf.h), by name for messages
KINDS = (
    "void int ptr array struct union enum fwd typedef volatile const restrict func func_proto "
    "var datasec float decl_tag type_tag enum64"
).split()
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = range(1, 9)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
_MODIFIERS = {TYPEDEF, 9, 10, 11, TYPE_TAG}  # typedef, volatile, const, restrict, type_tag
_SIZED = {INT, STRUCT, UNION, ENUM, DATASEC, FLOAT, ENUM64}  # the third word is a size, not a type
# what follows a type record: one fixed part, or vlen items (struct formats)
_FIXED = {INT: "I", ARRAY: "III", VAR: "I", DECL_TAG: "i"}
_ITEMS = {STRUCT: "III", UNION: "III", ENUM: "Ii", FUNC_PROTO: "II", DATASEC: "III", ENUM64: "III"}
_SIZES = {INT: (1, 2, 4, 8, 16), ENUM: (1, 2, 4, 8), ENUM64: (1, 2, 4, 8), FLOAT: (2, 4, 8, 12, 16)}
_HEADER = "HBBIIIII"  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
_MAGIC = 0xEB9F
MAX_SIZE = 0xFFFFFFFF  # a type's size is a u32, as the kernel has it


class _Type(NamedTuple):
    kind: int
    name_off: int
    vlen: int
    kflag: bool
    word: int  # size or type, by kind
    fixed: tuple  # the fixed part, by kind
    items: list  # the vlen items, by kind


class CheckedBTF(NamedTuple):
    """What ``check_btf_ext`` needs of a BTF that passed: its byte order, the
    kind of each type id, its string section."""

    order: str
    kinds: list[int]
    strings: bytes


def check_btf(data: bytes, where: str = ".BTF") -> CheckedBTF:
    """Raise ``MalformedObject`` unless ``data`` is BTF that libbpf can read
    safely; ``where`` names it in messages."""
    order, types_raw, strings = _sections(data, where)
    if strings[:1] != b"\0" or strings[-1:] != b"\0":
        raise MalformedObject(f"{where}: the string section does not start and end with NUL")
    types = _records(types_raw, order, where)
    for tid, t in enumerate(types[1:], 1):
        _check_type(types, tid, t, strings, where)
    sizes = _sizes(types, where)
    for tid, t in enumerate(types):
        _check_bounds(types, sizes, tid, t, strings, where)
    return CheckedBTF(order, [t.kind for t in types], strings)


def _sections(data: bytes, where: str) -> tuple[str, bytes, bytes]:
    """(byte order, type section, string section) from the header."""
    if len(data) < struct.calcsize(_HEADER):
        raise MalformedObject(f"{where}: {len(data)} bytes, too short for a BTF header")
    order = "<" if struct.unpack_from("<H", data)[0] == _MAGIC else ">"
    magic, version, _, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        order + _HEADER, data
    )
    if magic != _MAGIC or version != 1:
        raise MalformedObject(f"{where}: not BTF version 1 (magic {magic:#x}, version {version})")
    if not 24 <= hdr_len <= len(data) or type_off % 4 or type_len % 4:
        raise MalformedObject(f"{where}: header length or type section misaligned (header {hdr_len} bytes)")
    body = data[hdr_len:]
    if type_off + type_len > str_off or str_off + str_len > len(body) or not str_len:
        raise MalformedObject(
            f"{where}: types at {type_off}+{type_len} and strings at {str_off}+{str_len} "
            f"do not fit in order in its {len(body)} bytes"
        )
    return order, body[type_off : type_off + type_len], body[str_off : str_off + str_len]


def _records(raw: bytes, order: str, where: str) -> list[_Type]:
    """The type records, index = type id (0: void)."""
    types = [_Type(0, 0, 0, False, 0, (), [])]
    at = 0
    while at < len(raw):
        tid = len(types)
        if at + 12 > len(raw):
            raise MalformedObject(f"{where}: type {tid} is cut off at the end of the type section")
        name_off, info, word = struct.unpack_from(order + "III", raw, at)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if not 0 < kind < len(KINDS) or info & 0x60FF0000:
            raise MalformedObject(f"{where}: type {tid} has an unknown kind {kind} or stray flag bits")
        fixed_fmt = order + _FIXED.get(kind, "")
        item_fmt = order + _ITEMS.get(kind, "")
        if kind not in _ITEMS and vlen and kind != FUNC:  # a function's vlen is its linkage
            raise MalformedObject(f"{where}: type {tid} ({KINDS[kind]}) has {vlen} items; its kind has none")
        end = (
            at + 12 + struct.calcsize(fixed_fmt) + struct.calcsize(item_fmt) * (vlen if kind in _ITEMS else 0)
        )
        if end > len(raw):
            raise MalformedObject(
                f"{where}: type {tid} ({KINDS[kind]}, {vlen} items) runs past the type section"
            )
        fixed = struct.unpack_from(fixed_fmt, raw, at + 12)
        items = (
            list(struct.iter_unpack(item_fmt, raw[end - struct.calcsize(item_fmt) * vlen : end]))
            if (kind in _ITEMS and vlen)
            else []
        )
        types.append(_Type(kind, name_off, vlen, bool(info >> 31), word, fixed, items))
        at = end
    return types


def _refs(t: _Type) -> list[int]:
    """The type ids that type ``t`` refers to."""
    if t.kind == ARRAY:
        return [t.fixed[0], t.fixed[1]]
    if t.kind in (STRUCT, UNION):
        return [m[1] for m in t.items]
    if t.kind == DATASEC:
        return [v[0] for v in t.items]
    refs = [] if t.kind in _SIZED or t.kind == FWD else [t.word]
    return refs + [p[1] for p in t.items] if t.kind == FUNC_PROTO else refs


def _name_offsets(t: _Type) -> list[int]:
    if t.kind in (STRUCT, UNION, ENUM, FUNC_PROTO, ENUM64):
        return [t.name_off] + [item[0] for item in t.items]
    return [t.name_off]


def _check_type(types: list[_Type], tid: int, t: _Type, strings: bytes, where: str) -> None:
    """One type on its own: ids in range, a size its kind can have, names."""
    what = f"{where}: type {tid} ({KINDS[t.kind]})"
    for ref in _refs(t):
        if ref >= len(types):
            raise MalformedObject(f"{what} refers to type {ref}, past the last type ({len(types) - 1})")
    for off in _name_offsets(t):
        name = _string(strings, off, what)
        if any(not 0x20 <= c < 0x7F for c in name):
            raise MalformedObject(f"{what} has a name with a non-printable byte: {name!r}")
    if t.kind in _SIZES and t.word not in _SIZES[t.kind]:
        raise MalformedObject(f"{what} has a size of {t.word} bytes, which its kind cannot have")
    if t.kind == INT and (t.fixed[0] & 0xFF) + (t.fixed[0] >> 16 & 0xFF) > 8 * t.word:
        raise MalformedObject(f"{what} has more bits than its {t.word} bytes")
    if t.kind == FUNC and types[t.word].kind != FUNC_PROTO:
        raise MalformedObject(f"{what} refers to type {t.word}, which is not a function prototype")
    if t.kind == DATASEC and any(types[v[0]].kind not in (VAR, FUNC) for v in t.items):
        raise MalformedObject(f"{what} holds a type that is not a variable")
    if t.kind in (VAR, DECL_TAG, TYPEDEF) and not t.word:
        raise MalformedObject(f"{what} refers to void")


def _string(strings: bytes, off: int, what: str) -> bytes:
    if off >= len(strings):
        raise MalformedObject(
            f"{what} has a name at offset {off}, past the string section ({len(strings)} bytes)"
        )
    return strings[off : strings.index(b"\0", off)]


def _sizes(types: list[_Type], where: str) -> list[int]:
    """The size of each type, once no type contains itself: cycles are
    refused first (``_order``)."""
    sizes = [0] * len(types)
    for tid in _order(types, where):
        t = types[tid]
        if t.kind in _SIZED:
            sizes[tid] = t.word
        elif t.kind == PTR:
            sizes[tid] = 8
        elif t.kind in _MODIFIERS or t.kind == VAR:
            sizes[tid] = sizes[t.word]
        elif t.kind == ARRAY:
            sizes[tid] = t.fixed[2] * sizes[t.fixed[0]]
            if sizes[tid] > MAX_SIZE:
                raise MalformedObject(f"{where}: type {tid} (array) is larger than 4 GiB")
    return sizes


def _order(types: list[_Type], where: str) -> list[int]:
    """Type ids, each after the types it contains; ``MalformedObject`` for a
    cycle that does not pass through a pointer, or one that does not pass
    through a named struct or union (C reaches a type again only by its tag)."""
    by_value = _postorder(types, _POINTER)
    if by_value is None:
        raise MalformedObject(_cycle_message(types, _POINTER, where))
    if _postorder(types, _TAGGED) is None:
        raise MalformedObject(_cycle_message(types, _TAGGED, where))
    return by_value


# where a walk of references stops: what a cycle must pass through
_POINTER = "a pointer"
_TAGGED = "a named struct or union"


def _stops(t: _Type, stop: str) -> bool:
    if stop == _POINTER:
        return t.kind == PTR
    return t.kind in (STRUCT, UNION) and t.name_off != 0


def _postorder(types: list[_Type], stop: str) -> list[int] | None:
    """Type ids in depth-first post-order over references, not following
    those out of the types where ``stop`` stops; None if there is a cycle.
    Iterative: a deep chain of types must not exhaust Python's stack."""
    state = [0] * len(types)  # 0 new, 1 on the path, 2 done
    order: list[int] = []
    for root in range(len(types)):
        if state[root]:
            continue
        stack = [(root, iter(_edges(types[root], stop)))]
        state[root] = 1
        while stack:
            tid, refs = stack[-1]
            ref = next(refs, None)
            if ref is None:
                stack.pop()
                state[tid] = 2
                order.append(tid)
            elif state[ref] == 1:
                return None
            elif state[ref] == 0:
                state[ref] = 1
                stack.append((ref, iter(_edges(types[ref], stop))))
    return order


def _edges(t: _Type, stop: str) -> list[int]:
    return [] if _stops(t, stop) else [r for r in _refs(t) if r]


def _cycle_message(types: list[_Type], stop: str, where: str) -> str:
    """Which type is part of the cycle ``_postorder`` found, by finding one
    that reaches itself."""
    for tid in range(1, len(types)):
        seen, todo = set(), list(_edges(types[tid], stop))
        while todo:
            ref = todo.pop()
            if ref == tid:
                return (
                    f"{where}: type {tid} ({KINDS[types[tid].kind]}) refers to itself without {stop} between"
                )
            if ref not in seen:
                seen.add(ref)
                todo += _edges(types[ref], stop)
    return f"{where}: its types form a cycle"


def _check_bounds(
    types: list[_Type], sizes: list[int], tid: int, t: _Type, strings: bytes, where: str
) -> None:
    """Members inside their struct, variables inside their section."""
    if t.kind in (STRUCT, UNION):
        for name_off, mtid, offset in t.items:
            bit_offset, bits = (offset & 0xFFFFFF, offset >> 24) if t.kflag else (offset, 0)
            if bit_offset + (bits or 8 * sizes[mtid]) > 8 * t.word:
                member = _string(strings, name_off, where).decode() or "(anon)"
                raise MalformedObject(
                    f"{where}: type {tid} ({_label(t, strings, where)}) member {member!r} "
                    f"ends past the {KINDS[t.kind]}'s {t.word} bytes"
                )
    for var, offset, size in t.items if t.kind == DATASEC else ():
        # a section size of 0: libbpf sets it from the ELF section
        if size < sizes[var] or t.word and offset + size > t.word:
            raise MalformedObject(
                f"{where}: type {tid} ({_label(t, strings, where)}) "
                f"holds variable {var} at {offset}+{size}, smaller than its type or past its {t.word} bytes"
            )


def _label(t: _Type, strings: bytes, where: str) -> str:
    """A checked type's kind and name: "struct event", "struct (anon)"."""
    return f"{KINDS[t.kind]} {_string(strings, t.name_off, where).decode() or '(anon)'}"


# -- .BTF.ext ------------------------------------------------------------------------

_EXT_HEADER = "HBBIIIII"  # magic, version, flags, hdr_len, func_info off/len, line_info off/len
_EXT_TABLES = ("func_info", 8), ("line_info", 16), ("core_relo", 16)  # minimal record sizes
_CORE_KINDS = 13  # enum bpf_core_relo_kind, up to BPF_CORE_TYPE_MATCHES


def check_btf_ext(data: bytes, btf: CheckedBTF, where: str = ".BTF.ext") -> None:
    """Raise ``MalformedObject`` unless ``data`` is a .BTF.ext whose tables
    fit in it and refer to types and strings of ``btf``."""
    order = btf.order
    if len(data) < struct.calcsize(_EXT_HEADER):
        raise MalformedObject(f"{where}: {len(data)} bytes, too short for its header")
    magic, version, _, hdr_len, *spans = struct.unpack_from(order + _EXT_HEADER, data)
    if magic != _MAGIC or version != 1 or not 24 <= hdr_len <= len(data):
        raise MalformedObject(f"{where}: bad header (magic {magic:#x}, version {version}, {hdr_len} bytes)")
    if hdr_len >= 32:  # CO-RE relocations, since libbpf 0.1
        spans += struct.unpack_from(order + "II", data, 24)
    body = data[hdr_len:]
    for (table, min_size), off, length in zip(_EXT_TABLES, spans[0::2], spans[1::2]):
        if off + length > len(body):
            raise MalformedObject(f"{where}: its {table} table runs past its {len(data)} bytes")
        if length:
            _check_table(body[off : off + length], table, min_size, btf, where)


def _check_table(raw: bytes, table: str, min_size: int, btf: CheckedBTF, where: str) -> None:
    """One table: a record size, then per section its name and records."""
    what = f"{where}: {table}"
    if len(raw) < 4:
        raise MalformedObject(f"{what} is too short for its record size")
    rec_size = struct.unpack_from(btf.order + "I", raw)[0]
    if rec_size < min_size or rec_size % 4:
        raise MalformedObject(f"{what} has records of {rec_size} bytes")
    at = 4
    while at < len(raw):
        if at + 8 > len(raw):
            raise MalformedObject(f"{what} is cut off")
        name_off, count = struct.unpack_from(btf.order + "II", raw, at)
        _string(btf.strings, name_off, what)
        at += 8
        if at + count * rec_size > len(raw):
            raise MalformedObject(f"{what} has {count} records for a section, more than it holds")
        for k in range(count):
            _check_record(raw[at + k * rec_size : at + (k + 1) * rec_size], table, btf, what)
        at += count * rec_size


def _check_record(rec: bytes, table: str, btf: CheckedBTF, what: str) -> None:
    words = (
        struct.unpack_from(btf.order + "IIII", rec)
        if table != "func_info"
        else struct.unpack_from(btf.order + "II", rec)
    )
    if table == "func_info" and (words[1] >= len(btf.kinds) or btf.kinds[words[1]] != FUNC):
        raise MalformedObject(f"{what}: a record refers to type {words[1]}, which is not a function")
    if table == "line_info":
        for off in words[1:3]:
            _string(btf.strings, off, what)
    if table == "core_relo":
        _, tid, access_off, kind = words
        access = _string(btf.strings, access_off, what)
        if not 0 < tid < len(btf.kinds) or kind >= _CORE_KINDS or not access.replace(b":", b"").isdigit():
            raise MalformedObject(
                f"{what}: a relocation of type {tid}, kind {kind}, access {access!r} is invalid"
            )
