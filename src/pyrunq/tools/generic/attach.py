"""How each loaded program attaches, and why one did not.

``SEC("perf_event")`` programs attach to the software CPU clock of every
online CPU, ``SEC("perf_event/type=T,config=C,...")`` ones to that perf
event on every online CPU; ``iter/*`` programs attach as iterators, read as
text; uprobe and USDT programs to the targets given, cgroup programs to the
cgroup given (``targets``); socket filters to a raw packet socket of every
interface, or of each interface given; the rest by their section, as libbpf
attaches them.
"""

from __future__ import annotations

import errno
import os

from ...bpf import Link, Program
from ...errors import BPFError, NotAttached
from .targets import (
    CGROUP,
    UPROBE,
    USDT,
    UsdtTarget,
    is_cgroup,
    is_socket_filter,
    is_uprobe,
    is_usdt,
    libbpf_path,
    PerfEvent,
    not_elf,
    perf_event_of,
)
from .twins import mechanism_of

TRACEFS_HOW = "as root: mount -t tracefs nodev /sys/kernel/tracing"
CANNOT_AUTO_ATTACH = "libbpf cannot attach that section by itself"
# perf_event_open(2)'s event types
PERF_TYPES = {0: "hardware", 1: "software", 2: "tracepoint", 3: "hardware cache", 4: "raw", 5: "breakpoint"}


def is_iterator(prog: Program) -> bool:
    return prog.section.startswith(("iter/", "iter.s/"))


def attach_program(
    prog: Program,
    frequency: int,
    targets: list | None = None,
    cgroup: str | None = None,
    event: PerfEvent | None = None,
    interfaces: list[str] | None = None,
) -> list[Link]:
    """Attach one loaded program: perf_event programs to ``event`` (else the
    perf event their section names, else the CPU clock) of every CPU, iterators as iterators, a
    uprobe or a USDT program to each of ``targets`` when given (Targets,
    UsdtTargets; in every process), a cgroup program to ``cgroup`` (a cgroup
    v2 directory), a socket filter to a packet socket of each of
    ``interfaces`` (none: one of every interface), the rest by their section."""
    if targets:
        retprobe = prog.section.startswith("uretprobe")
        return [
            prog.attach_usdt(t.path, t.provider, t.name)
            if isinstance(t, UsdtTarget)
            else prog.attach_uprobe(t.path, t.offset, -1, retprobe=retprobe)
            for t in targets
        ]
    if prog.type_name == "perf_event":
        event = event or perf_event_of(prog.section)
        if event is None:
            return prog.attach_cpu_clock(frequency)
        if event.frequency is None and event.period is None:
            event = event._replace(frequency=frequency)
        return prog.attach_perf_events(event.type, event.config, event.frequency, event.period)
    if is_iterator(prog):
        return [prog.attach_iter()]
    if is_cgroup(prog) and cgroup is not None:
        return [prog.attach_cgroup(cgroup)]
    if is_socket_filter(prog):
        return list(prog.attach_sockets(interfaces or [None]))
    return [prog.attach()]


def needs_tracefs(prog: Program) -> bool:
    return mechanism_of(prog.section) == "tracepoint"


def refused_program(error: BPFError) -> tuple[str, str] | None:
    """(program, why) when the load failed for one program (the others may
    load without it), as libbpf's log says (``BPFError.program``); None for
    other failures."""
    if error.program is None:
        return None
    detail = error.detail or error.strerror
    if error.refused_by == "the verifier":
        return error.program, f"the verifier rejected it: {detail}"
    if error.refused_by == "the kernel":
        return error.program, f"the kernel refused to load it: {detail}"
    return error.program, f"libbpf could not load it: {detail}"


