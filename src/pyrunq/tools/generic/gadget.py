"""Inspektor Gadget's conventions, read from an object's own BTF: what its
gadgets (``ig run``) declare beside their programs, so that ``pyrunq run``
shows a gadget as its own loader would.

- Markers, unused globals whose names carry meaning:
  ``gadget_tracer_<name>___<map>___<struct>`` (a ring buffer or perf event
  array whose records are ``struct <struct>``), ``gadget_mapiter_<name>___<map>``
  (a hash map that is the gadget's result), ``gadget_iter_<name>___<struct>___<prog>...``
  (iterator programs whose binary records are ``struct <struct>``; the older
  ``gadget_snapshotter_`` too) and ``gadget_param_<var>`` (a ``.rodata``
  global that is one of the gadget's parameters).
- Types known by their typedef's name: ``gadget_timestamp`` (ns since boot,
  shown as wall-clock time), ``gadget_mntns_id`` (a mount namespace, shown
  with the container it is one of), ``gadget_errno``, ``gadget_signal``,
  ``gadget_uid``/``gadget_gid``, ``gadget_file_mode``/``gadget_file_flags``
  by name, ``gadget_kernel_stack`` (a stack id in the gadget's kernel stack
  map, ``ig_kstack``), ``struct gadget_user_stack`` (a stack id in
  ``ig_user_stack``'s map, ``ig_ustack``, and the process it is of),
  ``struct gadget_process`` (comm, pid, tid, mount namespace, uid, gid and
  parent: flattened into columns) and ``gadget_histogram_slot__u32``/``__u64``
  (an array of them is one log2 histogram).
- A member named ``X_raw`` whose type is one of those is shown as ``X``: the
  gadget keeps the raw number and its loader adds the readable field.
- Maps that are the gadget library's machinery, not results: its scratch
  buffers, filters, the socket enricher's table, lost-sample counters
  (``<map>_lost_samples``: added up and said instead), stack maps.

Nothing of Inspektor Gadget is imported or needed: only the names its
headers give (``include/gadget/macros.h``, ``types.h``) are read here.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import functools
import grp
import ipaddress
import os
import pwd
import signal
import stat
import time

from ...bpf import BTF
from ...bpf import btf as B
from ... import containers

TRACER, MAPITER, ITER, SNAPSHOTTER, PARAM = (
    "gadget_tracer_",
    "gadget_mapiter_",
    "gadget_iter_",
    "gadget_snapshotter_",
    "gadget_param_",
)
KERNEL_STACKS, USER_STACKS = "ig_kstack", "ig_ustack"
KERNEL_STACK = "gadget_kernel_stack"
USER_STACK_STRUCT, PROCESS_STRUCT = "gadget_user_stack", "gadget_process"
HIST_SLOT = "gadget_histogram_slot__"
# the gadget library's own maps (include/gadget/*.h): not results
MACHINERY = {
    "gadget_heap": "the gadget library's scratch buffer",
    "gadget_mntns_filter_map": "the gadget library's container filter (its loader fills it)",
    "gadget_sockets": "the socket enricher's table (its loader fills it)",
    "ig_build_id": "the gadget library's build ids of user stacks",
    "bufs": "the gadget library's scratch buffers",
    KERNEL_STACKS: "the gadget's kernel stacks (shown where their ids are)",
    USER_STACKS: "the gadget's user stacks (shown where their ids are)",
}
LOST = "_lost_samples"


@dataclasses.dataclass(frozen=True)
class Iterator:
    name: str
    struct: str
    programs: tuple[str, ...]


@dataclasses.dataclass
class Gadget:
    """What an object's markers declare. ``tracers``: event map -> struct;
    ``mapiters``: map -> the result's name; ``iterators``: program -> its
    Iterator; ``params``: globals that are parameters, in declaration order."""

    tracers: dict[str, str] = dataclasses.field(default_factory=dict)
    mapiters: dict[str, str] = dataclasses.field(default_factory=dict)
    iterators: dict[str, Iterator] = dataclasses.field(default_factory=dict)
    params: list[str] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.tracers or self.mapiters or self.iterators or self.params)

    def machinery(self, maps: list[str]) -> dict[str, str]:
        """Of ``maps``, those that are the gadget library's machinery -> why not shown."""
        out = {m: why for m, why in MACHINERY.items() if m in maps and m not in self.mapiters}
        for m in maps:
            if m.endswith(LOST) and m[: -len(LOST)] in maps:
                out[m] = f"records of {m[: -len(LOST)]} the gadget could not send (said at exit)"
            elif m.startswith(("otel_", "tmp_")) and m not in self.mapiters:
                out[m] = "the gadget library's scratch state"
        return out


