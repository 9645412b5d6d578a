"""What the exporter traces: cgroups by path glob, processes by comm regex or
PID, resolved anew at each refresh, since cgroups and processes come and go."""

from __future__ import annotations

import fnmatch
import os
import re

from . import cgroup

TYPE_CHECKING = False  # see pyrunq.bpf.globals
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .tools.runqlat import RunqLat


class CgroupGlob:
    """A cgroup path pattern: fnmatch within each path segment, ``**`` for
    zero or more whole segments (``/kubepods*/**``: those cgroups and all
    below). Paths are relative to the cgroup2 mount; the root is "/"."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self._parts = _segments(pattern)

    def match(self, path: str) -> bool:
        return _match(self._parts, _segments(path))


def _segments(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.split("/") if s)


def _match(pattern: tuple, path: tuple) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _match(rest, path[1:])


def processes():
    """(pid, comm) of every process now; those that exit meanwhile are skipped."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    yield int(entry), f.read().rstrip("\n")
            except OSError:
                continue


class Selection:
    """What to trace: cgroups whose path matches a glob, processes whose comm
    matches a regex (searched, as pgrep does) or whose PID is given. Resolved
    anew at each refresh, since cgroups and processes come and go."""

    def __init__(
        self,
        cgroups: Iterable[str] = (),
        comms: Iterable[str | re.Pattern[str]] = (),
        pids: Iterable[int] = (),
    ) -> None:
        self.cgroup_globs = [CgroupGlob(g) for g in cgroups]
        self.comms = [re.compile(c) if isinstance(c, str) else c for c in comms]
        self.pids = set(pids)

    def cgroup_ids(self, tree: dict[int, str]) -> set[int] | None:
        """Ids of the matching cgroups of ``tree``; None without globs (all)."""
        if not self.cgroup_globs:
            return None
        return {i for i, path in tree.items() if any(g.match(path) for g in self.cgroup_globs)}

    def process_ids(self) -> set[int] | None:
        """PIDs of the matching live processes; None without comms or PIDs (all)."""
        if not self.comms:
            return {p for p in self.pids if os.path.exists(f"/proc/{p}")} if self.pids else None
        return {
            pid for pid, comm in processes() if pid in self.pids or any(r.search(comm) for r in self.comms)
        }

    def open(self, per: str | None = "cgroup", blame: bool = False) -> RunqLat:
        """A RunqLat traced per ``per`` with this selection's filters in place
        (``blame``: who held the CPU, too)."""
        from .tools.runqlat import RunqLat

        return RunqLat(
            per=per, pids=self.process_ids(), cgroup_ids=self.cgroup_ids(cgroup.tree()), blame=blame
        )
