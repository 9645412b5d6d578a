"""The helper calls an object's programs make, read from the ELF's
instructions and their relocations: which helpers each code section calls,
and with which map in r1 (``bpf_map_lookup_elem``, ``_update_elem``...; in
r2 for ``bpf_tail_call``); and which globals it reads and writes through
pointers (a load or store through the address of ``.bss``/``.data``...).
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


def helper_calls(elf) -> list[Calls]:
    """For each code section of ``elf`` (a pyelftools ELFFile; a program,
    mostly): the helpers it calls, and with which map in r1. One linear pass
    per section, following register moves: enough for what clang emits (it
    loads the map right before the call). Empty when the ELF cannot be read
    this way."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    try:
        sections = list(elf.iter_sections())
        map_sections = {i for i, s in enumerate(sections) if s.name in (".maps", "maps")}
        code = {
            i
            for i, sec in enumerate(sections)
            if sec.header.sh_type == "SHT_PROGBITS" and sec.header.sh_flags & _SHF_EXECINSTR
        }
        refs: dict[int, dict[int, str]] = {}  # section -> instruction -> map it loads
        data: dict[int, dict[int, tuple[str, int]]] = {}  # ... -> (data section, symbol's offset)
        data_sections = {i: s.name for i, s in enumerate(sections) if s.name in DATA_SECTIONS}
        for rel in sections:
            # only the relocations of code: those of the DWARF are many, and slow to read
            if not isinstance(rel, RelocationSection) or rel.header.sh_info not in code:
                continue
            symbols = elf.get_section(rel.header.sh_link)
            if not isinstance(symbols, SymbolTableSection):
                continue
            for r in rel.iter_relocations():
                sym = symbols.get_symbol(r["r_info_sym"])
                if sym["st_shndx"] in map_sections:
                    refs.setdefault(rel.header.sh_info, {})[r["r_offset"] // 8] = sym.name
                elif sym["st_shndx"] in data_sections:
                    where = (data_sections[sym["st_shndx"]], sym["st_value"])
                    data.setdefault(rel.header.sh_info, {})[r["r_offset"] // 8] = where
        return [
            _calls(sections[i].data(), refs.get(i, {}), elf.little_endian, data.get(i, {}), sections[i].name)
            for i in sorted(code)
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
