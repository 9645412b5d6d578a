"""Run-queue latency histograms: fine kernel buckets, percentiles, runqlat text.

The BPF side counts latencies in HIST_BUCKETS fine buckets (SUB sub-buckets
per power of two) instead of libbpf-tools' plain log2 slots, so percentiles
can be estimated with a bounded error.  Folding the fine buckets back into
LOG2_SLOTS log2 slots gives exactly the counts libbpf-tools' runqlat keeps,
and the render helpers below print them byte for byte as runqlat does.

Output of ``runqlat [-T] [-m] [-P|-L|--pidnss] [interval [count]]``:

* ``BANNER`` once, after the probes are attached;
* per interval: ``interval_header(t)`` then, per map entry in the kernel's
  ``bpf_map_get_next_key`` order, ``render_section(hist, heading)`` where
  ``heading = key_heading(mode, key, comm)`` (None without -P/-L/--pidnss).
  ``render_interval(sections, t)`` does both in one call.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import time
from collections.abc import Iterable

HIST_BUCKETS = 100  # fine buckets kept by the kernel side
LOG2_SLOTS = 26  # libbpf-tools runqlat.h MAX_SLOTS
SUB = 4  # fine buckets per power of two (from 4 upward)
UNITS = ("usecs", "msecs")
BANNER = "Tracing run queue latency... Hit Ctrl-C to end.\n"

_U32 = 1 << 32
_STARS_MAX = 40


def bucket_of(v: int) -> int:
    """Fine bucket of a latency v (integer usecs or msecs, v >= 0).

    0..3 map to themselves; for v >= 4 with m = floor(log2 v) the two bits
    below the leading one pick the sub-bucket: 4*(m-1) + ((v >> (m-2)) & 3).
    Clamped to the last bucket, like the C tool clamps to its last slot.
    """
    if v < 0:
        raise ValueError("latency must be >= 0")
    if v < SUB:
        return v
    m = v.bit_length() - 1
    return min(SUB * (m - 1) + ((v >> (m - 2)) & 3), HIST_BUCKETS - 1)


def bucket_bounds(i: int) -> tuple[int, int | None]:
    """Inclusive (low, high) values of fine bucket i; high is None for the
    open-ended last bucket, which also holds everything the kernel clamps."""
    if not 0 <= i < HIST_BUCKETS:
        raise IndexError(i)
    if i < SUB:
        return i, i
    m, k = i // SUB + 1, i % SUB
    low = (1 << m) + k * (1 << (m - 2))
    return low, None if i == HIST_BUCKETS - 1 else low + (1 << (m - 2)) - 1


def slot_of_bucket(i: int) -> int:
    """log2 slot (libbpf-tools numbering) that fine bucket i folds into."""
    return i // 2 if i < SUB else i // SUB + 1


def _first_bucket_of_slot(s: int) -> int:
    return 2 * s if s < 2 else SUB * (s - 1)


def _s32(v: int) -> int:
    """What C's %d prints for an unsigned int argument."""
    v &= _U32 - 1
    return v - _U32 if v >= 1 << 31 else v


