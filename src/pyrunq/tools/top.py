"""pyrunq top's model: one interval's run queue latency per process, thread
or cgroup, as rows to sort, filter and print.

``Sampler`` owns a ``RunqLat`` and turns each of its snapshots (the deltas
since the previous one) into a ``Frame``; everything else here is pure, so it
is tested without a kernel or a terminal. Percentiles and max come from the
kernel's fine log2 buckets (4 per power of two), as runqlat's do: the true
value lies in the same bucket, within 25%. Mean and wait share come from the
kernel's exact sum; the shares of each culprit kind and the culprits, from
the kernel's exact attribution of every wait (``pyrunq.tools.blame``).
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import math
import operator
import re
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from .. import containers
from ..hist import highest_bound, percentiles
from .base import check_choice
from .blame import Attribution, cgroup_label
from .runqlat import RunqLat

BY = {"process": "pid", "thread": "tid", "cgroup": "cgroup"}  # --by -> RunqLat's per
TREND = 10  # intervals of p99 history shown per row
# Sort keys in the order of the table's columns (the trend is not one).
SORTS = ("id", "waits", "avg", "p50", "p99", "max", "wait%", "name")
# p99 levels of the trend: below 4us, 16us, 64us, 256us, 1ms, 4ms, 16ms, above.
SPARKS = {True: "▁▂▃▄▅▆▇█", False: "_.-:=+*#"}


def quantiles(buckets, total: int) -> tuple[float, float, int]:
    """(p50, p99, max) of fine buckets holding ``total`` (> 0) samples, as
    ``Histogram.percentile`` and ``Histogram.max`` give them, without a
    Histogram: 10,000 threads a refresh."""
    p50, p99 = percentiles(buckets, total, (50, 99))
    top = highest_bound(buckets)
    assert top is not None, "total > 0: a bucket holds a sample"
    return p50, p99, top


class Row(NamedTuple):
    """One key's interval. Times in microseconds; ``wait_pct``: the share of
    the interval spent runnable but not running (over 100 for a process or
    cgroup whose tasks wait at once); ``trend``: the last p99s, None where
    the key did not wait. (A NamedTuple: 10,000 of them a refresh.)"""

    kind: str
    id: int
    name: str  # comm, or the cgroup's path
    label: str  # what the table shows: the name, or a container's short id
    waits: int
    waits_per_s: float
    avg_us: float | None
    p50_us: float
    p99_us: float
    max_us: int
    wait_pct: float | None
    trend: tuple[float | None, ...]
    container: dict | None = None
    blame: Attribution | None = None  # who held the CPU while it waited

    def culprit(self) -> str:
        """Who held the CPU longest while it waited, as a person names it:
        a task or cgroup, or "idle" (the CPU was free); "" for nobody known."""
        if not self.blame:
            return ""
        top = self.blame.culprits[0] if self.blame.culprits else None
        if self.blame.kinds["idle"] > (top.ns if top else 0):
            return "idle"
        return top.label() if top else ""


@dataclasses.dataclass(frozen=True)
class Pair:
    """Who took the CPU from whom in an interval: a row's key (``victim``,
    its label) and one of its culprits, in nanoseconds per second."""

    victim: str
    victim_id: int
    culprit: str
    kind: str
    ns_per_s: float


@dataclasses.dataclass(frozen=True)
class Totals:
    """Every key's waits together, and the machine's context switches."""

    waits: int
    waits_per_s: float
    avg_us: float | None
    p50_us: float | None
    p99_us: float | None
    max_us: int | None
    ctxt_per_s: float | None
    lost: dict


@dataclasses.dataclass(frozen=True)
class Frame:
    time: float  # epoch seconds at the end of the interval
    seconds: float
    by: str
    rows: Any  # a list of Rows, or TableRows (the same, made when asked)
    totals: Totals
    pairs: list = dataclasses.field(default_factory=list)  # by ns_per_s, largest first
    hists: dict = dataclasses.field(default_factory=dict)  # (kind, id) -> the row's Histogram


@dataclasses.dataclass(frozen=True)
class View:
    """What the screen shows of frames: the keys change it (``apply_key``)."""

    by: str = "process"
    sort: str = "p99"
    filter: str = ""
    paused: bool = False
    help: bool = False
    blame: bool = False  # the victim -> culprit table instead of the rows


class Trends:
    """The last ``length`` intervals' p99 of each key that waited in them
    (keys: the keys' ids; a Sampler's keys are of one kind). A key idle
    that long is forgotten with the interval."""

    def __init__(self, length: int = TREND):
        self.length = length
        self._intervals: collections.deque = collections.deque(maxlen=length)  # {key: p99} each

    def add(self, p99s: dict) -> tuple:
        """Add one interval (key -> p99 of the keys that waited); return the
        history to take trends from (``trend_of``): one dict per interval,
        none changed later, so a frame keeps its own."""
        self._intervals.append(p99s)
        return tuple(self._intervals)

    def update(self, p99s: dict) -> dict:
        """Add one interval; return key -> trend of its keys."""
        history = self.add(dict(p99s))
        return {key: trend_of(history, key, self.length) for key in p99s}


def trend_of(history: tuple, key, length: int) -> tuple:
    """A key's last ``length`` p99s (None where it did not wait), oldest first."""
    return (None,) * (length - len(history)) + tuple([h.get(key) for h in history])


