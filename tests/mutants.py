"""Hostile variants of a valid BPF object, made deterministically from a seed.

``mutant(data, seed)`` returns (name of the mutation, mutated bytes): bit
flips, byte overwrites and truncations anywhere, and targeted edits of the
ELF section headers and names, the .BTF header and type records (ids out of
range, types that refer to themselves, sizes and counts out of bounds,
control characters in names) and the .BTF.ext header. The same (data, seed)
always gives the same mutant, so a failure names the seed that reproduces it.

``verdict(returncode, stdout, stderr)`` says what is wrong with how pyrunq
took one: a signal death, a traceback or a raw control character (None: it
ran, or refused with one line). Shared by tests/test_hostile.py and
bench/fuzz_objects.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import sys
import time
from typing import Callable, NamedTuple

BTF_HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off/len, str_off/len
TYPE = struct.Struct("<III")  # name_off, info, size or type
MODIFIERS = (2, 8, 9, 10, 11, 18)  # PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG
# bytes after a type record: by kind, fixed and per vlen item
_FIXED = {1: 4, 3: 12, 14: 4, 17: 4}  # INT, ARRAY, VAR, DECL_TAG
_PER_ITEM = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}  # STRUCT, UNION, ENUM, FUNC_PROTO, DATASEC, ENUM64
# raw control characters a terminal would act on (text may have \n and \t)
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


class Section(NamedTuple):
    name: str
    header: int  # file offset of its section header
    offset: int  # file offset of its contents
    size: int


def sections(data: bytes) -> list[Section]:
    """The sections of a little-endian ELF64 file (what clang -target bpf writes on x86)."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    heads = [shoff + i * shentsize for i in range(shnum)]
    strtab = struct.unpack_from("<QQ", data, heads[shstrndx] + 0x18)[0]
    out = []
    for h in heads:
        (name_off,) = struct.unpack_from("<I", data, h)
        offset, size = struct.unpack_from("<QQ", data, h + 0x18)
        name = data[strtab + name_off : data.index(b"\0", strtab + name_off)].decode()
        out.append(Section(name, h, offset, size))
    return out


def section(data: bytes, name: str) -> Section:
    return next(s for s in sections(data) if s.name == name)


def btf_types(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """(file offset of the string section, [(file offset, kind, vlen)] of each type record) of .BTF."""
    btf = section(data, ".BTF")
    _, _, _, hdr_len, type_off, type_len, str_off, _ = BTF_HEADER.unpack_from(data, btf.offset)
    at, end = btf.offset + hdr_len + type_off, btf.offset + hdr_len + type_off + type_len
    records = []
    while at < end:
        _, info, _ = TYPE.unpack_from(data, at)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        records.append((at, kind, vlen))
        at += TYPE.size + _FIXED.get(kind, 0) + _PER_ITEM.get(kind, 0) * vlen
    return btf.offset + hdr_len + str_off, records


def _put(data: bytearray, offset: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, data, offset, value)


# -- mutations: each edits ``data`` in place from ``rng`` ----------------------------


def bit_flips(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def overwrite(data: bytearray, rng: random.Random) -> None:
    at = rng.randrange(len(data))
    for i in range(at, min(at + rng.randint(1, 16), len(data))):
        data[i] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))


def truncate(data: bytearray, rng: random.Random) -> None:
    del data[rng.randrange(len(data)) :]


def btf_bit_flips(data: bytearray, rng: random.Random) -> None:
    btf = section(data, ".BTF")
    for _ in range(rng.randint(1, 4)):
        data[btf.offset + rng.randrange(btf.size)] ^= 1 << rng.randrange(8)


def btf_header(data: bytearray, rng: random.Random) -> None:
    btf = section(data, ".BTF")
    offset = rng.choice((0, 2, 4, 8, 12, 16, 20))  # magic, version, hdr_len, type_off/len, str_off/len
    value = rng.choice((0, 1, 0xFF, 0xFFFFFFFF, 1 << 20, 3))
    fmt, mask = {0: ("<H", 0xFFFF), 2: ("<B", 0xFF)}.get(offset, ("<I", 0xFFFFFFFF))
    _put(data, btf.offset + offset, fmt, value & mask)


