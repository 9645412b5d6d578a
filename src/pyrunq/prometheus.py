"""Run queue latency as Prometheus metrics: a prometheus_client collector over
one RunqLat whose selection (``pyrunq.selection``) is resolved again and again.

    from prometheus_client import CollectorRegistry, start_http_server
    from pyrunq.prometheus import RunqueueCollector
    from pyrunq.selection import Selection

    selection = Selection(cgroups=["/system.slice/docker-*.scope"])
    with selection.open(per="cgroup") as rq:
        collector = RunqueueCollector(rq, selection=selection, max_series=500,
                                      cgroup_labels=[re.compile(r"^/tenants/(?P<tenant>[^/]+)/")])
        registry = CollectorRegistry()
        registry.register(collector)
        start_http_server(9864, "127.0.0.1", registry)
        while True:
            time.sleep(10)
            collector.refresh()   # new and removed cgroups, without reloading

The kernel's counters are u32 and wrap around; ``RunqLat.snapshot()`` returns
deltas that survive a wrap and the collector adds them up in Python integers,
so every counter it exposes only ever grows while its series lives.

Per cgroup, the labels are the path and what it says of its container
(``pyrunq.containers``), made once per series: they add no series.
"""

from __future__ import annotations

import logging
import operator
import os
import re
import threading
import time
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

try:
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE_TEXT
except ImportError:  # before 0.21 (Debian 12's is 0.16) the text format was simply the latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST as CONTENT_TYPE_TEXT

from . import cgroup, containers
from .bpf import NAMED_MAX
from .errors import UsageError
from .hist import LOG2_SLOTS
from .selection import Selection
from .tools.blame import KINDS

LATENCY = "pyrunq_runqueue_latency_seconds"
ATTRIBUTED = "pyrunq_runqueue_wait_attributed_seconds_total"
BLAME = "pyrunq_runqueue_blame_seconds_total"
CULPRIT_LABELS = ("culprit_cgroup", "culprit_container_id", "culprit_pod_uid")
OTHER_CULPRITS = "other"  # the culprit_cgroup of every culprit not named
# Slot i holds [2^i, 2^(i+1)) us; the last slot also holds everything the
# kernel clamps, so only +Inf bounds it.
BOUNDS = tuple(floatToGoString(2 ** (i + 1) / 1e6) for i in range(LOG2_SLOTS - 1))
LABELS = {
    None: (),
    "cgroup": ("cgroup", *containers.FIELDS),
    "pid": ("pid", "comm"),
    "tid": ("tid", "comm"),
    "pidns": ("pidns",),
}
BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"
# Not ready while the kernel side loses more than this share of the samples
# of a refresh interval: a lost sample or two (clock skew) is no reason.
LOSS_LIMIT = 0.01

log = logging.getLogger(__name__)


def label_names(per: str | None, patterns: Sequence[re.Pattern] = ()) -> tuple[str, ...]:
    """The latency metric's label names: LABELS, then the other named groups
    of the cgroup label patterns, in their order."""
    extra = [name for p in patterns for name in p.groupindex if name not in LABELS[per]]
    return LABELS[per] + tuple(dict.fromkeys(extra))


def label_values(key, patterns: Sequence[re.Pattern] = ()) -> tuple[str, ...]:
    """Prometheus label values of a RunqLat key, in the order of label_names()."""
    if key is None:
        return ()
    if key.kind == "cgroup":
        labels = cgroup_labels(key.name, patterns)
        return tuple(labels.get(name, "") for name in label_names("cgroup", patterns))
    if key.kind == "pidns":
        return (str(key.id),)
    return (str(key.id), key.name)


def cgroup_labels(path: str, patterns: Sequence[re.Pattern] = ()) -> dict[str, str]:
    """The labels of a cgroup path: ``containers.parse()``, except where a
    pattern matches (``re.search``): the named groups it matched win, those
    of the first such pattern first. A group that took no part in the
    match sets nothing: an optional one leaves what parse() found."""
    found: dict[str, str] = {}
    for pattern in patterns:
        m = pattern.search(path)
        for name, value in (m.groupdict() if m else {}).items():
            if value is not None:
                found.setdefault(name, value)
    return {"cgroup": path, **containers.parse(path), **found}


