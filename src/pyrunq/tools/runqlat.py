"""RunqLat: run queue latency histograms (bpf/runqlat.bpf.c).

The histograms, their snapshots and their text are those of every keyed
histogram tool (``keyedhists``); RunqLat adds the run queue programs and,
with ``blame``, who held the CPU while each key's tasks waited.
"""

from __future__ import annotations

import collections

from ..bpf import BlameDiffs, HistDiffs, KeyStats, RowBlames, StatsRows
from ..hist import Histogram
from ..errors import UsageError
from .base import check_positive
from .blame import Attribution, Attributions, CulpritCgroups, Kinds
from .keyedhists import PER_KINDS, Key, KeyedHists, differences
from .runqtracer import RunqTracer

__all__ = ["PER_KINDS", "IntervalRows", "Key", "KeySlots", "RunqLat", "differences"]

# (a collections.namedtuple: typing costs every start 2 ms)
KeySlots = collections.namedtuple("KeySlots", "slots sum_ns total")
KeySlots.__doc__ = """One key's new samples in an interval (``RunqLat.interval_named()``):
their log2 ``slots`` (as ``Histogram.slots``), ``sum_ns`` and number (``total``)."""


class RunqLat(KeyedHists, RunqTracer):
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
        self._max_culprits = check_positive("max_culprits", max_culprits)
        self._attributions: Attributions | None = None
        self._blame_diffs: BlameDiffs | None = None  # interval_stats()'s culprit baselines, in C
        super().__init__(
            milliseconds=milliseconds,
            per=per,
            max_keys=max_keys,
            pids=pids,
            cgroup_path=cgroup,
            cgroup_ids=cgroup_ids,
            blame=blame,
        )

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.maps["blames"].max_entries = self._max_culprits if self.blame else 1

    def attribution(self, clear: bool = True) -> dict[Key | None, Attribution]:
        """With ``blame``: {key: Attribution} of what happened since the last
        cleared call, for the keys that waited: who took the CPU from them.
        Baselines of its own, independent of ``snapshot()``'s."""
        return self._attribute(self.obj.maps["hists"].items(), clear)

    def interval(
        self, clear: bool = True
    ) -> tuple[dict[Key | None, Histogram], dict[Key | None, Attribution]]:
        """``(snapshot(), attribution())`` from one read of the kernel's
        histograms: the same waits in both, and half the reading."""
        items = self.obj.maps["hists"].items()
        blame = self._attribute(items, clear)  # first: the snapshot forgets what is gone
        return self._snapshot(items, clear), blame

    def interval_named(
        self, top: int
    ) -> tuple[dict[Key | None, KeySlots], dict[Key | None, Attribution], dict[Key | None, CulpritCgroups]]:
        """What ``interval()`` says, for pyrunq exporter, computed in C for
        thousands of keys: each key's new samples as ``KeySlots`` (log2
        slots, not a Histogram); its Attribution by kind (``culprits``
        empty); and, instead of one Culprit per culprit (tens of thousands
        an interval on a busy node), what its ``top`` named culprit cgroups
        and the others took (``CgroupNaming``'s rules, at most
        ``pyrunq.bpf.NAMED_MAX``). Baselines as ``interval_stats()``'s."""
        if not self.blame:
            raise UsageError("interval_named() needs RunqLat(blame=True)")
        h = self._stats_diff(True)
        stats, slots = h.stats()[0], h.slots()
        d, a, names = self._culprit_table(True), self._attributions_of(), self._names()
        unnamed = d.unnamed()
        names.load([*unnamed, *(s.key for s in stats if self.per == "cgroup")])  # one scan at most
        for cgroup_id in unnamed:
            d.name(cgroup_id, a.kinds.cgroup(cgroup_id)[1])
        named = {v.victim: v for v in d.named(top)}
        names.load(i for v in named.values() for i, _ in v.cgroups)
        keys = {s.key: self._key(s.key, s.comm.decode(errors="replace")) for s in stats if s.waits}
        snapshot, blame = {}, {}
        for s, new in zip(stats, slots):
            if s.key not in keys:  # made by the kernel, not counted in yet
                continue
            key = keys[s.key]  # None: the one key of every task (per=None)
            snapshot[key] = KeySlots(new, s.sum_ns, s.waits)
            if any(s.blame_ns):
                v = named.get(s.key)
                blame[key] = a.attribution(s.blame_ns, [], v.container_ns if v else 0, raw=s.key)
        path = a.kinds.path
        cgroups = {
            keys[raw]: CulpritCgroups(tuple((path(i), ns) for i, ns in v.cgroups), v.other_ns)
            for raw, v in named.items()
            if raw in keys  # else its waits are in a later interval's histogram
        }
        self._forget_gone(h.idle())
        return snapshot, blame, cgroups

    def _attribute(self, items, clear: bool) -> dict[Key | None, Attribution]:
        if not self.blame:
            raise UsageError("attribution() needs RunqLat(blame=True)")
        comms = {raw: h.comm for raw, h in items}
        d, a = self._culprit_table(clear), self._attributions_of()
        culprits: dict[int, list] = {}
        for c in d.changes():  # only the entries that grew are decoded
            culprits.setdefault(c.victim, []).append(a.culprit(c, c.comm.decode(errors="replace"), c.ns))
        diffs = a.diff(items, culprits, clear)
        return {self._key(raw, comms[raw]): attribution for raw, attribution in diffs.items()}

    def interval_stats(
        self, clear: bool = True, all_culprits: bool = False
    ) -> tuple[list[tuple[Key | None, KeyStats]], list[int], dict[Key | None, Attribution]]:
        """What ``interval()`` says, computed in C for thousands of keys:
        each changed key with its ``KeyStats`` (waits, sum_ns, p50, p99,
        max), in map order; the new counts of all of them together, bucket
        by bucket; and with ``blame``, {key: Attribution} (else empty),
        whose culprits are only the largest one unless ``all_culprits``.
        Baselines as ``interval_text()``'s (and ``interval_rows()``'s,
        which gives the same without an object per key)."""
        rows = self.interval_rows(clear)
        everyone: dict[int, list] = {}
        for c in self._culprit_table_diffs().changes() if self.blame and all_culprits else ():
            everyone.setdefault(c.victim, []).append(c)
        keyed, blame = [], {}
        for i in rows.indices():
            key, s, a = rows.row(i, everyone.get(rows.stats.key(i), []) if all_culprits else None)
            keyed.append((key, s))
            if a is not None:
                blame[key] = a
        return keyed, rows.total, blame

    def _stats_diff(self, clear: bool) -> HistDiffs:
        """The histograms' differences since the last cleared call, with
        their stats (``interval_stats()``'s baselines), read in C."""
        self._baselines_of("interval_stats")
        hists = self.obj.maps["hists"]
        if self._diffs is None:
            self._diffs = HistDiffs(hists.key_size, hists.value_layout, stats=True)
        self._diffs.diff(*self._diffs.read(hists), clear)
        return self._diffs

    def interval_rows(self, clear: bool = True) -> IntervalRows:
        """The interval since the last cleared call, every changed key's
        ``KeyStats`` and (with ``blame``) its victim's sums computed in C
        and kept packed: objects are made only for the rows asked for (a
        screen of ``pyrunq top`` shows 50 of 10,000 threads)."""
        h = self._stats_diff(clear)
        stats, total = h.stats_rows()
        blames = None
        if self.blame:
            b, a = self._culprit_table(clear), self._attributions_of()
            for cgroup_id in b.unnamed():
                b.name(cgroup_id, a.kinds.cgroup(cgroup_id)[1])
            blames = b.join(stats, carry=True, clear=clear)
        if clear:
            self._forget_gone(h.idle())
        return IntervalRows(stats, total, blames, self._key, self._attributions if self.blame else None)

    def _culprit_table(self, clear: bool) -> BlameDiffs:
        """The culprit table read, and its growth since the last cleared
        read taken, in C (``BlameDiffs``): tens of thousands of entries, of
        which an interval changes a few."""
        d = self._culprit_table_diffs()
        d.diff(*d.read(self.obj.maps["blames"]), clear)
        return d

    def _culprit_table_diffs(self) -> BlameDiffs:
        if self._blame_diffs is None:
            blames = self.obj.maps["blames"]
            other = self.obj.btf.enum("blame_kind")["BLAME_OTHER"]
            self._blame_diffs = BlameDiffs(blames.key_layout, blames.value_layout, other)
        return self._blame_diffs

    def _attributions_of(self) -> Attributions:
        if self._attributions is None:
            self._attributions = Attributions(Kinds(self.obj.btf, self._names()), self.per)
        return self._attributions

    def close(self) -> None:
        super().close()
        if self._blame_diffs is not None:
            self._blame_diffs.close()

    def _forget_gone(self, idle) -> None:
        super()._forget_gone(idle)
        if self.per == "cgroup" and self._blame_diffs is not None:  # culprits removed, victims alive
            gone = self._names().gone(self._blame_diffs.cgroups())
            self._delete_culprits(self._blame_diffs.forget(cgroups=gone))
            if self._attributions is not None:  # and what was known of them
                self._attributions.kinds.forget(gone)
            # their names too, but a victim's, whose last samples may come later, with its key
            keys = {*self._previous, *idle, *(self._diffs.changed() if self._diffs is not None else ())}
            for c in gone:
                if c not in keys:
                    self._names().forget(c)

    def forget(self, ids) -> None:
        super().forget(ids)
        if self.blame:
            self._forget_culprits_of(set(ids))

    def _forget_culprits_of(self, victims: set) -> None:
        """Delete the culprit table's entries of these keys (those read by
        the last attribution: an entry made since is deleted next time)."""
        if self._attributions is not None:
            self._attributions.forget(victims)
        if self._blame_diffs is not None:
            self._delete_culprits(self._blame_diffs.forget(victims=victims))

    def _delete_culprits(self, keys) -> None:
        blames = self.obj.maps["blames"]
        for k in keys:
            try:
                del blames[k]
            except KeyError:
                pass


