"""Numbers whose meaning the object's own instructions tell: a map's key,
a member of a map's value or of a record, or the index of a global array,
that a program copied from a kernel tracepoint's field or argument whose
meaning is known (``MEANINGS``, ``ARGUMENTS``: a TCP state, a softirq
vector, a syscall number, a signal; any ``dev_t`` field is the kernel's
device number), or a packet's type from a socket filter's ``__sk_buff``,
or from a kernel struct's member that says the same of every kernel (a
block request's ``cmd_flags``: its operation and flags; a socket's state).

Read from the object's instructions: the CO-RE relocations of its .BTF.ext
name the field each load reads (``trace_event_raw_softirq.vec``, through
``ctx->vec`` or ``BPF_CORE_READ``), and the kernel's BTF names the
arguments of a tp_btf or raw_tp program (``vec_nr``); a forward pass over
each code section's control flow follows the value through registers and
the stack to where it is used: the key of a map helper call
(``bpf_map_lookup_elem(&counts, &vec)``), a store into a ring buffer
record, a map's value or an element of a global array (``counts[vec]``),
or the stack record a perf or ring buffer output sends, or an iterator
writes (``bpf_seq_write``: ``SEQ_WRITE``). Where paths join,
a register or stack slot keeps a meaning only when every path gives it
that one; a branch on a setting (``.rodata``, frozen at load) goes only the
way the setting says. A place is named only when every value the programs
put there has the same meaning (syscount's key is a syscall, or a pid when
``count_by_process`` is set: then nothing); a write the pass cannot
follow (through a pointer it does not know, as Inspektor Gadget's buffers
from its BPF functions) names nothing in the object. A number nothing says
the meaning of stays a number.

``bytecode`` reads the helper calls with a pass of its own.
"""

from __future__ import annotations

import dataclasses
import struct
import sys
from collections.abc import Iterable

from .bytecode import DATA_SECTIONS, code_sections

TCP_STATE, SOFTIRQ, SYSCALL, DEV = "tcp state", "softirq vector", "syscall", "kernel dev_t"
SIGNAL = "signal"
PACKET_TYPE = "packet type"
BLOCK_OPF = "block request op and flags"

# (tracepoint struct, member) -> what it holds; and every dev_t member of a
# tracepoint struct is a kernel device number (block_rq_complete's dev...)
MEANINGS = {
    ("trace_event_raw_inet_sock_set_state", "oldstate"): TCP_STATE,
    ("trace_event_raw_inet_sock_set_state", "newstate"): TCP_STATE,
    ("trace_event_raw_softirq", "vec"): SOFTIRQ,
    ("trace_event_raw_sys_enter", "id"): SYSCALL,
    ("trace_event_raw_sys_exit", "id"): SYSCALL,
    ("trace_event_raw_signal_generate", "sig"): SIGNAL,
    ("trace_event_raw_signal_deliver", "sig"): SIGNAL,
    ("request", "cmd_flags"): BLOCK_OPF,  # biosnoop's, through BPF_CORE_READ(rq, cmd_flags)
    ("sock_common", "skc_state"): TCP_STATE,  # a socket's (sk->sk_state), UDP's too: TCP_CLOSE unconnected
    ("inet_timewait_sock", "tw_substate"): TCP_STATE,  # a TIME_WAIT socket's own state
}
_TRACEPOINT = "trace_event_raw_"
# tp_btf and raw_tp programs get a tracepoint's arguments, not its fields:
# tracepoint -> (the kernel function that takes them, ``__bpf_trace_<class>``,
# whose BTF names them; argument name -> what it holds)
ARGUMENTS = {
    "inet_sock_set_state": ("inet_sock_set_state", {"oldstate": TCP_STATE, "newstate": TCP_STATE}),
    "softirq_entry": ("softirq", {"vec_nr": SOFTIRQ}),
    "softirq_exit": ("softirq", {"vec_nr": SOFTIRQ}),
    "softirq_raise": ("softirq", {"vec_nr": SOFTIRQ}),
    "sys_enter": ("sys_enter", {"id": SYSCALL}),
    "signal_generate": ("signal_generate", {"sig": SIGNAL}),
    "signal_deliver": ("signal_deliver", {"sig": SIGNAL}),
}
_RAW_SECTIONS = ("tp_btf/", "raw_tp/", "raw_tracepoint/")
# programs handed a packet as a ``struct __sk_buff``, whose ``pkt_type``
# (PACKET_HOST, PACKET_OUTGOING...) is at this offset in every kernel (uapi)
_SKB_SECTIONS = ("socket", "tc", "classifier", "cgroup_skb/")
_SKB_PKT_TYPE = 4