class _Families:
    """Metric families handed to prometheus_client's encoder as a collector."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def _latency_family(labelnames=()) -> HistogramMetricFamily:
    return HistogramMetricFamily(LATENCY, "Time from enqueue on a run queue to running.", labels=labelnames)


def _line_prefixes(encoder, labelnames, values) -> list[str]:
    """The sample lines of one latency series up to their values, written by
    prometheus_client's ``encoder`` itself (label order, escaping)."""
    h = _latency_family(labelnames)
    h.add_metric(values, [(le, 0) for le in BOUNDS] + [("+Inf", 0)], 0)
    return _prefixes(encoder, h)


def _prefixes(encoder, family) -> list[str]:
    """The sample lines of ``family`` up to their values, as ``encoder`` writes them."""
    lines = encoder(_Families([family])).decode().splitlines()
    return [line.rsplit(" ", 1)[0] + " " for line in lines if not line.startswith("#")]


def _header(encoder, family) -> str:
    """An empty ``family``'s lines (# HELP, # TYPE) as ``encoder`` writes them."""
    return encoder(_Families([family])).decode().removesuffix("# EOF\n")


def _attributed_family(labelnames) -> CounterMetricFamily:
    return CounterMetricFamily(
        ATTRIBUTED.removesuffix("_total"),
        "Run queue waiting time by what held the CPU meanwhile: the series' own cgroup (self), "
        "another container, another cgroup of the host, a kernel thread, the idle task, or "
        "unattributed; adds up to the latency histogram's _sum.",
        labels=[*labelnames, "culprit_kind"],
    )


def _blame_family(labelnames) -> CounterMetricFamily:
    return CounterMetricFamily(
        BLAME.removesuffix("_total"),
        "Run queue waiting time by the cgroup whose tasks held the CPU: the largest few per "
        'series by name, from when they were named, the rest as culprit_cgroup="other".',
        labels=[*labelnames, *CULPRIT_LABELS],
    )


def _culprit_values(path: str) -> list[str]:
    """culprit_cgroup, culprit_container_id, culprit_pod_uid of a culprit cgroup."""
    if path == OTHER_CULPRITS:
        return [path, "", ""]
    c = containers.parse(path)
    return [path, c["container_id"], c["pod_uid"]]


