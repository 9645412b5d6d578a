"""Program and Link: one program of an object, and an attachment of it."""

from __future__ import annotations

import errno
import os
import socket

from .. import libbpf
from ..errors import UPROBE_PRIVILEGE_HINT, BPFPermissionError, StateError, from_errno
from ..libbpf import ffi, lib
from .states import LOADED, OPEN

TYPE_CHECKING = False  # see globals.py
if TYPE_CHECKING:
    from .object import BPFObject


class Link:
    """An attached program. ``close()`` detaches it."""

    def __init__(self, ptr, program: "Program"):
        self._ptr, self.program = ptr, program

    def fileno(self) -> int:
        """The link's fd."""
        if self._ptr is None:
            raise StateError(f"link of program {self.program.name!r} is closed")
        return lib.bpf_link__fd(self._ptr)

    def read_iter(self) -> bytes:
        """What an iterator (an ``iter/*`` program's link) writes, once through:
        a new reader (``bpf_iter_create``) read to its end."""
        name = self.program.name
        fd = libbpf.check(lib.bpf_iter_create(self.fileno()), "read iterator", name)
        chunks: list[bytes] = []
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        except OSError as e:
            raise from_errno(e.errno or errno.EIO, "read iterator", name) from None
        finally:
            os.close(fd)

    def close(self) -> None:
        """Detach; twice is fine."""
        if self._ptr is not None:
            lib.bpf_link__destroy(self._ptr)  # a perf event's link closes its fd too
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SocketLink(Link):
    """A socket filter attached to a raw packet socket that this link owns:
    ``close()`` closes the socket, and the kernel drops the program from it
    (nothing is left attached)."""

    def __init__(self, sock: socket.socket, program: "Program", interface: str | None):
        super().__init__(sock, program)
        self.interface = interface  # None: every interface

    def fileno(self) -> int:
        """The socket's fd."""
        if self._ptr is None:
            raise StateError(f"socket of program {self.program.name!r} is closed")
        return self._ptr.fileno()

    def read_iter(self) -> bytes:
        raise StateError(f"program {self.program.name!r} is a socket filter, not an iterator")

    def close(self) -> None:
        """Close the socket (the program goes with it); twice is fine."""
        if self._ptr is not None:
            self._ptr.close()
            self._ptr = None


