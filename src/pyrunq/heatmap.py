"""Latency heatmaps: every interval's histogram side by side, as one
interactive, self-contained SVG file (Brendan Gregg's latency heatmaps).

Time runs along x, one column per interval; latency up y, one row per fine
bucket of ``pyrunq.hist`` (4 per power of two) on a log scale; a cell's
colour says how many waits fell in that bucket in that interval (on a log
scale: one wait is visible beside a thousand). The p50 and p99 of each
interval are drawn over the cells. Hovering a cell names its interval, its
bucket and its count. With keys (per process, thread, cgroup) a small
heatmap per key follows the one of every wait, for the keys that waited most.

``Recorder`` collects the intervals as a tool reads them and ``write()``s the
picture; names (comm, cgroup paths) go through ``svg.text``. Written here,
not with a plotting library: matplotlib or plotly would make the package
heavier than pyrunq itself for a grid of rectangles, and their SVG output
carries no hover without a script from elsewhere.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import svg
from .hist import HIST_BUCKETS, bucket_bounds, percentiles

TOP_KEYS = 8  # small heatmaps below the one of every wait
KEEP_KEYS = 200  # keys whose intervals are kept while recording (the most waits so far)
MAX_COLUMNS = 1200  # intervals kept: the oldest go first
LEFT, RIGHT, GAP = 80, 20, 44  # margins and the space between panels (its title, its x labels)
MAIN_HEIGHT, SMALL_HEIGHT = 300, 120
TOP = 60  # title, subtitle, details
Sparse = dict  # bucket -> count, the buckets with counts only


@dataclass
class Panel:
    label: str
    columns: list[Sparse]
    waits: int = 0


@dataclass
class Recorder:
    """Intervals as a tool reads them: ``add(time, {label: buckets})`` with
    the fine bucket counts (``Histogram.buckets``) of each key that waited;
    the label "" for a tool without keys. ``unit``: usecs or msecs."""

    unit: str = "usecs"
    what: str = "wait"  # one sample, as the hover names it: a wait, a run (cpudist), a sleep
    times: list[float] = field(default_factory=list)
    everything: list[Sparse] = field(default_factory=list)
    keys: dict[str, dict[int, Sparse]] = field(default_factory=dict)
    waits: Counter = field(default_factory=Counter)
    dropped_columns: int = 0

    def add(self, when: float, hists: dict[str, Sequence[int]]) -> None:
        column = len(self.times)
        self.times.append(when)
        total: Counter = Counter()
        for label, buckets in hists.items():
            sparse = {i: n for i, n in enumerate(buckets) if n}
            total.update(sparse)
            if label and sparse:
                self.keys.setdefault(label, {})[column] = sparse
                self.waits[label] += sum(sparse.values())
        self.everything.append(dict(total))
        if len(self.keys) > KEEP_KEYS:  # bounded memory with thousands of threads
            kept = {label for label, _ in self.waits.most_common(KEEP_KEYS)}
            self.keys = {k: v for k, v in self.keys.items() if k in kept}
            self.waits = Counter({k: v for k, v in self.waits.items() if k in kept})
        if len(self.times) > MAX_COLUMNS:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        self.dropped_columns += 1
        del self.times[0], self.everything[0]
        self.keys = {k: {c - 1: s for c, s in cols.items() if c} for k, cols in self.keys.items()}
        self.keys = {k: cols for k, cols in self.keys.items() if cols}

    def panels(self, top: int = TOP_KEYS) -> list[Panel]:
        """Every wait first, then the ``top`` keys that waited most."""
        n = len(self.times)
        out = [Panel(f"every {self.what}" if self.keys else "", self.everything)]
        ranked = sorted(self.keys, key=lambda k: (-self.waits[k], k))[:top]
        for label in ranked:
            cols = self.keys[label]
            out.append(Panel(label, [cols.get(i, {}) for i in range(n)]))
        for p in out:
            p.waits = sum(sum(c.values()) for c in p.columns)
        return out

    def svg_text(self, title: str, subtitle: str = "", interval: float | None = None) -> str:
        notes = [subtitle] if subtitle else []
        if self.dropped_columns:
            notes.append(f"the first {self.dropped_columns} intervals left out (at most {MAX_COLUMNS})")
        return draw(self.panels(), self.times, self.unit, title, "; ".join(notes), interval, self.what)

    def write(self, path: str, title: str, subtitle: str = "", interval: float | None = None) -> None:
        svg.write_file(path, self.svg_text(title, subtitle, interval))


# -- drawing ----------------------------------------------------------------------


def edges(i: int) -> tuple[float, float]:
    """log2 of fine bucket i's lower and upper edges: where its row lies.
    Bucket 0 (latency 0) sits below 1, as wide as the bucket of 1; the open
    top bucket is drawn a quarter power of two high."""
    if i == 0:
        return -1.0, 0.0
    low, high = bucket_bounds(i)
    top = low * 1.25 if high is None else high + 1
    return math.log2(low), math.log2(top)


def colour(n: int, most: int) -> str:
    """Light yellow (one wait) to dark red (``most``), on a log scale."""
    f = math.log(n) / math.log(most) if most > 1 else 1.0
    r = int(255 - 127 * f)
    g = int(237 - 237 * f) if f > 0 else 237
    b = int(160 - 122 * f)
    return f"rgb({r},{g},{b})"


def _span(panels: list[Panel]) -> tuple[int, int]:
    """The buckets drawn: from the lowest to the highest with counts in any
    panel, at least two powers of two."""
    used = [b for p in panels for c in p.columns for b in c]
    if not used:
        return 0, 8
    lo, hi = min(used), max(used)
    while hi - lo < 8:
        lo, hi = max(0, lo - 1), min(HIST_BUCKETS - 1, hi + 1)
    return lo, hi


def _unit_label(log2_value: float, unit: str) -> str:
    """A y axis label: the latency at that height (bucket 0's floor is 0)."""
    if log2_value < 0:
        return "0"
    v = 2**log2_value
    if unit == "msecs":
        return f"{v / 1000:.3g}s" if v >= 1000 else f"{v:.3g}ms"
    if v >= 1_000_000:
        return f"{v / 1_000_000:.3g}s"
    return f"{v / 1000:.3g}ms" if v >= 1000 else f"{v:.3g}us"


def draw(
    panels: list[Panel],
    times: list[float],
    unit: str,
    title: str,
    subtitle: str = "",
    interval: float | None = None,
    what: str = "wait",
) -> str:
    n = max(len(times), 1)
    col = max(2.0, 900 / n)  # 900 px, until columns of 2 px
    plot_w = col * n
    width = LEFT + plot_w + RIGHT + 120  # the colour key on the right
    lo, hi = _span(panels)
    most = max((c for p in panels for column in p.columns for c in column.values()), default=1)
    parts = []
    y = TOP
    for index, p in enumerate(panels):
        height = MAIN_HEIGHT if index == 0 else SMALL_HEIGHT
        parts.append(_panel(p, index, y, height, col, lo, hi, most, times, unit))
        y += height + GAP
    total_h = y + 10
    head = (
        f'<text x="{width / 2:g}" y="20" text-anchor="middle" style="font-size:17px">'
        f"{svg.text(title)}</text>\n"
        f'<text x="{width / 2:g}" y="36" text-anchor="middle" style="fill:rgb(120,120,120)">'
        f"{svg.text(subtitle)}</text>\n"
        f'<text id="details" x="{LEFT}" y="52"> </text>\n'
    )
    key = _colour_key(LEFT + plot_w + RIGHT + 10, TOP, most)
    body = (
        svg.script(_SCRIPT)
        + f'<rect x="0" y="0" width="{width:g}" height="{total_h:g}" fill="white"/>\n'
        + head
        + key
        + "".join(parts)
    )
    style = (
        ".c:hover { stroke: black; stroke-width: 1; }\n"
        ".p50 { fill: none; stroke: rgb(30,60,200); stroke-width: 1.5; stroke-dasharray: 4 2; }\n"
        ".p99 { fill: none; stroke: rgb(0,0,0); stroke-width: 1.5; }\n"
        ".axis { fill: rgb(90,90,90); font-size: 10px; }\n"
        ".p50, .p99 { pointer-events: none; }\n"  # the cells under the lines answer the mouse
    )
    times_attr = ",".join(f"{t:.3f}" for t in times)
    attrs = f' data-unit="{svg.text(unit)}" data-times="{times_attr}" data-interval="{interval or 0:g}"'
    attrs += f' data-what="{svg.text(what)}"'
    doc = svg.document(width, total_h, body, style, onload="init(evt)")
    return doc.replace("<svg ", "<svg" + attrs + " ", 1)


def _panel(p: Panel, index: int, top: float, height: float, col: float, lo: int, hi: int, most, times, unit):
    y_lo, y_hi = edges(lo)[0], edges(hi)[1]
    scale = height / (y_hi - y_lo)

    def y_of(log2_value: float) -> float:
        return top + height - (log2_value - y_lo) * scale

    out = [f'<g class="panel" data-panel="{index}" data-label="{svg.text(p.label)}">\n']
    label = p.label or "every wait"
    out.append(f'<text x="{LEFT}" y="{top - 6:g}" style="font-weight:bold">{svg.text(label)}</text>\n')
    out.append(
        f'<rect x="{LEFT}" y="{top:g}" width="{col * len(p.columns):g}" height="{height:g}"'
        ' fill="rgb(250,250,250)" stroke="rgb(200,200,200)"/>\n'
    )
    for i, column in enumerate(p.columns):
        x = LEFT + i * col
        for b, count in sorted(column.items()):
            y0, y1 = edges(b)
            out.append(
                f'<rect class="c" data-i="{i}" data-b="{b}" data-n="{count}" x="{x:.2f}" y="{y_of(y1):.2f}"'
                f' width="{col:.2f}" height="{(y1 - y0) * scale:.2f}" fill="{colour(count, most)}"/>\n'
            )
    out.append(_percentile_path(p, 50, y_of, col, "p50"))
    out.append(_percentile_path(p, 99, y_of, col, "p99"))
    for power in range(math.ceil(y_lo), math.floor(y_hi) + 1, 1 if y_hi - y_lo <= 12 else 2):
        # at the bucket edges that are powers of two: 1, 2, 4... (and 0 below 1)
        y = y_of(power)
        out.append(
            f'<text class="axis" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">'
            f"{_unit_label(power, unit)}</text>\n"
            f'<line x1="{LEFT - 2}" x2="{LEFT}" y1="{y:.1f}" y2="{y:.1f}" stroke="gray"/>\n'
        )
    step = max(1, math.ceil(70 / col))
    for i in range(0, len(times), step):
        out.append(
            f'<text class="axis" x="{LEFT + (i + 1) * col:.1f}" y="{top + height + 12:g}" text-anchor="end">'
            f"{time.strftime('%H:%M:%S', time.localtime(times[i]))}</text>\n"
        )
    out.append("</g>\n")
    return "".join(out)


def _percentile_path(p: Panel, q: float, y_of, col: float, cls: str) -> str:
    """The q-th percentile of each interval, a line broken where it had no wait."""
    d, pen = [], "M"
    for i, column in enumerate(p.columns):
        total = sum(column.values())
        if not total:
            pen = "M"
            continue
        dense = [column.get(b, 0) for b in range(HIST_BUCKETS)]
        (value,) = percentiles(dense, total, (q,))
        y = y_of(math.log2(value) if value >= 1 else -0.5)
        d.append(f"{pen}{LEFT + i * col:.1f},{y:.1f}h{col:.1f}")
        pen = "L"
    return f'<path class="{cls}" d="{" ".join(d)}"/>\n' if d else ""


def _colour_key(x: float, y: float, most: int) -> str:
    steps = 8
    out = [f'<text x="{x:g}" y="{y - 6:g}">waits</text>\n']
    for k in range(steps):
        n = max(1, round(most ** (1 - k / (steps - 1)))) if most > 1 else 1
        out.append(
            f'<rect x="{x:g}" y="{y + k * 16:g}" width="14" height="14" fill="{colour(n, most)}"/>'
            f'<text class="axis" x="{x + 18:g}" y="{y + k * 16 + 11:g}">{n:,}</text>\n'
        )
    ly = y + steps * 16 + 16
    out.append(
        f'<path class="p99" d="M{x:g},{ly:g}h14"/>'
        f'<text class="axis" x="{x + 18:g}" y="{ly + 3:g}">p99</text>\n'
        f'<path class="p50" d="M{x:g},{ly + 14:g}h14"/>'
        f'<text class="axis" x="{x + 18:g}" y="{ly + 17:g}">p50</text>\n'
    )
    return "".join(out)


def _bounds_table() -> str:
    return ",".join(
        f"[{low},{'null' if high is None else high}]" for low, high in map(bucket_bounds, range(HIST_BUCKETS))
    )


# Our own script, inline: hovering a cell names its interval, bucket and count.
_SCRIPT = (
    r"""
"use strict";
var BOUNDS = ["""
    + _bounds_table()
    + r"""];
var details, times, unit, interval, what;

function init(evt) {
  var root = document.documentElement;
  details = document.getElementById("details");
  times = root.getAttribute("data-times").split(",").map(Number);
  what = root.getAttribute("data-what") || "wait";
  unit = root.getAttribute("data-unit") === "msecs" ? "ms" : "us";
  interval = Number(root.getAttribute("data-interval"));
  root.addEventListener("mouseover", function (e) {
    var c = e.target;
    if (!c.classList || !c.classList.contains("c")) return;
    details.textContent = describe(c);
  });
  root.addEventListener("mouseout", function () { details.textContent = " "; });
}

function clock(t) {
  var d = new Date(t * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (v) {
    return (v < 10 ? "0" : "") + v;
  }).join(":");
}

function describe(c) {
  var i = Number(c.getAttribute("data-i")), b = Number(c.getAttribute("data-b"));
  var n = Number(c.getAttribute("data-n"));
  var bounds = BOUNDS[b];
  var range = bounds[1] === null ? bounds[0] + "+ " + unit :
    (bounds[0] === bounds[1] ? bounds[0] : bounds[0] + "-" + bounds[1]) + " " + unit;
  var panel = c.parentNode.getAttribute("data-label");
  return (panel ? panel + ": " : "") + "interval " + (i + 1) + " (ending " + clock(times[i]) + "), " +
    range + ": " + n.toLocaleString("en-US") + " " + what + (n === 1 ? "" : "s");
}
"""
)