def label_of(kind: str, name: str) -> tuple[str, dict | None]:
    """A cgroup row shows its container (``podman:f7dcb501c860``) when its path
    names one, else its path; processes and threads their comm."""
    if kind != "cgroup":
        return name, None
    found = containers.parse(name)
    return cgroup_label(name), found if found["container_id"] else None


class KeyInterval(NamedTuple):
    """One key's waits in an interval, as a row needs them: ``sum_ns``
    None where the kernel did not keep it; p50, p99 and max in usecs."""

    key: Any  # RunqLat's Key
    waits: int
    sum_ns: int | None
    p50: float
    p99: float
    max: int


def make_frame(
    snapshot: dict, seconds: float, by: str, trends: Trends, ctxt_per_s=None, lost=None, blame=None
) -> Frame:
    """One interval: ``snapshot`` is RunqLat's {Key: Histogram} (usecs) of
    ``seconds``; keys without waits are absent, so they have no row.
    ``blame``: RunqLat's {Key: Attribution} of the same interval. The
    reference of what ``Sampler`` makes from ``RunqLat.interval_stats()``."""
    keys = [KeyInterval(k, h.total, h.sum_ns, *quantiles(h.buckets, h.total)) for k, h in snapshot.items()]
    buckets = [sum(column) for column in zip(*(h.buckets for h in snapshot.values()))]
    sums = [h.sum_ns for h in snapshot.values()]
    total_ns = None if None in sums else sum(sums)
    frame = frame_of(keys, buckets, total_ns, seconds, by, trends, ctxt_per_s, lost, blame)
    return dataclasses.replace(frame, hists={(k.kind, k.id): h for k, h in snapshot.items()})


def frame_of(
    keys, buckets, sum_ns, seconds: float, by: str, trends: Trends, ctxt_per_s=None, lost=None, blame=None
) -> Frame:
    """One interval from its keys' ``KeyInterval``s, all keys' new counts
    together bucket by bucket (``buckets``) and their ``sum_ns``."""
    blame = {(k.kind, k.id): a for k, a in (blame or {}).items()}
    trend = trends.update({k.key.id: k.p99 for k in keys})
    rows = []
    for k in keys:
        key = k.key
        label, container = label_of(key.kind, key.name)
        rows.append(
            Row(
                key.kind,
                key.id,
                key.name,
                label,
                k.waits,
                k.waits / seconds,
                None if k.sum_ns is None else k.sum_ns / k.waits / 1000,
                k.p50,
                k.p99,
                k.max,
                None if k.sum_ns is None else k.sum_ns / seconds / 1e7,
                trend[key.id],
                container,
                blame.get((key.kind, key.id)),
            )
        )
    total = totals(buckets, sum_ns, seconds, ctxt_per_s, lost or {})
    return Frame(time.time(), seconds, by, rows, total, pairs(rows, seconds))


