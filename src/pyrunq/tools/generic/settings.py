"""Globals of any CO-RE object set from text (``name=value``), parsed by
their BTF type: integers in range, bools, enums by name, strings; and map
sizes (``max_entries``), with a default for maps declared with none."""

from __future__ import annotations

import re

from ...bpf import DATA_SECTIONS, BPFObject
from ...bpf import btf as B
from ...errors import UsageError

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# The parameters UsageErrors name (``UsageError.param``), in the Python API's
# words; a front end with a flag for one (the CLI's --set) says its flag.
SETTING = "setting"
MAX_ENTRIES = "max_entries"
DEFAULT_MAX_ENTRIES = 10240
# Ring buffers are read by Python, more slowly than by their C front ends: one
# declared smaller (libbpf-tools' compat layer: 256 KiB, 31 of opensnoop's
# 8 KiB records) gets this much room, so that a burst is not dropped by
# bpf_ringbuf_reserve, which no reader can count.
RINGBUF_MIN = 4 << 20
STACK_DEPTH = 127  # frames per stack trace map value: the kernel's perf_event_max_stack default
# Map types declared with max_entries 0 that are right as they are: libbpf
# gives a perf event array one entry per possible CPU; local and cgroup
# storage must have 0; libbpf sizes struct_ops maps. Any other map declared
# with 0 (sized by its own user space, as cpudist's are) fails to load.
SIZED_ELSEWHERE = {
    "perf_event_array",
    "sk_storage",
    "inode_storage",
    "task_storage",
    "cgrp_storage",
    "cgroup_storage",
    "percpu_cgroup_storage",
    "struct_ops",
}


def value_kind(btf, tid: int) -> str:
    """What a setting accepts for a type: "int", "bool", "enum", "string", or "other"."""
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


def parse_setting(btf, tid: int, name: str, text: str, what: str = ""):
    """The value of ``--set name=text`` for a global of type ``tid``, checked
    against that type: integers (decimal, 0x hex, 0o, 0b), booleans, enums by
    name or number, char arrays from strings. ``what``: how errors name the
    setting (default ``name=text``; the error's parameter is "setting")."""
    what = what or f"{name}={text}"
    decl = btf.declaration(tid, name)
    rid = btf.resolve(tid)
    kind = btf.kind(rid)
    if kind == B.INT:
        size, signed, is_bool, _ = btf.int_info(rid)
        if is_bool:
            if text.lower() in TRUE + FALSE:
                return text.lower() in TRUE
            raise UsageError(f"{what}: expected true or false for {decl}", SETTING)
        return _in_range(_int(text, what, decl, SETTING), size, signed, what, decl, SETTING)
    if kind in (B.ENUM, B.ENUM64):
        values = btf.enum_values(rid)
        if text in values:
            return values[text]
        if not re.fullmatch(r"[-+]?\d\w*", text):
            raise UsageError(f"{what}: no such value of {decl} (has: {', '.join(values)})", SETTING)
        size = btf.size(rid)
        return _in_range(_int(text, what, decl, SETTING), size, btf.enum_signed(rid), what, decl, SETTING)
    if value_kind(btf, rid) == "string":
        n = btf.array(rid)[1]
        if len(text.encode()) > n - 1:
            raise UsageError(
                f"{what}: longer than the {n - 1} characters {decl} holds with its terminating NUL",
                SETTING,
            )
        return text
    raise UsageError(
        f"{what}: cannot set {decl}: only integers, booleans, enums, char arrays, and arrays and "
        "structs of them can be set",
        SETTING,
    )


