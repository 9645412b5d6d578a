"""What an object's own user space fills before its programs can do anything,
and how pyrunq fills it from text instead.

Some objects wait for their user space: a hash map their programs only look
entries up in (ebpf_exporter's cgroup_id_map, a table of addresses to
watch), an array global that starts as zeros and that the program reading
it never writes (libbpf-tools cpufreq's ``freqs_mhz``: its user space reads
each CPU's frequency first), a program array their programs tail-call into
(its user space puts the programs there), a user ring buffer (its user space
writes the records the programs drain). Run without it they show nothing,
silently: ``unfilled`` says which, and why, for one line each.

Filling from text (``--set``): an array global ``NAME=1,2,3`` (or ``[1, 2,
3]``; elements left out are zeros); a map entry ``NAME[KEY]=VALUE``, KEY and
VALUE written as pyrunq prints them: integers, enum names, booleans,
strings, structs ``{a=1, b=2}`` (members left out are zeros), arrays ``[1,
2]``, each parsed by the map's BTF types; a program array's VALUE is a
program's name. Map entries are written after load, before any program
attaches.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ...bpf import BPFObject
from ...bpf import btf as B
from ...errors import UsageError
from .bytecode import MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, TAIL_CALL, Calls
from .plan import result_globals
from .settings import SETTING, encode, value_kind

HASH_TYPES = {"hash", "lru_hash", "percpu_hash", "lru_percpu_hash"}
_ENTRY = re.compile(r"([A-Za-z_]\w*)\[(.*)\]\Z", re.S)


class Entry(NamedTuple):
    """A map entry to write before the programs attach: ``map[key] = value``,
    the key as text, the value as text or a Python value (a dict for a struct)."""

    map: str
    key: str
    value: object


def split_entry(name: str) -> tuple[str, str] | None:
    """(map, key text) of a setting's name ``MAP[KEY]``; None for a global's name."""
    m = _ENTRY.match(name)
    return (m.group(1), m.group(2)) if m else None


def check_entries(obj: BPFObject, entries: list[Entry]) -> list[tuple[str, bytes, bytes | str]]:
    """Before load: each entry's map, key bytes and value bytes (a program
    array's value: the program's name), checked by the map's types."""
    out: list[tuple[str, bytes, bytes | str]] = []
    for e in entries:
        what = f"{e.map}[{e.key}]={e.value}"
        if e.map not in obj.maps:
            raise UsageError(
                f"{what}: no map {e.map!r} in {obj.name} (has: {', '.join(obj.maps) or 'none'})", SETTING
            )
        m = obj.maps[e.map]
        if m.type_name not in HASH_TYPES | {"array", "percpu_array", "prog_array"}:
            raise UsageError(
                f"{what}: map {e.map} is a {m.type_name} map: only hash, array and program maps take entries",
                SETTING,
            )
        key = _encode_sized(obj.btf, m.key_type_id, m.key_size, e.key, what, "key")
        if m.type_name == "prog_array":
            if not isinstance(e.value, str) or e.value not in obj.programs:
                known = ", ".join(obj.programs) or "none"
                raise UsageError(f"{what}: no program {e.value!r} in {obj.name} (has: {known})", SETTING)
            out.append((e.map, key, str(e.value)))
            continue
        if not isinstance(e.value, str):  # a Python value: {"weight": 3}, [1, 2], 7
            try:
                out.append((e.map, key, m.value_layout.encode(e.value)))
            except ValueError as err:
                raise UsageError(f"{what}: {err}", SETTING) from None
            continue
        out.append(
            (e.map, key, _encode_sized(obj.btf, m.value_type_id, m.value_size, e.value, what, "value"))
        )
    return out


def _encode_sized(btf, tid: int, size: int, text: str, what: str, part: str) -> bytes:
    if tid:
        return encode(btf, tid, text, what)
    try:  # no BTF type: an integer of the map's size
        value = int(text, 0)
        return value.to_bytes(size, "little", signed=value < 0)
    except (ValueError, OverflowError):
        raise UsageError(
            f"{what}: the map's {part} has no BTF type: give an integer of {size} bytes", SETTING
        ) from None


def fill(obj: BPFObject, checked: list[tuple[str, bytes, bytes | str]]) -> None:
    """After load, before attach: write the entries ``check_entries`` made."""
    for name, key, value in checked:
        m = obj.maps[name]
        if isinstance(value, str):  # a program array: the program's fd
            value = obj.programs[value].fileno().to_bytes(4, "little")
        m[key] = [value] * m.cpus if m.percpu else value


def zero_globals(obj: BPFObject, calls: list[Calls]) -> dict[str, list[str]]:
    """Array globals of .bss and .data (not strings) that start as zeros and
    that some program reads but never writes (libbpf-tools cpufreq's
    ``freqs_mhz``, which its user space fills): name -> those programs."""
    programs: dict[str, list[str]] = {}
    for p in obj.programs.values():
        programs.setdefault(p.section, []).append(p.name)
    out: dict[str, list[str]] = {}
    for section, name, tid in result_globals(obj):
        rid = obj.btf.resolve(tid)
        if obj.btf.kind(rid) != B.ARRAY or value_kind(obj.btf, rid) == "string":
            continue
        offset, size = next((o, s) for n, _, o, s in obj.btf.variables(section) if n == name)
        if any(_flat(getattr(obj, section[1:])[name])):
            continue  # it does not start as zeros
        readers = []
        for code in calls:
            hows = set().union(
                *(h for (s, o), h in code.data.items() if s == section and offset <= o < offset + size)
            )
            if hows == {"read"}:
                readers += programs.get(code.name, [])
        if readers:
            out[name] = readers
    return out