def pairs(rows, seconds: float) -> list[Pair]:
    """Every (victim, culprit) of the rows, the most CPU taken first."""
    out = [
        Pair(r.label, r.id, c.label(), c.kind, c.ns / seconds)
        for r in rows
        if r.blame
        for c in r.blame.culprits
    ]
    return sorted(out, key=lambda p: -p.ns_per_s)


class TableRows(Sequence):
    """A frame's rows from ``RunqLat.interval_rows()``: each Row is made
    when asked for (a screen shows 50 of 10,000 threads), the same Row
    ``frame_of`` makes; in map order, as a list of rows would be."""

    # top's sort keys -> pyrunq.bpf.ORDERS (the name is sorted in Python)
    ORDERS = {"id": "key", "wait%": "sum", **{s: s for s in ("waits", "avg", "p50", "p99", "max")}}

    def __init__(self, table, seconds: float, history: tuple, length: int):
        self.table, self.seconds, self._history, self._length = table, seconds, history, length
        self._indices = table.indices()
        self._made: dict[int, Row] = {}

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.row(j) for j in self._indices[i]]
        return self.row(self._indices[i])

    def ordered(self, sort: str, limit: int | None = None) -> list[Row]:
        """The first ``limit`` rows in ``sort``'s order (not "name")."""
        return [self.row(i) for i in self.table.order(self.ORDERS[sort], self.seconds)[:limit]]

    def row(self, i: int) -> Row:
        """The table's row i as a Row."""
        made = self._made.get(i)
        if made is None:
            made = self._made[i] = self._make(i)
        return made

    def _make(self, i: int) -> Row:
        (key, s, blame), seconds = self.table.row(i), self.seconds
        label, container = label_of(key.kind, key.name)
        return Row(
            key.kind,
            key.id,
            key.name,
            label,
            s.waits,
            s.waits / seconds,
            s.sum_ns / s.waits / 1000,
            s.p50,
            s.p99,
            s.max,
            s.sum_ns / seconds / 1e7,
            trend_of(self._history, s.key, self._length),
            container,
            blame,
        )


def totals(buckets, sum_ns: int | None, seconds: float, ctxt_per_s, lost: dict) -> Totals:
    """Every key's waits together: their counts bucket by bucket, and the
    sum of their latencies (None if the kernel did not keep it)."""
    count = sum(buckets)
    avg = sum_ns / count / 1000 if count and sum_ns is not None else None
    p50, p99, top = quantiles(buckets, count) if count else (None, None, None)
    return Totals(count, count / seconds, avg, p50, p99, top, ctxt_per_s, lost)


# ---- sorting and filtering ---------------------------------------------------


def _sort_key(column: str):
    if column == "id":
        return lambda r: r.id
    if column == "name":
        return lambda r: (r.label.lower(), r.id)
    field = {"waits": "waits_per_s", "avg": "avg_us", "wait%": "wait_pct"}.get(column, f"{column}_us")
    # largest first; ties: the busier key first
    return lambda r: (-(getattr(r, field) or 0), -r.waits, r.id)


def visible(rows, view: View, limit: int | None = None) -> list:
    """The rows the view keeps (``filter``: a case-insensitive piece of the
    name, label or id), in its sort order; the first ``limit`` of them."""
    check_choice("sort", view.sort, SORTS)
    if isinstance(rows, TableRows) and not view.filter and view.sort != "name":
        return rows.ordered(view.sort, limit)  # sorted in C: objects for the rows shown only
    wanted = view.filter.lower()
    if wanted:
        rows = [
            r for r in rows if wanted in r.name.lower() or wanted in r.label.lower() or wanted in str(r.id)
        ]
    return sorted(rows, key=_sort_key(view.sort))[:limit]


