"""Who held the CPU while a task waited for it (bpf/blame.bpf.h), as values.

The kernel splits each wait among the tasks that ran on the CPU meanwhile,
as enum blame_kind says: the waiting task's own cgroup, another cgroup, a
kernel thread, the idle task, or unattributed (the part of a wait spent on
another CPU's queue, or before the switches the kernel keeps, or when a
switch was not seen or the culprit table was full). Here "another cgroup"
becomes "container" when its path names one (``pyrunq.containers``) and
"host" when not (system.slice, user.slice, the root).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from .. import containers
from ..bpf import BTF
from ..cgroup import Names

# Every kind a part of a wait can have, in the order they are shown.
KINDS = ("self", "container", "host", "kernel", "idle", "unattributed")


@dataclasses.dataclass(frozen=True)
class Culprit:
    """A task that held the CPU while another waited: its process ``pid``,
    thread ``tid``, ``comm``, cgroup (``cgroup``: the path relative to the
    cgroup2 mount; ``cgroup_id``), ``kind`` (one of ``KINDS``) and the
    nanoseconds of the wait it took (``ns``)."""

    pid: int
    tid: int
    comm: str
    cgroup: str
    cgroup_id: int
    kind: str
    ns: int

    def label(self) -> str:
        """How a person names it: ``comm[id]``; a container's short id first
        (``podman:dabe66f099b5 python3[13264]``), a host cgroup's path after;
        a culprit that is a whole cgroup, by its container or path."""
        if self.kind == "idle":
            return "idle"
        if not self.comm:
            return cgroup_label(self.cgroup)
        name = f"{self.comm}[{self.tid or self.pid}]"
        if self.kind == "container":
            return f"{cgroup_label(self.cgroup)} {name}"
        return f"{name} {self.cgroup}" if self.kind == "host" else name


def cgroup_label(path: str) -> str:
    """A container's cgroup as ``runtime:short-id`` (``podman:f7dcb501c860``),
    any other cgroup as its path."""
    found = containers.parse(path)
    if not found["container_id"]:
        return path
    return f"{found['runtime'] or 'container'}:{found['container_id'][:12]}"


def enum_names(btf: BTF, enum: str) -> dict[int, str]:
    """Value -> lowercase name of a C enum's members without their shared
    prefix: BLAME_SELF -> "self" (the enum comes from the object's BTF)."""
    values = btf.enum(enum)
    prefix = os.path.commonprefix(list(values))
    prefix = prefix[: prefix.rfind("_") + 1]  # whole words: BLAME_, not BLAME_S
    return {v: name[len(prefix) :].lower() for name, v in values.items()}


class Kinds:
    """Turns the kernel's kind of a culprit and its cgroup id into one of
    ``KINDS`` and a path, from the object's enum blame_kind."""

    def __init__(self, btf: BTF, names: Callable[[int], str] | None = None):
        self.names = names if names is not None else Names()  # cgroup id -> path
        self._kind = enum_names(btf, "blame_kind")
        # the kind of each count of a struct hist's blame_ns, in order
        self.raw_kinds = [self._kind[v] for v in range(btf.enum("blame_kind")["BLAME_KINDS"])]
        self._why = enum_names(btf, "blame_why")
        self._other: dict[int, str] = {}  # cgroup id -> "container" or "host"

    def path(self, cgroup_id: int) -> str:
        return self.names(cgroup_id)

    def kind_name(self, raw: int) -> str:
        """The enumerator's name: "other" is not yet told apart."""
        return self._kind[raw]

    def kind(self, raw: int, cgroup_id: int) -> str:
        kind = self._kind[raw]
        if kind != "other":
            return kind
        other = self._other.get(cgroup_id)
        if other is None:  # a cgroup's path does not change: parsed once
            other = self._other[cgroup_id] = (
                "container" if containers.parse(self.path(cgroup_id))["container_id"] else "host"
            )
        return other

    def cgroup(self, cgroup_id: int) -> tuple[str, bool]:
        """How a culprit's cgroup is named (``cgroup_label``), and whether
        it is a container's."""
        path = self.path(cgroup_id)
        return cgroup_label(path), bool(containers.parse(path)["container_id"])

    def why(self, raw: int) -> str:
        """The reason for an unattributed part ("" for none)."""
        return "" if self._why.get(raw) == "none" else self._why.get(raw, str(raw))

    def culprit(self, c) -> Culprit:
        """A decoded struct culprit as a Culprit."""
        w = c.who
        return Culprit(
            w.pid, w.tid, w.comm, self.path(w.cgroup_id), w.cgroup_id, self.kind(w.kind, w.cgroup_id), c.ns
        )


def merged(culprits) -> list[Culprit]:
    """One Culprit per task and kind (a task that ran in several segments of
    one wait), largest first."""
    total: dict[tuple, Culprit] = {}
    for c in culprits:
        key = (c.tid, c.cgroup_id, c.kind) if c.kind != "idle" else ("idle",)
        seen = total.get(key)
        total[key] = c if seen is None else dataclasses.replace(seen, ns=seen.ns + c.ns)
    return sorted(total.values(), key=lambda c: -c.ns)


@dataclasses.dataclass(frozen=True)
class Attribution:
    """Who took the CPU from one key's waiting tasks in an interval:
    nanoseconds by kind (``kinds``, every one of ``KINDS``) and by culprit
    (``culprits``, largest first, as fine as the key: threads for threads,
    processes for processes, cgroups for cgroups; idle and unattributed are
    kinds only). ``kinds`` adds up to the key's waiting time."""

    kinds: dict[str, int]
    culprits: tuple[Culprit, ...]

    @property
    def total_ns(self) -> int:
        """The key's waiting in the interval: every kind together."""
        return sum(self.kinds.values())

    def shares(self) -> dict[str, float]:
        """Each kind's fraction of the waiting time (all 0 with none)."""
        total = self.total_ns
        return {k: (ns / total if total else 0.0) for k, ns in self.kinds.items()}


class Attributions:
    """Interval differences of runqlat's cumulative blame counters: the
    ``blame_ns`` of each histogram (struct hist), and (the reference of
    ``pyrunq.bpf.BlameDiffs``, which RunqLat reads it with) the ``blames``
    table."""

    def __init__(self, kinds: Kinds, per: str | None):
        self.kinds, self.per = kinds, per
        self._hists: dict[int, tuple[int, ...]] = {}
        self._pairs: dict[tuple, int] = {}
        self._pending: dict[int, int] = {}  # raw key -> containers' ns the histogram has not shown yet

    def diff(self, hists, culprits: dict, clear: bool = True) -> dict[int, Attribution]:
        """{raw key: Attribution} of the keys that waited since the last
        cleared call; ``hists`` are the histograms' items, ``culprits`` the
        interval's culprits of each raw key."""
        out = {}
        for raw, h in hists:
            now = tuple(h.blame_ns)
            before = self._hists.get(raw, (0,) * len(now))
            if clear:
                self._hists[raw] = now
            if now != before:
                out[raw] = self.attribution(
                    [a - b for a, b in zip(now, before)], culprits.get(raw, []), raw=raw
                )
        for raw, theirs in culprits.items() if clear else ():
            if raw not in out:  # its only wait ended between the two reads
                self.carry(raw, theirs)
        return out

    def carry(self, raw, culprits) -> None:
        """Keep the containers' part of a key's culprits for its next
        interval: the histogram, read before the table, has not shown it."""
        ns = sum(c.ns for c in culprits if c.kind == "container")
        if ns:
            self._pending[raw] = self._pending.get(raw, 0) + ns

    def culprits(self, pairs, clear: bool = True) -> dict[int, list[Culprit]]:
        """{raw key: its culprits} since the last cleared call, from the
        culprit table's items (``pairs``)."""
        culprits: dict[int, list[Culprit]] = {}
        for k, v in pairs:
            raw = (k.victim, k.cgroup_id, k.culprit, k.kind)
            ns = v.ns - self._pairs.get(raw, 0)
            if clear:
                self._pairs[raw] = v.ns
            if ns:
                culprits.setdefault(k.victim, []).append(self.culprit(k, v.comm, ns))
        return culprits

    def culprit(self, k, comm: str, ns: int) -> Culprit:
        """A Culprit of the culprit table's key ``k`` (its ``culprit``,
        ``kind`` and ``cgroup_id``): a thread or a process, as ``per`` is."""
        pid, tid = (0, k.culprit) if self.per == "tid" else (k.culprit, 0)
        kind = self.kinds.kind(k.kind, k.cgroup_id)
        return Culprit(
            pid, tid, comm if k.culprit else "", self.kinds.path(k.cgroup_id), k.cgroup_id, kind, ns
        )

    def attribution(
        self, by_kind, culprits: list[Culprit], containers: int | None = None, raw=None
    ) -> Attribution:
        """A key's Attribution from its nanoseconds by enum blame_kind (an
        interval's blame_ns) and its culprits (largest first once sorted).
        Another cgroup's part is told apart by the culprits' kinds, or by
        ``containers`` (the part of container cgroups) where the culprits
        given are not all of them. ``raw``: the key, whose containers' part
        the histogram has not shown yet is carried to its next interval."""
        by_name = dict(zip(self.kinds.raw_kinds, by_kind))
        if containers is None:
            containers = sum(c.ns for c in culprits if c.kind == "container")
        kinds = {k: by_name.get(k, 0) for k in KINDS}
        # the histogram's part of other cgroups is the total; the culprit
        # table, read just after it, says how much of it containers took. A
        # wait that ended between the two reads is in the table and not yet
        # in the histogram: it is carried to the key's next interval, so the
        # kinds add up to its waiting exactly, and containers get all theirs
        other = by_name.get("other", 0)
        available = containers + self._pending.pop(raw, 0)
        kinds["container"] = min(available, other)
        kinds["host"] = other - kinds["container"]
        if available > other and raw is not None:
            self._pending[raw] = available - other
        ordered = tuple(sorted(culprits, key=lambda c: -c.ns)) if len(culprits) > 1 else tuple(culprits)
        return Attribution(kinds, ordered)

    def forget_culprits(self, cgroup_ids) -> None:
        """Forget the culprit table's entries of culprits in these cgroups."""
        gone = set(cgroup_ids)
        for raw in [r for r in self._pairs if r[1] in gone]:
            del self._pairs[raw]

    def forget(self, raws) -> None:
        """Forget these keys' baselines (and their culprit table entries')."""
        gone = set(raws)
        for raw in gone:
            self._hists.pop(raw, None)
            self._pending.pop(raw, None)
        for key in [k for k in self._pairs if k[0] in gone]:
            del self._pairs[key]