def _s64(v: int) -> int:
    """What C's %lld prints for an unsigned long long argument."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def stars(val: int, val_max: int, width: int) -> str:
    """Bar text of trace_helpers.c print_stars(val, val_max, width).

    The C computes min(val, val_max) * width in 32-bit unsigned arithmetic,
    so it wraps for counts >= 2**32 / width (about 1.07e8 at width 40) and
    the bar then gets too short; reproduced on purpose.  A '+' follows when
    val > val_max (never the case from print_log2_hist).
    """
    val &= _U32 - 1
    val_max &= _U32 - 1
    n = ((min(val, val_max) * width) & (_U32 - 1)) // val_max
    return "*" * n + " " * (width - n) + ("+" if val > val_max else "")


def _bounds(i: int, width: int) -> str:
    low, high = (1 << (i + 1)) >> 1, (1 << (i + 1)) - 1
    if low == high:
        low -= 1
    return "%*d -> %-*d : " % (width, _s64(low), width, _s64(high))


# the fixed parts of narrow rows, formatted once: runqlat -L prints thousands
_NARROW_HEADER = " " * 5 + "%-19s : count    distribution\n"
_NARROW_ROWS = tuple(_bounds(i, 10) for i in range(33))
_NARROW_BARS = tuple(" |" + "*" * n + " " * (_STARS_MAX - n) + "|\n" for n in range(_STARS_MAX + 1))


def render_log2(slots: Iterable[int], unit: str) -> str:
    """Exactly what trace_helpers.c print_log2_hist(slots, len, unit) prints.

    Empty string when every slot is zero.  Otherwise the header
    "%*s%-*s : count    distribution" and rows 0..idx_max (last non-zero
    slot) "%*lld -> %-*lld : %-8d |<stars>|", with 5/19 header pads, 10-wide
    bounds and 40-star bars, or 15/29, 20 and 20 when idx_max > 32.  Counts
    are C unsigned ints printed with %d: taken mod 2**32, shown negative from
    2**31, never truncated (wider than 8 digits just shifts the bar).  Slot 0
    reads "0 -> 1" because the C lowers low when low == high.
    """
    vals = [c & (_U32 - 1) for c in slots]
    if len(vals) > 63:  # 1ULL << 64 in the C bound computation is undefined
        raise ValueError("at most 63 log2 slots are supported")
    idx_max = max((i for i, v in enumerate(vals) if v), default=-1)
    if idx_max < 0:
        return ""
    if idx_max <= 32 and max(vals) * _STARS_MAX < 1 << 31:
        return _render_narrow(vals[: idx_max + 1], unit)
    return _render_any(vals[: idx_max + 1], unit)


def _render_narrow(vals: list[int], unit: str) -> str:
    """The usual case, from preformatted parts: no C overflow quirk applies."""
    val_max = max(vals)
    return "".join(
        [_NARROW_HEADER % unit]
        + [_NARROW_ROWS[i] + "%-8d" % v + _NARROW_BARS[v * _STARS_MAX // val_max] for i, v in enumerate(vals)]
    )


def _render_any(vals: list[int], unit: str) -> str:
    """Every case, line by line as the C code does it."""
    val_max, narrow = max(vals), len(vals) <= 33
    pad, label, width, bar = (5, 19, 10, _STARS_MAX) if narrow else (15, 29, 20, _STARS_MAX // 2)
    out = ["%*s%-*s : count    distribution\n" % (pad, "", label, unit)]
    for i, v in enumerate(vals):
        out.append(_bounds(i, width) + "%-8d |%s|\n" % (_s32(v), stars(v, val_max, bar)))
    return "".join(out)


def render_log2_bcc(slots: Iterable[int], unit: str) -> str:
    """What bcc's Python print_log2_hist prints, for slots numbered as above
    (slot 0 holds 0 and 1, slot i holds 2**i .. 2**(i+1)-1; bcc never prints
    its own slot for 0). Its header has one more space before "distribution"
    and its counts are Python ints: nothing wraps."""
    vals = [operator.index(v) for v in slots]
    idx_max = max((i for i, v in enumerate(vals) if v), default=-1)
    if idx_max < 0:
        return ""
    val_max, narrow = max(vals), idx_max < 32
    pad, label, width, bar = (5, 19, 10, _STARS_MAX) if narrow else (15, 29, 20, _STARS_MAX // 2)
    out = ["%*s%-*s : count     distribution\n" % (pad, "", label, unit)]
    for i, v in enumerate(vals[: idx_max + 1]):
        n = v * bar // val_max
        low, high = (1 << i if i else 0), (2 << i) - 1
        out.append("%*d -> %-*d : %-8d |%s|\n" % (width, low, width, high, v, "*" * n + " " * (bar - n)))
    return "".join(out)


def percentiles(buckets, total: int, qs) -> list[float]:
    """Estimated percentiles ``qs`` of fine bucket counts holding ``total``
    (> 0) samples, in one cumulative pass (see ``Histogram.percentile``):
    ``pyrunq top`` takes two per key for thousands of keys."""
    cum = list(itertools.accumulate(buckets))
    out = []
    for q in qs:
        # round() absorbs float noise such as 99.9/100*1000 = 999.0000000000001
        rank = max(1, math.ceil(round(q * total / 100, 9)))
        i = bisect.bisect_left(cum, rank)  # the first bucket holding rank: never an empty one
        low, high = bucket_bounds(i)
        count = buckets[i]
        out.append(float(low) if high is None else low + (high - low) * (rank - (cum[i] - count)) / count)
    return out


def highest_bound(buckets) -> int | None:
    """Upper bound of the highest non-empty fine bucket (lower bound for the
    open top bucket); None when all are empty."""
    for i in range(len(buckets) - 1, -1, -1):
        if buckets[i]:
            low, high = bucket_bounds(i)
            return low if high is None else high
    return None


class Histogram:
    """Immutable snapshot of one fine-bucket latency histogram."""

    __slots__ = ("_buckets", "_unit", "_slots", "_total", "sum_ns")

    def __init__(self, buckets: Iterable[int], unit: str = "usecs", sum_ns: int | None = None):
        # built once per key per interval (10,000 keys for `runqlat -L` on a
        # busy host): only C-speed builtins here, log2 slots on first use
        b = buckets if type(buckets) is tuple else tuple(map(operator.index, buckets))
        if len(b) != HIST_BUCKETS:
            raise ValueError("need %d buckets, got %d" % (HIST_BUCKETS, len(b)))
        if min(b) < 0:
            raise ValueError("bucket counts must be >= 0")
        if unit not in UNITS:
            raise ValueError("unit must be one of %s" % (UNITS,))
        self._buckets, self._unit = b, unit
        self._slots: tuple[int, ...] | None = None
        self._total = sum(b)
        self.sum_ns = sum_ns  # exact sum of the latencies, where the kernel kept it

    @classmethod
    def empty(cls, unit: str = "usecs") -> "Histogram":
        return cls((0,) * HIST_BUCKETS, unit)

    @classmethod
    def from_values(cls, values: Iterable[int], unit: str = "usecs") -> "Histogram":
        """Histogram of raw latencies, as the kernel side would count them."""
        b = [0] * HIST_BUCKETS
        for v in values:
            b[bucket_of(v)] += 1
        return cls(b, unit)

    @classmethod
    def from_slots(cls, slots: Iterable[int], unit: str = "usecs") -> "Histogram":
        """Histogram whose log2 slots equal `slots` (each count is put in its
        slot's first fine bucket); used to re-render libbpf-tools data."""
        slots = list(slots)
        if len(slots) > LOG2_SLOTS:
            raise ValueError("at most %d slots" % LOG2_SLOTS)
        b = [0] * HIST_BUCKETS
        for s, c in enumerate(slots):
            b[_first_bucket_of_slot(s)] = c
        return cls(b, unit)

    @property
    def buckets(self) -> tuple[int, ...]:
        """The 100 fine bucket counts."""
        return self._buckets

    @property
    def unit(self) -> str:
        """ "usecs" or "msecs"."""
        return self._unit

    @property
    def slots(self) -> tuple[int, ...]:
        """The 26 log2 slot counts libbpf-tools runqlat would hold."""
        slots = self._slots
        if slots is None:
            b = self._buckets
            slots = self._slots = (
                b[0] + b[1],
                b[2] + b[3],
                *(sum(b[i : i + SUB]) for i in range(SUB, HIST_BUCKETS, SUB)),
            )
        return slots

    @property
    def total(self) -> int:
        """The number of samples."""
        return self._total

    def percentile(self, q: float) -> float | None:
        """Estimated q-th percentile (0 <= q <= 100) in self.unit; None if empty.

        Nearest rank r = ceil(q/100 * total) (at least 1, so q=0 is the first
        sample); the bucket holding rank r is found and the estimate is
        interpolated linearly over its [low, high]: low + (high-low)*j/count
        for the j-th sample of the bucket.  The true nearest-rank value lies
        in the same bucket, so the absolute error is at most high - low:
        exact below 4, otherwise < 2**(m-2), i.e. under 25% of the true
        value (1/(4+k) in sub-bucket k).  In the open top bucket the estimate
        is its lower bound, an underestimate with no bound.
        """
        if not 0 <= q <= 100:
            raise ValueError("q must be in [0, 100]")
        if not self._total:
            return None
        return percentiles(self._buckets, self._total, (q,))[0]

    @property
    def max(self) -> int | None:
        """Upper bound of the highest non-empty bucket (lower bound for the
        open top bucket); None when empty."""
        return highest_bound(self._buckets)

    def _unit_of(self, other: "Histogram") -> str:
        if other._unit != self._unit:
            raise ValueError("unit mismatch: %s vs %s" % (self._unit, other._unit))
        return self._unit

    def __sub__(self, other: "Histogram") -> "Histogram":
        """Interval = newer cumulative snapshot - older one.  Kernel counters
        are u32, so this is modulo 2**32 and survives one wrap-around."""
        if not isinstance(other, Histogram):
            return NotImplemented
        d = tuple(map(operator.sub, self._buckets, other._buckets))
        if min(d) < 0:  # a counter wrapped
            d = tuple(v % _U32 for v in d)
        return Histogram(
            d, self._unit_of(other), _both(self.sum_ns, other.sum_ns, lambda a, b: (a - b) % 2**64)
        )

    def __add__(self, other: "Histogram") -> "Histogram":
        """Merge (e.g. several keys or intervals); exact, no u32 wrap."""
        if not isinstance(other, Histogram):
            return NotImplemented
        return Histogram(
            tuple(map(operator.add, self._buckets, other._buckets)),
            self._unit_of(other),
            _both(self.sum_ns, other.sum_ns, lambda a, b: a + b),
        )

    def __bool__(self) -> bool:
        return self._total > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self._unit == other._unit and self._buckets == other._buckets

    def __hash__(self) -> int:
        return hash((self._unit, self._buckets))

    def __repr__(self) -> str:
        nz = {i: c for i, c in enumerate(self._buckets) if c}
        return "<Histogram %s total=%d buckets=%r>" % (self._unit, self._total, nz)

    def to_dict(self) -> dict:
        """JSON-ready summary: the log2 rows render() shows plus p50/p90/p99/max
        (None/null when empty).  The last slot also holds every larger value,
        as in the C tool, although its "high" reads 2**26-1."""
        rows = []
        last = max((i for i, c in enumerate(self.slots) if c), default=-1)
        for s in range(last + 1):
            low, high = (1 << (s + 1)) >> 1, (1 << (s + 1)) - 1
            rows.append({"low": 0 if s == 0 else low, "high": high, "count": self.slots[s]})
        return {
            "unit": self._unit,
            "total": self._total,
            "sum_ns": self.sum_ns,
            "buckets": rows,
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "max": self.max,
        }

    def render(self) -> str:
        """print_log2_hist(slots, MAX_SLOTS, unit) output; "" when empty."""
        return render_log2(self.slots, self._unit)


def _both(a, b, op):
    return None if a is None or b is None else op(a, b)


# ---- whole-interval text of libbpf-tools runqlat.c -------------------------

_KEY_FORMATS = {"pid": "pid = %d %s", "tid": "tid = %d %s", "pidns": "pidns = %u %s"}


def decode_comm(comm: bytes | str) -> str:
    """A task comm as C's %s prints it: up to the first NUL.  Undecodable
    bytes become surrogates; write output encoded with 'surrogateescape' to
    get the kernel's bytes back."""
    if isinstance(comm, (bytes, bytearray)):
        comm = bytes(comm).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return comm.split("\0", 1)[0]


def key_heading(mode: str | None, key: int, comm: bytes | str) -> str | None:
    """Per-key line of runqlat.c print_log2_hists (without newlines):
    "pid = %d %s" (-P), "tid = %d %s" (-L), "pidns = %u %s" (--pidnss).
    mode is "pid", "tid", "pidns" or None (plain mode: no heading).  The key
    is the u32 map key, so %d shows it signed and %u unsigned."""
    if mode is None:
        return None
    key &= _U32 - 1
    return _KEY_FORMATS[mode] % (key if mode == "pidns" else _s32(key), decode_comm(comm))


def render_section(hist: Histogram, heading: str | None = None) -> str:
    """One map entry as print_log2_hists prints it: "\\n<heading>\\n" (only
    with a heading; printed even if the histogram is empty) followed by
    print_log2_hist's text.  The blank line before each heading is the only
    separator between sections."""
    head = "" if heading is None else "\n%s\n" % heading
    return head + hist.render()


def render_linear(counts: Iterable[int], label: str, base: int = 0, step: int = 1) -> str:
    """Exactly what trace_helpers.c print_linear_hist(vals, len, base, step,
    label) prints (runqlen's histogram): nothing when every count is zero;
    else the header "     %-13s : count     distribution" and, for each
    non-zero count from the first to the last, "        %-10d : %-8d |<40
    stars>|" with the value base + i * step. Counts are C unsigned ints."""
    vals = [c & (_U32 - 1) for c in counts]
    shown = [i for i, v in enumerate(vals) if v]
    if not shown:
        return ""
    val_max = max(vals)
    rows = [
        "        %-10d : %-8d |%s|\n"
        % (_s32(base + i * step), _s32(vals[i]), stars(vals[i], val_max, _STARS_MAX))
        for i in shown
    ]
    return "     %-13s : count     distribution\n" % label + "".join(rows)


def render_labelled(rows: Iterable[tuple[str, int]], unit: str) -> str:
    """A histogram whose rows say themselves what they hold (``"17 -> 32"``,
    ``"<= 50"``: ebpf_exporter's buckets), laid out as bcc prints log2
    histograms: the label right-aligned under the unit, the count, a bar of
    up to 40 stars scaled to the largest count. Nothing when every count is 0."""
    rows = list(rows)
    if not any(count for _, count in rows):
        return ""
    val_max = max(count for _, count in rows)
    width = max(24, max(len(label) for label, _ in rows))
    out = ["%-*s : count     distribution\n" % (width, " " * 5 + unit)]
    for label, count in rows:
        n = count * _STARS_MAX // val_max
        out.append("%*s : %-8d |%s|\n" % (width, label, count, "*" * n + " " * (_STARS_MAX - n)))
    return "".join(out)


def interval_header(t: None | float | time.struct_time = None) -> str:
    """Start of each interval in runqlat.c main(): printf("\\n") after the
    sleep, then with -T the local time strftime("%H:%M:%S") as "%-8s\\n".
    t is None (no -T), epoch seconds or a struct_time (local time)."""
    if t is None:
        return "\n"
    if not isinstance(t, time.struct_time):
        t = time.localtime(t)
    return "\n%-8s\n" % time.strftime("%H:%M:%S", t)


def render_interval(
    sections: Iterable[tuple[str | None, Histogram]], t: None | float | time.struct_time = None
) -> str:
    """Everything runqlat prints for one interval: interval_header(t) then
    render_section() for each (heading, hist) in map iteration order."""
    return interval_header(t) + "".join(render_section(h, hd) for hd, h in sections)