def type_reference(data: bytearray, rng: random.Random) -> None:
    """A type's ``type`` (or an array's element, a member's type) set to an
    odd id: itself, out of range, or a random one."""
    _, records = btf_types(data)
    at, kind, vlen = rng.choice(records)
    index = records.index((at, kind, vlen)) + 1
    target = rng.choice((index, index, len(records) + 1, 0xFFFFFFFF, rng.randrange(len(records) + 1)))
    if kind == 3:  # array: element type
        _put(data, at + 12, "<I", target)
    elif kind in (4, 5) and vlen:  # a member's type
        _put(data, at + 12 + 12 * rng.randrange(vlen) + 4, "<I", target)
    else:
        _put(data, at + 8, "<I", target)


def self_modifier(data: bytearray, rng: random.Random) -> None:
    """A const, volatile, typedef or pointer that refers to itself (the hang
    and crash of issue 27)."""
    _, records = btf_types(data)
    chosen = [(i + 1, at) for i, (at, kind, _) in enumerate(records) if kind in MODIFIERS]
    if chosen:
        index, at = rng.choice(chosen)
        _put(data, at + 8, "<I", index)


def type_info(data: bytearray, rng: random.Random) -> None:
    """A type's kind, vlen or size set out of bounds."""
    _, records = btf_types(data)
    at, kind, vlen = rng.choice(records)
    what = rng.randrange(3)
    if what == 0:
        _put(data, at + 4, "<I", rng.choice((0, 20, 31)) << 24 | vlen)
    elif what == 1:
        _put(data, at + 4, "<I", kind << 24 | rng.choice((0xFFFF, vlen + 1, 1000)))
    else:
        _put(data, at + 8, "<I", rng.choice((0, 0xFFFFFFFF, 1 << 31, 3)))


def name_offset(data: bytearray, rng: random.Random) -> None:
    _, records = btf_types(data)
    at, _, _ = rng.choice(records)
    _put(data, at, "<I", rng.choice((0xFFFFFFFF, 1 << 24, rng.randrange(1 << 16))))


def control_in_btf_name(data: bytearray, rng: random.Random) -> None:
    strings, _ = btf_types(data)
    btf = section(data, ".BTF")
    end = btf.offset + btf.size
    names = [i for i in range(strings + 1, end - 1) if data[i - 1] == 0 and data[i] != 0]
    data[rng.choice(names)] = rng.choice((0x1B, 0x07, 0x9B, 0x0D))


def control_in_section_name(data: bytearray, rng: random.Random) -> None:
    """ESC in a section's name (a program's section: ``tracepoint/...``)."""
    table = sections(data)
    names = sections(data)[struct.unpack_from("<H", data, 0x3E)[0]]
    named = [s for s in table if "/" in s.name] or [s for s in table if s.name]
    target = rng.choice(named)
    (name_off,) = struct.unpack_from("<I", data, target.header)
    data[names.offset + name_off + rng.randrange(len(target.name))] = rng.choice((0x1B, 0x07, 0x0D))


def section_size(data: bytearray, rng: random.Random) -> None:
    target = rng.choice(sections(data)[1:])
    _put(data, target.header + 0x20, "<Q", rng.choice((1 << 40, 1 << 62, target.size + 4096)))


def btf_ext_header(data: bytearray, rng: random.Random) -> None:
    try:
        ext = section(data, ".BTF.ext")
    except StopIteration:
        return
    field = rng.choice([(4, "<I"), (8, "<I"), (12, "<I"), (16, "<I"), (20, "<I"), (24, "<I"), (28, "<I")])
    if field[0] < ext.size:
        _put(data, ext.offset + field[0], field[1], rng.choice((0, 1, 0xFFFFFFFF, 1 << 20, 7)))


# -- targeted edits, for the quick tests of each kind of hostile object ---------------


def self_referencing(data: bytes, kind: int) -> bytes:
    """Every type of ``kind`` (CONST 10, PTR 2...) made to refer to itself."""
    out = bytearray(data)
    for index, (at, k, _) in enumerate(btf_types(data)[1], 1):
        if k == kind:
            _put(out, at + 8, "<I", index)
    return bytes(out)


def struct_containing_itself(data: bytes, name: bytes) -> bytes:
    """The first member of struct ``name`` made a member of its own type."""
    strings, records = btf_types(data)
    out = bytearray(data)
    for index, (at, kind, vlen) in enumerate(records, 1):
        name_off = struct.unpack_from("<I", data, at)[0]
        if kind == 4 and vlen and data[strings + name_off :].startswith(name + b"\0"):
            _put(out, at + 12 + 4, "<I", index)
    return bytes(out)