def split_items(text: str) -> list[str]:
    """``text`` split at its commas outside brackets and braces, items stripped."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    if last or items:
        items.append(last)
    return items


def encode(btf, tid: int, text: str, what: str, name: str = "") -> bytes:
    """The bytes of ``text`` as a value of type ``tid``: scalars and strings as
    ``--set`` parses a global's, structs ``{member=value, ...}``, arrays
    ``[a, b]`` or ``a,b`` (at the top); what is left out is zeros."""
    rid = btf.resolve(tid)
    kind = btf.kind(rid)
    size = btf.size(rid)
    if kind == B.STRUCT:
        inner = _inside(text, "{", "}", what, btf.declaration(tid, name))
        members = {m[0]: m for m in btf.fields(rid) if m[0]}
        out = bytearray(size)
        for item in split_items(inner):
            member, sep, value = item.partition("=")
            member = member.strip()
            if not sep or member not in members:
                raise UsageError(
                    f"{what}: no member {member!r} in {btf.declaration(tid)} (has: {', '.join(members)})",
                    SETTING,
                )
            _, mtid, bit_offset, bits = members[member]
            if bits or bit_offset % 8:
                raise UsageError(f"{what}: member {member} is a bit-field, which cannot be set", SETTING)
            data = encode(btf, mtid, value.strip(), what, member)
            out[bit_offset // 8 : bit_offset // 8 + len(data)] = data
        return bytes(out)
    if kind == B.ARRAY and not _is_chars(btf, rid):
        elem, n = btf.array(rid)
        inner = text.strip()
        if inner.startswith("["):
            inner = _inside(inner, "[", "]", what, btf.declaration(tid, name))
        items = split_items(inner)
        if len(items) > n:
            raise UsageError(
                f"{what}: {len(items)} values for the {n} elements of {btf.declaration(tid, name)}",
                SETTING,
            )
        data = b"".join(encode(btf, elem, item, what, f"{name}[{i}]") for i, item in enumerate(items))
        return data + bytes(size - len(data))
    value = parse_setting(btf, tid, name or "value", text.strip(), what)
    return btf.layout(tid).encode(value)


def _is_chars(btf, rid: int) -> bool:
    elem = btf.resolve(btf.array(rid)[0])
    return btf.kind(elem) == B.INT and btf.int_info(elem)[3]


def _inside(text: str, opening: str, closing: str, what: str, decl: str) -> str:
    text = text.strip()
    if not (text.startswith(opening) and text.endswith(closing)):
        raise UsageError(f"{what}: expected {opening}...{closing} for {decl}", SETTING)
    return text[1:-1]


def _int(text: str, what: str, decl: str, param: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"{what}: not an integer (for {decl})", param) from None


def _in_range(value: int, size: int, signed: bool, what: str, decl: str, param: str) -> int:
    bits = 8 * size
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise UsageError(f"{what}: out of range for {decl} ({lo}..{hi})", param)
    return value


def find_global(obj: BPFObject, name: str, what: str):
    """(GlobalSection, type id) of a global variable; UsageError if none."""
    for section in DATA_SECTIONS:
        for var, tid, _, _ in obj.btf.variables(section, static=False):
            if var == name and name in getattr(obj, section[1:]):
                return getattr(obj, section[1:]), tid
    names = [v for s in DATA_SECTIONS for v, _, _, _ in obj.btf.variables(s, static=False)]
    raise UsageError(f"{what}: no global {name!r} in {obj.name} (has: {', '.join(names) or 'none'})", SETTING)


def apply_settings(obj: BPFObject, settings: dict) -> None:
    """Set globals before load; a value that is not a str is checked as its text."""
    for name, value in settings.items():
        text = (
            ("true" if value else "false")
            if isinstance(value, bool)
            else value
            if isinstance(value, str)
            else str(value)
        )
        what = f"{name}={text}"
        section, tid = find_global(obj, name, what)
        kind = obj.btf.kind(obj.btf.resolve(tid))
        if kind == B.STRUCT or (kind == B.ARRAY and value_kind(obj.btf, tid) != "string"):
            section[name] = encode(obj.btf, tid, text, what, name)  # freqs_mhz=1000,1200
        else:
            section[name] = parse_setting(obj.btf, tid, name, text)


def apply_max_entries(obj: BPFObject, sizes: dict) -> dict[str, int]:
    """Size maps before load: ``sizes`` is map name -> entries (an int, or its
    text). A map declared with max_entries 0 and not in ``sizes`` gets
    DEFAULT_MAX_ENTRIES, unless its type is sized elsewhere (SIZED_ELSEWHERE);
    a ring buffer not in ``sizes`` at least RINGBUF_MIN bytes.
    Returns the maps that got the default, with the size libbpf kept (it
    rounds a ring buffer up to a power of two pages)."""
    for name, value in sizes.items():
        what = f"{name}={value}"
        if name not in obj.maps:
            known = ", ".join(obj.maps) or "none"
            raise UsageError(f"{what}: no map {name!r} in {obj.name} (has: {known})", MAX_ENTRIES)
        n = (
            value
            if isinstance(value, int) and not isinstance(value, bool)
            else _int(str(value), what, "max_entries", MAX_ENTRIES)
        )
        if not 0 < n < 1 << 32:
            raise UsageError(f"{what}: a map holds 1 to {(1 << 32) - 1} entries", MAX_ENTRIES)
        obj.maps[name].max_entries = n
    defaulted = {}
    for m in obj.maps.values():
        if m.type_name == "ringbuf" and m.name not in sizes and m.max_entries < RINGBUF_MIN:
            m.max_entries = RINGBUF_MIN
        if m.type_name == "stack_trace" and m.value_size == 0:  # its user space sets the depth
            m.resize_value(STACK_DEPTH * 8)
        if m.max_entries == 0 and m.name not in sizes and m.type_name not in SIZED_ELSEWHERE:
            m.max_entries = DEFAULT_MAX_ENTRIES
            defaulted[m.name] = m.max_entries
    return defaulted
