"""RunqLat: run queue latency histograms (bpf/runqlat.bpf.c).

The kernel keeps cumulative counters per key and never clears them; each
snapshot is the difference from the previous one, so no increment landing
between a read and a clear is ever lost.
"""

from __future__ import annotations

import collections
import os

from ..cgroup import Names
from ..hist import Histogram
from .base import check_choice, check_positive
from .runqtracer import RunqTracer

# What ``per`` takes: enum per_kind's PER_<NAME> (None: PER_NONE), whose
# values the object's BTF gives.
PER_KINDS = (None, "pid", "tid", "pidns", "cgroup")

Key = collections.namedtuple("Key", "kind id name")
Key.__doc__ = """A histogram's key: kind ("pid", "tid", "pidns", "cgroup"), the id, and
the comm of the first task seen (or the cgroup's path)."""


class RunqLat(RunqTracer):
    """Run queue latency, traced from construction until ``close()``.

    ``per``: None (one histogram), "pid", "tid", "pidns" or "cgroup".
    ``pids``: trace only these processes (``set_pids`` changes them live).
    ``cgroup``: trace only tasks in this cgroup v2 directory or below.
    ``cgroup_ids``: trace only tasks directly in these cgroups (ids, i.e. the
    directories' inode numbers; ``set_cgroup_ids`` changes them live).
    """

    object_name = "runqlat"

    def __init__(
        self,
        milliseconds: bool = False,
        per: str | None = None,
        pids=None,
        cgroup: str | None = None,
        cgroup_ids=None,
        max_keys: int = 10240,
    ):
        check_choice("per", per, PER_KINDS)
        self.per, self.unit = per, "msecs" if milliseconds else "usecs"
        self._milliseconds, self._max_keys = milliseconds, check_positive("max_keys", max_keys)
        self._previous: dict[int, Histogram] = {}
        self._cgroup_names: Names | None = None
        super().__init__(pids=pids, cgroup_path=cgroup, cgroup_ids=cgroup_ids)

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["targ_per"] = obj.btf.enum("per_kind")[f"PER_{(self.per or 'none').upper()}"]
        obj.rodata["targ_ms"] = self._milliseconds
        obj.maps["hists"].max_entries = self._max_keys

    def _key(self, raw: int, comm: str):
        if self.per is None:
            return None
        if self.per == "cgroup":
            if self._cgroup_names is None:
                self._cgroup_names = Names()
            return Key("cgroup", raw, self._cgroup_names(raw))
        return Key(self.per, raw, comm)

    def snapshot(self, clear: bool = True) -> dict:
        """Histograms of what happened since the last cleared snapshot, by key.

        Keys with no new samples are left out. ``clear=False`` leaves the
        baseline where it is, so the next snapshot covers this time too.
        """
        hists = self.obj.maps["hists"]
        out, idle = {}, []
        for raw, value in hists.items():
            previous = self._previous.get(raw)
            if previous is not None and previous.buckets == value.buckets:
                idle.append(raw)  # nothing new: the common case for idle threads
                continue
            cumulative = Histogram(value.buckets, self.unit, value.sum_ns)
            out[self._key(raw, value.comm)] = cumulative - previous if previous is not None else cumulative
            if clear:
                self._previous[raw] = cumulative
        if clear and self.per in ("pid", "tid"):
            self._forget_exited(idle)
        return out

    def _forget_exited(self, idle) -> None:
        """Drop the entries of threads and processes that are gone, so the map
        does not fill up. Only keys without new samples can be gone, and
        their last samples were reported by an earlier snapshot."""
        self.forget([raw for raw in idle if not os.path.exists(f"/proc/{raw}")])

    def forget(self, ids) -> None:
        """Drop the kernel entries and baselines of these keys (e.g. cgroups
        that were removed): the map must not fill up with what is gone."""
        hists = self.obj.maps["hists"]
        for raw in ids:
            self._previous.pop(raw, None)
            if self._cgroup_names is not None:
                self._cgroup_names.forget(raw)
            try:
                del hists[raw]
            except KeyError:
                pass
