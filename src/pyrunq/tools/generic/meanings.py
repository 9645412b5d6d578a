"""What the kernel's data holds, where every kernel says the same: a
tracepoint's fields and arguments (a TCP state, a softirq vector, a
syscall number, a signal; any ``dev_t`` field of a tracepoint is the
kernel's device number), some kernel structs' members (a block request's
``cmd_flags``: its operation and flags; a socket's state), and a packet's
type in a socket filter's ``__sk_buff``.

Read for ``origins``, which follows the numbers a program reads from
them: the CO-RE field relocations of the object's .BTF.ext name the field
each load reads (``core_fields``: ``trace_event_raw_softirq.vec``, through
``ctx->vec`` or ``BPF_CORE_READ``), the running kernel's BTF names the
arguments of a tp_btf or raw_tp program, and a program's section says
what its context holds (``context``). ``present`` shows each meaning by
its names.
"""

from __future__ import annotations

import struct

TCP_STATE, SOFTIRQ, SYSCALL, DEV = "tcp state", "softirq vector", "syscall", "kernel dev_t"
SIGNAL = "signal"
PACKET_TYPE = "packet type"
BLOCK_OPF = "block request op and flags"

# (kernel struct, member) -> what it holds; and every dev_t member of a
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
_FIELD_BYTE_OFFSET = 0  # enum bpf_core_relo_kind


def core_fields(elf, btf) -> dict[str, dict[int, str]]:
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


def context(section: str) -> dict[int, str]:
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
