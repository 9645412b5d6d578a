"""RunqLat: run queue latency histograms (bpf/runqlat.bpf.c).

The kernel keeps cumulative counters per key and never clears them; each
snapshot is the difference from the previous one, so no increment landing
between a read and a clear is ever lost.

Two ways to take the differences, each with its own baselines: ``snapshot()``
in Python ({Key: Histogram}: the API, and the reference), and
``interval_text()`` in C (the text only, for ``runqlat -L`` with thousands of
threads). The first one called owns the RunqLat's baselines; calling the
other afterwards raises RuntimeError.
"""

from __future__ import annotations

import collections
import os

from ..bpf import BlameDiffs, HistDiffs, KeyStats
from ..cgroup import Names
from ..hist import Histogram
from ..errors import UsageError
from .base import check_choice, check_positive
from .blame import Attribution, Attributions, Kinds
from .runqtracer import RunqTracer

TYPE_CHECKING = False  # see pyrunq.bpf.globals

# What ``per`` takes: enum per_kind's PER_<NAME> (None: PER_NONE), whose
# values the object's BTF gives.
PER_KINDS = (None, "pid", "tid", "pidns", "cgroup")

_KEY_DOC = """A histogram's key: kind ("pid", "tid", "pidns", "cgroup"), the id, and
the comm of the first task seen (or the cgroup's path)."""
if TYPE_CHECKING:  # the same namedtuple, typed for mypy (typing costs every start 2 ms)
    from typing import NamedTuple

    class Key(NamedTuple):
        kind: str
        id: int
        name: str

else:
    Key = collections.namedtuple("Key", "kind id name")
    Key.__doc__ = _KEY_DOC