def markers(btf) -> Gadget:
    """The markers among the object's global variables (``.bss`` and ``.data``,
    where clang puts unused pointers); an empty Gadget when there is none."""
    g = Gadget()
    for section in (".bss", ".data", ".rodata"):
        for name, _, _, _ in btf.variables(section, static=False):
            _marker(g, name)
    return g


def _marker(g: Gadget, name: str) -> None:
    if name.startswith(TRACER):
        parts = name[len(TRACER) :].split("___")
        if len(parts) == 3:
            g.tracers[parts[1]] = parts[2]
    elif name.startswith(MAPITER):
        parts = name[len(MAPITER) :].split("___")
        if len(parts) == 2:
            g.mapiters[parts[1]] = parts[0]
    elif name.startswith((ITER, SNAPSHOTTER)):
        parts = name.split("_", 2)[2].split("___")
        if len(parts) >= 3:
            it = Iterator(parts[0], parts[1], tuple(parts[2:]))
            g.iterators.update({p: it for p in it.programs})
    elif name.startswith(PARAM):
        g.params.append(name[len(PARAM) :])


# -- types known by name ---------------------------------------------------------


def typedef(types, tid: int) -> str:
    """The name of the first ``gadget_*`` typedef (or struct) on type ``tid``'s
    chain of typedefs and qualifiers; "" when there is none (or ``types`` is
    DWARF's, which keeps no gadget's names)."""
    for _ in range(B.MAX_CHAIN):
        if not tid:
            return ""
        kind, name = types.kind(tid), types.name(tid)
        if name.startswith("gadget_") and kind in (B.TYPEDEF, B.STRUCT):
            return name
        if kind not in (B.TYPEDEF, B.CONST, B.VOLATILE, B.RESTRICT):
            return ""
        tid = types.pointee(tid)
    return ""


def hist_slots_member(types, tid: int) -> str | None:
    """The member of struct ``tid`` that is an array of
    ``gadget_histogram_slot__*``: one log2 histogram; None when it has none."""
    tid = types.resolve(tid) if tid else 0
    if not tid or types.kind(tid) != B.STRUCT:
        return None
    for name, mtid, _, bits in types.members(tid):
        mtid = types.resolve(mtid)
        if (
            not bits
            and types.kind(mtid) == B.ARRAY
            and typedef(types, types.array(mtid)[0]).startswith(HIST_SLOT)
        ):
            return name
    return None


def columns(types, tid: int) -> list[tuple[str, tuple[str, ...], int]]:
    """How a table lays out struct ``tid``'s records, as Inspektor Gadget's
    loader does: (column name, the path of members to its value, the
    member's type) per column. A ``struct gadget_process`` member becomes
    its members' columns (comm, pid, tid, ``container`` for its mount
    namespace, uid, gid, and the parent's as pcomm, ppid, ptid); an
    ``X_raw`` member of a type the loader formats is the column ``X``.
    The records keep the struct's own shape."""
    out: list[tuple[str, tuple[str, ...], int]] = []
    for name, mtid, _, _ in types.fields(types.resolve(tid)):
        if typedef(types, mtid) != PROCESS_STRUCT:
            out.append((shown_name(types, name, mtid), (name,), mtid))
            continue
        for sub, stid, _, _ in types.members(types.resolve(mtid)):
            rid = types.resolve(stid)
            if types.kind(rid) == B.STRUCT:
                prefix = "p" if sub == "parent" else ""
                out += [(prefix + leaf, (name, sub, leaf), ltid) for leaf, ltid, _, _ in types.members(rid)]
            else:
                out.append(("container" if sub == "mntns_id" else sub, (name, sub), stid))
    return out