class _Series:
    """One label set: its values, cumulative log2 slot counts and the exact
    sum; and who took the CPU from it: nanoseconds by culprit kind and by
    named culprit cgroup."""

    __slots__ = ("values", "slots", "sum_ns", "prefixes", "kinds", "named", "other_ns")

    def __init__(self, values: tuple[str, ...]):
        self.values = values
        self.slots, self.sum_ns = [0] * LOG2_SLOTS, 0
        self.prefixes: dict[str, Any] = {}  # what, in which content type -> its lines' prefixes or templates
        self.kinds = dict.fromkeys(KINDS, 0)
        self.named: dict[str, int] = {}  # culprit cgroup -> ns since it was named
        self.other_ns = 0

    def add(self, hist) -> None:
        self.slots = list(map(operator.add, self.slots, hist.slots))
        self.sum_ns += hist.sum_ns or 0

    def blame(self, kinds: dict[str, int]) -> None:
        """Add an interval's waiting by culprit kind."""
        for kind, ns in kinds.items():
            self.kinds[kind] += ns

    def blame_cgroups(self, took) -> None:
        """Add what an interval's culprit cgroups took (a CulpritCgroups):
        a cgroup named (``RunqLat.interval_named()``) has a counter of its
        own from then on (what it took before stays in "other"), so every
        counter only grows."""
        for path, ns in took.cgroups:  # two cgroups of one path (made again) share its counter
            self.named[path] = self.named.get(path, 0) + ns
        self.other_ns += took.other_ns

    def buckets(self) -> list[tuple[str, int]]:
        out, seen = [], 0
        for le, count in zip(BOUNDS, self.slots):
            seen += count
            out.append((le, seen))
        out.append(("+Inf", seen + self.slots[-1]))
        return out

    def text(self, encoder, content_type: str, labelnames) -> str:
        """This series as prometheus_client's ``encoder`` writes it; its lines
        up to the values are made once per format, and filled in with one
        %-format while every value has its short form (``FAST``)."""
        templates = self.prefixes.get(content_type)
        if templates is None:
            prefixes = _line_prefixes(encoder, labelnames, self.values)
            templates = self.prefixes[content_type] = _templates(prefixes, len(prefixes) - 1, 1)
        counts = list(accumulate(self.slots))
        if counts[-1] < FAST and self.sum_ns < FAST_NS:
            return templates[0] % (*counts, counts[-1], self.sum_ns / 1e9)
        return templates[1] % (*map(go_int, counts), go_int(counts[-1]), floatToGoString(self.sum_ns / 1e9))

    def kinds_text(self, encoder, content_type: str, labelnames) -> str:
        """This series' attributed counters (one per culprit kind), as the
        encoder writes them, from lines made once per format."""
        key = content_type + " attributed"
        templates = self.prefixes.get(key)
        if templates is None:
            family = _attributed_family(labelnames)
            for kind in self.kinds:
                family.add_metric([*self.values, kind], 0)
            templates = self.prefixes[key] = _templates(_prefixes(encoder, family), 0, len(self.kinds))
        return _fill(templates, self.kinds.values())

    def prefix(self, encoder, content_type: str, what: str, family, labelnames, labels) -> str:
        """The start of this series' line ``what``, with these ``labels``, in
        the family that ``family(labelnames)`` makes, as the encoder writes
        it: made once per format."""
        key = f"{content_type} {what}"
        prefix = self.prefixes.get(key)
        if prefix is None:
            f = family(labelnames)
            f.add_metric(labels, 0)
            prefix = self.prefixes[key] = _prefixes(encoder, f)
        return prefix[0]

    def culprits_text(self, encoder, content_type: str, labelnames) -> str:
        """This series' named culprit cgroups' counters and "other"'s."""
        key = f"{content_type} culprits {len(self.named)}"  # a culprit is named once: made again then
        templates = self.prefixes.get(key)
        if templates is None:
            prefixes = []
            for path in [*self.named, OTHER_CULPRITS]:
                family = _blame_family(labelnames)
                family.add_metric([*self.values, *_culprit_values(path)], 0)
                prefixes += _prefixes(encoder, family)
            templates = self.prefixes[key] = _templates(prefixes, 0, len(prefixes))
            for fewer in range(len(self.named)):  # the lines of fewer named culprits are not made again
                self.prefixes.pop(f"{content_type} culprits {fewer}", None)
        return _fill(templates, [*self.named.values(), self.other_ns])


# Below these, a count's and a number of seconds' text is the short one:
# f"{n}.0" (go_int) and repr() (floatToGoString of a float under 1e6).
FAST, FAST_NS = 1_000_000, 10**15


def _go_number(value) -> str:
    """``floatToGoString(value)``, its short forms without its work."""
    if type(value) is int:
        return go_int(value)
    return repr(value) if 0.0 <= value < FAST else floatToGoString(value)


def _templates(prefixes: list[str], counts: int, seconds: int) -> tuple[str, str]:
    """Lines from their prefixes, to be filled in with %: the first
    ``counts`` take counts, the next ``seconds`` a number of seconds. Two
    forms: one with each value's short form (%d.0, %r), one for strings."""
    escaped = [p.replace("%", "%%") for p in prefixes]
    fast = ["%d.0"] * counts + ["%r"] * seconds
    return "".join(p + f + "\n" for p, f in zip(escaped, fast)), "".join(p + "%s\n" for p in escaped)


def _fill(templates: tuple[str, str], ns) -> str:
    """Lines of nanosecond counters in seconds, from ``_templates(..., 0, n)``."""
    values = tuple(ns)
    if max(values, default=0) < FAST_NS and min(values, default=0) >= 0:
        return templates[0] % tuple(n / 1e9 for n in values)
    return templates[1] % tuple(floatToGoString(n / 1e9) for n in values)