class RunqLat(RunqTracer):
    """Run queue latency, traced from construction until ``close()``.

    ``per``: None (one histogram), "pid", "tid", "pidns" or "cgroup".
    ``pids``: trace only these processes (``set_pids`` changes them live).
    ``cgroup``: trace only tasks in this cgroup v2 directory or below.
    ``cgroup_ids``: trace only tasks directly in these cgroups (ids, i.e. the
    directories' inode numbers; ``set_cgroup_ids`` changes them live).
    ``blame``: also record who took the CPU from each key's waiting tasks,
    read with ``attribution()``; ``max_culprits`` bounds that table.
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
        blame: bool = False,
        max_culprits: int = 40960,
    ):
        check_choice("per", per, PER_KINDS)
        self.per, self.unit = per, "msecs" if milliseconds else "usecs"
        self._milliseconds, self._max_keys = milliseconds, check_positive("max_keys", max_keys)
        self._previous: dict[int, Histogram] = {}
        self._diffs: HistDiffs | None = None  # interval_text()'s baselines, in C
        self._method: str | None = None  # which of the two took differences first
        self._cgroup_names: Names | None = None
        self._max_culprits = check_positive("max_culprits", max_culprits)
        self._attributions: Attributions | None = None
        self._blame_diffs: BlameDiffs | None = None  # interval_stats()'s culprit baselines, in C
        super().__init__(pids=pids, cgroup_path=cgroup, cgroup_ids=cgroup_ids, blame=blame)

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["targ_per"] = obj.btf.enum("per_kind")[f"PER_{(self.per or 'none').upper()}"]
        obj.rodata["targ_ms"] = self._milliseconds
        obj.maps["hists"].max_entries = self._max_keys
        obj.maps["blames"].max_entries = self._max_culprits if self.blame else 1

    def _names(self) -> Names:
        if self._cgroup_names is None:
            self._cgroup_names = Names()
        return self._cgroup_names

    def _key(self, raw: int, comm: str):
        if self.per is None:
            return None
        if self.per == "cgroup":
            return Key("cgroup", raw, self._names()(raw))
        return Key(self.per, raw, comm)

    def attribution(self, clear: bool = True) -> dict[Key | None, Attribution]:
        """With ``blame``: {key: Attribution} of what happened since the last
        cleared call, for the keys that waited: who took the CPU from them.
        Baselines of its own, independent of ``snapshot()``'s."""
        return self._attribute(self.obj.maps["hists"].items(), clear)

    def snapshot(self, clear: bool = True) -> dict[Key | None, Histogram]:
        """Histograms of what happened since the last cleared snapshot, by key.

        Keys with no new samples are left out. ``clear=False`` leaves the
        baseline where it is, so the next snapshot covers this time too.
        """
        return self._snapshot(self.obj.maps["hists"].items(), clear)

    def interval(
        self, clear: bool = True
    ) -> tuple[dict[Key | None, Histogram], dict[Key | None, Attribution]]:
        """``(snapshot(), attribution())`` from one read of the kernel's
        histograms: the same waits in both, and half the reading."""
        items = self.obj.maps["hists"].items()
        blame = self._attribute(items, clear)  # first: the snapshot forgets what is gone
        return self._snapshot(items, clear), blame

    def _snapshot(self, items, clear: bool) -> dict[Key | None, Histogram]:
        self._baselines_of("snapshot")
        out, idle = differences(items, self._previous, self.unit, self._key, clear)
        if clear:
            self._forget_gone(idle)
        return out

    def _attribute(self, items, clear: bool) -> dict[Key | None, Attribution]:
        if not self.blame:
            raise UsageError("attribution() needs RunqLat(blame=True)")
        comms = {raw: h.comm for raw, h in items}
        diffs = self._attributions_of().diff(items, self.obj.maps["blames"].items(), clear)
        return {self._key(raw, comms[raw]): a for raw, a in diffs.items()}

    def interval_text(self, clear: bool = True) -> bytes:
        """What ``snapshot()`` would return, as runqlat prints it: the
        sections (heading, log2 histogram) of the keys with new samples, in
        map order, without the interval's header; computed in C. Headings:
        "tid = %d <comm>", "pid = ...", "pidns = %u <comm>", "cgroup = <path>"
        or none. Comms are the kernel's bytes. The same baseline semantics
        as ``snapshot()`` (``clear``, idle keys, exited threads forgotten),
        in baselines of its own."""
        self._baselines_of("interval_text")
        hists = self.obj.maps["hists"]
        if self._diffs is None:
            self._diffs = HistDiffs(hists.key_size, hists.value_layout)
        d = self._diffs
        d.diff(*d.read(hists), clear)
        if clear:
            self._forget_gone(d.idle())
        names = [self._key(raw, "").name for raw in d.changed()] if self.per == "cgroup" else None
        return d.render(self.per, self.unit, names)

    def interval_stats(
        self, clear: bool = True, all_culprits: bool = False
    ) -> tuple[list[tuple[Key | None, KeyStats]], list[int], dict[Key | None, Attribution]]:
        """What ``interval()`` says, computed in C for thousands of keys
        (``pyrunq top``): each changed key with its ``KeyStats`` (waits,
        sum_ns, p50, p99, max), in map order; the new counts of all of them
        together, bucket by bucket; and with ``blame``, {key: Attribution}
        (else empty), whose culprits are only the largest one unless
        ``all_culprits``. Baselines as ``interval_text()``'s."""
        self._baselines_of("interval_stats")
        hists = self.obj.maps["hists"]
        if self._diffs is None:
            self._diffs = HistDiffs(hists.key_size, hists.value_layout, stats=True)
        d = self._diffs
        d.diff(*d.read(hists), clear)
        stats, total = d.stats()
        # a key the kernel has made but not yet counted in has no waits: no row
        keyed = [(self._key(s.key, s.comm.decode(errors="replace")), s) for s in stats if s.waits]
        blame = self._blame_stats(keyed, clear, all_culprits) if self.blame else {}
        if clear:
            self._forget_gone(d.idle())
        return keyed, total, blame

    def _blame_stats(self, keyed, clear: bool, all_culprits: bool) -> dict[Key | None, Attribution]:
        """interval_stats()'s attributions: the culprit table's growth in C."""
        blames, a = self.obj.maps["blames"], self._attributions_of()
        if self._blame_diffs is None:
            other = self.obj.btf.enum("blame_kind")["BLAME_OTHER"]
            self._blame_diffs = BlameDiffs(blames.key_layout, blames.value_layout, other)
        d = self._blame_diffs
        d.diff(*d.read(blames), clear)
        for cgroup_id in d.unnamed():
            d.name(cgroup_id, a.kinds.cgroup(cgroup_id)[1])
        victims = {v.victim: v for v in d.victims()}
        everyone: dict[int, list] = {}
        for c in d.changes() if all_culprits else ():
            everyone.setdefault(c.victim, []).append(c)
        out = {}
        for key, s in keyed:
            v = victims.get(s.key)
            if not any(s.blame_ns):
                continue
            entries = everyone.get(s.key, []) if all_culprits else [v.top] if v and v.top else []
            culprits = [a.culprit(c, c.comm.decode(errors="replace"), c.ns) for c in entries]
            out[key] = a.attribution(s.blame_ns, culprits, v.container_ns if v else 0)
        return out

    def _attributions_of(self) -> Attributions:
        if self._attributions is None:
            self._attributions = Attributions(Kinds(self.obj.btf, self._names()), self.per)
        return self._attributions

    def _baselines_of(self, method: str) -> None:
        """The first of snapshot() and interval_text() (or interval_stats())
        called owns the baselines."""
        if self._method is None:
            self._method = method
        elif self._method != method:
            raise RuntimeError(
                f"this RunqLat takes differences with {self._method}(): {method}() keeps other "
                "baselines, so use one of the two per RunqLat"
            )

    def close(self) -> None:
        super().close()
        if self._diffs is not None:
            self._diffs.close()
        if self._blame_diffs is not None:
            self._blame_diffs.close()

    def _forget_gone(self, idle) -> None:
        """Drop the entries of threads, processes and cgroups that are gone,
        so the map does not fill up. Only keys without new samples can be
        gone, and their last samples were reported by an earlier snapshot."""
        if self.per in ("pid", "tid"):
            self.forget([raw for raw in idle if not os.path.exists(f"/proc/{raw}")])
        elif self.per == "cgroup" and idle:
            self.forget([raw for raw in idle if not self._names().exists(raw)])
        if self.per == "cgroup" and self._blame_diffs is not None:  # culprits removed, victims alive
            gone = [c for c in self._blame_diffs.cgroups() if not self._names().exists(c)]
            self._delete_culprits(self._blame_diffs.forget(cgroups=gone))
        elif self.per == "cgroup" and self._attributions is not None:
            gone = [c for c in self._attributions.culprit_cgroups() if not self._names().exists(c)]
            self._delete_culprits(self._attributions.forget_culprits(gone))

    def forget(self, ids) -> None:
        """Drop the kernel entries and baselines of these keys (e.g. cgroups
        that were removed): the map must not fill up with what is gone."""
        hists = self.obj.maps["hists"]
        for raw in ids:
            self._previous.pop(raw, None)
            if self._diffs is not None:
                self._diffs.forget(raw)
            if self._cgroup_names is not None:
                self._cgroup_names.forget(raw)
            try:
                del hists[raw]
            except KeyError:
                pass
        if self.blame:
            self._forget_culprits_of(set(ids))

    def _forget_culprits_of(self, victims: set) -> None:
        """Delete the culprit table's entries of these keys (those read by
        the last attribution: an entry made since is deleted next time)."""
        if self._blame_diffs is not None:
            self._delete_culprits(self._blame_diffs.forget(victims=victims))
        elif self._attributions is not None:
            self._delete_culprits(self._attributions.forget(victims))

    def _delete_culprits(self, keys) -> None:
        blames = self.obj.maps["blames"]
        for k in keys:
            try:
                del blames[k]
            except KeyError:
                pass


def differences(items, previous: dict, unit: str, key, clear: bool = True) -> tuple[dict, list]:
    """The per-key work of a snapshot, in Python (the reference of
    ``HistDiffs``): ``items`` are the map's (raw key, struct hist) pairs,
    ``previous`` the cumulative Histogram of each raw key at the last cleared
    snapshot (updated when ``clear``), ``key(raw, comm)`` the key to report.
    Returns ({key: Histogram of the new samples}, [raw keys with none])."""
    out, idle = {}, []
    for raw, value in items:
        prev = previous.get(raw)
        if prev is not None and prev.buckets == value.buckets:
            idle.append(raw)  # nothing new: the common case for idle threads
            continue
        cumulative = Histogram(value.buckets, unit, value.sum_ns)
        out[key(raw, value.comm)] = cumulative - prev if prev is not None else cumulative
        if clear:
            previous[raw] = cumulative
    return out, idle