def replaced(data: bytes, old: bytes, new: bytes, where: str = ".BTF") -> bytes:
    """Every ``old`` in section ``where`` replaced by ``new`` (as long)."""
    assert len(old) == len(new)
    s = section(data, where)
    body = data[s.offset : s.offset + s.size].replace(old, new)
    return data[: s.offset] + body + data[s.offset + s.size :]


def huge_section(data: bytes, where: str) -> bytes:
    out = bytearray(data)
    _put(out, section(data, where).header + 0x20, "<Q", 1 << 40)
    return bytes(out)


def dwarf_typedef_to_itself(data: bytes, name: str) -> bytes:
    """The DWARF typedef ``name`` made a typedef of itself (as DWARF can say,
    and pyrunq would copy into the BTF it builds from DWARF)."""
    import io

    from elftools.elf.elffile import ELFFile

    info = ELFFile(io.BytesIO(data)).get_dwarf_info(relocate_dwarf_sections=False)
    out = bytearray(data)
    base = section(data, ".debug_info").offset
    for cu in info.iter_CUs():
        for die in cu.iter_DIEs():
            if die.tag == "DW_TAG_typedef" and die.attributes["DW_AT_name"].value == name.encode():
                attr = die.attributes["DW_AT_type"]
                assert attr.form == "DW_FORM_ref4", attr.form
                _put(out, base + attr.offset, "<I", die.offset - cu.cu_offset)
    return bytes(out)


MUTATIONS: dict[str, Callable[[bytearray, random.Random], None]] = {
    "bit_flips": bit_flips,
    "overwrite": overwrite,
    "truncate": truncate,
    "btf_bit_flips": btf_bit_flips,
    "btf_header": btf_header,
    "type_reference": type_reference,
    "self_modifier": self_modifier,
    "type_info": type_info,
    "name_offset": name_offset,
    "control_in_btf_name": control_in_btf_name,
    "control_in_section_name": control_in_section_name,
    "section_size": section_size,
    "btf_ext_header": btf_ext_header,
}


def mutant(data: bytes, seed: int) -> tuple[str, bytes]:
    """(mutation name, mutated copy of ``data``) for ``seed``."""
    rng = random.Random(seed)
    name = rng.choice(sorted(MUTATIONS))
    out = bytearray(data)
    MUTATIONS[name](out, rng)
    return name, bytes(out)


def verdict(returncode: int | None, stdout: bytes, stderr: bytes) -> str | None:
    """What is wrong with one run (None: it ran, or refused cleanly):
    "hang", "signal N", "traceback", "control character", "no message"."""
    if returncode is None:
        return "hang"
    if returncode < 0:
        return f"signal {-returncode}"
    if b"Traceback (most recent call last)" in stderr:
        return "traceback"
    for stream in (stdout, stderr):
        if RAW_CONTROL.search(stream.decode(errors="replace")):
            return "control character"
    last = (stderr.strip().splitlines() or [b""])[-1]
    if returncode != 0 and b": error: " not in last:
        return "no one-line error"
    return None


# -- running pyrunq on many files: one process that forks one child per file -----


def _child(argv: list[str], out: int, err: int) -> None:
    """In a forked child: ``pyrunq *argv`` as the console script runs it, its
    output to the files ``out`` and ``err``; never returns."""
    import traceback

    from pyrunq.cli import main

    os.dup2(out, 1)
    os.dup2(err, 2)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - what the interpreter would print
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def run_one(argv: list[str], timeout: float) -> tuple[int | None, bytes, bytes]:
    """(exit code, negative for a signal, None for a hang; stdout; stderr) of
    ``pyrunq *argv`` in a forked child, killed after ``timeout`` seconds."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(argv, out.fileno(), err.fileno())
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code: int | None = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                code = None
                break
            time.sleep(0.005)
        out.seek(0)
        err.seek(0)
        return code, out.read(), err.read()


def main() -> None:
    """``python mutants.py TIMEOUT TOOL [ARG...]``, then one path a line on
    stdin: one JSON line per path, ``{"path", "code", "out", "err"}``."""
    timeout, tool, *extra = sys.argv[1:]
    for line in sys.stdin:
        path = line.rstrip("\n")
        code, out, err = run_one([tool, path, *extra], float(timeout))
        doc = {"path": path, "code": code, "out": out.decode("latin-1"), "err": err.decode("latin-1")}
        print(json.dumps(doc), flush=True)


if __name__ == "__main__":
    main()
