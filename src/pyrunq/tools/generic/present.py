"""Values as ``pyrunq run`` shows them: from what a BTF (or DWARF) layout
decoded to plain data (dicts, lists, numbers, text). Enums by name, bytes as
hex, and numbers whose member says what they hold as a person reads them:
IP addresses as text, kernel addresses as the function (``process_timeout``,
as bpftrace's ``ksym()``), a ``dev_t`` as ``major:minor`` and its disk, a
``pid_tgid`` as its pid and tid, a negative errno by its name (``-ENOENT``);
and numbers whose meaning the object's instructions tell (``origins``: a
TCP state, a softirq vector, a syscall, a kernel ``dev_t``) by their names.
"""

from __future__ import annotations

import errno
import os
import re
import sys

from ... import syscalls
from ...bpf import BTF
from ...bpf import btf as B
from ...symbols import KernelSymbols
from . import gadget, meanings


def presenter(
    btf, tid: int, name: str = "", host_order: bool = False, meanings: dict[int, str] | None = None
):
    """A function from a value decoded by ``btf.layout(tid)`` to plain data:
    enums by name, structs as dicts, arrays as lists, bytes as hex; IP
    addresses (``_addresses``) as text (``host_order``: a 4-byte one not
    declared ``__be32`` is in host order, ``ObjectFile.host_order_ipv4``);
    integers as ``named_number`` says for a member called ``name`` (a bare
    key or value: ""); Inspektor Gadget's types (``gadget``) as its loader
    shows them. ``meanings``: byte offset in the value -> what the number
    there holds (``origins.read``), which names it first."""
    shown = gadget.formatter(gadget.typedef(btf, tid), _mount_namespaces) if tid else None
    if shown is not None:  # an Inspektor Gadget type: as its loader shows it
        return shown
    big_endian = _big_endian(btf, tid) if tid else False
    tid = btf.resolve(tid) if tid else 0
    kind = btf.kind(tid)
    meant = (meanings or {}).get(0)
    if meant and kind in (B.INT, B.ENUM, B.ENUM64):
        return meaning_presenter(meant)
    if kind == B.INT and big_endian and btf.size(tid) > 1 and sys.byteorder == "little":
        return _swapped(btf.size(tid), named_number(name, btf.size(tid), btf.int_info(tid)[1]) or _plain)
    if kind == B.INT:
        return named_number(name, btf.size(tid), btf.int_info(tid)[1]) or _plain
    if kind in (B.ENUM, B.ENUM64):
        names: dict[int, str] = {}
        for name, value in (_kernel_enum(btf.name(tid), kind) or btf.enum_values(tid)).items():
            names.setdefault(value, name)
        return lambda v: _plain(names.get(v, v) if isinstance(v, int) else v)
    if kind == B.STRUCT:
        enums = enums_naming(btf, tid)
        fields = [
            presenter(btf, enums.get(n, t), n, host_order, _at(meanings, offset // 8) if not bits else None)
            for n, t, offset, bits in btf.fields(tid)  # an anonymous member's members in its place
        ]
        addresses = _addresses(btf, tid, host_order)

        def struct(rec):
            if not hasattr(rec, "_fields"):
                return _plain(rec)
            out = {name: f(v) for name, f, v in zip(rec._fields, fields, rec)}
            for i, size, family, host in addresses:
                text = _address(rec[i], size, None if family is None else rec[family], host)
                if text is not None:
                    out[rec._fields[i]] = text
            return out

        return struct
    if kind == B.UNION:
        return _union_presenter(btf, tid)
    if kind == B.ARRAY:
        elem = presenter(btf, btf.array(tid)[0], name, host_order)

        def array(v):
            if isinstance(v, (str, bytes)):  # char[] is text; bytes: no better form
                return _plain(v)
            return [elem(x) for x in v]

        return array
    return _plain


def _at(meanings: dict[int, str] | None, offset: int) -> dict[int, str] | None:
    """The meaning of a member at byte ``offset``, as the member's own (offset 0)."""
    if not meanings or offset not in meanings:
        return None
    return {0: meanings[offset]}


_ADDRESS = re.compile(r"addr(_v?[46])?$")
_FAMILY_NAMES = ("family", "af", "sa_family")
_FAMILIES = {2: 4, 10: 16}  # AF_INET, AF_INET6 -> the address's bytes


def _addresses(btf, tid: int, host_order: bool = False) -> list[tuple[int, int, int | None, bool]]:
    """(member index, its size, index of the struct's family member or None,
    whether it is in host order) of the members of struct ``tid`` that hold
    an IP address: named ``*addr`` (``saddr``, ``daddr_v6``...), 4 or 16
    bytes as an integer or an array of integers (tcplife's ``unsigned
    __int128 saddr``; ``__u8`` arrays read as text and are left alone). In
    network order, but a 4-byte integer of a ``host_order`` object that is
    not declared big-endian (``__be32``)."""
    members = btf.fields(tid)
    names = [m[0] for m in members]
    family = next((names.index(n) for n in _FAMILY_NAMES if n in names), None)
    out = []
    for i, (name, mtid, _, bits) in enumerate(members):
        mtid = btf.resolve(mtid)
        size, kind = btf.size(mtid), btf.kind(mtid)
        if bits or not _ADDRESS.search(name) or size not in (4, 16):
            continue
        if kind == B.INT or kind == B.ARRAY and _is_int(btf, btf.array(mtid)[0]) and not _is_char(btf, mtid):
            host = host_order and kind == B.INT and size == 4 and not _big_endian(btf, members[i][1])
            out.append((i, size, family, host))
    return out


def _big_endian(btf, tid: int) -> bool:
    """Whether a type is declared big-endian: a typedef ``__be32`` (or
    ``be32``...) on the way to its integer."""
    for _ in range(B.MAX_CHAIN):
        kind = btf.kind(tid)
        if kind not in (B.TYPEDEF, B.CONST, B.VOLATILE, B.RESTRICT, B.TYPE_TAG):
            return False
        if kind == B.TYPEDEF and btf.name(tid).lstrip("_").startswith("be"):
            return True
        tid = btf.pointee(tid)
    return False


def _swapped(size: int, shown):
    """How a big-endian integer (``__be16 port``) is shown: its number, in
    the order the machine reads it, as ``ntohs()`` gives it."""

    def swapped(v):
        if not isinstance(v, int):
            return v
        return shown(int.from_bytes((v % (1 << 8 * size)).to_bytes(size, "little"), "big"))

    return swapped


def _is_char(btf, array_tid: int) -> bool:
    return btf.int_info(btf.resolve(btf.array(array_tid)[0]))[3]


def _address(value, size: int, family: int | None, host_order: bool = False) -> str | None:
    """An address member's value as text: with the struct's family (AF_INET:
    the first 4 bytes, AF_INET6: all 16; another: None), else by its size."""
    import ipaddress

    if isinstance(value, int):
        data = value.to_bytes(size, "big" if host_order else sys.byteorder)
    elif isinstance(value, tuple):  # __u32[4]
        data = b"".join(x.to_bytes(size // len(value), sys.byteorder) for x in value)
    else:
        data = bytes(value)
    n = len(data) if family is None else _FAMILIES.get(family, 0)
    return str(ipaddress.ip_address(data[:n])) if n in (4, 16) and n <= len(data) else None


_kernel_btf: list = []  # the running kernel's BTF, read when an enum first needs it


def enums_naming(btf, tid: int) -> dict[str, int]:
    """Member -> the enum that names its numbers, by C's convention, for the
    integer members of struct ``tid``: member M of struct S by the object's
    own enum S_M (the eunomia tutorial's cgroup_guard: ``event.type`` by
    ``enum event_type``), or else by its one own enum named ``*_M``
    (softirqslower's ``stage`` by ``enum softirq_stage``). An object's own
    enum is one the running kernel has not, nor a library's (a reserved
    name): vmlinux.h's ``bpf_map_type`` and usdt.bpf.h's
    ``__bpf_usdt_arg_type`` name no record's ``type``."""
    enums = {
        name: e
        for name, e in btf.enums().items()
        if not name.startswith("_") and _kernel_enum(name, btf.kind(e)) is None  # not a library's
    }
    out: dict[str, int] = {}
    struct = btf.name(tid)
    if not enums or _kernel_has(struct):  # a kernel struct's members hold what the kernel says
        return out
    for name, t, _, _ in btf.fields(tid):
        if not name or btf.kind(btf.resolve(t)) != B.INT:
            continue
        exact = enums.get(f"{struct}_{name}")
        ending = [e for enum, e in enums.items() if enum.endswith(f"_{name}")]
        if exact or len(ending) == 1:
            out[name] = exact or ending[0]
    return out


def _kernel_enum(name: str, kind: int) -> dict[str, int] | None:
    """The running kernel's enumerators of ``enum name``, when the kernel
    has it: an object's copy (from its vmlinux.h) may be another kernel's,
    whose values mean other things (``enum skb_drop_reason`` grows between
    releases: 105 is QUEUE_PURGE on 6.18, TC_RECLASSIFY_LOOP on an older
    one)."""
    if not name:
        return None
    kernel = _kernel_types()
    try:
        return kernel.enum_values(kernel.find(name, kind)) if kernel is not None else None
    except KeyError:
        return None


def _kernel_has(struct: str) -> bool:
    """Whether the running kernel has a struct of that name."""
    kernel = _kernel_types()
    try:
        return bool(struct) and kernel is not None and kernel.find(struct, B.STRUCT) > 0
    except KeyError:
        return False


def _kernel_types():
    """The running kernel's BTF, read once; None without one."""
    if not _kernel_btf:
        try:
            _kernel_btf.append(BTF.kernel())
        except OSError:  # no kernel BTF: the object's own names
            _kernel_btf.append(None)
    return _kernel_btf[0]


_mount_namespaces = gadget.MountNamespaces()


def _union_presenter(btf, tid: int):
    """A named union (its bytes) as each of its members decoded from them:
    which one is meant, only the object's own user space knows (mountsnoop's
    by its ``op``); an anonymous struct's members as the union's own.
    Bit-field members stay out. (An anonymous union's members are the
    enclosing struct's: its record has them, ``codecs.Union``.)"""
    members = []
    for i, (name, mtid, bit_offset, bits) in enumerate(btf.members(tid)):
        if not bits:
            members.append((name, i, bit_offset // 8, btf.layout(mtid), presenter(btf, mtid, name)))

    def union(raw):
        if not isinstance(raw, (bytes, bytearray)):
            return _plain(raw)
        out: dict = {}
        for name, i, offset, layout, present in members:
            if offset + layout.size <= len(raw):
                shown = present(layout.decode(bytes(raw[offset : offset + layout.size])))
                if not name and isinstance(shown, dict) and not set(shown) & set(out):
                    out.update(shown)  # an anonymous struct's members are the union's, as in C
                else:
                    out[name or f"_{i}"] = shown
        return out

    return union


def _plain(v):
    return v.hex() if isinstance(v, (bytes, bytearray)) else v


def _is_int(btf, tid: int) -> bool:
    return btf.kind(btf.resolve(tid)) == B.INT


# -- numbers that say what they hold -----------------------------------------------

_KERNEL_ADDRESS = re.compile(
    r"(^|_)(ip|pc|addr|kaddr|func|function|fn|caller|callsite|sym|ksym|handler|callback)$"
)
_DEV = re.compile(r"(^|_)(dev|devt|dev_t|device)$")
_ERRNO = re.compile(r"(^|_)(ret|retval|err|error|errno)$")
_KERNEL_HALF = 1 << 63
_NEAR = 1 << 20  # an address this far past a kernel function's start is not in it


def named_number(name: str, size: int, signed: bool):
    """How an integer member called ``name`` is shown, if its name (or, for
    a bare 8-byte key or value, its value) says what it holds; else None."""
    lowered = name.lower()
    if size == 8 and not signed and (not name or _KERNEL_ADDRESS.search(lowered)):
        return _kernel_function
    if lowered == "pid_tgid" and size == 8:
        return lambda v: {"pid": v >> 32, "tid": v & 0xFFFFFFFF}
    if size == 4 and not signed and _DEV.search(lowered):
        return _device
    if signed and _ERRNO.search(lowered):
        return lambda v: f"-{errno.errorcode[-v]}" if -v in errno.errorcode else v
    return None


def is_kernel_address(name: str, size: int, signed: bool) -> bool:
    """Whether an integer member called ``name`` (a bare key or value: "")
    is shown as a kernel function: its name, or its size, says it holds an
    address."""
    return named_number(name, size, signed) is _kernel_function


_kernel: list[KernelSymbols] = []  # read once, when a value first needs it


def _kernel_function(v: int):
    """A kernel text address as its function (``name+0x1a`` inside it);
    any other number as it is."""
    if v < _KERNEL_HALF:
        return v
    if not _kernel:
        _kernel.append(KernelSymbols())
    frame = _kernel[0].resolve(v)
    if frame.name is None or frame.offset >= _NEAR:
        return v
    return frame.name if not frame.offset else f"{frame.name}+{frame.offset:#x}"


def _device(v: int) -> str:
    """A kernel dev_t (12 bits of major, 20 of minor) as ``major:minor``,
    with its block device's name where there is one (``8:0 sda``); a number
    that names no block device so, but does in user space's encoding
    (``makedev()``, which ebpf_exporter's and some bcc objects use), as that."""
    if not _block_device(v >> 20, v & 0xFFFFF) and 0 <= v < 1 << 32:
        major, minor = os.major(v), os.minor(v)
        if _block_device(major, minor):
            return f"{major}:{minor} {_block_device(major, minor)}"
    return _kernel_device(v)


def _kernel_device(v: int) -> str:
    """A dev_t known to be the kernel's (a tracepoint's ``dev``): ``major:minor``
    by its 20-bit minor, and its block device's name where there is one."""
    major, minor = v >> 20, v & 0xFFFFF
    disk = _block_device(major, minor)
    return f"{major}:{minor} {disk}" if disk else f"{major}:{minor}"


def _block_device(major: int, minor: int) -> str:
    try:
        with open(f"/sys/dev/block/{major}:{minor}/uevent") as f:
            return next((line.split("=", 1)[1].strip() for line in f if line.startswith("DEVNAME=")), "")
    except OSError:
        return ""


# -- numbers the object's instructions say the meaning of (``origins``) -----------

_KERNEL_ENUMS = {meanings.TCP_STATE: "TCP_ESTABLISHED", meanings.SOFTIRQ: "HI_SOFTIRQ"}


def meaning_presenter(meaning: str):
    """How a number that holds ``meaning`` (``origins``) is shown: a syscall
    by its name (libseccomp's), a kernel dev_t as ``major:minor`` and its
    disk, a signal by its name, a TCP state or softirq vector by the running kernel's enumerator
    (``TCP_ESTABLISHED``, ``NET_RX_SOFTIRQ``), a block request's op and flags as
    its tracepoints' ``rwbs`` (``WS``), a packet's type as linux/if_packet.h
    names it (``PACKET_OUTGOING``); a number with no name as it is."""
    if meaning == meanings.SYSCALL:
        return lambda v: (syscalls.name(v) or v) if isinstance(v, int) else v
    if meaning == meanings.DEV:
        return lambda v: _kernel_device(v) if isinstance(v, int) and 0 <= v < 1 << 32 else v
    if meaning == meanings.SIGNAL:
        return _signal
    if meaning == meanings.BLOCK_OPF:
        return _rwbs_of_this_kernel()
    if meaning == meanings.PACKET_TYPE:
        return lambda v: _PACKET_TYPES.get(v, v) if isinstance(v, int) else v
    names = _kernel_enum_with(_KERNEL_ENUMS[meaning])
    return lambda v: names.get(v, v) if isinstance(v, int) else v


# linux/if_packet.h: a packet's type, as a socket filter's __sk_buff has it
_PACKET_TYPES = {
    v: f"PACKET_{name}"
    for v, name in enumerate(
        ("HOST", "BROADCAST", "MULTICAST", "OTHERHOST", "OUTGOING", "LOOPBACK", "USER", "KERNEL")
    )
}

# blk_fill_rwbs (kernel/trace/blktrace.c): a letter for the operation, and
# one for each of these flags, after it
_RWBS_OPS = {"REQ_OP_READ": "R", "REQ_OP_WRITE": "W", "REQ_OP_FLUSH": "F", "REQ_OP_DISCARD": "D"}
_RWBS_OPS["REQ_OP_SECURE_ERASE"] = "DE"
_RWBS_FLAGS = (("F", "__REQ_FUA"), ("A", "__REQ_RAHEAD"), ("S", "__REQ_SYNC"), ("M", "__REQ_META"))


def _rwbs_of_this_kernel():
    """A block request's ``cmd_flags`` as the kernel's tracepoints and
    blktrace write them (``rwbs``: ``WS`` a synchronous write, ``FWFS`` a
    flush before a forced-unit-access one...), by the running kernel's
    operation numbers and flag bits (its BTF: they moved between versions);
    a number as it is without them."""
    ops = _kernel_enum_with("REQ_OP_WRITE")
    bit = {name: value for value, name in _kernel_enum_with("__REQ_SYNC").items()}
    if not ops or "__REQ_FAILFAST_DEV" not in bit:
        return lambda v: v
    op_mask = (1 << bit["__REQ_FAILFAST_DEV"]) - 1  # the flags start past the operation's bits

    def has(v: int, flag: str) -> bool:
        return flag in bit and bool(v >> bit[flag] & 1)

    def rwbs(v):
        if not isinstance(v, int):
            return v
        flush = "F" if has(v, "__REQ_PREFLUSH") else ""
        op = _RWBS_OPS.get(ops.get(v & op_mask, ""), "N")
        return flush + op + "".join(letter for letter, flag in _RWBS_FLAGS if has(v, flag))

    return rwbs


def _signal(v):
    """A signal by its name on this machine (``SIGUSR1``; a real-time one
    ``SIGRTMIN+3``); a number that is none as it is."""
    import signal

    if not isinstance(v, int):
        return v
    try:
        return signal.Signals(v).name
    except ValueError:
        rt = v - signal.SIGRTMIN
        return f"SIGRTMIN+{rt}" if 0 < rt <= signal.SIGRTMAX - signal.SIGRTMIN else v


def _kernel_enum_with(enumerator: str) -> dict[int, str]:
    """Value -> name in the running kernel's enum that has ``enumerator``
    (empty without the kernel's BTF, or no such enum: numbers stay numbers)."""
    kernel = _kernel_types()
    names: dict[int, str] = {}
    try:
        for name, value in (kernel.enum_with(enumerator) if kernel is not None else {}).items():
            names.setdefault(value, name)
    except KeyError:
        pass
    return names