def apply_key(view: View, key: str) -> View | None:
    """The view after a key press; None for ``q`` (quit). ``/`` (the filter
    prompt) is the screen's: it asks for text."""
    if key == "q":
        return None
    if key in "ptc" and len(key) == 1:
        return dataclasses.replace(view, by={"p": "process", "t": "thread", "c": "cgroup"}[key])
    if key in ("<", ">"):
        step = 1 if key == ">" else -1
        return dataclasses.replace(view, sort=SORTS[(SORTS.index(view.sort) + step) % len(SORTS)])
    if key == " ":
        return dataclasses.replace(view, paused=not view.paused)
    if key == "b":
        return dataclasses.replace(view, blame=not view.blame)
    if key in ("h", "?"):
        return dataclasses.replace(view, help=not view.help)
    if view.help:  # any other key closes the help
        return dataclasses.replace(view, help=False)
    return view


# ---- text ----------------------------------------------------------------------

ID_HEADERS = {"process": "PID", "thread": "TID", "cgroup": "CGROUP ID"}
NAME_HEADERS = {"process": "COMM", "thread": "COMM", "cgroup": "CGROUP / CONTAINER"}
# (sort key, header, width) of the right-aligned columns after the id
NUMBERS = (
    ("waits", "WAITS/s", 8),
    ("avg", "AVG", 7),
    ("p50", "P50", 7),
    ("p99", "P99", 7),
    ("max", "MAX", 7),
)
# The share of a row's waiting each culprit kind took (unattributed is the rest).
SHARES = (
    ("self", "SELF%"),
    ("container", "CONT%"),
    ("host", "HOST%"),
    ("kernel", "KERN%"),
    ("idle", "IDLE%"),
)
CULPRIT_WIDTH = 30
HELP = """\
pyrunq top: run queue latency, the time a task waits for a CPU once runnable.

  p t c    one row per process, thread or cgroup (container)
  < >      sort by the column to the left / right (marked with *)
  /        show only rows whose name or id holds a text (empty: all)
  b        who took the CPU from whom (a victim -> culprit table), or back
  space    pause / resume          h ?   this help          q   quit

WAITS/s: waits for a CPU per second. AVG: the mean wait (exact).
P50, P99, MAX: from the kernel's log2 buckets (4 per power of two): within
25% of the true value, as runqlat's percentiles. WAIT%: time spent waiting
per second of wall time (a process's threads add up: it can pass 100).
P99 TREND: the last intervals' p99, one character each, on a fixed scale:
below 4us, 16us, 64us, 256us, 1ms, 4ms, 16ms, and above; blank: no wait.
SELF% CONT% HOST% KERN% IDLE%: of the time it waited, the share the CPU
ran its own cgroup, another container, another cgroup of the host, kernel
threads, or nothing (exact; what the kernel could not attribute is the
rest). TOP CULPRIT: who held the CPU longest while it waited.

Any key closes this help."""


def fmt_us(us) -> str:
    """A duration in at most 6 characters: 850us, 4.21ms, 35.0ms, 1.20s."""
    if us is None:
        return "-"
    for scale, unit in ((1, "us"), (1e3, "ms"), (1e6, "s")):
        v = us / scale
        if unit == "s" or v < 999.5:
            break
    if unit == "us" or v >= 99.95:
        return f"{v:.0f}{unit}"
    return f"{v:.2f}{unit}" if v < 9.995 else f"{v:.1f}{unit}"


def fmt_rate(per_s: float | None) -> str:
    if per_s is None:
        return "-"
    return f"{per_s:.1f}" if per_s < 9.95 else f"{per_s:,.0f}"