def shown_name(types, name: str, tid: int) -> str:
    """``X`` for a member ``X_raw`` of a type the loader formats (its raw
    number is shown readable under the plain name), else ``name``."""
    if name.endswith("_raw") and typedef(types, tid):
        return name[: -len("_raw")]
    return name


def formatter(kind: str, mntns=None):
    """How a number of gadget type ``kind`` is shown, or None."""
    if kind == "gadget_timestamp":
        return wall_clock
    if kind == "gadget_errno":
        return lambda v: errno.errorcode.get(v, f"error#{v}") if v else ""
    if kind == "gadget_signal":
        return _signal_name
    if kind == "gadget_uid":
        return _user
    if kind == "gadget_gid":
        return _group
    if kind == "gadget_file_mode":
        return lambda v: stat.filemode(v if stat.S_IFMT(v) else v | stat.S_IFREG) if v else ""
    if kind == "gadget_file_flags":
        return file_flags
    if kind == "gadget_mntns_id" and mntns is not None:
        return mntns
    if kind in ("gadget_l3endpoint_t", "gadget_l4endpoint_t"):
        return endpoint
    return None


def endpoint(rec) -> str:
    """A ``struct gadget_l3endpoint_t`` or ``gadget_l4endpoint_t`` as
    ``127.0.0.1`` or ``127.0.0.1:8080`` (``[::1]:8080``)."""
    raw = bytes(rec.addr_raw) if isinstance(rec.addr_raw, (bytes, bytearray)) else b""
    if rec.version not in (4, 6) or len(raw) < 16:
        return ""
    address = ipaddress.ip_address(raw[:4] if rec.version == 4 else raw[:16])
    port = getattr(rec, "port", None)
    if port is None:
        return str(address)
    return f"{address}:{port}" if rec.version == 4 else f"[{address}]:{port}"


_BOOT: list[int] = []  # wall-clock ns at boot, read once


def wall_clock(ns: int) -> str:
    """A ``bpf_ktime_get_boot_ns()`` value as the local wall-clock time it was."""
    if not ns:
        return ""
    if not _BOOT:
        _BOOT.append(time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME))
    when = datetime.datetime.fromtimestamp((_BOOT[0] + ns) / 1e9)
    return when.isoformat(timespec="microseconds")


def _signal_name(v: int) -> str:
    try:
        return signal.Signals(v).name
    except ValueError:
        return f"signal#{v}"


# cached: each look-up reads /etc/passwd, which a gadget tracing opens would see
@functools.lru_cache(maxsize=1024)
def _user(uid: int):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return uid


@functools.lru_cache(maxsize=1024)
def _group(gid: int):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return gid


# the kernel's O_LARGEFILE, which Python's os gives as 0 on 64-bit machines
_LARGEFILE = {"x86_64": 0o100000, "aarch64": 0o400000}.get(os.uname().machine, 0)
_ACCESS = {os.O_RDONLY: "O_RDONLY", os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}
_FLAGS = [
    (getattr(os, n), n)
    for n in (
        "O_CREAT",
        "O_EXCL",
        "O_NOCTTY",
        "O_TRUNC",
        "O_APPEND",
        "O_NONBLOCK",
        "O_DSYNC",
        "O_ASYNC",
        "O_DIRECT",
        "O_LARGEFILE",
        "O_DIRECTORY",
        "O_NOFOLLOW",
        "O_NOATIME",
        "O_CLOEXEC",
        "O_SYNC",
        "O_PATH",
        "O_TMPFILE",
    )
    if hasattr(os, n)
]


def file_flags(v: int) -> str:
    """open(2) flags by name: ``O_RDONLY|O_CLOEXEC``."""
    names = [_ACCESS.get(v & os.O_ACCMODE, f"{v & os.O_ACCMODE:#o}")]
    rest = v & ~os.O_ACCMODE
    for bit, name in _FLAGS + [(_LARGEFILE, "O_LARGEFILE")]:
        if bit and rest & bit == bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(f"{rest:#o}")
    return "|".join(names)


# -- mount namespaces and their containers ------------------------------------------


