"""RunqLat: run queue latency histograms (bpf/runqlat.bpf.c).

The histograms, their snapshots and their text are those of every keyed
histogram tool (``keyedhists``); RunqLat adds the run queue programs and,
with ``blame``, who held the CPU while each key's tasks waited.
"""

from __future__ import annotations

from ..hist import Histogram
from ..errors import UsageError
from .base import check_positive
from .blame import Attribution, Attributions, Kinds
from .keyedhists import PER_KINDS, Key, KeyedHists, differences
from .runqtracer import RunqTracer

__all__ = ["PER_KINDS", "Key", "RunqLat", "differences"]


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

    def _attribute(self, items, clear: bool) -> dict[Key | None, Attribution]:
        if not self.blame:
            raise UsageError("attribution() needs RunqLat(blame=True)")
        if self._attributions is None:
            self._attributions = Attributions(Kinds(self.obj.btf, self._names()), self.per)
        comms = {raw: h.comm for raw, h in items}
        diffs = self._attributions.diff(items, self.obj.maps["blames"].items(), clear)
        return {self._key(raw, comms[raw]): a for raw, a in diffs.items()}

    def _forget_gone(self, idle) -> None:
        super()._forget_gone(idle)
        if self.per == "cgroup" and self._attributions is not None:  # culprits removed, victims alive
            gone = [c for c in self._attributions.culprit_cgroups() if not self._names().exists(c)]
            self._delete_culprits(self._attributions.forget_culprits(gone))

    def forget(self, ids) -> None:
        super().forget(ids)
        if self.blame:
            self._forget_culprits_of(set(ids))

    def _forget_culprits_of(self, victims: set) -> None:
        """Delete the culprit table's entries of these keys (those read by
        the last attribution: an entry made since is deleted next time)."""
        if self._attributions is not None:
            self._delete_culprits(self._attributions.forget(victims))

    def _delete_culprits(self, keys) -> None:
        blames = self.obj.maps["blames"]
        for k in keys:
            try:
                del blames[k]
            except KeyError:
                pass