def _flat(value) -> list:
    """The scalars of a decoded value (arrays, structs), for "is it all zeros"."""
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


class Unfilled(NamedTuple):
    """A map or global the object's own user space fills, and why that is so."""

    name: str
    why: str


USER_FILLS = "the object's own user space fills it"


def unfilled(
    obj: BPFObject, calls: list[Calls], filled: set[str], zero_globals: dict[str, list[str]]
) -> list[Unfilled]:
    """Maps and globals the object waits for its user space to fill, but
    those named in ``filled`` (``--set`` fills them): user ring buffers;
    program arrays its programs tail-call into; hash maps its programs only
    look up; and ``zero_globals`` (array globals that start as zeros, each
    with the programs that only read it)."""
    helpers: dict[str, set[int]] = {}
    for section in calls:
        for name, used in section.maps.items():
            helpers.setdefault(name, set()).update(used)
    out = []
    for m in obj.maps.values():
        used = helpers.get(m.name, set())
        if m.name in filled or m.name.startswith("__bpf_"):  # libbpf fills its own (usdt.bpf.h's)
            continue
        if m.type_name == "user_ringbuf":
            why = (
                "a user ring buffer: the object's own user space writes there the records "
                "its programs read, and pyrunq writes none"
            )
        elif m.type_name == "prog_array" and TAIL_CALL in used:
            why = (
                "a program array its programs tail-call into: the object's own user space puts "
                f"programs there; give them with {SETTING} '{m.name}[INDEX]=PROGRAM'"
            )
        elif m.type_name in HASH_TYPES and used == {MAP_LOOKUP_ELEM}:
            why = (
                f"its programs only look entries up and add none: {USER_FILLS}; "
                f"give entries with {SETTING} '{m.name}[KEY]=VALUE'"
            )
        else:
            continue
        out.append(Unfilled(m.name, why))
    for name, readers in zero_globals.items():
        if name not in filled:
            verb = "reads" if len(readers) == 1 else "read"
            why = (
                f"starts as zeros and {', '.join(readers)} only {verb} it: {USER_FILLS}; "
                f"give its values with {SETTING} {name}=V1,V2,..."
            )
            out.append(Unfilled(name, why))
    return out


_USER_PROBES = ("usdt", "uprobe", "uretprobe")


def orphaned(obj: BPFObject, calls: list[Calls], running: set[str], filled: set[str]) -> list[Unfilled]:
    """After attach: hash maps that only programs which are not ``running``
    add entries to, and that running ones read (ebpf_exporter's
    sched-trace: the USDT probes of its demo program mark the processes to
    trace in ``traced_tgids``; without the demo they cannot attach, and the
    tracing programs find the map empty), but those named in ``filled``."""
    programs: dict[str, list[str]] = {}
    for p in obj.programs.values():
        programs.setdefault(p.section, []).append(p.name)
    out = []
    for m in obj.maps.values():
        if m.type_name not in HASH_TYPES or m.name in filled:
            continue
        writers = [
            n for c in calls if MAP_UPDATE_ELEM in c.maps.get(m.name, ()) for n in programs.get(c.name, [])
        ]
        readers = [
            n for c in calls if MAP_LOOKUP_ELEM in c.maps.get(m.name, ()) for n in programs.get(c.name, [])
        ]
        if not writers or any(n in running for n in writers) or not any(n in running for n in readers):
            continue
        one, reading = len(writers) == 1, [n for n in readers if n in running]
        why = (
            f"only {', '.join(writers)} {'adds' if one else 'add'} entries, and "
            f"{'it did not attach' if one else 'none attached'}: "
            f"{', '.join(reading)} {'finds' if len(reading) == 1 else 'find'} it empty"
        )
        # probes in a program of its own (a demo's USDT probes) mark what to trace: marks
        # can be given by hand; what a kernel probe would have written (a start
        # time...) cannot
        if all(obj.programs[n].section.startswith(_USER_PROBES) for n in writers):
            why += f"; give entries with {SETTING} '{m.name}[KEY]=VALUE'{_value_shape(obj, m)}"
        out.append(Unfilled(m.name, why))
    return out


def _value_shape(obj: BPFObject, m) -> str:
    """`` (VALUE: {a=..., b=...})`` for a map whose value is a struct."""
    tid = obj.btf.resolve(m.value_type_id) if m.value_type_id else 0
    if not tid or obj.btf.kind(tid) != B.STRUCT:
        return ""
    names = [name for name, *_ in obj.btf.fields(tid)]
    return " (VALUE: {" + ", ".join(f"{n}=..." for n in names) + "})"
