"""The helper calls an object's programs make, read from the ELF's
instructions and their relocations: which helpers each code section calls,
and with which map in r1 (``bpf_map_lookup_elem``, ``_update_elem``...; in
r2 for ``bpf_tail_call``); and which globals it reads and writes through
pointers (a load or store through the address of ``.bss``/``.data``...);
and its stores and atomic adds into map values and globals, with how the
index into them was computed (``slot_writes``: is a histogram linear?).
``origins`` follows values through them (where a key or a member came
from); nothing else in pyrunq reads BPF instructions."""

from __future__ import annotations

import struct
from typing import NamedTuple

# enum bpf_func_id
MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM = 1, 2, 3
TRACE_PRINTK, TRACE_VPRINTK, TAIL_CALL = 6, 177, 12
DATA_SECTIONS = (".rodata", ".bss", ".data")
_SHF_EXECINSTR = 0x4
_TO_BIG_ENDIAN = 0x04 | 0xD0 | 0x08  # BPF_ALU | BPF_END | BPF_TO_BE


class Calls(NamedTuple):
    """The helper calls of one code section, and its reads and writes of globals."""

    helpers: set[int]  # every helper called
    maps: dict[str, set[int]]  # map -> the helpers called with it in r1
    name: str = ""  # the ELF section (a program's SEC())
    # (data section, offset) -> {"read", "write"}: loads and stores through a
    # pointer to a global (an array's base offset when indexed by a register)
    data: dict[tuple[str, int], set[str]] = {}
    # widths of the values it turns into big-endian (bpf_htonl/bpf_ntohl: a
    # no-op on a big-endian machine, so only a little-endian object has them)
    to_big_endian: set[int] = set()
    # its stores and atomic adds into map values and globals, and how the
    # index of each was computed (``slot_writes``)
    writes: list[Write] = []


class CodeSection(NamedTuple):
    """A section of BPF code (a program, or ``.text``'s functions) and what
    its relocations say of its instructions: by instruction index, the map
    it loads, the global it points at (data section, symbol's offset), the
    BPF function it calls (code section, instruction)."""

    name: str
    code: bytes
    maps: dict[int, str]
    data: dict[int, tuple[str, int]]
    calls: dict[int, tuple[str, int]]