KEY, VALUE, RECORD = "key", "value", "record"  # where in a map a meaning is found
# the "map" of the records iter/* programs write with bpf_seq_write (no
# map's name can be this)
SEQ_WRITE = "bpf_seq_write()"
CONSTANT = "constant"  # what a number the code wrote holds: whatever the others there hold
INDEX = "index"  # ... and in a global array: its index (softirqs' ``counts[vec_nr]``)

# enum bpf_func_id: the helpers this pass follows values through
_LOOKUP, _UPDATE, _DELETE, _PERF_OUTPUT, _RINGBUF_OUTPUT, _RINGBUF_RESERVE = 1, 2, 3, 25, 130, 131
_SEQ_WRITE = 127
_PROBE_READS = {4, 45, 112, 113, 114, 115}  # bpf_probe_read{,_str,_user,_kernel,...}: dst r1, size r2, src r3
# helpers that write memory they are handed: helper -> (the buffer's register, its size's)
_WRITES = {
    **dict.fromkeys(_PROBE_READS, (1, 2)),
    16: (1, 2),  # bpf_get_current_comm
    26: (3, 4),  # bpf_skb_load_bytes
    67: (2, 3),  # bpf_get_stack
    141: (2, 3),  # bpf_get_task_stack
    147: (2, 3),  # bpf_d_path
    148: (1, 2),  # bpf_copy_from_user
    165: (1, 2),  # bpf_snprintf
}
# helpers that only read the memory they are handed (or none): the map helpers, outputs, submit, discard
_READ_ONLY = {_LOOKUP, _UPDATE, _DELETE, _PERF_OUTPUT, _RINGBUF_OUTPUT, _SEQ_WRITE, 132, 133}
_WIDTHS = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}  # BPF_W, BPF_H, BPF_B, BPF_DW
_FIELD_BYTE_OFFSET = 0  # enum bpf_core_relo_kind


def map_meanings(
    elf,
    btf,
    sizes: dict[str, dict[str, int]] | None = None,
    rodata: bytes | None = None,
    left_out: set[str] | frozenset[str] = frozenset(),
) -> dict[str, dict[str, dict[int, str]]]:
    """Map -> place (``KEY``, ``VALUE``, ``RECORD``) -> byte offset in it ->
    what the number there holds, and a global array (``global_name``) ->
    ``INDEX`` -> 0 -> what its index holds, for ``elf`` (a pyelftools ELFFile) and its
    BTF (``pyrunq.bpf.BTF``); ``sizes``: map -> place -> its size in bytes
    (what lies past a key on the stack is not the key); ``rodata``: the
    object's settings as it is loaded with them (a branch on one goes one
    way: syscount counts by process or by syscall as ``count_by_process``
    says); ``left_out``: the sections of programs that are not loaded (they
    put nothing anywhere). Empty when the file cannot be read this way."""
    try:
        fields = _core_fields(elf, btf)
        if not any(fields.values()) and not any(_context(s.name) for s in elf.iter_sections()):
            return {}  # no program reads anything of known meaning
        shared = _Shared(Seen(), rodata, {})
        # the programs first: what they hand the functions of .text is known then
        for code in sorted(_code_sections(elf, fields), key=lambda c: c.name == _FUNCTIONS):
            if code.name not in left_out and not shared.seen.blind:  # blind: nothing will be named
                _scan(code, shared)
        found = shared.seen.agreed(sizes or {})
        for section in DATA_SECTIONS:  # a global by its name
            for var, _, offset, _ in btf.variables(section):
                where = global_name(section, str(offset))
                if where in found:
                    found[global_name(section, var)] = found.pop(where)
        return {
            k: v
            for k, v in found.items()
            if not k.startswith(DATA_SECTIONS) or not k.split(":", 1)[1].isdigit()
        }
    except Exception:  # a malformed object (its .BTF.ext, its code): a best effort that names nothing
        return {}


def global_name(section: str, name: str) -> str:
    """Where ``map_meanings`` puts global ``name`` of ``section`` (``.bss:counts``:
    no map's name starts with a dot)."""
    return f"{section}:{name}"


_FUNCTIONS = ".text"  # where libbpf takes an object's BPF functions from: no program's