def go_int(n: int) -> str:
    """``floatToGoString(n)`` of a count, without the float round trip (most
    of the time of a scrape went there)."""
    if 0 <= n < 1_000_000:
        return f"{n}.0"
    if not 0 <= n < 1 << 53:  # where floats stop being exact
        return floatToGoString(n)
    digits = str(n)
    return f"{(digits[0] + '.' + digits[1:]).rstrip('0.')}e+{len(digits) - 1:02d}"


class RunqueueCollector:
    """prometheus_client collector of one RunqLat (microseconds).

    Every scrape folds a fresh snapshot into the series first, so numbers are
    current. ``max_series`` caps the label sets: samples of a key that finds
    no room are counted as lost (reason "max_series") and the key as dropped.
    ``refresh()`` re-resolves the selection and forgets what is gone; the
    scrapes and the refresh share ``lock``.

    Per cgroup, ``cgroup_labels`` (compiled regexes) add labels to those of
    ``pyrunq.containers`` and win over them where they match (see
    ``cgroup_labels()``); their group names must be Prometheus label names,
    none of them ``cgroup``, ``le`` or starting with ``__`` (the CLI checks).

    With a RunqLat made with ``blame``, each series also has its waiting
    split by culprit kind (``ATTRIBUTED``), and its ``blame_top`` largest
    culprit cgroups named (``BLAME``, the rest as "other"; 0 to NAMED_MAX,
    0: none named; see ``RunqLat.interval_named()``).
    Per cgroup, the cgroup's own CPU pressure (PSI) and quota throttling are
    read from its cgroup files, where they exist.

    ``readiness(max_age)`` says from what the last ``refresh()`` saw (no map
    read) why the exporter is not ready: programs detached, a refresh failed
    (``refresh_failed()``) or is overdue, the kernel side losing samples.
    """

    def __init__(
        self,
        runqlat,
        max_series: int | None = None,
        selection: Selection | None = None,
        cgroup_labels: Sequence[re.Pattern] = (),
        blame_top: int = 3,
    ):
        if runqlat.unit != "usecs":
            raise UsageError("RunqueueCollector needs a RunqLat in microseconds")
        if cgroup_labels and runqlat.per != "cgroup":
            raise UsageError("labels from cgroup paths need a RunqLat per cgroup")
        if not 0 <= blame_top <= NAMED_MAX:
            raise UsageError(f"blame_top must be 0 to {NAMED_MAX}, not {blame_top}")
        self.rq, self.max_series, self.selection = runqlat, max_series, selection
        self.blame_top = blame_top
        self.cgroup_labels = list(cgroup_labels)
        self.labelnames = label_names(runqlat.per, self.cgroup_labels)
        self.lock = threading.Lock()
        self._series: dict = {}
        self._refused: set = set()  # keys the cap keeps out, each counted once
        self.series_dropped = self.samples_dropped = 0
        self.samples = 0  # every sample the kernel counted, with a series or not
        self._closed = False
        # readiness, from what the last refresh saw: the selection was resolved when opened
        self.refreshed, self.refresh_error = time.monotonic(), ""
        self.resolved = time.time()  # when the last refresh began: what was removed before has no series
        self._last_lost, self._last_samples, self.interval_loss = self.rq.lost, 0, 0.0

    def update(self) -> None:
        """Fold what the kernel counted since the last update (hold ``lock``)."""
        if self.rq.blame:
            snapshot, blame, named = self.rq.interval_named(self.blame_top)
        else:
            snapshot, blame, named = self.rq.snapshot(), {}, {}
        for key, hist in snapshot.items():
            self.samples += hist.total
            series = self._series.get(key) or self._admit(key)
            if series is None:
                self.samples_dropped += hist.total
            else:
                series.add(hist)
        for key, attribution in blame.items():
            series = self._series.get(key)
            if series is not None:  # else its samples are counted as dropped
                series.blame(attribution.kinds)
        for key, took in named.items():
            series = self._series.get(key)
            if series is not None:
                series.blame_cgroups(took)

    def _admit(self, key) -> _Series | None:
        if self.max_series is not None and len(self._series) >= self.max_series:
            if key not in self._refused:
                self._refused.add(key)
                self.series_dropped += 1
            return None
        self._refused.discard(key)
        series = self._series[key] = _Series(label_values(key, self.cgroup_labels))
        return series

    def refresh(self) -> None:
        """Push the selection, resolved now, into the kernel; drop what is gone."""
        start, resolved = time.monotonic(), time.time()
        ids, pids = self._resolve()
        with self.lock:
            if self._closed:
                return
            self.update()  # what was counted under the old selection
            if ids is not None:
                self.rq.set_cgroup_ids(ids)
            if pids is not None:
                self.rq.set_pids(pids)
            gone = self.prune()
            self._measure_loss()
            self.resolved = resolved
        self.refreshed, self.refresh_error = time.monotonic(), ""
        log.debug(
            "refresh: %s cgroups, %s processes tracked, %d series gone, %.1f ms",
            "all" if ids is None else len(ids),
            "all" if pids is None else len(pids),
            len(gone),
            (time.monotonic() - start) * 1e3,
        )

    def _measure_loss(self) -> None:
        """The share of the samples of this refresh interval that the kernel
        side could not count (hold ``lock``)."""
        lost, samples = self.rq.lost, self.samples
        new_lost, new_samples = lost - self._last_lost, samples - self._last_samples
        self._last_lost, self._last_samples = lost, samples
        self.interval_loss = new_lost / (new_lost + new_samples) if new_lost else 0.0

    def refresh_failed(self, error: str) -> None:
        """Note that a refresh did not complete, for ``readiness()``."""
        self.refresh_error = error

    def readiness(self, max_age: float) -> list[str]:
        """Why the exporter is not ready; none: it is. From what the last
        refresh saw (no map read, no lock): the programs are attached, the
        last refresh succeeded less than ``max_age`` seconds ago, and in its
        interval the kernel side lost at most LOSS_LIMIT of the samples."""
        problems = []
        if self._closed:
            problems.append("stopping")
        detached = self.rq.detached()
        if detached:
            problems.append(f"programs not attached: {', '.join(detached)}")
        if self.refresh_error:
            problems.append(f"the last refresh failed: {self.refresh_error}")
        age = time.monotonic() - self.refreshed
        if age > max_age:
            problems.append(f"no refresh for {age:.0f} s")
        if self.interval_loss > LOSS_LIMIT:
            problems.append(f"{self.interval_loss:.1%} of the samples lost in the last refresh interval")
        return problems

    def _resolve(self) -> tuple[set | None, set | None]:
        """Outside the lock: scanning /proc and the cgroup tree takes a while."""
        if self.selection is None:
            return None, None
        tree = cgroup.tree() if self.selection.cgroup_globs else {}
        return self.selection.cgroup_ids(tree), self.selection.process_ids()

    def prune(self, tree: dict[int, str] | None = None) -> list:
        """Forget the series (and kernel entries) of keys no longer traced or
        gone: exited processes, removed cgroups (hold ``lock``). ``tree``
        (cgroup.tree()) must be newer than the last update: a cgroup it
        does not know would count as removed."""
        alive = self._alive(cgroup.tree() if tree is None and self.rq.per == "cgroup" else tree)
        gone = [k for k in (*self._series, *self._refused) if not alive(k)]
        for key in gone:
            self._series.pop(key, None)
            self._refused.discard(key)
        self.rq.forget(k.id for k in gone)
        return gone

    def _alive(self, tree):
        rq = self.rq
        if rq.per == "cgroup":
            return lambda k: k.id in tree and (rq.cgroup_ids is None or k.id in rq.cgroup_ids)
        if rq.per == "pid":
            return lambda k: os.path.exists(f"/proc/{k.id}") and (rq.pids is None or k.id in rq.pids)
        if rq.per == "tid":
            return lambda k: os.path.exists(f"/proc/{k.id}")
        return lambda k: True

    def close(self) -> None:
        """Stop reading the RunqLat (before it closes): later scrapes get nothing."""
        with self.lock:
            self._closed = True

    def collect(self):
        with self.lock:
            if self._closed:
                return []
            self.update()
            return self._families()

    def describe(self):
        with self.lock:  # names only, for the registry: no snapshot needed
            return [] if self._closed else self._families()

    def exposition(self, encoder=generate_latest, content_type: str = CONTENT_TYPE_TEXT, extra=()) -> bytes:
        """The bytes ``encoder`` (prometheus_client's ``generate_latest``, or
        what its ``choose_encoder`` picks, OpenMetrics too) makes of
        ``collect()`` and the ``extra`` families, with the latency series
        written from lines prepared once per series: the encoder spends some
        15 us per sample, 200 ms on 500 series."""
        with self.lock:
            if self._closed:
                return encoder(_Families(list(extra)))
            self.update()
            names = self.labelnames
            # OpenMetrics ends each document with "# EOF": only the last one here
            parts = [_header(encoder, _latency_family(names))]
            parts += [s.text(encoder, content_type, names) for s in self._series.values()]
            if self.rq.blame:  # the same prepared lines for attribution: 7 more samples per series
                parts.append(_header(encoder, _attributed_family(names)))
                parts += [s.kinds_text(encoder, content_type, names) for s in self._series.values()]
                if self.blame_top:
                    parts.append(_header(encoder, _blame_family(names)))
                    parts += [s.culprits_text(encoder, content_type, names) for s in self._series.values()]
            if self.rq.per == "cgroup":  # and for what each cgroup's files say of its CPU
                parts += self._cpu_text(encoder, content_type)
            rest = encoder(_Families([*self._others(blame=False, cpu=False), *extra]))
            return "".join(parts).encode() + rest

    def _cpu_text(self, encoder, content_type: str) -> list[str]:
        """cgroup_cpu_families() as the encoder writes them, from prepared lines."""
        names, mount, parents = self.labelnames, cgroup.cgroup2_mount(), dict[str, bool]()
        lines: list[list[str]] = [[_header(encoder, family(names))] for family in CPU_FAMILIES]
        for s in self._series.values():
            files = cgroup.cpu_files(mount + s.values[0], parents)
            for i, what, labels, value in _cpu_samples(s.values, files):
                prefix = s.prefix(encoder, content_type, what, CPU_FAMILIES[i], names, labels)
                lines[i].append(prefix + _go_number(value) + "\n")
        return [line for family in lines for line in family]

    def _families(self) -> list:
        return [self._latency(), *self._others()]

    def _others(self, blame: bool = True, cpu: bool = True) -> list:
        """The families after the latency's (``blame``: with attribution's;
        ``cpu``: with the cgroups' CPU files')."""
        attribution = self._blame() if self.rq.blame and blame else []
        pressure = (
            cgroup_cpu_families(self.labelnames, self._series.values())
            if self.rq.per == "cgroup" and cpu
            else []
        )
        unattributed = [self._unattributed()] if self.rq.blame else []
        return [*attribution, *pressure, self._lost(), *unattributed, *self._gauges(), *self._programs()]

    def _unattributed(self):
        """Why parts of waits are unattributed: whole node, by reason."""
        why = CounterMetricFamily(
            "pyrunq_unattributed_waits",
            "Waits with a part that no culprit explains, by reason: migrated (queued on one CPU, ran on "
            "another), history (longer than the switches kept), full (the culprit table), unseen.",
            labels=["reason"],
        )
        for reason, n in self.rq.unattributed().items():
            why.add_metric([reason], n)
        return why

    def _blame(self) -> list:
        """The attribution families, for ``collect()`` (``exposition()``
        writes the same lines from prepared prefixes)."""
        kinds, named = _attributed_family(self.labelnames), _blame_family(self.labelnames)
        for series in self._series.values():
            for kind, ns in series.kinds.items():
                kinds.add_metric([*series.values, kind], ns / 1e9)
            if self.blame_top:
                for path, ns in [*series.named.items(), (OTHER_CULPRITS, series.other_ns)]:
                    named.add_metric([*series.values, *_culprit_values(path)], ns / 1e9)
        return [kinds, named] if self.blame_top else [kinds]

    def _latency(self):
        h = _latency_family(self.labelnames)
        for series in self._series.values():
            h.add_metric(series.values, series.buckets(), series.sum_ns / 1e9)
        return h

    def _lost(self):
        lost = CounterMetricFamily(
            "pyrunq_lost_samples", "Latency samples not counted, by reason.", labels=["reason"]
        )
        for reason, n in self.rq.stats().items():
            lost.add_metric([reason], n)
        lost.add_metric(["max_series"], self.samples_dropped)
        return lost

    def _gauges(self):
        dropped = CounterMetricFamily(
            "pyrunq_series_dropped",
            "Keys refused a series by the cap on the number of series.",
            value=self.series_dropped,
        )
        series = GaugeMetricFamily(
            "pyrunq_series", "Latency histogram series exposed now.", value=len(self._series)
        )
        tracked = GaugeMetricFamily(
            "pyrunq_tracked", "Processes or cgroups the kernel filter holds.", labels=["kind"]
        )
        for kind, ids in (("process", self.rq.pids), ("cgroup", self.rq.cgroup_ids)):
            if ids is not None:
                tracked.add_metric([kind], len(ids))
        refreshed = GaugeMetricFamily(
            "pyrunq_refresh_timestamp_seconds",
            "When the last refresh began to resolve what is traced (Unix time): a process or cgroup "
            "gone before then has no series.",
            value=self.resolved,
        )
        return dropped, series, tracked, refreshed

    def _programs(self):
        """Run counts and times of the attached programs, which the kernel
        keeps only while kernel.bpf_stats_enabled is 1."""
        if not bpf_stats_enabled():
            return []
        runs = CounterMetricFamily("pyrunq_bpf_program_runs", "Runs of each BPF program.", labels=["program"])
        secs = CounterMetricFamily(
            "pyrunq_bpf_program_run_seconds", "Time spent in each BPF program.", labels=["program"]
        )
        for name, (count, ns) in self.rq.program_stats().items():
            runs.add_metric([name], count)
            secs.add_metric([name], ns / 1e9)
        return [runs, secs]