class IntervalRows:
    """One interval of a RunqLat's keys (``interval_rows()``), packed:
    row ``i`` (``indices()``: those with waits, in map order) gives its
    ``key(i)``, ``stats[i]`` (KeyStats) and ``attribution(i)``, each made
    when asked; ``order()`` sorts the rows in C; ``total``: every key's new
    counts together, bucket by bucket."""

    def __init__(self, stats: StatsRows, total: list[int], blames: RowBlames | None, key, attributions):
        self.stats, self.total, self._blames = stats, total, blames
        self._key_of, self._attributions = key, attributions

    def __len__(self) -> int:
        return len(self.stats)

    def indices(self) -> list[int]:
        return [i for i, (_, waits, _, _) in enumerate(self.stats.columns()) if waits]

    def order(self, column: str, seconds: float) -> list[int]:
        """The rows with waits, by ``column`` (``pyrunq.bpf.ORDERS``)."""
        return self.stats.order(column, seconds)

    def row(self, i: int, everyone: list | None = None) -> tuple[Key | None, KeyStats, Attribution | None]:
        """Row i's key, KeyStats and Attribution (None: no blame kept, or
        it did not wait): its largest culprit only, or every culprit in
        ``everyone`` (the culprit table's changes of its key)."""
        s = self.stats[i]
        return self._key_of(s.key, s.comm.decode(errors="replace")), s, self._attribution(i, s, everyone)

    def _attribution(self, i: int, s: KeyStats, everyone: list | None) -> Attribution | None:
        if self._blames is None or self._attributions is None or not any(s.blame_ns):
            return None
        container_ns, top = self._blames[i]
        a = self._attributions
        entries = everyone if everyone is not None else [top] if top else []
        culprits = [a.culprit(c, c.comm.decode(errors="replace"), c.ns) for c in entries]
        return a.attribution(s.blame_ns, culprits, container_ns)