class Program:
    """One program of an object: its name, section and type; loaded with the
    object (``autoload``), attached by its section or to a target."""

    def __init__(self, ptr, obj: "BPFObject"):
        self._ptr, self._obj = ptr, obj
        self._link: Link | None = None  # attach()'s, by section: one at a time
        self.name = libbpf.name(lib.bpf_program__name(ptr))
        self.section = libbpf.name(lib.bpf_program__section_name(ptr))

    def __repr__(self):
        return f"<Program {self.name} SEC({self.section!r})>"

    @property
    def type_name(self) -> str:
        """libbpf's name of the program type: "raw_tracepoint", "kprobe"..."""
        name = lib.libbpf_bpf_prog_type_str(lib.bpf_program__type(self._ptr))
        return ffi.string(name).decode() if name != ffi.NULL else "unknown"

    @type_name.setter
    def type_name(self, name: str) -> None:
        """Set the program type before load, by libbpf's name ("perf_event"...):
        for a section libbpf does not know, which a loader reads itself
        (``SEC("perf_event/type=1,config=2")``)."""
        self._obj._require(OPEN, f"set the type of program {self.name!r}")
        libbpf.check(lib.bpf_program__set_type(self._ptr, prog_type(name)), "set type of program", self.name)

    @property
    def insn_count(self) -> int:
        """BPF instructions in the program (after relocation once loaded)."""
        return lib.bpf_program__insn_cnt(self._ptr)

    @property
    def autoload(self) -> bool:
        """Whether ``load()`` loads this program (set it before load)."""
        return bool(lib.bpf_program__autoload(self._ptr))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        self._obj._require(OPEN, f"set autoload of program {self.name!r}")
        libbpf.check(lib.bpf_program__set_autoload(self._ptr, bool(value)), "set autoload", self.name)

    def fileno(self) -> int:
        """The loaded program's fd."""
        self._obj._require(LOADED, f"get the fd of program {self.name!r}")
        return lib.bpf_program__fd(self._ptr)

    def stats(self) -> tuple[int, int]:
        """(runs, total run time in ns) since load; both stay 0 unless
        ``kernel.bpf_stats_enabled`` is 1 (the kernel counts nothing else)."""
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        libbpf.check(lib.bpf_obj_get_info_by_fd(self.fileno(), info, size), "get info of program", self.name)
        return info.run_cnt, info.run_time_ns

    def attach(self) -> Link:
        """Attach by section name; the object owns the link (closed with it).
        Attached so already (and not detached since): that same link."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        if self._link is not None and self._link._ptr is not None:
            return self._link  # a second link would run the program twice per event
        libbpf.reset_warnings()
        self._link = self._own(lib.bpf_program__attach(self._ptr), "attach program")
        return self._link

    def attach_uprobe(self, binary: str, offset: int, pid: int = -1, retprobe: bool = False) -> Link:
        """Attach to the instruction at file ``offset`` of ``binary`` (an ELF
        path), in process ``pid`` only, or in every process (-1); ``retprobe``:
        at the return of the function that starts there."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        opts = ffi.new("struct bpf_uprobe_opts *")
        opts.sz = ffi.sizeof("struct bpf_uprobe_opts")
        opts.retprobe = retprobe
        libbpf.reset_warnings()
        what = f"attach {'uretprobe' if retprobe else 'uprobe'} {binary}+{offset:#x} for"
        try:
            return self._own(
                lib.bpf_program__attach_uprobe_opts(self._ptr, pid, os.fsencode(binary), offset, opts), what
            )
        except BPFPermissionError as e:  # the uprobe PMU wants more than CAP_PERFMON
            raise BPFPermissionError(
                e.errno or errno.EPERM, what, self.name, UPROBE_PRIVILEGE_HINT, e.log
            ) from None

    def attach_usdt(self, binary: str, provider: str, name: str, pid: int = -1) -> Link:
        """Attach to the USDT probe ``provider:name`` of ``binary`` (an ELF
        path), in process ``pid`` only, or in every process (-1). libbpf
        reads the probe's notes and its arguments' locations."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        opts = ffi.new("struct bpf_usdt_opts *")
        opts.sz = ffi.sizeof("struct bpf_usdt_opts")
        libbpf.reset_warnings()
        what = f"attach usdt {binary}:{provider}:{name} for"
        ptr = lib.bpf_program__attach_usdt(
            self._ptr, pid, os.fsencode(binary), provider.encode(), name.encode(), opts
        )
        try:
            return self._own(ptr, what)
        except BPFPermissionError as e:  # uprobes underneath: the uprobe PMU wants more than CAP_PERFMON
            raise BPFPermissionError(
                e.errno or errno.EPERM, what, self.name, UPROBE_PRIVILEGE_HINT, e.log
            ) from None

    def attach_iter(self) -> Link:
        """Attach an ``iter/*`` program; ``Link.read_iter()`` then reads it."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        libbpf.reset_warnings()
        return self._own(lib.bpf_program__attach_iter(self._ptr, ffi.NULL), "attach iterator")

    def attach_perf_event(self, fd: int) -> Link:
        """Attach to the perf event ``fd``, which the link takes over: closing
        the link closes it (and if attaching fails, it is closed here)."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        libbpf.reset_warnings()
        ptr = lib.bpf_program__attach_perf_event(self._ptr, fd)
        if ptr == ffi.NULL:
            err = ffi.errno or errno.EINVAL
            os.close(fd)
            libbpf.check(-err, "attach to a perf event", self.name)
        return self._own(ptr, "attach to a perf event")

    def attach_cpu_clock(self, frequency: int, cpus=None) -> list[Link]:
        """Attach a ``SEC("perf_event")`` program to the software CPU clock of
        every online CPU (or of ``cpus``), sampling whatever runs there
        ``frequency`` times a second, as profile and runqlen do: one Link per
        CPU, owned by the object. All or nothing: on a failure the links made
        so far are closed."""
        return self.attach_perf_events(
            PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, frequency=frequency, cpus=cpus
        )

    def attach_perf_events(
        self,
        event_type: int,
        config: int,
        frequency: int | None = None,
        period: int | None = None,
        cpus=None,
    ) -> list[Link]:
        """Attach a perf_event program to perf event ``event_type``/``config``
        (``perf_event_open(2)``'s) on every online CPU (or ``cpus``), for every
        task, sampling ``frequency`` times a second or every ``period``
        events (one of them): one Link per CPU, owned by the object. All or
        nothing: on a failure the links made so far are closed."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        if (frequency is None) == (period is None):
            raise ValueError("give a sampling frequency or a period, not both")
        sample = frequency if period is None else period
        what = f"open perf event type={event_type},config={config} " + (
            f"at {frequency} Hz" if period is None else f"every {period} events"
        )

        def on(cpu: int) -> Link:
            fd = libbpf.check(
                lib.pyrunq_perf_event_open(event_type, config, cpu, sample, period is None),
                f"{what} on CPU {cpu} for",
                self.name,
            )
            return self.attach_perf_event(fd)

        return self._all_or_none(on, online_cpus() if cpus is None else cpus)

    def attach_cgroup(self, path: str) -> Link:
        """Attach a cgroup program (``cgroup_skb/egress``, ``sockops``,
        ``cgroup/sock_create``...) to the cgroup v2 directory ``path``: it runs
        for that cgroup's processes and those of the cgroups below. The link
        holds the cgroup; closing it detaches."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        what = f"attach to cgroup {path}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise from_errno(e.errno or errno.EINVAL, what, self.name) from None
        try:
            libbpf.reset_warnings()
            return self._own(lib.bpf_program__attach_cgroup(self._ptr, fd), what)
        finally:
            os.close(fd)

    def attach_socket(self, interface: str | None = None) -> SocketLink:
        """Attach a socket filter (``SEC("socket")``) to a raw packet socket
        of its own (AF_PACKET, every protocol), as tcpdump's would be: of
        ``interface`` (a name: "lo", "eth0"), or of every interface of this
        network namespace (None). It sees every packet received or sent
        there (a packet on the loopback twice: sent, then received), before
        any other filter. The link owns the socket; closing it detaches."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        where = interface or "every interface"
        what = f"attach to a packet socket of {where}"
        try:
            # of one interface: a socket that receives nothing until bound, so
            # that no packet is queued before the filter is there; of every
            # interface, one that receives from its start (Python binds an
            # AF_PACKET socket only by an interface's name)
            protocol = 0 if interface else socket.htons(ETH_P_ALL)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, protocol)
        except PermissionError:  # CAP_BPF and CAP_PERFMON load it; the socket wants another
            raise BPFPermissionError(errno.EPERM, what, self.name, PACKET_SOCKET_HINT) from None
        except OSError as e:
            raise from_errno(e.errno or errno.EINVAL, what, self.name) from None
        try:
            # pyrunq never reads the socket: what the filter keeps of a packet
            # (its return value) is queued until the buffer is full, then
            # dropped. The filter runs on every packet whatever the buffer
            # holds, so the smallest buffer costs nothing and holds the least
            # memory (the kernel rounds 0 up to its minimum).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, self.fileno())
            if interface:
                sock.bind((interface, ETH_P_ALL))  # Python puts it in network order here
        except OSError as e:
            sock.close()
            raise from_errno(e.errno or errno.EINVAL, what, self.name) from None
        link = SocketLink(sock, self, interface)
        self._obj._owned.append(link)
        return link

    def attach_sockets(self, interfaces) -> list[SocketLink]:
        """``attach_socket`` for each of ``interfaces`` (names; None: every
        interface). All or nothing: on a failure the sockets made so far are
        closed."""
        return self._all_or_none(self.attach_socket, interfaces)

    def _all_or_none(self, attach, targets) -> list:
        """``attach(target)`` for each of ``targets``; on a failure the links
        made so far are closed (and no longer owned) before it is raised."""
        links: list = []
        try:
            for target in targets:
                links.append(attach(target))
        except BaseException:
            for link in links:
                link.close()
                self._obj._owned.remove(link)
            raise
        return links

    def _own(self, ptr, action: str) -> Link:
        link = Link(libbpf.check_ptr(ptr, action, self.name), self)
        self._obj._owned.append(link)
        return link


PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK = 1, 0  # perf_event_open(2)
PACKET_SOCKET_HINT = "a raw packet socket needs root, or CAP_NET_RAW"
SO_ATTACH_BPF = 50  # socket(7): <asm-generic/socket.h>, x86 and arm64 alike; Python has no name for it
ETH_P_ALL = 0x0003  # packet(7): every protocol
_PROG_TYPES: dict[str, int] = {}


def prog_type(name: str) -> int:
    """libbpf's number of a program type, by its name ("perf_event")."""
    if not _PROG_TYPES:
        for n in range(256):
            text = lib.libbpf_bpf_prog_type_str(n)
            if text == ffi.NULL:
                break
            _PROG_TYPES[ffi.string(text).decode()] = n
    if name not in _PROG_TYPES:
        raise ValueError(f"no program type {name!r} (libbpf knows: {', '.join(_PROG_TYPES)})")
    return _PROG_TYPES[name]


def online_cpus(path: str = "/sys/devices/system/cpu/online") -> list[int]:
    """The CPUs that are online now ("0-3,6" in sysfs)."""
    with open(path) as f:
        text = f.read().strip()
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus
