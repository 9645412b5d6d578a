"""Where programs go that libbpf cannot attach by their section alone:
uprobe and USDT programs whose section names no target (the caller's
``BINARY:FUNCTION`` and ``BINARY:PROVIDER:NAME``), or names a library
without a path (``SEC("uprobe/libssl:SSL_read")``, as Inspektor Gadget's
loader reads them), cgroup programs (the caller's cgroup v2 directory),
``SEC("perf_event/type=T,config=C,...")`` programs (the perf event their
section names, as ebpf_exporter reads it), and socket filters (``SEC("socket")``,
Inspektor Gadget's ``socket1``...: a packet socket of every interface, or of
those the caller names); checked and resolved before load."""

from __future__ import annotations

import os
import socket
from typing import NamedTuple

from ... import cgroup as cgroups
from ...bpf import BPFObject, Program
from ...errors import UsageError
from ...symbols import Target, find_library, resolve_function

# The parameters UsageErrors name (``UsageError.param``), in the Python API's
# words; the CLI says its flags (--uprobe, --usdt...) instead.
UPROBE = "uprobe"
USDT = "usdt"
CGROUP = "cgroup"
PERF_EVENTS = "perf_events"
SOCKET = "sockets"
SOCKET_PREFIX = "socket"  # socket, socket1... (Inspektor Gadget's loader reads any such name so)
# libbpf's names of the program types that attach to a cgroup
CGROUP_TYPES = {
    "cgroup_skb",
    "cgroup_sock",
    "cgroup_sock_addr",
    "sock_ops",
    "cgroup_sockopt",
    "cgroup_sysctl",
    "cgroup_device",
}
PERF_EVENT_PREFIX = "perf_event/"
# the items of SEC("perf_event/type=T,config=C,...") -> perf_event_attr's field
# (ebpf_exporter reads type, config and frequency; a period samples every N events)
PERF_EVENT_ITEMS = {
    "type": "type",
    "config": "config",
    "frequency": "frequency",
    "freq": "frequency",
    "sample_freq": "frequency",
    "sample_period": "period",
    "period": "period",
}


def uprobe_targets(obj: BPFObject, specs: dict) -> dict[str, list[Target]]:
    """Program name -> where its uprobes go (one program may go to several
    functions, as gethostlatency's to getaddrinfo, gethostbyname and
    gethostbyname2), from ``specs``: program -> "BINARY:FUNCTION" or a list
    of them; checked before load."""
    return _targets(obj, specs, UPROBE, is_uprobe, resolve_function)


def library_targets(obj: BPFObject, given: dict) -> tuple[dict[str, list[Target]], dict[str, str]]:
    """The uprobes whose section names a library without a path
    (``SEC("uprobe/libssl:SSL_read")``, Inspektor Gadget's spelling) and
    that ``given`` does not place: program -> [its target], and program ->
    why it has none (no such library, or no such function in it)."""
    targets, problems = {}, {}
    for prog in obj.programs.values():
        library = _library_spec(prog)
        if library and prog.name not in given and prog.autoload:
            try:
                targets[prog.name] = [resolve_function(library)]
            except UsageError as e:
                problems[prog.name] = f"{e}; give it a target with --uprobe {prog.name}=BINARY:FUNCTION"
    return targets, problems


def _library_spec(prog: Program) -> str | None:
    """``libssl:SSL_read`` of ``SEC("uprobe/libssl:SSL_read")``: a library
    named without a path, as Inspektor Gadget's loader takes it (libbpf
    looks a name without ".so" up on PATH)."""
    if not is_uprobe(prog) or "/" not in prog.section:
        return None
    binary, sep, function = prog.section.split("/", 1)[1].rpartition(":")
    if not sep or not binary or not function or os.sep in binary or ".so" in binary:
        return None
    return f"{binary}:{function}"


def _targets(obj: BPFObject, specs: dict, kind: str, is_kind, resolve) -> dict[str, list]:
    """Program name -> its targets, each spec made one by ``resolve``; the
    programs must exist and be of ``kind`` (``is_kind``)."""
    targets: dict[str, list] = {}
    for name, given in specs.items():
        for spec in [given] if isinstance(given, str) else given:
            what = f"{name}={spec}"
            if name not in obj.programs:
                known = ", ".join(p.name for p in obj.programs.values() if is_kind(p)) or "none"
                message = f"{what}: no program {name!r} in {obj.name} ({kind} programs: {known})"
                raise UsageError(message, kind)
            if not is_kind(obj.programs[name]):
                section = obj.programs[name].section
                raise UsageError(f'{what}: program {name} (SEC("{section}")) is no {kind}', kind)
            try:
                targets.setdefault(name, []).append(resolve(spec))
            except UsageError as e:
                raise UsageError(f"{what}: {e}", kind) from None
    return targets