def code_sections(elf) -> list[CodeSection]:
    """Each code section of ``elf`` (a pyelftools ELFFile), with what its
    relocations say (``CodeSection``)."""
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    sections = list(elf.iter_sections())
    map_sections = {i for i, s in enumerate(sections) if s.name in (".maps", "maps")}
    data_sections = {i: s.name for i, s in enumerate(sections) if s.name in DATA_SECTIONS}
    code = [
        i
        for i, sec in enumerate(sections)
        if sec.header.sh_type == "SHT_PROGBITS" and sec.header.sh_flags & _SHF_EXECINSTR
    ]
    out = {i: CodeSection(sections[i].name, sections[i].data(), {}, {}, {}) for i in code}
    for rel in sections:
        # only the relocations of code: those of the DWARF are many, and slow to read
        if not isinstance(rel, RelocationSection) or rel.header.sh_info not in out:
            continue
        symbols = elf.get_section(rel.header.sh_link)
        if not isinstance(symbols, SymbolTableSection):
            continue
        section = out[rel.header.sh_info]
        for r in rel.iter_relocations():
            sym, at = symbols.get_symbol(r["r_info_sym"]), r["r_offset"] // 8
            if sym["st_shndx"] in map_sections:
                section.maps[at] = sym.name
            elif sym["st_shndx"] in data_sections:
                section.data[at] = (data_sections[sym["st_shndx"]], sym["st_value"])
            elif sym["st_shndx"] in out:  # a call of a BPF function (libbpf: symbol + imm + 1)
                section.calls[at] = (sections[sym["st_shndx"]].name, sym["st_value"] // 8)
    return [out[i] for i in code]


def helper_calls(elf) -> list[Calls]:
    """For each code section of ``elf`` (a pyelftools ELFFile; a program,
    mostly): the helpers it calls, and with which map in r1. One linear pass
    per section, following register moves: enough for what clang emits (it
    loads the map right before the call). Empty when the ELF cannot be read
    this way."""
    from elftools.common.exceptions import ELFError

    try:
        return [
            _calls(s.code, s.maps, elf.little_endian, s.data, s.name)._replace(
                writes=slot_writes(s.code, s.maps, elf.little_endian, s.data)
            )
            for s in code_sections(elf)
        ]
    except (OSError, ELFError, struct.error):
        return []


def _calls(
    code: bytes, loads: dict[int, str], little: bool, data_loads: dict | None = None, name: str = ""
) -> Calls:
    """The helper calls of this code (``loads``: instruction index -> the map
    its ld_imm64 loads; ``data_loads``: -> (data section, offset) of the
    global it points to), and its loads and stores through pointers to globals."""
    insn = struct.Struct("<BBhi" if little else ">BBhi")
    data_loads = data_loads or {}
    regs: dict[int, str] = {}  # register -> the map it holds
    ptrs: dict[int, tuple[str, int, bool]] = {}  # register -> (data section, offset, exact) it points to
    found = Calls(set(), {}, name, {}, set())

    def access(reg: int, off: int, how: str) -> None:
        section, base, exact = ptrs[reg]
        found.data.setdefault((section, base + off if exact else base), set()).add(how)

    i, n = 0, len(code) // 8
    while i < n:
        op, reg_byte, off, imm = insn.unpack_from(code, 8 * i)
        dst, src = (reg_byte & 0xF, reg_byte >> 4) if little else (reg_byte >> 4, reg_byte & 0xF)
        cls = op & 0x07
        if op == _TO_BIG_ENDIAN:
            found.to_big_endian.add(imm)
        if op == 0x18:  # ld_imm64: two slots
            regs.pop(dst, None)
            ptrs.pop(dst, None)
            if i in loads:
                regs[dst] = loads[i]
            elif i in data_loads:
                ptrs[dst] = (data_loads[i][0], data_loads[i][1] + imm, True)
            i += 2
            continue
        if op == 0x85:  # call: r0-r5 are clobbered
            if src == 0:  # a helper (1: a BPF function, 2: a kfunc)
                found.helpers.add(imm)
                if 1 in regs:
                    found.maps.setdefault(regs[1], set()).add(imm)
                if imm == TAIL_CALL and 2 in regs:  # bpf_tail_call(ctx, map, index)
                    found.maps.setdefault(regs[2], set()).add(imm)
            for r in range(1, 6):  # a global handed to a function may be written there
                if r in ptrs:
                    access(r, 0, "write")
            for r in range(6):
                regs.pop(r, None)
                ptrs.pop(r, None)
        elif op == 0xBF:  # r_dst = r_src (64-bit move)
            if src in regs:
                regs[dst] = regs[src]
            else:
                regs.pop(dst, None)
            if src in ptrs:
                ptrs[dst] = ptrs[src]
            else:
                ptrs.pop(dst, None)
        elif op == 0x07 and dst in ptrs:  # r_dst += imm: the same global, further on
            section, base, exact = ptrs[dst]
            ptrs[dst] = (section, base + imm, exact)
        elif op == 0x0F and (dst in ptrs or src in ptrs):  # r_dst += r_src: an index into a global
            section, base, _ = ptrs.get(dst) or ptrs[src]
            ptrs[dst] = (section, base, False)
            regs.pop(dst, None)
        elif cls == 0x01 and op & 0xE0 == 0x60:  # r_dst = *(r_src + off)
            if src in ptrs:
                access(src, off, "read")
            regs.pop(dst, None)
            ptrs.pop(dst, None)
        elif cls in (0x02, 0x03) and op & 0xE0 == 0x60:  # *(r_dst + off) = r_src or imm
            if dst in ptrs:
                access(dst, off, "write")
        elif cls in (0x00, 0x04, 0x07):  # other loads and ALU ops write dst
            regs.pop(dst, None)
            ptrs.pop(dst, None)
        elif cls == 0x03 and op & 0xE0 == 0xC0:  # atomics may write src and r0
            if dst in ptrs:
                access(dst, off, "read")
                access(dst, off, "write")
            for r in (src, 0):
                regs.pop(r, None)
                ptrs.pop(r, None)
        i += 1
    return found


def writes_trace_pipe(calls: list[Calls]) -> bool:
    """Whether the programs call bpf_printk (bpf_trace_printk or
    bpf_trace_vprintk): lines that go to tracefs' trace_pipe, not to a map."""
    return any(section.helpers & {TRACE_PRINTK, TRACE_VPRINTK} for section in calls)


# -- how a histogram's slot index is computed ---------------------------------------
#
# One forward pass over a section's instructions, which tracks for each
# register (and each stack slot it is spilled to) what it holds as far as an
# index goes: a value the program read (a load, a helper's result), what was
# done to it (divided by a constant, clamped, scaled to bytes), a constant,
# or nothing known (None). Where jumps meet, the states are merged: equal
# stays, a value meeting a constant is that value with the constant as a
# possible clamp (``if (slot >= N) slot = N - 1``), anything else is
# unknown; a register written inside a loop is unknown after it. What is
# recognised is deliberately narrow: log2 (bcc's shifts, compares and ors,
# a loop, a BPF-to-BPF call) always ends unknown, and so do a division by a
# register, a modulo, or any operation of two registers but an addition.


class Index(NamedTuple):
    """A register that holds a value the program read (a load, a helper's
    result), divided by ``step``, at most ``clamp`` when a constant arm was
    seen (None: none), times ``scale`` (bytes: an offset into an array)."""

    step: int = 1
    clamp: int | None = None
    scale: int = 1
    high: bool = False  # shifted left by 32: the first half of a zero extension


class Const(NamedTuple):
    value: int


class _Pointer(NamedTuple):
    """A pointer into a map's value (``target`` ("map", name), from
    bpf_map_lookup_elem, with ``key`` what its key was computed from) or a
    global ((data section, offset)), and the registers added to it."""

    target: tuple
    key: object = None
    indexes: tuple = ()


class _Stack(NamedTuple):
    offset: int


class _MapRef(NamedTuple):
    name: str


class Write(NamedTuple):
    """A store or atomic add into a map's value or a global: ``target`` as
    in ``_Pointer``, the key's ``Index`` (a map looked up by slot) and those
    of the registers added to the pointer (None: not known how computed)."""

    target: tuple
    key: object
    indexes: tuple
    at: int  # instruction


def slot_writes(
    code: bytes, loads: dict[int, str], little: bool, data_loads: dict | None = None
) -> list[Write]:
    """The stores and atomic adds of this code into map values and globals,
    each with how the index into them was computed (see above)."""
    insn = struct.Struct("<BBhi" if little else ">BBhi")
    data_loads = data_loads or {}
    n = len(code) // 8
    state: dict = {}  # register -> what it holds; ("stack", offset) -> what is spilled there
    pending: dict[int, list[dict]] = {}  # jump target -> the states jumps bring there
    written: dict = {}  # register or stack slot -> the last instruction that wrote it
    writes: list[Write] = []
    falls = True  # whether the previous instruction falls through to this one
    i = 0
    while i < n:
        if i in pending:
            state = _merge(([state] if falls else []) + pending.pop(i))
        falls = True
        op, reg_byte, off, imm = insn.unpack_from(code, 8 * i)
        dst, src = (reg_byte & 0xF, reg_byte >> 4) if little else (reg_byte >> 4, reg_byte & 0xF)
        cls, mode = op & 0x07, op & 0xE0
        if op == 0x18:  # ld_imm64: a map, a global, or a constant
            written[dst] = i
            if i in loads:
                state[dst] = _MapRef(loads[i])
            elif i in data_loads:
                state[dst] = _Pointer((data_loads[i][0], data_loads[i][1] + imm))
            elif i + 1 < n:
                high = insn.unpack_from(code, 8 * i + 8)[3] & 0xFFFFFFFF
                state[dst] = Const(imm & 0xFFFFFFFF | high << 32)
            else:  # cut short: a malformed object
                state[dst] = None
            i += 2
            continue
        if cls in (0x05, 0x06):  # jumps, calls, exit
            code_op = op & 0xF0
            if code_op == 0x80:
                _call(state, src, imm)
                for r in range(6):
                    written[r] = i
            elif code_op == 0x90:  # exit
                falls = False
            else:
                target = i + 1 + (imm if cls == 0x06 and code_op == 0 else off)
                if target <= i:  # a loop: what it writes is not known after it
                    _loop(state, pending, writes, written, target, i)
                else:
                    pending.setdefault(target, []).append(dict(state))
                falls = code_op != 0  # goto never falls through
        elif cls in (0x04, 0x07):
            state[dst] = _alu(state, op, dst, src, imm, cls == 0x07)
            written[dst] = i
        elif cls == 0x01 and mode in (0x60, 0x80):  # r_dst = *(r_src + off)
            base = _stack_offset(state, src)
            # the stack: what was spilled or a helper wrote there; elsewhere a value read
            state[dst] = Index() if base is None else state.get(("stack", base + off))
            written[dst] = i
        elif cls in (0x02, 0x03) and mode == 0x60:  # *(r_dst + off) = r_src or imm
            where, base = state.get(dst), _stack_offset(state, dst)
            if base is not None:
                slot = ("stack", base + off)
                state[slot] = Const(imm) if cls == 0x02 else state.get(src)
                written[slot] = i
            elif isinstance(where, _Pointer):
                writes.append(Write(where.target, where.key, where.indexes, i))
        elif cls == 0x03 and mode == 0xC0:  # atomics: an add, or one that fetches into src (or r0)
            where = state.get(dst)
            if isinstance(where, _Pointer):
                writes.append(Write(where.target, where.key, where.indexes, i))
            for r in (src, 0):
                state[r] = None
                written[r] = i
        i += 1
    return writes


# helpers that only read the memory they are given (map lookups, updates,
# deletes; perf event and ring buffer output)
_READ_ONLY = {MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, 25, 130}


def _stack_offset(state: dict, reg: int) -> int | None:
    """Where on the stack ``reg`` points (r10: 0), or None."""
    if reg == 10:
        return 0
    where = state.get(reg)
    return where.offset if isinstance(where, _Stack) else None


def _call(state: dict, kind: int, helper: int) -> None:
    """A call: r0 is a helper's result (a value), a pointer into the map
    bpf_map_lookup_elem looked up, or unknown (a BPF function's: maybe a
    log2); r1-r5 are clobbered. The stack a helper fills (its pointer
    argument, the size in the next one: bpf_probe_read_kernel's) holds a
    value read; what a BPF function may write there is not known."""
    args = [state.get(r) for r in range(1, 6)]
    if kind == 0 and helper == MAP_LOOKUP_ELEM and isinstance(args[0], _MapRef):
        key = state.get(("stack", args[1].offset)) if isinstance(args[1], _Stack) else None
        result: object = _Pointer(("map", args[0].name), key)
    else:
        result = Index() if kind == 0 else None
    if kind != 0 and any(isinstance(a, _Stack) for a in args):
        for slot in [k for k in state if isinstance(k, tuple)]:
            del state[slot]
    elif helper not in _READ_ONLY:
        for where, size in zip(args, args[1:] + [None]):
            if isinstance(where, _Stack):
                # a struct or a number, not a string: a longer buffer's bytes are not followed
                filled = size.value if isinstance(size, Const) and 0 < size.value <= 64 else 0
                _fill(state, where.offset, filled)
    for r in range(1, 6):
        state[r] = None
    state[0] = result


def _fill(state: dict, start: int, size: int) -> None:
    """A helper wrote ``size`` bytes of the stack from ``start`` (0: not
    known how many: what was spilled from there on is lost)."""
    for slot in [
        k for k in state if isinstance(k, tuple) and k[1] >= start and (not size or k[1] < start + size)
    ]:
        del state[slot]
    for offset in range(start, start + size):
        state[("stack", offset)] = Index()


def _alu(state: dict, op: int, dst: int, src: int, imm: int, wide: bool):
    """What r_dst holds after an ALU operation (``wide``: 64-bit)."""
    code, by_reg = op & 0xF0, op & 0x08
    old = state.get(dst)
    if code == 0xB0:  # mov
        if not by_reg:
            return Const(imm if wide else imm & 0xFFFFFFFF)
        if src == 10:
            return _Stack(0)
        new = state.get(src)
        return new if wide or isinstance(new, (Index, Const)) else None
    if by_reg:
        other = state.get(src)
        if code != 0x00:  # only an addition of two registers is followed
            return None
        if isinstance(old, _Pointer):
            return old._replace(indexes=old.indexes + (other if isinstance(other, Index) else None,))
        if isinstance(other, _Pointer):  # index += pointer
            return other._replace(indexes=other.indexes + (old if isinstance(old, Index) else None,))
        if isinstance(old, Const) and isinstance(other, Index):  # constant + index
            return _index(other, code, old.value, wide)
        if not isinstance(other, Const):
            return None
        imm = other.value
    if isinstance(old, Const):
        return _constant(code, old.value, imm)
    if isinstance(old, _Stack):
        return old._replace(offset=old.offset + imm) if code == 0x00 and wide else None
    if isinstance(old, _Pointer):
        return old if code == 0x00 and wide else None
    return _index(old, code, imm, wide) if isinstance(old, Index) else None


def _constant(code: int, value: int, imm: int) -> Const | None:
    ops = {
        0x00: lambda: value + imm,
        0x10: lambda: value - imm,
        0x20: lambda: value * imm,
        0x60: lambda: value << (imm & 63),
        0x70: lambda: (value & (1 << 64) - 1) >> (imm & 63),
    }
    return Const(ops[code]()) if code in ops else None


def _index(old: Index, code: int, imm: int, wide: bool) -> Index | None:
    """An index after ``op imm``: a division or a shift right (the step),
    a shift left (by 32, then back: a zero extension; else the scale to
    bytes), a mask of low bits and an added constant (kept), else unknown."""
    plain = old.scale == 1 and not old.high
    if old.high:  # after a shift left by 32, only the shift back is followed
        if code in (0x70, 0xC0) and wide and 0 < imm <= 32:
            return old._replace(high=False, scale=1 << (32 - imm)) if old.scale == 1 else None
        return None
    if code == 0x30 and imm > 0 and plain and old.clamp is None:  # / K
        return old._replace(step=old.step * imm)
    if code == 0x70 and 0 < imm < 64 and plain and old.clamp is None:  # >> k
        return old._replace(step=old.step << imm)
    if code == 0x60 and wide and imm == 32 and plain:
        return old._replace(high=True)
    if code == 0x60 and 0 < imm < 8 and old.scale == 1:
        return old._replace(scale=1 << imm)
    if code == 0x20 and imm > 0 and imm & (imm - 1) == 0 and old.scale == 1:
        return old._replace(scale=imm)
    if code == 0x50 and imm > 0 and imm & (imm + 1) == 0 and plain:  # & (2^n - 1)
        return old
    if code in (0x00, 0x10) and plain and old.clamp is None:  # +/- a constant (runqlen's len - 1)
        return old
    return None


def _merge(states: list[dict]) -> dict:
    """Where jumps meet: what each register and stack slot holds on every way in."""
    if len(states) == 1:
        return dict(states[0])
    first, rest = states[0], states[1:]
    merged = {}
    for k in set().union(*states):
        here = first.get(k)
        same = all(s.get(k) == here for s in rest)  # mostly: met only when they differ
        merged[k] = here if same else _meet([s.get(k) for s in states])
    return merged


def _meet(values: list):
    first = values[0]
    if all(v == first for v in values):
        return first
    if all(isinstance(v, _Pointer) and v.target == first.target for v in values):  # the lookups of one map
        return _Pointer(first.target, _meet([v.key for v in values]), _meet_indexes(values))
    indexes = {v._replace(clamp=None) for v in values if isinstance(v, Index)}
    others = [v for v in values if not isinstance(v, (Index, Const))]
    if len(indexes) != 1 or others:
        return None
    bounds = [v.clamp for v in values if isinstance(v, Index) and v.clamp is not None]
    bounds += [v.value for v in values if isinstance(v, Const) and v.value > 0]
    return indexes.pop()._replace(clamp=max(bounds) if bounds else None)


def _meet_indexes(pointers: list) -> tuple:
    if len({len(p.indexes) for p in pointers}) != 1:
        return (None,)
    return tuple(_meet(list(same)) for same in zip(*(p.indexes for p in pointers)))


def _loop(state: dict, pending: dict, writes: list, written: dict, start: int, end: int) -> None:
    """A jump back from ``end`` to ``start``: whatever the loop writes holds
    something else at each turn, so it is not known after it, nor in writes
    made inside it."""
    changed = [k for k, at in written.items() if start <= at <= end]
    for s in [state, *(s for states in pending.values() for s in states)]:
        for k in changed:
            if k in s:
                s[k] = None
    for j, w in enumerate(writes):
        if start <= w.at <= end:
            writes[j] = w._replace(key=None, indexes=tuple(None for _ in w.indexes) or (None,))
