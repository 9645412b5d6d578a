"""Globals of any CO-RE object set from text (``name=value``), parsed by
their BTF type: integers in range, bools, enums by name, strings."""

from __future__ import annotations

import re

from ...bpf import DATA_SECTIONS, BPFObject
from ...bpf import btf as B
from ...errors import UsageError
from .introspect import value_kind

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# How messages name what the caller passed, in the Python API's words; a
# front end with a flag for it (the CLI's --set) puts its flag in its place.
SETTING = "setting"


def parse_setting(btf, tid: int, name: str, text: str):
    """The value of ``--set name=text`` for a global of type ``tid``, checked
    against that type: integers (decimal, 0x hex, 0o, 0b), booleans, enums by
    name or number, char arrays from strings."""
    what = f"{SETTING} {name}={text}"
    decl = btf.declaration(tid, name)
    rid = btf.resolve(tid)
    kind = btf.kind(rid)
    if kind == B.INT:
        size, signed, is_bool, _ = btf.int_info(rid)
        if is_bool:
            if text.lower() in TRUE + FALSE:
                return text.lower() in TRUE
            raise UsageError(f"{what}: expected true or false for {decl}")
        return _in_range(_int(text, what, decl), size, signed, what, decl)
    if kind in (B.ENUM, B.ENUM64):
        values = btf.enum_values(rid)
        if text in values:
            return values[text]
        if not re.fullmatch(r"[-+]?\d\w*", text):
            raise UsageError(f"{what}: no such value of {decl} (has: {', '.join(values)})")
        size = btf.size(rid)
        return _in_range(_int(text, what, decl), size, btf.enum_signed(rid), what, decl)
    if value_kind(btf, rid) == "string":
        n = btf.array(rid)[1]
        if len(text.encode()) > n - 1:
            raise UsageError(f"{what}: longer than the {n - 1} characters {decl} holds "
                             "with its terminating NUL")
        return text
    raise UsageError(f"{what}: cannot set {decl}: only integers, booleans, enums and "
                     "char arrays can be set")


def _int(text: str, what: str, decl: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"{what}: not an integer (for {decl})") from None


def _in_range(value: int, size: int, signed: bool, what: str, decl: str) -> int:
    bits = 8 * size
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise UsageError(f"{what}: out of range for {decl} ({lo}..{hi})")
    return value


def find_global(obj: BPFObject, name: str, what: str):
    """(GlobalSection, type id) of a global variable; UsageError if none."""
    for section in DATA_SECTIONS:
        for var, tid, _, _ in obj.btf.variables(section, static=False):
            if var == name and name in getattr(obj, section[1:]):
                return getattr(obj, section[1:]), tid
    names = [v for s in DATA_SECTIONS for v, _, _, _ in obj.btf.variables(s, static=False)]
    raise UsageError(f"{what}: no global {name!r} in {obj.name} "
                     f"(has: {', '.join(names) or 'none'})")


def apply_settings(obj: BPFObject, settings: dict) -> None:
    """Set globals before load; a value that is not a str is checked as its text."""
    for name, value in settings.items():
        text = (("true" if value else "false") if isinstance(value, bool)
                else value if isinstance(value, str) else str(value))
        section, tid = find_global(obj, name, f"{SETTING} {name}={text}")
        section[name] = parse_setting(obj.btf, tid, name, text)
