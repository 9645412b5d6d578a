"""Which programs of an object run, and how each one attaches.

Twins are programs that attach to the same point through different
mechanisms, as libbpf-tools ships them (its own user space turns all but one
off): ``tp_btf/X``, ``raw_tp/X`` (``raw_tracepoint/X``) and
``tracepoint/C/X`` (``tp/C/X``) for tracepoint X; ``fentry/F`` and
``kprobe/F``; ``fexit/F`` and ``kretprobe/F``. Of each group the best
mechanism this kernel supports loads (tp_btf > raw_tp > tracepoint,
fentry > kprobe, fexit > kretprobe); the others do not, and a ``Choice``
says which. A program this kernel cannot run at all (a tp_btf target
missing from its BTF, fentry that cannot attach, no kprobes) does not load
either, and is reported as ``NotAttached`` with the reason: one program
that cannot run must not stop the others.

``SEC("perf_event")`` programs attach to the software CPU clock of every
online CPU; ``iter/*`` programs attach as iterators, read as text.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
from typing import NamedTuple

from ...bpf import BPFObject, Link, Program, features
from ...bpf import btf as B
from ...errors import BPFError, PyrunqError, UsageError
from ...symbols import Target, find_library, resolve_function

# How messages name what the caller passed, in the Python API's words; the
# CLI puts its flags (--program, --no-program, --uprobe, --usdt) in their place.
PROGRAMS = "programs"
SKIP = "skip"
UPROBE = "uprobe"
USDT = "usdt"

# section prefix -> mechanism
MECHANISMS = {
    "tp_btf": "tp_btf",
    "raw_tp": "raw_tp",
    "raw_tracepoint": "raw_tp",
    "tracepoint": "tracepoint",
    "tp": "tracepoint",
    "fentry": "fentry",
    "kprobe": "kprobe",
    "fexit": "fexit",
    "kretprobe": "kretprobe",
}
# mechanism -> (what kind of point it attaches to, its rank there: 0 is best)
POINTS = {
    "tp_btf": ("tracepoint", 0),
    "raw_tp": ("tracepoint", 1),
    "tracepoint": ("tracepoint", 2),
    "fentry": ("entry", 0),
    "kprobe": ("entry", 1),
    "fexit": ("return", 0),
    "kretprobe": ("return", 1),
}
TRACEFS_HOW = "as root: mount -t tracefs nodev /sys/kernel/tracing"
CANNOT_AUTO_ATTACH = "libbpf cannot attach that section by itself"


class NotAttached(NamedTuple):
    """A program that does not run, and why."""

    program: str
    section: str
    reason: str


@dataclasses.dataclass
class Choice:
    """Of a group of twins, the ``chosen`` programs run and those ``over``
    which they were chosen do not, each as (name, section); ``why``: why
    better ones were passed over (empty when the best one was chosen)."""

    chosen: list[tuple[str, str]]
    over: list[tuple[str, str]]
    why: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        text = f"{_names(self.chosen)} chosen over {_names(self.over)}"
        return f"{text}: {'; '.join(self.why)}" if self.why else text


def _names(programs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} ({section})" for name, section in programs)


class NothingAttached(PyrunqError):
    """No program of the object could attach: the run has nothing to do."""

    def __init__(self, obj: str, not_attached: list[NotAttached], extra: str | None = None):
        super().__init__(obj, not_attached, extra)
        self.obj, self.not_attached, self.extra = obj, not_attached, extra

    def __str__(self) -> str:
        if not self.not_attached:
            return f"{self.obj} has no program to attach"
        why = "; ".join(f"{n.program} ({n.section}): {n.reason}" for n in self.not_attached)
        extra = f". {self.extra[:1].upper()}{self.extra[1:]}" if self.extra else ""
        return f"no program of {self.obj} could attach: {why}{extra}"


def attach_point(section: str) -> tuple[str, tuple[str, str] | None] | None:
    """(mechanism, point) of a section libbpf attaches by name, point being
    (kind, target) or None when it has no twin (``kprobe/f+0x10``);
    None for any other section."""
    prefix, _, target = section.partition("/")
    mechanism = MECHANISMS.get(prefix)
    if mechanism is None or not target:
        return None
    kind = POINTS[mechanism][0]
    if mechanism == "tracepoint":
        category, _, name = target.partition("/")
        return mechanism, (kind, name) if category and name and "/" not in name else None
    if mechanism in ("kprobe", "kretprobe") and "+" in target:
        return mechanism, None
    return mechanism, (kind, target)


def mechanism_of(section: str) -> str | None:
    point = attach_point(section)
    return point[0] if point else None


def target_of(section: str) -> str:
    """The tracepoint or function a section names (``tp/sched/X``: ``X``)."""
    return section.rsplit("/", 1)[-1]


def unsupported(sections: dict[str, str], btf_has: set) -> dict[str, str | None]:
    """Program name -> why this kernel cannot run it (None: it can), by
    mechanism: tp_btf needs its ``btf_trace_X`` in the kernel's BTF, fentry
    and fexit an attachable fentry, kprobes (and ksyscall) the kprobe PMU, lsm
    the BPF LSM."""
    out: dict[str, str | None] = {}
    for key, section in sections.items():
        mechanism = mechanism_of(section)
        target = target_of(section)
        reason = None
        if mechanism == "tp_btf" and (f"btf_trace_{target}", B.TYPEDEF) not in btf_has:
            reason = f"no tracepoint {target} in the kernel's BTF"
        elif mechanism in ("fentry", "fexit") and not features.fentry_can_attach(target):
            reason = f"this kernel cannot attach fentry/fexit programs to {target}"
        elif mechanism in ("kprobe", "kretprobe") and not features.kprobes():
            reason = "this kernel has no kprobes"
        elif section.startswith(("ksyscall/", "kretsyscall/")) and not features.kprobes():
            reason = "this kernel has no kprobes (ksyscall programs are kprobes)"
        elif section.startswith(("lsm/", "lsm.s/")) and features.bpf_lsm() is False:
            reason = "this kernel does not run BPF LSM programs (it needs bpf in lsm= at boot)"
        out[key] = reason
    return out


@dataclasses.dataclass
class Plan:
    """What ``choose`` decided before load."""

    choices: list[Choice]
    refused: list[NotAttached]  # not loaded: this kernel cannot run them
    # program -> the programs to pass over with it if it fails to attach,
    # when a twin could take its place (a new load without them)
    fallbacks: dict[str, list[str]]


def check_names(obj: BPFObject, names, word: str) -> set[str]:
    """``names``, each the name of a program of ``obj``, or a UsageError."""
    for name in names:
        if name not in obj.programs:
            raise UsageError(
                f"{word} {name}: no program {name!r} in {obj.name} (has: {', '.join(obj.programs) or 'none'})"
            )
    return set(names)


def choose(obj: BPFObject, programs=None, skip=(), passed_over: dict | None = None) -> Plan:
    """Before load: turn autoload off for all but the programs that should
    run. ``programs``: only these (no twin choice: they were asked for);
    ``skip``: not these; ``passed_over``: program -> why it is passed over
    (it failed to attach in an earlier load)."""
    passed_over = passed_over or {}
    only = check_names(obj, programs, PROGRAMS) if programs else None
    skipped = check_names(obj, skip or (), SKIP)
    wanted = [
        p
        for p in obj.programs.values()
        if (p.name in only if only is not None else p.autoload) and p.name not in skipped
    ]
    for p in obj.programs.values():
        p.autoload = p in wanted
    wanted_sections = {p.name: p.section for p in wanted}
    btf_needs = [
        (f"btf_trace_{target_of(s)}", B.TYPEDEF)
        for s in wanted_sections.values()
        if mechanism_of(s) == "tp_btf"
    ]
    reasons = unsupported(wanted_sections, features.kernel_btf_has(*btf_needs) if btf_needs else set())
    reasons.update((name, why) for name, why in passed_over.items() if name in reasons)

    groups: dict[tuple[str, str], list[Program]] = {}
    for p in wanted:
        point = attach_point(p.section)
        if only is None and point and point[1]:
            groups.setdefault(point[1], []).append(p)
    plan = Plan([], [], {})
    for members in groups.values():
        by_rank: dict[int, list[Program]] = {}
        for p in members:
            by_rank.setdefault(POINTS[mechanism_of(p.section) or ""][1], []).append(p)
        if len(by_rank) < 2:
            continue  # one mechanism: no twins
        ranks = sorted(by_rank)
        usable = [r for r in ranks if not any(reasons[p.name] for p in by_rank[r])]
        if not usable:
            continue  # none can run: each is refused below, with its reason
        best = usable[0]
        why = [
            f"{p.name}: {reasons[p.name]}" for r in ranks if r < best for p in by_rank[r] if reasons[p.name]
        ]
        for p in members:
            if p not in by_rank[best]:
                p.autoload = False
                reasons[p.name] = None  # passed over, not refused
        plan.choices.append(
            Choice(
                [(p.name, p.section) for p in by_rank[best]],
                [(p.name, p.section) for p in members if p not in by_rank[best]],
                why,
            )
        )
        if any(r > best for r in usable):
            for p in by_rank[best]:
                plan.fallbacks[p.name] = [q.name for q in by_rank[best]]
    for p in wanted:
        why_not = reasons[p.name]
        if p.autoload and why_not:
            p.autoload = False
            plan.refused.append(NotAttached(p.name, p.section, why_not))
    return plan


def is_iterator(prog: Program) -> bool:
    return prog.section.startswith(("iter/", "iter.s/"))


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
            what = f"{kind} {name}={spec}"
            if name not in obj.programs:
                known = ", ".join(p.name for p in obj.programs.values() if is_kind(p)) or "none"
                raise UsageError(f"{what}: no program {name!r} in {obj.name} ({kind} programs: {known})")
            if not is_kind(obj.programs[name]):
                raise UsageError(f'{what}: program {name} (SEC("{obj.programs[name].section}")) is no {kind}')
            try:
                targets.setdefault(name, []).append(resolve(spec))
            except UsageError as e:
                raise UsageError(f"{what}: {e}") from None
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
    return UsdtTarget(os.path.realpath(path), provider, name)


def attach_program(prog: Program, frequency: int, targets: list | None = None) -> list[Link]:
    """Attach one loaded program: perf_event programs to the CPU clock of
    every CPU, iterators as iterators, a uprobe or a USDT program to each of
    ``targets`` when given (Targets, UsdtTargets; in every process), the rest
    by their section."""
    if targets:
        retprobe = prog.section.startswith("uretprobe")
        return [
            prog.attach_usdt(t.path, t.provider, t.name)
            if isinstance(t, UsdtTarget)
            else prog.attach_uprobe(t.path, t.offset, -1, retprobe=retprobe)
            for t in targets
        ]
    if prog.type_name == "perf_event":
        return prog.attach_cpu_clock(frequency)
    if is_iterator(prog):
        return [prog.attach_iter()]
    return [prog.attach()]


def needs_tracefs(prog: Program) -> bool:
    return mechanism_of(prog.section) == "tracepoint"


_FAILED_LOAD = re.compile(r"prog '([^']+)': failed to load")


def refused_program(error: BPFError) -> tuple[str, str] | None:
    """(program, why) when the load failed because the kernel refused one
    program (libbpf's log names it); None for other failures."""
    if error.op != "load BPF object":
        return None
    failed = next((m.group(1) for line in error.log if (m := _FAILED_LOAD.search(line))), None)
    if failed is None:
        return None
    for line in error.log:  # the verifier's log: its complaint is the line before "processed N insns"
        lines = [x for x in line.splitlines() if x.strip()]
        for before, after in zip(lines, lines[1:]):
            if after.startswith("processed ") and " insns" in after:
                return failed, f"the verifier rejected it: {before.strip()}"
    return failed, f"the kernel refused to load it ({error.strerror})"


def reason(prog: Program, error: OSError, tracefs_missing: bool) -> str:
    """Why ``prog`` did not attach, in a few words."""
    if error.errno == errno.EOPNOTSUPP and prog.type_name != "perf_event":
        if is_uprobe(prog):
            return f"{CANNOT_AUTO_ATTACH}: give it a target (BINARY:FUNCTION)"
        if is_usdt(prog):
            return f"{CANNOT_AUTO_ATTACH}: give it a target (BINARY:PROVIDER:NAME)"
        return CANNOT_AUTO_ATTACH
    text = error.strerror or str(error)
    hint = getattr(error, "hint", None)
    if hint:
        text = f"{text} ({hint})"
    mechanism = mechanism_of(prog.section)
    target = prog.section.split("/", 1)[-1]
    kind = prog.section.split("/", 1)[0]
    if error.errno == errno.EINVAL and is_uprobe(prog) and ":" not in target:  # bashreadline's
        return (
            f'libbpf attaches a uprobe by itself only from SEC("{kind}/BINARY:FUNCTION") ({text}); '
            f"give it a target with --uprobe {prog.name}=BINARY:FUNCTION"
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
        return f"{why}; give it a target with --uprobe {prog.name}=BINARY:FUNCTION"
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
