"""Histograms of durations, one per key, kept cumulative by the kernel
(bpf/keyed_hist.bpf.h): what runqlat and cpudist share.

The kernel never clears its counters; each snapshot is the difference from
the previous one, so no increment landing between a read and a clear is ever
lost. Two ways to take the differences, each with its own baselines:
``snapshot()`` in Python ({Key: Histogram}: the API, and the reference), and
``interval_text()`` in C (the text only, for ``-L`` with thousands of
threads). The first one called owns the tool's baselines; calling the other
afterwards raises RuntimeError.
"""

from __future__ import annotations

import collections
import os

from ..bpf import HistDiffs
from ..cgroup import Names
from ..hist import Histogram
from .base import Tool, check_choice, check_positive

# What ``per`` takes: enum per_kind's PER_<NAME> (None: PER_NONE), whose
# values the object's BTF gives.
PER_KINDS = (None, "pid", "tid", "pidns", "cgroup")

TYPE_CHECKING = False  # see pyrunq.bpf.globals

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


class KeyedHists(Tool):
    """The ``hists`` map of a tool, read as {Key: Histogram}: mixed in before
    the tool's base class (its other arguments go there). ``per``: None (one histogram), "pid", "tid",
    "pidns" or "cgroup"; ``max_keys`` bounds the map."""

    def __init__(self, milliseconds: bool = False, per: str | None = None, max_keys: int = 10240, **kw):
        check_choice("per", per, PER_KINDS)
        self.per, self.unit = per, "msecs" if milliseconds else "usecs"
        self._milliseconds, self._max_keys = milliseconds, check_positive("max_keys", max_keys)
        self._previous: dict[int, Histogram] = {}
        self._diffs: HistDiffs | None = None  # interval_text()'s baselines, in C
        self._method: str | None = None  # which of the two took differences first
        self._cgroup_names: Names | None = None
        super().__init__(**kw)

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["targ_per"] = obj.btf.enum("per_kind")[f"PER_{(self.per or 'none').upper()}"]
        obj.rodata["targ_ms"] = self._milliseconds
        obj.maps["hists"].max_entries = self._max_keys

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

    def snapshot(self, clear: bool = True) -> dict[Key | None, Histogram]:
        """Histograms of what happened since the last cleared snapshot, by key.

        Keys with no new samples are left out. ``clear=False`` leaves the
        baseline where it is, so the next snapshot covers this time too.
        """
        return self._snapshot(self.obj.maps["hists"].items(), clear)

    def _snapshot(self, items, clear: bool) -> dict[Key | None, Histogram]:
        self._baselines_of("snapshot")
        out, idle = differences(items, self._previous, self.unit, self._key, clear)
        if clear:
            self._forget_gone(idle)
        return out

    def interval_text(self, clear: bool = True) -> bytes:
        """What ``snapshot()`` would return, as the C tools print it: the
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

    def _baselines_of(self, method: str) -> None:
        """The first of snapshot() and interval_text() (or a tool's own C
        method, such as RunqLat.interval_stats()) called owns the baselines."""
        if self._method is None:
            self._method = method
        elif self._method != method:
            raise RuntimeError(
                f"this {type(self).__name__} takes differences with {self._method}(): {method}() keeps "
                f"other baselines, so use one of the two per {type(self).__name__}"
            )

    def close(self) -> None:
        super().close()
        if self._diffs is not None:
            self._diffs.close()

    def _forget_gone(self, idle) -> None:
        """Drop the entries of threads, processes and cgroups that are gone,
        so the map does not fill up. Only keys without new samples can be
        gone, and their last samples were reported by an earlier snapshot."""
        if self.per in ("pid", "tid"):
            self.forget([raw for raw in idle if not os.path.exists(f"/proc/{raw}")])
        elif self.per == "cgroup" and idle:
            self.forget(self._names().gone(idle))

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
