"""Twins: programs that attach to the same point through different
mechanisms, as libbpf-tools ships them (its own user space turns all but one
off): ``tp_btf/X``, ``raw_tp/X`` (``raw_tracepoint/X``) and
``tracepoint/C/X`` (``tp/C/X``) for tracepoint X; ``fentry/F`` and
``kprobe/F``; ``fexit/F`` and ``kretprobe/F``. Of each group the best
mechanism this kernel supports loads (tp_btf > raw_tp > tracepoint,
fentry > kprobe, fexit > kretprobe); the others do not, and a ``Choice``
says which. A program this kernel cannot run at all (a tp_btf target
missing from its BTF, fentry that cannot attach, no kprobes) does not load
either, and is reported as ``NotAttached`` with the reason: one program
that cannot run must not stop the others. All of it is decided before load
(``choose``), by turning autoload off.
"""

from __future__ import annotations

import dataclasses

from ...bpf import BPFObject, Program, features
from ...bpf import btf as B
from ...errors import NotAttached, UsageError
from .targets import PERF_EVENT_PREFIX, perf_event_of

# The parameters UsageErrors name (``UsageError.param``), in the Python API's
# words; the CLI says its flags (--program, --no-program) instead.
PROGRAMS = "programs"
SKIP = "skip"

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
        elif section.startswith(PERF_EVENT_PREFIX):
            try:
                perf_event_of(section)
            except ValueError as e:
                reason = str(e)
        out[key] = reason
    return out


@dataclasses.dataclass
class Selection:
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
            known = ", ".join(obj.programs) or "none"
            raise UsageError(f"{name}: no program {name!r} in {obj.name} (has: {known})", word)
    return set(names)


def choose(
    obj: BPFObject, programs=None, skip=(), passed_over: dict | None = None, kernel_has=None
) -> Selection:
    """Before load: turn autoload off for all but the programs that should
    run. ``programs``: only these (no twin choice: they were asked for);
    ``skip``: not these; ``passed_over``: program -> why it is passed over
    (it failed to attach in an earlier load); ``kernel_has``: what answers
    which names the kernel's BTF has (``features.kernel_btf_has``)."""
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
    reasons = unsupported(
        wanted_sections, (kernel_has or features.kernel_btf_has)(*btf_needs) if btf_needs else set()
    )
    reasons.update((name, why) for name, why in passed_over.items() if name in reasons)

    groups: dict[tuple[str, str], list[Program]] = {}
    for p in wanted:
        point = attach_point(p.section)
        if only is None and point and point[1]:
            groups.setdefault(point[1], []).append(p)
    plan = Selection([], [], {})
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