def not_attached(
    prog: Program, error: OSError, tracefs_missing: bool, event: PerfEvent | None = None
) -> NotAttached:
    """Why ``prog`` did not attach (to ``event``, when the caller named it),
    in a few words, and the parameter that would give it a target when that
    is what it lacks."""
    why = reason(prog, error, tracefs_missing, event)
    lacks = "give it a target" in why and (UPROBE if is_uprobe(prog) else USDT if is_usdt(prog) else None)
    if is_cgroup(prog) and "give it a cgroup" in why:
        lacks = CGROUP
    return NotAttached(prog.name, prog.section, why, lacks or None)


def reason(prog: Program, error: OSError, tracefs_missing: bool, event: PerfEvent | None = None) -> str:
    """Why ``prog`` did not attach (to ``event``, when the caller named it), in a few words."""
    if error.errno == errno.EOPNOTSUPP and prog.type_name != "perf_event":
        if is_cgroup(prog):
            return f"{CANNOT_AUTO_ATTACH}: give it a cgroup (a cgroup v2 directory) to attach to"
        if is_uprobe(prog):
            return f"{CANNOT_AUTO_ATTACH}: give it a target (BINARY:FUNCTION)"
        if is_usdt(prog):
            return f"{CANNOT_AUTO_ATTACH}: give it a target (BINARY:PROVIDER:NAME)"
        return CANNOT_AUTO_ATTACH
    text = error.strerror or str(error)
    hint = getattr(error, "hint", None)
    if hint:
        text = f"{text} ({hint})"
    if prog.type_name == "perf_event":
        event = event or perf_event_of(prog.section)
    op = str(getattr(error, "op", ""))
    if is_socket_filter(prog) and op.startswith("attach to a packet socket"):
        return f"cannot {op}: {text}"
    if event is not None and op.startswith("open perf event"):
        kind = PERF_TYPES.get(event.type, "an unknown type")
        why = f"this machine cannot open perf event type={event.type},config={event.config} ({kind}): {text}"
        if event.type in (0, 3, 4):
            why += "; a virtual machine often has no hardware counters"
        return why
    mechanism = mechanism_of(prog.section)
    target = prog.section.split("/", 1)[-1]
    kind = prog.section.split("/", 1)[0]
    probe = "usdt" if is_usdt(prog) else "uprobe" if is_uprobe(prog) else None
    binary = libbpf_path(target.split(":", 1)[0]) if probe and ":" in target else None
    problem = not_elf(binary, probe) if binary and probe else None
    if problem:
        return problem
    if error.errno == errno.EINVAL and is_uprobe(prog) and ":" not in target:  # bashreadline's
        return (
            f'libbpf attaches a uprobe by itself only from SEC("{kind}/BINARY:FUNCTION") ({text}); '
            "give it a target (BINARY:FUNCTION)"
        )
    if error.errno == errno.ENOENT and is_usdt(prog):  # libbpf found no such note in the file
        parts = target.rsplit(":", 2) if "/" in prog.section else []
        where = f" {parts[1]}:{parts[2]} in {parts[0]}" if len(parts) == 3 else ""
        return f"no such USDT probe{where} ({text})"
    if error.errno == errno.ENOENT and is_uprobe(prog) and ":" in target:
        binary, _, function = target.rpartition(":")
        why = f"no function {function} in {binary}" if os.path.exists(binary) else f"no file {binary}"
        why += f" ({text})"
        if binary.startswith("/proc/self/"):  # libbpf-bootstrap's uprobe probes its own loader
            why += ": that is pyrunq here, not the program the object was written for"
        return f"{why}; give it a target (BINARY:FUNCTION)"
    if error.errno == errno.ENOENT and mechanism == "tracepoint" and tracefs_missing:
        return "tracefs is not mounted"
    what = {
        "tracepoint": "tracepoint",
        "raw_tp": "raw tracepoint",
        "kprobe": "function",
        "kretprobe": "function",
    }.get(mechanism or "")
    if error.errno == errno.ENOENT and what:
        return f"no {what} {target} in this kernel ({text})"
    return text
