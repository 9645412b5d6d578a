"""How an ebpf_exporter configuration's labels turn a map's raw keys into
label values, as the exporter does: each label's bytes through its chain
of decoders (``uint``, then ``static_map``...; ``exporter_config.DECODERS``),
a label set a ``regexp`` decoder leaves out left out, and entries whose
labels are equal added together (``samples``)."""

from __future__ import annotations

import errno
import os
import re
import struct
import sys

from ...errors import UsageError
from .exporter_config import NOT_DONE, Label, Metric


class Skip(Exception):
    """A label set the configuration leaves out (no regexp matched)."""


class Labels:
    """Turns a metric's raw keys into label values, as the exporter does (and
    caches them: a key's labels do not change within a run)."""

    def __init__(self, metric: Metric):
        self.metric = metric
        self._cache: dict[bytes, tuple | None] = {}
        self._context = _Context()

    @property
    def size(self) -> int:
        """The bytes the labels take."""
        return sum(label.size + label.padding for label in self.metric.labels)

    def of(self, raw: bytes) -> tuple | None:
        """The label values of a key (for a per-CPU metric, with the CPU
        appended as a u16); None when the configuration leaves it out."""
        if raw not in self._cache:
            try:
                self._cache[raw] = self._decode(raw)
            except Skip:
                self._cache[raw] = None
        return self._cache[raw]

    def _decode(self, raw: bytes) -> tuple:
        labels = self.metric.labels
        if not labels:
            return ()
        if len(labels) == 1 and labels[0].name == "cpu" and len(raw) == 6 and raw[:4] == bytes(4):
            raw = raw[4:]  # a per-CPU array's key 0, then the CPU
        out, offset = [], 0
        for label in labels:
            data = raw[offset : offset + label.size]
            offset += label.size + label.padding
            out.append(self._chain(data, label))
        return tuple(out)

    def _chain(self, data: bytes, label: Label) -> str:
        value: bytes = data
        for d in label.decoders:
            try:
                value = _DECODE[d.name](value, d, self._context)
            except Skip:
                raise
            except (ValueError, OSError, struct.error) as e:
                return f"<{d.name}: {e}>"
        return value.decode(errors="replace")


def samples(metric: Metric, labels: Labels, items, percpu: bool) -> list[tuple[tuple, int]]:
    """(label values, value) of a metric's map, from its (raw key, value)
    pairs (a per-CPU map's value: one per CPU), entries whose labels are
    equal added together (as the exporter does: a cgroup id reused...);
    label sets the configuration leaves out are left out."""
    totals: dict[tuple, int] = {}
    split = metric.per_cpu(percpu)
    for raw, value in items:
        if percpu and not split:
            value = sum(value)
        per_cpu = enumerate(value) if split else [(None, value)]
        for cpu, v in per_cpu:
            key = raw if cpu is None else raw + struct.pack("=H", cpu)
            values = labels.of(key)
            if values is None:
                continue
            totals[values] = totals.get(values, 0) + v
    return list(totals.items())


# -- the decoders -----------------------------------------------------------------


class _Context:
    """What decoders read once and keep: kernel symbols, disks, cgroups."""

    def __init__(self) -> None:
        self._ksyms = None
        self._disks: dict[int, str] | None = None
        self._cgroups: dict[int, str] | None = None

    def _symbols(self):
        if self._ksyms is None:
            from ...symbols import kernel_symbols

            self._ksyms = kernel_symbols()
        return self._ksyms

    def ksym(self, address: int) -> str | None:
        """The kernel symbol exactly at ``address`` (the exporter names only those)."""
        frame = self._symbols().resolve(address)
        return frame.name if frame.name and frame.offset == 0 else None

    def frame(self, address: int) -> str | None:
        """The function ``address`` is in."""
        return self._symbols().resolve(address).name

    def disk(self, dev: int) -> str | None:
        if self._disks is None:
            self._disks = {}
            try:
                with open("/proc/partitions") as f:
                    for line in f:
                        fields = line.split()
                        if len(fields) == 4 and fields[0].isdigit():
                            self._disks[os.makedev(int(fields[0]), int(fields[1]))] = fields[3]
            except OSError:
                pass
        return self._disks.get(dev)

    def cgroup(self, cgroup_id: int) -> str | None:
        from ... import cgroup

        if self._cgroups is None or cgroup_id not in self._cgroups:
            try:
                mount = cgroup.cgroup2_mount()
                self._cgroups = {
                    i: mount + ("" if rel == "/" else rel) for i, rel in cgroup.tree(mount).items()
                }
            except (UsageError, OSError):
                self._cgroups = {}
        return self._cgroups.get(cgroup_id)