class MountNamespaces:
    """A mount namespace's inode -> the container it is one of
    (``podman:f7dcb501c860``, as ``pyrunq top`` names a cgroup's container),
    "host" for the first process's (or, out of reach, pyrunq's), else the inode. Found from the processes
    that live in it (``/proc/PID/ns/mnt``, then that process's cgroup), read
    again when an inode is not known: at once for a new one (a container
    that just started), at most once a second for one that a scan missed."""

    RESCAN = 1.0

    def __init__(self, proc: str = "/proc"):
        self.proc = proc
        self._names: dict[int, str] = {}
        self._missed: dict[int, float] = {}  # inode -> when a scan last missed it

    def __call__(self, inode: int):
        if not inode:  # none read (an exiting task has no namespaces)
            return ""
        if (
            inode not in self._names
            and time.monotonic() - self._missed.get(inode, -self.RESCAN) >= self.RESCAN
        ):
            self._scan()
            if inode not in self._names:
                if len(self._missed) >= 4096:  # bounded: at worst, a scan more
                    self._missed.clear()
                self._missed[inode] = time.monotonic()
        return self._names.get(inode, inode)

    def _scan(self) -> None:
        host = _mntns(f"{self.proc}/1") or _mntns(f"{self.proc}/self")  # pid 1's may be out of reach
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            inode = _mntns(entry.path)
            if inode is None or inode in self._names:
                continue
            self._names[inode] = "host" if inode == host else _container(entry.path) or str(inode)


def _mntns(path: str) -> int | None:
    try:
        link = os.readlink(f"{path}/ns/mnt")  # "mnt:[4026531840]"
    except OSError:
        return None
    return int(link[link.index("[") + 1 : -1])


def _container(path: str) -> str:
    """The container a process's cgroup v2 path names, as ``engine:id12``; "" if none."""
    try:
        with open(f"{path}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        if line.startswith("0::"):
            found = containers.parse(line[3:])
            if found["container_id"]:
                return f"{found['runtime'] or 'container'}:{found['container_id'][:12]}"
    return ""


# -- the socket enricher's type ------------------------------------------------------

SOCKET_VALUE = "gadget_socket_value"
_COPIED = (B.INT, B.ARRAY, B.TYPEDEF, B.CONST, B.VOLATILE, B.STRUCT, B.UNION)


def socket_enricher_btf(btf) -> bytes | None:
    """The kernel's BTF with ``struct gadget_socket_value`` added as the
    object declares it, when the object reads one (its network gadgets look
    sockets up in the socket enricher's map with CO-RE, and Inspektor
    Gadget's loader adds that type to the kernel's); None when it does not.
    The enricher's map stays empty here: the gadgets' records then carry no
    process, as theirs do for a socket the enricher does not know."""
    try:
        tid = btf.find(SOCKET_VALUE)
    except KeyError:
        return None
    kernel = BTF.kernel()
    try:
        kernel.find(SOCKET_VALUE)
        return None  # the kernel has it already
    except KeyError:
        pass
    _copy(btf, tid, kernel, {})
    return kernel.raw()


def _copy(src, tid: int, dst, done: dict[int, int]) -> int:
    """Type ``tid`` of ``src`` added to ``dst`` (integers, arrays, typedefs,
    qualifiers, structs and unions of those), its id there."""
    if not tid:
        return 0
    if tid in done:
        return done[tid]
    kind, name = src.kind(tid), src.name(tid)
    if kind not in _COPIED:
        raise ValueError(f"{name or 'a type'} of kind {kind} is not copied")
    if kind == B.INT:
        size, signed, is_bool, _ = src.int_info(tid)
        out = dst.add_int(name, size, signed, is_bool)
    elif kind == B.ARRAY:
        elem, n = src.array(tid)
        out = dst.add_array(_copy(src, elem, dst, done), n)
    elif kind in (B.TYPEDEF, B.CONST, B.VOLATILE):
        out = dst.add_ref(kind, _copy(src, src.pointee(tid), dst, done), name)
    else:
        members = [(m, _copy(src, t, dst, done), off, bits) for m, t, off, bits in src.members(tid)]
        out = dst.add_struct(kind, name, src.size(tid), members)
    done[tid] = out
    return out