@dataclasses.dataclass
class _Code:
    """A code section: its instructions (op, dst, src, off, imm), and by
    instruction index: the map an ld_imm64 loads, the global's (data
    section, offset) it loads the address of, the meaning of the field a
    load reads (``_core_fields``), the (code section, instruction) a call's
    relocation names (the callee is ``imm + 1`` further); and what the
    program's context holds (``_context``)."""

    name: str
    insns: list[tuple[int, int, int, int, int]]
    maps: dict[int, str]
    globs: dict[int, tuple[str, int]]
    fields: dict[int, str]
    calls: dict[int, tuple[str, int]]
    context: dict[int, str]


@dataclasses.dataclass
class _Shared:
    """What the pass over one code section leaves for the others: what was
    seen, the settings, and (code section, instruction) -> the arguments each
    call of that function from another section hands it."""

    seen: Seen
    rodata: bytes | None
    entries: dict[tuple[str, int], list[dict[int, tuple]]]


def _code_sections(elf, fields: dict[str, dict[int, str]]) -> Iterable[_Code]:
    """Each code section of ``elf``, read (``_Code``)."""
    fmt = struct.Struct("<BBhi" if elf.little_endian else ">BBhi")
    for section in code_sections(elf):
        insns = []
        for k in range(len(section.code) // 8):
            op, regs, off, imm = fmt.unpack_from(section.code, 8 * k)
            dst, src = (regs & 0xF, regs >> 4) if elf.little_endian else (regs >> 4, regs & 0xF)
            insns.append((op, dst, src, off, imm))
        name = section.name
        yield _Code(
            name, insns, section.maps, section.data, fields.get(name, {}), section.calls, _context(name)
        )


def _core_fields(elf, btf) -> dict[str, dict[int, str]]:
    """Section -> instruction index -> what the field it reads or points to
    holds (``MEANINGS``), from the CO-RE field relocations in .BTF.ext."""
    ext = elf.get_section_by_name(".BTF.ext")
    if ext is None:
        return {}
    data = ext.data()
    order = "<" if elf.little_endian else ">"
    hdr_len = struct.unpack_from(order + "I", data, 4)[0]
    if hdr_len < 32:
        return {}
    off, length = struct.unpack_from(order + "II", data, 24)
    table = data[hdr_len + off : hdr_len + off + length]
    out: dict[str, dict[int, str]] = {}
    strings = _btf_strings(elf, order)
    if len(table) < 4 or not strings:
        return out
    rec_size, at = struct.unpack_from(order + "I", table)[0], 4
    while at + 8 <= len(table):
        name_off, count = struct.unpack_from(order + "II", table, at)
        at += 8
        section = _string(strings, name_off)
        for k in range(count):
            insn_off, tid, access_off, kind = struct.unpack_from(order + "IIII", table, at + k * rec_size)
            if kind == _FIELD_BYTE_OFFSET:
                meaning = field_meaning(btf, tid, _string(strings, access_off))
                if meaning:
                    out.setdefault(section, {})[insn_off // 8] = meaning
        at += count * rec_size
    return out


_kernel: list = []  # the running kernel's BTF, read when a program first needs it


def _context(section: str) -> dict[int, str]:
    """Byte offset in the context of the program in ``section`` -> what the
    number there holds: the arguments of the tracepoint a tp_btf or raw_tp
    program is attached to, or a packet's type (``struct __sk_buff``)."""
    if section.startswith(_SKB_SECTIONS):
        return {_SKB_PKT_TYPE: PACKET_TYPE}
    return {8 * i: meaning for i, meaning in _arguments(section).items()}


def _arguments(section: str) -> dict[int, str]:
    """Argument index -> what it holds, of the tracepoint a tp_btf or raw_tp
    program in ``section`` is attached to (``ARGUMENTS``), by where the
    running kernel's BTF puts each argument's name."""
    if not section.startswith(_RAW_SECTIONS):
        return {}
    known = ARGUMENTS.get(section.split("/", 1)[1])
    if known is None:
        return {}
    from ...bpf import BTF
    from ...bpf import btf as B

    if not _kernel:
        try:
            _kernel.append(BTF.kernel())
        except OSError:
            _kernel.append(None)
    kernel, (event_class, meanings) = _kernel[0], known
    try:
        params = kernel.params(kernel.find(f"__bpf_trace_{event_class}", B.FUNC)) if kernel else []
    except KeyError:
        return {}
    # the first parameter is the tracepoint's own data, not an argument
    return {i - 1: meanings[name] for i, (name, _) in enumerate(params) if name in meanings and i}


def _btf_strings(elf, order: str) -> bytes:
    """The string section of the object's .BTF (``btfcheck`` checked it)."""
    data = elf.get_section_by_name(".BTF").data()
    hdr_len, _, _, str_off, str_len = struct.unpack_from(order + "IIIII", data, 4)
    return data[hdr_len + str_off : hdr_len + str_off + str_len]


def _string(strings: bytes, off: int) -> str:
    return strings[off : strings.index(b"\0", off)].decode(errors="replace")


def field_meaning(btf, tid: int, access: str) -> str | None:
    """What the field a CO-RE access string (``0:3``) of type ``tid`` names
    holds, if ``MEANINGS`` (or a ``dev_t`` type) says: the innermost struct's
    name, without a ``___flavor`` suffix, and its member (a socket's state
    is ``sock_common.skc_state`` read through a ``tcp_sock`` or ``udp_sock``)."""
    from ...bpf import btf as B

    steps = [int(s) for s in access.split(":")][1:]
    struct_name = member = ""
    mtid = tid
    for step in steps:
        rid = btf.resolve(mtid)
        kind = btf.kind(rid)
        if kind in (B.STRUCT, B.UNION):
            struct_name = btf.name(rid).split("___", 1)[0]
            member, mtid = btf.members(rid)[step][:2]
        elif kind == B.ARRAY:
            mtid = btf.array(rid)[0]
        else:
            return None
    if (struct_name, member) in MEANINGS:
        return MEANINGS[(struct_name, member)]
    if struct_name.startswith(_TRACEPOINT) and _is_dev_t(btf, mtid):
        return DEV
    return None


def _is_dev_t(btf, tid: int) -> bool:
    from ...bpf import btf as B

    for _ in range(B.MAX_CHAIN):
        kind = btf.kind(tid)
        if kind == B.TYPEDEF and btf.name(tid) == "dev_t":
            return True
        if kind not in (B.TYPEDEF, B.CONST, B.VOLATILE, B.RESTRICT, B.TYPE_TAG):
            return False
        tid = btf.pointee(tid)
    return False


class Seen:
    """What the programs put in each place: per (map, place), a list of
    observations, offset -> meaning (None: a value of no known meaning).
    A whole observation (a key or record on the stack) says every offset it
    does not list holds no known meaning; a partial one (one store into a
    ring buffer record or a map's value) says only its own. A constant
    (``CONSTANT``) agrees with any meaning: where the other paths copy a
    socket's state, one writes ``TCP_SYN_RECV``."""

    def __init__(self):
        self.whole: dict[tuple[str, str], list[dict[int, str | None]]] = {}
        self.partial: dict[tuple[str, str], list[dict[int, str | None]]] = {}
        # a store (or a helper's write) through a pointer the pass does not
        # follow: it may have written any place, so no place is named
        self.blind = False

    def add(self, map_name: str, place: str, found: dict[int, str | None], whole: bool) -> None:
        (self.whole if whole else self.partial).setdefault((map_name, place), []).append(found)

    def agreed(self, sizes: dict[str, dict[str, int]]) -> dict[str, dict[str, dict[int, str]]]:
        """The places every observation agrees on (within ``sizes``, where given)."""
        out: dict[str, dict[str, dict[int, str]]] = {}
        if self.blind:
            return out
        for where in sorted(set(self.whole) | set(self.partial)):
            whole, partial = self.whole.get(where, []), self.partial.get(where, [])
            size = sizes.get(where[0], {}).get(where[1])
            offsets = {
                o
                for seen in whole + partial
                for o, m in seen.items()
                if m and m != CONSTANT and (size is None or o < size)
            }
            for o in offsets:
                meanings = {seen.get(o) for seen in whole} | {seen[o] for seen in partial if o in seen}
                meanings.discard(CONSTANT)
                meaning = meanings.pop()
                if not meanings and meaning:
                    out.setdefault(where[0], {}).setdefault(where[1], {})[o] = meaning
        return out


# -- the pass ------------------------------------------------------------------------
# Abstract values: ("map", name), ("fp", offset) a pointer into the stack,
# ("field", meaning) a number read from a known field, ("at", meaning) a
# pointer to one, ("off", meaning) its relocated offset, ("const", n),
# ("rec", map, offset) a pointer into a reserved ring buffer record,
# ("val", map, offset) one into a map's value; ("glob", section, offset,
# displacement) a pointer into a global, ("index", meaning, stride) a
# number that means something times an element's size, ("elem", section,
# offset, meaning) a pointer into an element of a global array at such an
# index (meaning None: at another index).


class _State:
    __slots__ = ("regs", "stack")

    def __init__(self, regs: dict, stack: dict):
        self.regs, self.stack = regs, stack  # stack: offset -> (width, value)

    def copy(self) -> _State:
        return _State(dict(self.regs), dict(self.stack))

    def meet(self, other: _State) -> _State:
        regs = {r: _met(v, other.regs.get(r)) for r, v in self.regs.items()}
        stack = {}
        for o, (width, v) in self.stack.items():
            theirs = other.stack.get(o)
            value = _met(v, theirs[1]) if theirs and theirs[0] == width else None
            if value is not None:
                stack[o] = (width, value)
        return _State({r: v for r, v in regs.items() if v is not None}, stack)

    def store(self, off: int, width: int, value) -> None:
        for o, (w, _) in list(self.stack.items()):
            if o < off + width and off < o + w:
                del self.stack[o]
        if value is not None:
            self.stack[off] = (width, value)

    def forget_from(self, off: int, size: int | None) -> None:
        """A helper or function may have written the stack at ``off``
        (``size`` bytes; None: anything above it)."""
        for o, (w, _) in list(self.stack.items()):
            if o + w > off and (size is None or o < off + size):
                del self.stack[o]

    def region(self, off: int) -> dict[int, str | None]:
        """The meanings of the stack from ``off`` up, by offset from it."""
        return {o - off: _meaning(v) for o, (w, v) in self.stack.items() if o >= off and _meaning(v)}


def _met(a, b):
    """What a register or stack slot holds where two paths join: what both
    give it, or a known field's number where the other path gives a
    constant (C code that writes ``TCP_SYN_RECV`` where the others copy a
    state: ``CONSTANT``); None: nothing known."""
    if a == b:
        return a
    if {_kind(a), _kind(b)} == {"field", "const"}:
        return a if _kind(a) == "field" else b
    return None


def _callee(code: _Code, i: int) -> tuple[str, int]:
    """The (code section, instruction) a BPF function call at ``i`` goes to."""
    section, base = code.calls.get(i, (code.name, i))
    return section, base + code.insns[i][4] + 1


def _blocks(code: _Code) -> tuple[list[int], dict[int, list[int]], set[int], set[int]]:
    """The leaders of the basic blocks, the successors of each jump, where
    functions may start (the section's start, after an exit: another
    function of the section), and the functions of the section it calls."""
    insns = code.insns
    n = len(insns)
    leaders = {0}
    starts = {0}
    called: set[int] = set()
    jumps: dict[int, list[int]] = {}
    i = 0
    while i < n:
        op, _, src, off, _ = insns[i]
        step = 2 if op == 0x18 else 1
        cls = op & 0x07
        if op == 0x85 and src == 1 and _callee(code, i)[0] == code.name and 0 <= _callee(code, i)[1] < n:
            called.add(_callee(code, i)[1])
        if cls in (0x05, 0x06) and op & 0xF0 not in (0x80,):  # a jump or exit (not a call)
            if op & 0xF0 == 0x90:  # exit
                targets = []
                if i + 1 < n:
                    starts.add(i + 1)
            elif op & 0xF0 == 0x00:  # goto
                targets = [i + 1 + off]
            else:
                targets = [i + 1 + off, i + 1]
            jumps[i] = [t for t in targets if 0 <= t < n]
            leaders.update(jumps[i])
            if i + 1 < n:
                leaders.add(i + 1)
        i += step
    return sorted(leaders | starts | called), jumps, starts, called


def _scan(code: _Code, shared: _Shared) -> None:
    insns = code.insns
    leaders, jumps, starts, called = _blocks(code)
    ends = dict(zip(leaders, leaders[1:] + [len(insns)]))
    # a program's entry has its tracepoint's arguments; a function of .text
    # what every call from another section hands it (the calls from this
    # one meet there as they are met); a function nothing calls that we
    # know of knows nothing of what it is handed
    states: dict[int, _State] = {}
    for start in starts | called:
        handed = shared.entries.get((code.name, start))
        if handed:
            regs = {r: v for r, v in handed[0].items() if all(h.get(r) == v for h in handed)}
            states[start] = _State({**regs, 10: ("fp", 0)}, {})
        elif start not in called:
            states[start] = _State({10: ("fp", 0)}, {})
    if code.name != _FUNCTIONS:
        states[0] = _State({1: ("ctx", tuple(sorted(code.context.items()))), 10: ("fp", 0)}, {})
    work = sorted(states, reverse=True)
    visits = 0
    while work and not shared.seen.blind:
        visits += 1
        if visits > 20 * len(leaders) + 100:  # meets only shrink a state: this does not happen
            raise ValueError("the flow of its programs did not settle")
        start = work.pop()
        state = states[start].copy()
        i, end = start, ends[start]
        successors: list[int] = [end] if end < len(insns) else []
        calls: list[tuple[int, _State]] = []
        while i < end:
            if i in jumps:
                successors = _taken(insns[i], state, jumps[i])
                break
            if insns[i][0] == 0x85 and insns[i][2] == 1:  # a BPF function: the numbers it is handed
                section, callee = _callee(code, i)
                numbers = {r: state.regs[r] for r in range(1, 6) if _kind(state.regs.get(r)) == "field"}
                if section == code.name:
                    calls.append((callee, _State({**numbers, 10: ("fp", 0)}, {})))
                else:
                    shared.entries.setdefault((section, callee), []).append(numbers)
            i += _step(code, i, state, shared)
        for s, entered in [(s, state) for s in successors] + calls:
            if s in states:
                met = states[s].meet(entered)
                if met.regs == states[s].regs and met.stack == states[s].stack:
                    continue
                states[s] = met
            else:
                states[s] = entered.copy()
            if s not in work:
                work.append(s)


_CONDITIONS = {
    0x10: lambda a, b, bits: a == b,
    0x50: lambda a, b, bits: a != b,
    0x20: lambda a, b, bits: a > b,
    0x30: lambda a, b, bits: a >= b,
    0xA0: lambda a, b, bits: a < b,
    0xB0: lambda a, b, bits: a <= b,
    0x40: lambda a, b, bits: bool(a & b),
    0x60: lambda a, b, bits: _signed(a, bits) > _signed(b, bits),
    0x70: lambda a, b, bits: _signed(a, bits) >= _signed(b, bits),
    0xC0: lambda a, b, bits: _signed(a, bits) < _signed(b, bits),
    0xD0: lambda a, b, bits: _signed(a, bits) <= _signed(b, bits),
}


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def _taken(insn, st: _State, targets: list[int]) -> list[int]:
    """Where a jump goes: both ways, but one way when it compares a setting
    (a ``.rodata`` constant, frozen at load) with a constant."""
    op, dst, src, _, imm = insn
    test = _CONDITIONS.get(op & 0xF0)
    a = st.regs.get(dst)
    b = st.regs.get(src) if op & 0x08 else ("const", imm)
    if test is None or len(targets) != 2 or a is None or b is None or a[0] != "const" or b[0] != "const":
        return targets
    bits = 32 if op & 0x07 == 0x06 else 64
    mask = (1 << bits) - 1
    return [targets[0]] if test(a[1] & mask, b[1] & mask, bits) else [targets[1]]


def _step(code: _Code, i: int, st: _State, shared: _Shared) -> int:
    """Apply instruction ``i`` to ``st``; the number of slots it takes."""
    op, dst, src, off, imm = code.insns[i]
    maps, globs, fields, seen, rodata = code.maps, code.globs, code.fields, shared.seen, shared.rodata
    regs = st.regs
    cls = op & 0x07
    if op == 0x18:  # ld_imm64
        regs.pop(dst, None)
        if i in maps:
            regs[dst] = ("map", maps[i])
        elif i in globs:
            regs[dst] = ("glob", *globs[i], imm)
        return 2
    if op == 0x85:
        _call(imm if src == 0 else None, st, seen)
        return 1
    meaning = fields.get(i)
    if cls in (0x01, 0x02, 0x03) and op & 0xE0 in (0x60, 0xC0):  # through a pointer into a global
        _in_global(regs.get(src if cls == 0x01 else dst), seen)
    if cls == 0x01 and op & 0xE0 == 0x60:  # dst = *(src + off)
        value: tuple | None = None
        if meaning:
            value = ("field", meaning)
        elif _kind(regs.get(src)) == "ctx":  # a tracepoint's argument, a packet's type
            context = dict(regs[src][1])
            value = ("field", context[off]) if off in context else None
        elif _kind(regs.get(src)) == "glob" and regs[src][1] == ".rodata" and rodata is not None:
            value = _setting(rodata, regs[src][2] + regs[src][3] + off, _WIDTHS[op & 0x18])
        elif _kind(regs.get(src)) == "fp" and regs[src][1] is not None:
            width, held = st.stack.get(regs[src][1] + off, (0, None))
            value = held if width == _WIDTHS[op & 0x18] or (held and held[0] != "field") else None
        _set(regs, dst, value)
    elif cls in (0x02, 0x03) and op & 0xE0 == 0x60:  # *(dst + off) = src or imm
        value = regs.get(src) if cls == 0x03 else ("const", imm)
        _stored(st, regs.get(dst), off, _WIDTHS[op & 0x18], value, seen)
    elif cls == 0x03 and op & 0xE0 == 0xC0:  # atomics: the place no longer holds what was stored
        _stored(st, regs.get(dst), off, _WIDTHS[op & 0x18], None, seen)
        if imm & 0x01:  # BPF_FETCH: src gets the old value
            regs.pop(src, None)
        if imm == 0xF1:  # BPF_CMPXCHG: r0 does
            regs.pop(0, None)
    elif op in (0xB7, 0xB4):  # dst = imm
        _set(regs, dst, ("off", meaning) if meaning else ("const", imm))
    elif op == 0xBF:  # dst = src
        _set(regs, dst, regs.get(src))
    elif op == 0xBC:  # w_dst = w_src: a number keeps what it means
        value = regs.get(src)
        _set(regs, dst, value if value and value[0] == "field" else None)
    elif op == 0x07:  # dst += imm
        _set(regs, dst, _moved(regs.get(dst), imm, meaning))
    elif op == 0x0F and _kind(regs.get(dst)) in ("glob", "index", "elem"):  # an element of a global
        _set(regs, dst, _element(regs.get(dst), regs.get(src)))
    elif op == 0x0F and _kind(regs.get(src)) == "glob":
        _set(regs, dst, _element(regs.get(src), regs.get(dst)))
    elif op in (0x67, 0x27) and _kind(regs.get(dst)) == "field" and imm != 32:  # dst <<= k or *= n: an index
        _set(regs, dst, ("index", regs[dst][1], 1 << imm if op == 0x67 else imm))
    elif op == 0x0F:  # dst += src
        added = regs.get(src)
        if added and added[0] == "off":
            _set(regs, dst, ("at", added[1]))
        elif added and added[0] == "const":
            _set(regs, dst, _moved(regs.get(dst), added[1], None))
        elif _kind(regs.get(dst)) in ("fp", "rec", "val"):  # somewhere in the stack, record or value
            _set(regs, dst, (*regs[dst][:-1], None))
        else:
            regs.pop(dst, None)
    elif op in (0x67, 0x77) and imm == 32 and regs.get(dst, ("",))[0] in ("field", "high"):
        # dst <<= 32, then >>= 32: the lower half, as a u32 argument is read
        value = regs[dst]
        _set(regs, dst, ("high", value[1]) if op == 0x67 and value[0] == "field" else None)
        if op == 0x77 and value[0] == "high":
            regs[dst] = ("field", value[1])
    elif cls in (0x00, 0x01, 0x04, 0x07):  # other loads and ALU ops write dst
        regs.pop(dst, None)
    return 1


def _setting(rodata: bytes, at: int, width: int):
    """A ``const volatile`` setting's value as the object is loaded with it."""
    if at < 0 or at + width > len(rodata):
        return None
    return ("const", int.from_bytes(rodata[at : at + width], sys.byteorder))  # the kernel's order


def _meaning(value) -> str | None:
    """What a number stored somewhere holds: a known field's meaning, or
    ``CONSTANT`` (None: nothing known)."""
    kind = _kind(value)
    return value[1] if kind == "field" else CONSTANT if kind == "const" else None


def _kind(value) -> str:
    return value[0] if value else ""


def _element(base, index):
    """A global's address plus ``index``: a pointer into the element at an
    index of that meaning (None: another); an element's address plus
    anything stays in that element."""
    if _kind(base) == "elem":
        return base
    if _kind(index) == "glob":
        base, index = index, base
    if _kind(base) != "glob":
        return None
    return ("elem", base[1], base[2], index[1] if _kind(index) == "index" else None)


def _in_global(where, seen: Seen) -> None:
    """A load or store through ``where``: an element of a global array at an
    index of a known meaning, or a global read or written otherwise."""
    if _kind(where) == "elem":
        seen.add(global_name(where[1], str(where[2])), INDEX, {0: where[3]}, whole=False)
    elif _kind(where) == "glob":
        seen.add(global_name(where[1], str(where[2])), INDEX, {0: None}, whole=False)


def _set(regs: dict, reg: int, value) -> None:
    if value is None:
        regs.pop(reg, None)
    else:
        regs[reg] = value


def _moved(value, delta: int, meaning: str | None):
    """A pointer ``delta`` bytes further (a relocated offset: to that field)."""
    if meaning:
        return ("at", meaning)
    if value and value[-1] is None:  # somewhere in it still
        return value
    if value and value[0] == "fp":
        return ("fp", value[1] + delta)
    if value and value[0] in ("rec", "val"):
        return (value[0], value[1], value[2] + delta)
    if value and value[0] == "glob":
        return (*value[:3], value[3] + delta)
    return None


def _stored(st: _State, where, off: int, width: int, value, seen: Seen) -> None:
    """A store of ``value`` (None: of no known meaning) through pointer ``where``."""
    if not where:  # through a pointer not followed: anywhere
        seen.blind = True
        return
    meaning = _meaning(value)
    if where[-1] is None:  # at an offset not known
        _anywhere(st, where, seen)
    elif where[0] == "fp":
        st.store(where[1] + off, width, value)
    elif where[0] in ("rec", "val"):
        seen.add(where[1], RECORD if where[0] == "rec" else VALUE, {where[2] + off: meaning}, whole=False)


def _anywhere(st: _State, where, seen: Seen) -> None:
    """A write somewhere in the stack, a record or a map's value: nothing
    there says what it holds any more."""
    if where[0] == "fp":
        st.stack.clear()
    elif where[0] in ("rec", "val"):
        seen.add(where[1], RECORD if where[0] == "rec" else VALUE, {}, whole=True)


def _written(st: _State, where, size: int | None, meaning: str | None, seen: Seen) -> None:
    """A helper wrote ``size`` bytes (None: not known) at ``where``: a number
    of ``meaning`` (a probe read of a known field), or else bytes."""
    kind = _kind(where)
    if kind in ("fp", "rec", "val") and where[-1] is None:
        _anywhere(st, where, seen)
    elif kind == "fp":
        if meaning and size is not None:
            st.store(where[1], size, ("field", meaning))
        else:
            st.forget_from(where[1], size)
    elif kind in ("rec", "val") and size is not None:
        place = RECORD if kind == "rec" else VALUE
        found: dict[int, str | None] = dict.fromkeys(range(where[2], where[2] + size))
        seen.add(where[1], place, {where[2]: meaning} if meaning else found, whole=False)
    elif kind == "elem":
        _in_global(where, seen)
    else:  # where it wrote, or how much, is not known
        seen.blind = True


def _region(st: _State, where) -> dict[int, str | None]:
    """What the memory a helper is handed holds: the stack's, from there up;
    from elsewhere (a global, another map's value), nothing known."""
    return st.region(where[1]) if _kind(where) == "fp" and where[1] is not None else {}


def _call(helper: int | None, st: _State, seen: Seen) -> None:
    regs = st.regs
    arg = regs.get
    result = None
    target = arg(1) if helper in (_LOOKUP, _UPDATE, _DELETE, _RINGBUF_OUTPUT, _RINGBUF_RESERVE) else arg(2)
    map_name = target[1] if target and target[0] == "map" else None
    if map_name and helper in (_LOOKUP, _UPDATE, _DELETE):
        # a key or value from elsewhere than the stack (a global, another
        # map's value): of no meaning this pass knows
        key = arg(2)
        seen.add(map_name, KEY, _region(st, key), whole=True)
        value = arg(3)
        if helper == _UPDATE:
            seen.add(map_name, VALUE, _region(st, value), whole=True)
        if helper == _LOOKUP:
            result = ("val", map_name, 0)
    elif map_name and helper in (_PERF_OUTPUT, _RINGBUF_OUTPUT):
        data = arg(4 if helper == _PERF_OUTPUT else 2)
        seen.add(map_name, RECORD, _region(st, data), whole=True)
    elif map_name and helper == _RINGBUF_RESERVE:
        result = ("rec", map_name, 0)
    elif helper == _SEQ_WRITE:  # an iterator's binary record, from the stack
        seen.add(SEQ_WRITE, RECORD, _region(st, arg(2)), whole=True)
    if helper in _WRITES:
        buf, size = (arg(r) for r in _WRITES[helper])
        source = arg(3) if helper in _PROBE_READS else None
        meaning = source[1] if source is not None and source[0] == "at" else None
        _written(st, buf, size[1] if size is not None and size[0] == "const" else None, meaning, seen)
    elif helper not in _READ_ONLY:  # it, or a function of the object's, may write what it is handed
        for r in range(1, 6):
            if _kind(arg(r)) in ("fp", "rec", "val", "elem"):
                _written(st, arg(r), None, None, seen)
    for r in range(6):
        regs.pop(r, None)
    if result:
        regs[0] = result