def spark(p99_us, utf8: bool = True) -> str:
    """One trend character: the p99's level on a fixed log4 scale from 4us."""
    if p99_us is None:
        return " "
    chars = SPARKS[utf8]
    level = 0 if p99_us < 4 else int(math.log2(p99_us) // 2)
    return chars[min(level, len(chars) - 1)]


# p99 -> its trend character, by utf8: 10,000 rows of 10 a refresh, whose
# values repeat (a bucket's bounds and the steps between them)
_SPARKS: dict[bool, dict] = {True: {}, False: {}}


def sparkline(trend, utf8: bool = True) -> str:
    """A row's trend, a character per p99 (``spark``)."""
    known = _SPARKS[utf8]
    if len(known) > 4096:  # bounded, whatever the values
        known.clear()
    for v in trend:
        if v not in known:
            known[v] = spark(v, utf8)
    return "".join([known[v] for v in trend])


def header_lines(frame: Frame | None, view: View) -> list[str]:
    """The two lines above the table: what is shown, and the totals."""
    flags = "".join([f'  filter "{view.filter}"' if view.filter else "", "  PAUSED" if view.paused else ""])
    when = time.strftime("%H:%M:%S", time.localtime(frame.time if frame else time.time()))
    interval = f"  {frame.seconds:.2f}s" if frame else ""
    first = f"pyrunq top - {when}{interval}  by {view.by}  sort {view.sort}{flags}"
    if frame is None:
        return [first, "waiting for the first interval..."]
    t = frame.totals
    second = (
        f"all waits {fmt_rate(t.waits_per_s)}/s  avg {fmt_us(t.avg_us)}  p50 {fmt_us(t.p50_us)}"
        f"  p99 {fmt_us(t.p99_us)}  max {fmt_us(t.max_us)}"
        f"  ctx switches {fmt_rate(t.ctxt_per_s)}/s"
    )
    lost = ", ".join(f"{k}={v}" for k, v in t.lost.items() if v)
    return [first, second + (f"  LOST {lost}" if lost else "")]


def _head(text: str, width: int, sorted_here: bool) -> str:
    return ("*" + text if sorted_here else text).rjust(width)


def column_header(view: View) -> str:
    s = view.sort
    cells = [_head(ID_HEADERS[view.by], 9, s == "id")]
    cells += [_head(h, w, s == key) for key, h, w in NUMBERS]
    cells += [_head("WAIT%", 6, s == "wait%"), "P99 TREND".ljust(TREND)]
    cells += [h for _, h in SHARES] + ["TOP CULPRIT".ljust(CULPRIT_WIDTH)]
    cells.append(("*" if s == "name" else "") + NAME_HEADERS[view.by])
    return " ".join(cells)


def share_cells(row: Row) -> list[str]:
    """SELF% .. IDLE% of a row: whole percents, "-" without attribution."""
    shares = row.blame.shares() if row.blame and row.blame.total_ns else None
    return [(f"{shares[k] * 100:.0f}" if shares else "-").rjust(5) for k, _ in SHARES]


def cut_end(text: str, width: int, utf8: bool = True) -> str:
    """``text`` in ``width`` columns: a long one loses its end (a culprit's
    container id comes first, then its name)."""
    if len(text) <= width:
        return text.ljust(width)
    return text[: width - 1] + ("…" if utf8 else "~")


def row_line(row: Row, utf8: bool = True) -> str:
    pct = (
        "-"
        if row.wait_pct is None
        else f"{row.wait_pct:.1f}"
        if row.wait_pct < 99.95
        else f"{row.wait_pct:.0f}"
    )
    values = (row.waits_per_s, row.avg_us, row.p50_us, row.p99_us, row.max_us)
    numbers = [fmt_rate(values[0])] + [fmt_us(v) for v in values[1:]]
    cells = [f"{row.id:>9}"] + [n.rjust(w) for n, (_, _, w) in zip(numbers, NUMBERS)]
    cells += [pct.rjust(6), sparkline(row.trend, utf8)]
    cells += share_cells(row) + [cut_end(row.culprit(), CULPRIT_WIDTH, utf8)]
    return " ".join(cells + [row.label])


# where a row's name starts: the id, the numbers, WAIT%, the trend, the
# shares and the top culprit, each followed by a space
NAME_AT = 9 + sum(1 + w for _, _, w in NUMBERS) + 1 + 6 + 1 + TREND + 1 + 6 * len(SHARES) + CULPRIT_WIDTH + 1

PAIRS_HEADER = f"{'MS/s':>8} {'KIND':<12} {'CULPRIT':<40} VICTIM"


def pair_line(p: Pair) -> str:
    """One row of the victim -> culprit table: the CPU time taken per second."""
    return f"{p.ns_per_s / 1e6:>8.2f} {p.kind:<12} {p.culprit[:40]:<40} {p.victim} ({p.victim_id})"


def fit_row(line: str, width: int, utf8: bool = True) -> str:
    """A row cut to the screen; a long cgroup path loses its start, not its end."""
    if len(line) <= width:
        return line
    if width < NAME_AT + 8:
        return line[:width]
    return line[:NAME_AT] + ("…" if utf8 else "~") + line[len(line) - (width - NAME_AT - 1) :]


def screen_lines(frame: Frame | None, view: View, width: int, height: int, utf8: bool = True) -> list:
    """(text, style) lines that fill a width x height screen; style is
    "title", "columns" or ""."""
    lines = [(line, "title") for line in header_lines(frame, view)] + [("", "")]
    if view.help:
        lines += [(line, "") for line in HELP.splitlines()]
    elif view.blame:
        lines.append((PAIRS_HEADER, "columns"))
        shown = frame.pairs[: max(0, height - len(lines))] if frame else []
        lines += [(pair_line(p), "") for p in shown]
    else:
        lines.append((column_header(view), "columns"))
        rows = visible(frame.rows, view, max(0, height - len(lines))) if frame else []
        lines += [(fit_row(row_line(r, utf8), width, utf8), "") for r in rows]
    return [(text[:width], style) for text, style in lines[:height]]


def batch_text(frame: Frame, view: View, utf8: bool = True) -> str:
    """One interval as ``-b`` prints it: the header, the columns, every row."""
    lines = header_lines(frame, view) + [""]
    if view.blame:
        lines += [PAIRS_HEADER] + [pair_line(p) for p in frame.pairs]
    else:
        lines += [column_header(view)] + [row_line(r, utf8) for r in visible(frame.rows, view)]
    return "\n".join(lines) + "\n\n"


def json_doc(frame: Frame, view: View) -> dict:
    """One interval as ``--json`` prints it: times in microseconds."""

    def row(r: Row) -> dict:
        doc: dict = {
            "kind": r.kind,
            "id": r.id,
            ("path" if r.kind == "cgroup" else "comm"): r.name,
            "waits": r.waits,
            "waits_per_s": r.waits_per_s,
            "avg_us": r.avg_us,
            "p50_us": r.p50_us,
            "p99_us": r.p99_us,
            "max_us": r.max_us,
            "wait_pct": r.wait_pct,
            "trend_p99_us": list(r.trend),
        }
        if r.container:
            doc["container"] = r.container
        if r.blame:
            doc["blame"] = {
                "kinds_ns": r.blame.kinds,
                "culprits": [dataclasses.asdict(c) for c in r.blame.culprits],
            }
        return doc

    t = frame.totals
    return {
        "time": frame.time,
        "interval_s": frame.seconds,
        "by": frame.by,
        "sort": view.sort,
        "totals": {
            "waits": t.waits,
            "waits_per_s": t.waits_per_s,
            "avg_us": t.avg_us,
            "p50_us": t.p50_us,
            "p99_us": t.p99_us,
            "max_us": t.max_us,
            "ctxt_per_s": t.ctxt_per_s,
            "lost": t.lost,
        },
        "rows": [row(r) for r in visible(frame.rows, view)],
    }


# ---- the kernel side -------------------------------------------------------------


def context_switches() -> int | None:
    """The machine's context switches since boot (``ctxt`` of /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            m = re.search(r"^ctxt (\d+)", f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


class Sampler:
    """A ``RunqLat`` keyed by process, thread or cgroup; each ``sample()`` is
    the Frame of the time since the previous one. ``switch(by)`` reopens it
    with another key (a new load and attach; the old one is closed first)."""

    def __init__(self, by: str = "process", pids=None, cgroup: str | None = None):
        check_choice("by", by, BY)
        self._pids, self._cgroup = pids, cgroup
        self.rq: RunqLat | None = None
        self.switch(by)

    def switch(self, by: str) -> None:
        check_choice("by", by, BY)
        self.close()
        self.rq = RunqLat(per=BY[by], pids=self._pids, cgroup=self._cgroup, blame=True)
        self.by, self.trends = by, Trends()
        self._since = self._marks()

    def _marks(self) -> tuple:
        assert self.rq is not None
        return time.monotonic(), context_switches(), self.rq.stats()

    def sample(self, all_culprits: bool = False, hists: bool = False) -> Frame:
        """The interval since the last one. Each row's attribution names
        its largest culprit only, unless ``all_culprits`` (for the pairs
        and JSON: with 10,000 threads, many more objects). ``hists``: each
        key's Histogram too (``Frame.hists``, for a heatmap), read in Python
        (``make_frame``): slower with thousands of keys. Keep to one of the
        two for a Sampler's life: each reads from its own baselines."""
        # With 10,000 threads a refresh makes some 100,000 objects, none in a
        # cycle: the cyclic collector's passes over them, triggered by their
        # number, were a third of its CPU. Refcounting frees them all the same.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._sample(all_culprits, hists)
        finally:
            if paused:
                gc.enable()

    def _sample(self, all_culprits: bool, hists: bool) -> Frame:
        assert self.rq is not None
        if hists:
            snapshot, blame = self.rq.interval()
        elif all_culprits:
            stats, buckets, blame = self.rq.interval_stats(all_culprits=True)  # the per-key work in C
            keys = [KeyInterval(k, s.waits, s.sum_ns, s.p50, s.p99, s.max) for k, s in stats]
            sum_ns = sum(s.sum_ns for _, s in stats)
        else:  # the rows made when shown: no object per key
            table = self.rq.interval_rows()
            columns = list(table.stats.columns())
            history = self.trends.add({key: p99 for key, waits, _, p99 in columns if waits})
        seconds, ctxt, lost = self._marks_since()
        if hists:
            return make_frame(snapshot, seconds, self.by, self.trends, ctxt, lost, blame)
        if all_culprits:
            return frame_of(keys, buckets, sum_ns, seconds, self.by, self.trends, ctxt, lost, blame)
        rows = TableRows(table, seconds, history, self.trends.length)
        total = totals(table.total, sum(map(operator.itemgetter(2), columns)), seconds, ctxt, lost)
        # the pairs need every row's culprits: a frame made with all_culprits has them
        return Frame(time.time(), seconds, self.by, rows, total)

    def _marks_since(self) -> tuple[float, float | None, dict]:
        """The interval's seconds, context switches per second and losses."""
        now = self._marks()
        (t0, ctxt0, stats0), (t1, ctxt1, stats1) = self._since, now
        self._since = now
        seconds = max(t1 - t0, 1e-6)
        ctxt = None if ctxt0 is None or ctxt1 is None else (ctxt1 - ctxt0) / seconds
        # clock skew is a discarded stamp, not a lost wait (as runqlat reports it)
        lost = {k: v - stats0.get(k, 0) for k, v in stats1.items() if k != "clock_skew"}
        return seconds, ctxt, lost

    def close(self) -> None:
        if self.rq is not None:
            self.rq.close()
            self.rq = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