def cgroup_cpu_families(labelnames, series) -> list:
    """What each series' cgroup files say of its CPU: pressure stall time
    (cpu.pressure, PSI) and quota throttling (cpu.stat, with the cpu
    controller); a series whose files lack them has none of these samples."""
    families = [family(labelnames) for family in CPU_FAMILIES]
    mount, parents = cgroup.cgroup2_mount(), dict[str, bool]()
    for s in series:
        for i, _, labels, value in _cpu_samples(s.values, cgroup.cpu_files(mount + s.values[0], parents)):
            families[i].add_metric(labels, value)
    return families


def _cpu_samples(values, files) -> list[tuple[int, str, list[str], float]]:
    """One series' samples of the cgroup CPU families, in order: (family:
    0 pressure, 1 throttled, 2 periods; what it is; labels; value), those
    its files have."""
    pressure, stat = files["pressure"], files["stat"]
    out = [(0, kind, [*values, kind], pressure[kind] / 1e6) for kind in ("some", "full") if kind in pressure]
    if "throttled_usec" in stat:
        out.append((1, "throttled", list(values), stat["throttled_usec"] / 1e6))
    if "nr_throttled" in stat:
        out.append((2, "periods", list(values), stat["nr_throttled"]))
    return out


def _pressure_family(labelnames) -> CounterMetricFamily:
    return CounterMetricFamily(
        "pyrunq_cgroup_cpu_pressure_seconds",
        "The cgroup's cpu.pressure total: time some (or all) of its tasks stalled waiting for a CPU.",
        labels=[*labelnames, "kind"],
    )


def _throttled_family(labelnames) -> CounterMetricFamily:
    return CounterMetricFamily(
        "pyrunq_cgroup_cpu_throttled_seconds",
        "The cgroup's cpu.stat throttled_usec: time its CPU quota held it back.",
        labels=labelnames,
    )


def _periods_family(labelnames) -> CounterMetricFamily:
    return CounterMetricFamily(
        "pyrunq_cgroup_cpu_throttled_periods",
        "The cgroup's cpu.stat nr_throttled: quota periods in which it was throttled.",
        labels=labelnames,
    )


CPU_FAMILIES = (_pressure_family, _throttled_family, _periods_family)


def bpf_stats_enabled() -> bool:
    try:
        with open(BPF_STATS) as f:
            return f.read().strip() == "1"
    except OSError:
        return False