def is_uprobe(prog: Program) -> bool:
    return prog.section.split("/", 1)[0] in ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s")


def is_usdt(prog: Program) -> bool:
    return prog.section.split("/", 1)[0] in ("usdt", "usdt.s")


class UsdtTarget(NamedTuple):
    """A USDT probe: the file (a path) and the probe's provider and name."""

    path: str
    provider: str
    name: str


def usdt_targets(obj: BPFObject, specs: dict) -> dict[str, list[UsdtTarget]]:
    """Program name -> the USDT probes it goes to, from ``specs``: program ->
    "BINARY:PROVIDER:NAME" (BINARY a path, or a library name) or a list of
    them; checked before load."""
    return _targets(obj, specs, USDT, is_usdt, _usdt_target)


def _usdt_target(spec: str) -> UsdtTarget:
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise UsageError("expected BINARY:PROVIDER:NAME")
    binary, provider, name = parts
    path = binary if os.sep in binary else find_library(None, binary)
    if path is None or not os.path.isfile(path):
        raise UsageError(f"{binary}: no such binary or library")
    problem = not_elf(path, "usdt")
    if problem:
        raise UsageError(problem)
    return UsdtTarget(os.path.realpath(path), provider, name)


def is_cgroup(prog: Program) -> bool:
    """Whether a program attaches to a cgroup (cgroup_skb/egress, sockops...)."""
    return prog.type_name in CGROUP_TYPES


def check_cgroup(obj: BPFObject, path: str | None) -> str | None:
    """The cgroup v2 directory cgroup programs attach to, checked before load:
    it must be one, and the object must have such a program."""
    if path is None:
        return None
    if not any(is_cgroup(p) for p in obj.programs.values()):
        raise UsageError(
            f"{path}: {obj.name} has no cgroup program (cgroup_skb, sockops, cgroup/...)", CGROUP
        )
    try:
        return cgroups.resolve(path)[0]
    except UsageError as e:
        raise UsageError(f"{path}: {e}", CGROUP) from None


class PerfEvent(NamedTuple):
    """The perf event a ``SEC("perf_event/type=T,config=C,...")`` names, and how
    often it samples: ``frequency`` times a second or every ``period`` events
    (neither: the caller's frequency)."""

    type: int
    config: int
    frequency: int | None = None
    period: int | None = None


def perf_event_of(section: str) -> PerfEvent | None:
    """The perf event a section names (``perf_event/type=1,config=2,frequency=99``,
    as ebpf_exporter writes them), None when it names none (``perf_event``, or
    ``perf_event/NAME``); ValueError, saying why, when it names one badly."""
    if not section.startswith(PERF_EVENT_PREFIX) or "=" not in section:
        return None
    return _perf_event(section[len(PERF_EVENT_PREFIX) :], "its section")


# perf_event_open(2)'s generic events, by the names perf(1) gives them: (type, config)
PERF_EVENT_NAMES = {
    "cpu-cycles": (0, 0),
    "instructions": (0, 1),
    "cache-references": (0, 2),
    "cache-misses": (0, 3),
    "branch-instructions": (0, 4),
    "branch-misses": (0, 5),
    "cpu-clock": (1, 0),
    "task-clock": (1, 1),
    "page-faults": (1, 2),
    "context-switches": (1, 3),
    "cpu-migrations": (1, 4),
    "minor-faults": (1, 5),
    "major-faults": (1, 6),
}


def perf_event_named(text: str) -> PerfEvent:
    """The perf event a caller names for a program whose section names none
    (``SEC("perf_event")``: its own user space picks one): ``NAME[,...]`` by
    perf(1)'s name (``cache-misses``, ``page-faults``...) or ``type=T,config=C``,
    then ``frequency=F`` or ``period=N``; ValueError, saying why."""
    name, _, rest = text.partition(",")
    if name in PERF_EVENT_NAMES:
        kind, config = PERF_EVENT_NAMES[name]
        text = f"type={kind},config={config}" + (f",{rest}" if rest else "")
    elif "=" not in name:
        raise ValueError(f"no perf event {name!r} (knows: {', '.join(PERF_EVENT_NAMES)}; or type=T,config=C)")
    return _perf_event(text, "it")