def _number(data: bytes) -> int:
    return int(data.decode())


def _uint(data: bytes, d, ctx) -> bytes:
    if len(data) not in (1, 2, 4, 8):
        raise ValueError(f"unknown value length {len(data)}")
    return str(int.from_bytes(data, sys.byteorder)).encode()


def _string(data: bytes, d, ctx) -> bytes:
    return data.split(b"\0", 1)[0]


def _static_map(data: bytes, d, ctx) -> bytes:
    if not d.static_map:
        return b"empty mapping"
    text = data.decode(errors="replace")
    if text in d.static_map:
        return d.static_map[text].encode()
    return data if d.allow_unknown else b"unknown:" + data


def _ksym(data: bytes, d, ctx) -> bytes:
    address = int.from_bytes(data[:8], sys.byteorder)
    return (ctx.ksym(address) or f"unknown_addr:0x{address:x}").encode()


def _kstack(data: bytes, d, ctx) -> bytes:
    frames = []
    for (address,) in struct.iter_unpack("=Q", data[: len(data) // 8 * 8]):
        if not address:
            break
        frames.append(ctx.frame(address) or "??")
    return "\n".join(frames).encode()


def _majorminor(data: bytes, d, ctx) -> bytes:
    dev = int.from_bytes(data[:4], sys.byteorder)
    name = ctx.disk(dev)
    return (name or f"unknown:{os.major(dev)}:{os.minor(dev)}").encode()


def _syscall(data: bytes, d, ctx) -> bytes:
    from ... import syscalls

    number = _number(data)
    return (syscalls.name(number) or f"unknown_syscall:{number}").encode()


def _errno(data: bytes, d, ctx) -> bytes:
    number = _number(data)
    return errno.errorcode.get(number, f"unknown:{number}").encode()


def _cgroup(data: bytes, d, ctx) -> bytes:
    number = _number(data)
    return (ctx.cgroup(number) or f"unknown_cgroup_id:{number}").encode()


def _inet_ip(data: bytes, d, ctx) -> bytes:
    import ipaddress

    address = ipaddress.ip_address(data) if len(data) in (4, 16) else None
    if address is None:
        return b"?" + data.hex().encode()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # as Go's net.IP prints it
    return str(address).encode()


def _hex(data: bytes, d, ctx) -> bytes:
    return data.hex().encode()


def _ifname(data: bytes, d, ctx) -> bytes:
    import socket

    index = int.from_bytes(data[:4], sys.byteorder)
    try:
        return socket.if_indextoname(index).encode()
    except OSError:
        return f"unknown:{index}".encode()


def _regexp(data: bytes, d, ctx) -> bytes:
    text = data.decode(errors="replace")
    for expr in d.regexps:
        found = re.search(expr, text)
        if found is None:
            continue
        groups = found.groups()
        if len(groups) == 1:
            return (groups[0] or "").encode()
        if not groups:
            return found.group(0).encode()
    raise Skip


def _dname(data: bytes, d, ctx) -> bytes:
    """A DNS name in its wire form (length-prefixed parts) as dotted text."""
    if not data:
        return b"."
    out, offset = bytearray(), 0
    while offset < len(data):
        n = data[offset]
        if offset + 1 + n > len(data):
            return data
        out += b"." + data[offset + 1 : offset + 1 + n]
        offset += 1 + n
    return bytes(out[1:])


def _kept(data: bytes, d, ctx) -> bytes:
    return data


_DECODE = {
    "cgroup": _cgroup,
    "dname": _dname,
    "errno": _errno,
    "hex": _hex,
    "ifname": _ifname,
    "inet_ip": _inet_ip,
    "kstack": _kstack,
    "ksym": _ksym,
    "majorminor": _majorminor,
    "regexp": _regexp,
    "static_map": _static_map,
    "string": _string,
    "syscall": _syscall,
    "uint": _uint,
    **{name: _kept for name in NOT_DONE},
}