def _perf_event(items: str, where: str) -> PerfEvent:
    """``type=T,config=C[,frequency=F|period=N]``; ``where`` names the text in messages."""
    fields: dict[str, int] = {}
    for item in items.split(","):
        key, sep, text = item.partition("=")
        if not sep or key not in PERF_EVENT_ITEMS:
            raise ValueError(f"unknown item {item!r} in {where} (knows: {', '.join(PERF_EVENT_ITEMS)})")
        try:
            fields[PERF_EVENT_ITEMS[key]] = int(text, 0)
        except ValueError:
            raise ValueError(f"{key}={text} in {where} is not an integer") from None
    if "type" not in fields or "config" not in fields:
        raise ValueError(f"{where} names no perf event (type=T,config=C)")
    if "frequency" in fields and "period" in fields:
        raise ValueError(f"{where} gives both a frequency and a period")
    if any(fields.get(k) == 0 for k in ("frequency", "period")):
        raise ValueError(f"{where} samples at 0 (frequency or period)")
    return PerfEvent(**fields)


def perf_event_for(program: str, spec) -> PerfEvent:
    """The perf event the caller names for ``program``: a PerfEvent, or its
    text (``perf_event_named``); a UsageError about ``perf_events`` if bad."""
    if isinstance(spec, PerfEvent):
        return spec
    try:
        return perf_event_named(str(spec))
    except ValueError as e:
        raise UsageError(f"{program}={spec}: {e}", PERF_EVENTS) from None


def check_perf_events(obj: BPFObject, events: dict) -> None:
    """A UsageError unless each program ``events`` names is a perf_event
    program of ``obj`` (the event named replaces its section's, if any)."""
    for name in events:
        prog = obj.programs.get(name)
        if prog is None or prog.type_name != "perf_event":
            known = ", ".join(p.name for p in obj.programs.values() if p.type_name == "perf_event") or "none"
            message = f"{name}: no perf_event program {name!r} in {obj.name} (has: {known})"
            raise UsageError(message, PERF_EVENTS)


def set_section_types(obj: BPFObject) -> None:
    """Before load: programs whose section libbpf does not know but their
    loaders do get the type those give them: ``perf_event/...`` is a perf_event
    program (libbpf 1.1 knows only a bare ``perf_event``), ``socket1`` (any
    name that starts with ``socket``, as Inspektor Gadget's loader reads it)
    a socket filter (libbpf knows only a bare ``socket``)."""
    for p in obj.programs.values():
        if p.section.startswith(PERF_EVENT_PREFIX) and p.type_name != "perf_event":
            p.type_name = "perf_event"
        if p.section.startswith(SOCKET_PREFIX) and p.type_name != "socket_filter":
            p.type_name = "socket_filter"


def is_socket_filter(prog: Program) -> bool:
    """Whether a program filters the packets of a socket (``SEC("socket")``)."""
    return prog.type_name == "socket_filter"


def check_sockets(obj: BPFObject, interfaces) -> list[str]:
    """The network interfaces socket filters attach to, checked before load:
    each must exist (in this network namespace), and the object must have
    such a program. ``interfaces``: names, or one text of names separated by
    commas; none: every interface (an empty list)."""
    names = interfaces.split(",") if isinstance(interfaces, str) else list(interfaces or ())
    names = [n.strip() for part in names for n in part.split(",")]
    if not names:
        return []
    given = ",".join(names)
    if not any(is_socket_filter(p) for p in obj.programs.values()):
        raise UsageError(f'{given}: {obj.name} has no socket filter program (SEC("socket"))', SOCKET)
    for name in names:
        if not name:
            raise UsageError(f"{given}: an empty name is no network interface", SOCKET)
        try:
            socket.if_nametoindex(name)
        except (OSError, ValueError):  # no such interface; a name too long, or with a NUL
            known = ", ".join(n for _, n in socket.if_nameindex())
            raise UsageError(f"{name}: no such network interface (has: {known})", SOCKET) from None
    return list(dict.fromkeys(names))


def not_elf(path: str, kind: str) -> str | None:
    """Why ``path`` cannot hold a ``kind`` probe ("usdt", "uprobe") when it is
    not an ELF file (a shell script shim on PATH, as some distributions'
    python3 is), else None; libbpf would only say "unrecognized ELF kind"
    (Bad file descriptor)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None  # libbpf says what is wrong with it
    if head == b"\x7fELF":
        return None
    return f"{kind}: {path} is not an ELF file" + (" (a script?)" if head.startswith(b"#!") else "")


def libbpf_path(binary: str) -> str | None:
    """The file libbpf attaches a uprobe or USDT section's BINARY to: a path
    as it is; a library name (``libc.so.6``) in LD_LIBRARY_PATH, /usr/lib64
    or /usr/lib; any other name on PATH (as libbpf's resolve_full_path)."""
    if "/" in binary:
        return binary
    where = (
        os.environ.get("LD_LIBRARY_PATH", "") + ":/usr/lib64:/usr/lib"
        if ".so" in binary
        else os.environ.get("PATH", "")
    )
    for directory in filter(None, where.split(":")):
        path = os.path.join(directory, binary)
        if os.access(path, os.R_OK):
            return path
    return None
