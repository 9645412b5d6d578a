"""Tests for pyrunq.hist: bucket mapping, percentiles and runqlat-identical text."""

import math
import random
import re
import subprocess
import time

import pytest

from pyrunq import hist
from needs import need, skip_or_fail

Histogram = hist.Histogram
HDR_US = "     usecs               : count    distribution\n"
HDR_MS = "     msecs               : count    distribution\n"
BAR0 = "|" + " " * 40 + "|\n"
BAR40 = "|" + "*" * 40 + "|\n"


# ---- bucket mapping ---------------------------------------------------------

EDGE_VALUES = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    15,
    16,
    100,
    1000,
    2**25 - 1,
    2**25,
    2**25 + 3 * 2**23 - 1,
    2**25 + 3 * 2**23,
    2**26 - 1,
    2**26,
    2**40,
]


def _log2_slot(v):
    """libbpf-tools' slot: floor(log2 v) (0 for v=0), clamped to 25."""
    return min(max(v.bit_length() - 1, 0), hist.LOG2_SLOTS - 1)


def _values():
    rng = random.Random(7)
    vals = set(EDGE_VALUES)
    for m in range(45):
        vals.update({2**m - 1, 2**m, 2**m + 1, rng.randrange(2**m, 2 ** (m + 1))})
    return sorted(v for v in vals if v >= 0)


def test_bucket_of_small_values_are_exact():
    assert [hist.bucket_of(v) for v in range(9)] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert hist.bucket_of(7) == 7 and hist.bucket_of(8) == 8
    assert hist.bucket_of(2**25 - 1) == 95
    assert hist.bucket_of(2**25) == 96
    assert hist.bucket_of(2**25 + 3 * 2**23 - 1) == 98
    assert hist.bucket_of(2**25 + 3 * 2**23) == 99
    assert hist.bucket_of(2**40) == 99
    with pytest.raises(ValueError):
        hist.bucket_of(-1)


@pytest.mark.parametrize("v", _values())
def test_bucket_bounds_contain_value_and_slot_agrees(v):
    i = hist.bucket_of(v)
    low, high = hist.bucket_bounds(i)
    assert low <= v and (high is None or v <= high)
    assert (high is None) == (i == hist.HIST_BUCKETS - 1)
    assert hist.slot_of_bucket(i) == _log2_slot(v)


def test_bucket_bounds_tile_the_value_range():
    expect_low = 0
    for i in range(hist.HIST_BUCKETS):
        low, high = hist.bucket_bounds(i)
        assert low == expect_low
        assert hist.bucket_of(low) == i
        if high is None:
            break
        assert hist.bucket_of(high) == i
        expect_low = high + 1
    assert hist.bucket_bounds(99) == (2**25 + 3 * 2**23, None)
    with pytest.raises(IndexError):
        hist.bucket_bounds(100)


def test_slots_equal_log2_summation():
    vals = _values()
    h = Histogram.from_values(vals)
    want = [0] * hist.LOG2_SLOTS
    for v in vals:
        want[_log2_slot(v)] += 1
    assert list(h.slots) == want
    assert h.total == len(vals) == sum(h.buckets)


# ---- rendering against hand-derived C output ---------------------------------


def test_empty_renders_nothing():
    assert Histogram.empty().render() == ""
    assert hist.render_log2([0] * 26, "usecs") == ""
    assert not Histogram.empty()


def test_render_single_sample_slot0():
    assert Histogram.from_values([1]).render() == (HDR_US + "         0 -> 1          : 1        " + BAR40)


def test_render_msecs_only_slot0():
    assert Histogram.from_slots([41], "msecs").render() == (
        HDR_MS + "         0 -> 1          : 41       " + BAR40
    )


def test_render_gaps():
    h = Histogram.from_values([4, 5, 6, 7, 7] + [32] * 10)
    assert h.render() == (
        HDR_US
        + "         0 -> 1          : 0        "
        + BAR0
        + "         2 -> 3          : 0        "
        + BAR0
        + "         4 -> 7          : 5        |********************                    |\n"
        + "         8 -> 15         : 0        "
        + BAR0
        + "        16 -> 31         : 0        "
        + BAR0
        + "        32 -> 63         : 10       "
        + BAR40
    )


def test_render_star_rounding_truncates():
    # 1*40/3 = 13.3 -> 13, 2*40/3 = 26.7 -> 26, 7*40/7 = 40, 3*40/7 = 17.1 -> 17
    assert Histogram.from_slots([1, 2, 3]).render() == (
        HDR_US
        + "         0 -> 1          : 1        |*************                           |\n"
        + "         2 -> 3          : 2        |**************************              |\n"
        + "         4 -> 7          : 3        "
        + BAR40
    )
    assert hist.render_log2([7, 3], "usecs") == (
        HDR_US
        + "         0 -> 1          : 7        "
        + BAR40
        + "         2 -> 3          : 3        |*****************                       |\n"
    )


def test_render_top_slot():
    text = Histogram.from_values([2**40]).render()
    lines = text.splitlines(keepends=True)
    assert len(lines) == 27
    assert lines[-2] == "  16777216 -> 33554431   : 0        " + BAR0
    assert lines[-1] == "  33554432 -> 67108863   : 1        " + BAR40


def test_render_wide_count_and_u32_star_overflow():
    # %-8d does not truncate; 123456789*40 wraps in u32 arithmetic to
    # 643304264, /123456789 = 5 stars on the row that holds the maximum.
    assert Histogram.from_slots([1, 0, 0, 123456789]).render() == (
        HDR_US
        + "         0 -> 1          : 1        "
        + BAR0
        + "         2 -> 3          : 0        "
        + BAR0
        + "         4 -> 7          : 0        "
        + BAR0
        + "         8 -> 15         : 123456789 |*****                                   |\n"
    )


def test_render_count_above_int_max_prints_negative():
    # unsigned int through %d; (2**31+5)*40 mod 2**32 = 200 -> 0 stars
    assert Histogram.from_slots([2**31 + 5]).render() == (
        HDR_US + "         0 -> 1          : -2147483643 " + BAR0
    )
    # counts are u32 in C: 2**32 + 3 prints as 3
    assert hist.render_log2([2**32 + 3], "usecs") == (HDR_US + "         0 -> 1          : 3        " + BAR40)


def test_render_wide_variant_when_idx_max_above_32():
    text = hist.render_log2([0] * 33 + [3], "usecs")
    lines = text.splitlines(keepends=True)
    assert len(lines) == 35
    assert lines[0] == " " * 15 + "usecs" + " " * 24 + " : count    distribution\n"
    assert lines[1] == " " * 19 + "0 -> 1" + " " * 19 + " : 0        |" + " " * 20 + "|\n"
    assert lines[-1] == ("          8589934592 -> 17179869183          : 3        |" + "*" * 20 + "|\n")
    # idx_max == 32 still uses the narrow layout
    assert hist.render_log2([0] * 32 + [1], "usecs").startswith(HDR_US)


def test_bcc_format_has_one_more_space_and_never_wraps():
    # checked against bcc's table._print_log2_hist([0] + slots, "nsecs", False)
    assert hist.render_log2_bcc([0, 0, 3, 1], "nsecs") == (
        "     nsecs               : count     distribution\n"
        "         0 -> 1          : 0        |                                        |\n"
        "         2 -> 3          : 0        |                                        |\n"
        "         4 -> 7          : 3        |****************************************|\n"
        "         8 -> 15         : 1        |*************                           |\n"
    )
    assert hist.render_log2_bcc([0] * 64, "usecs") == ""
    wide = hist.render_log2_bcc([0] * 63 + [5_000_000_000], "usecs").splitlines()
    assert wide[0] == " " * 15 + "usecs" + " " * 24 + " : count     distribution"
    assert wide[-1] == " 9223372036854775808 -> 18446744073709551615 : 5000000000 |" + "*" * 20 + "|"


def test_stars_plus_when_above_max():
    assert hist.stars(5, 4, 10) == "*" * 10 + "+"
    assert hist.stars(1, 4, 10) == "**" + " " * 8


# ---- interval / section helpers ----------------------------------------------


def test_key_heading_formats():
    assert hist.key_heading(None, 1, "x") is None
    assert hist.key_heading("pid", 35, b"kcompactd0\0\0\0\0\0\0") == "pid = 35 kcompactd0"
    assert hist.key_heading("tid", 2**32 - 1, "a b") == "tid = -1 a b"
    assert hist.key_heading("pidns", 4026531836, b"rcu\0junk") == "pidns = 4026531836 rcu"


def test_render_section_and_interval():
    h = Histogram.from_values([1])
    body = HDR_US + "         0 -> 1          : 1        " + BAR40
    assert hist.render_section(h) == body
    assert hist.render_section(h, "pid = 1 init") == "\npid = 1 init\n" + body
    assert hist.render_section(Histogram.empty(), "pid = 1 init") == "\npid = 1 init\n"
    assert hist.interval_header() == "\n"
    t = time.strptime("01:02:03", "%H:%M:%S")
    assert hist.interval_header(t) == "\n01:02:03\n"
    assert hist.render_interval([("tid = 9 x", h), ("tid = 8 y", h)], t) == (
        "\n01:02:03\n\ntid = 9 x\n" + body + "\ntid = 8 y\n" + body
    )
    assert hist.render_interval([]) == "\n"
    now = time.time()
    assert hist.interval_header(now) == "\n%s\n" % time.strftime("%H:%M:%S", time.localtime(now))


# ---- the real libbpf-tools runqlat --------------------------------------------

RUNQLAT = "/usr/sbin/runqlat"
ROW = re.compile(r" *(\d+) -> (\d+) +: (-?\d+) +\|[* ]*\+?\|\n")
HEAD = re.compile(r"(pid|tid|pidns) = (-?\d+) (.*)\n")
COLS = re.compile(r" +(usecs|msecs) +: count    distribution\n")


def _parse(out, timestamp):
    """Split one interval of runqlat output into (time, [(mode, key, comm, slots, unit)])."""
    assert out.startswith(hist.BANNER)
    lines = out[len(hist.BANNER) :].splitlines(keepends=True)
    assert lines.pop(0) == "\n"
    t = time.strptime(lines.pop(0).strip(), "%H:%M:%S") if timestamp else None
    sections, cur = [], None
    while lines:
        line = lines.pop(0)
        if line == "\n":
            m = HEAD.fullmatch(lines.pop(0))
            cur = [m.group(1), int(m.group(2)), m.group(3), [0] * hist.LOG2_SLOTS, None]
            sections.append(cur)
        elif COLS.fullmatch(line):
            if cur is None or cur[4] is not None:  # plain mode: no heading
                cur = [None, 0, "", [0] * hist.LOG2_SLOTS, None]
                sections.append(cur)
            cur[4] = COLS.fullmatch(line).group(1)
        else:
            m = ROW.fullmatch(line)
            assert m, "unexpected line %r" % line
            slot = max(int(m.group(1)).bit_length() - 1, 0)
            cur[3][slot] = int(m.group(3)) % 2**32
    return t, sections


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
@pytest.mark.parametrize(
    "args", [[], ["-m"], ["-P"], ["-T", "-L"], ["-T", "-m", "--pidnss"]], ids=lambda a: " ".join(a) or "plain"
)
@pytest.mark.external
def test_real_runqlat_output_is_reproduced_byte_for_byte(kernel, args):
    p = subprocess.run([need(RUNQLAT), *args, "1", "1"], capture_output=True, timeout=60)
    if p.returncode != 0:  # e.g. a kernel it does not know
        skip_or_fail("runqlat failed (%d): %s" % (p.returncode, p.stderr.decode(errors="replace")))
    out = p.stdout.decode("utf-8", "surrogateescape")
    t, parsed = _parse(out, "-T" in args)
    assert parsed, "runqlat printed no histogram in 1s"
    unit = "msecs" if "-m" in args else "usecs"
    sections = []
    for mode, key, comm, slots, u in parsed:
        assert u in (unit, None)
        sections.append((hist.key_heading(mode, key, comm), Histogram.from_slots(slots, unit)))
    # per section first, for a readable diff, then the complete stdout
    pieces = re.split(r"(?=\n(?:pid|tid|pidns) = )", out.split("\n", 2 + ("-T" in args))[-1])
    if parsed[0][0] is not None:
        assert [hist.render_section(h, hd) for hd, h in sections] == [s for s in pieces if s]
    assert hist.BANNER + hist.render_interval(sections, t) == out


# ---- percentiles, arithmetic, dict -------------------------------------------


def _true_percentile(sorted_vals, q):
    rank = max(1, math.ceil(round(q * len(sorted_vals) / 100, 9)))
    return sorted_vals[rank - 1]


def test_percentile_within_documented_bound():
    rng = random.Random(12345)
    vals = sorted([int(rng.lognormvariate(4, 1.5)) for _ in range(990)] + [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    h = Histogram.from_values(vals)
    for q in [0, 0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100]:
        true = _true_percentile(vals, q)
        est = h.percentile(q)
        low, high = hist.bucket_bounds(hist.bucket_of(true))
        assert low <= est <= high
        assert abs(est - true) <= high - low
        if true < 4:
            assert est == true
        else:
            assert abs(est - true) / true < 0.25
    assert h.percentile(0) <= h.percentile(50) <= h.percentile(100) <= h.max


def test_percentile_edges():
    assert Histogram.empty().percentile(50) is None
    assert Histogram.empty().max is None
    with pytest.raises(ValueError):
        Histogram.from_values([1]).percentile(101)
    h = Histogram.from_values([3] * 10)
    assert h.percentile(0) == h.percentile(100) == 3.0 and h.max == 3
    top = Histogram.from_values([10, 2**30])
    assert top.percentile(100) == float(2**25 + 3 * 2**23) == top.max
    assert Histogram.from_values([8, 9]).max == 9  # bucket 8 holds 8..9
    # 4 samples in bucket 16..19: ranks interpolate linearly up to high
    four = Histogram.from_values([16, 17, 18, 19])
    assert [four.percentile(q) for q in (25, 50, 75, 100)] == [16.75, 17.5, 18.25, 19.0]


def test_subtraction_modulo_u32_and_addition():
    old = [0] * 100
    new = [0] * 100
    old[5], new[5] = 2**32 - 3, 4  # counter wrapped: 7 new samples
    old[10], new[10] = 100, 250
    d = Histogram(new) - Histogram(old)
    assert d.buckets[5] == 7 and d.buckets[10] == 150 and d.total == 157
    a = Histogram.from_values([1, 100])
    assert (a + a).total == 4 and (a + a) - a == a
    assert Histogram(new) + Histogram(old) != Histogram(new)
    with pytest.raises(ValueError):
        a - Histogram.from_values([1], "msecs")
    assert hash(a) == hash(Histogram.from_values([100, 1]))
    assert repr(a) == "<Histogram usecs total=2 buckets={1: 1, 22: 1}>"


def test_validation():
    with pytest.raises(ValueError):
        Histogram([0] * 99)
    with pytest.raises(ValueError):
        Histogram([-1] + [0] * 99)
    with pytest.raises(ValueError):
        Histogram([0] * 100, "nsecs")
    h = Histogram.from_values([5])
    with pytest.raises(AttributeError):
        h.foo = 1


def test_to_dict_shape():
    import json

    h = Histogram.from_values([1, 5, 5, 40], "msecs")
    d = json.loads(json.dumps(h.to_dict()))
    assert d["unit"] == "msecs" and d["total"] == 4
    assert d["buckets"] == [
        {"low": 0, "high": 1, "count": 1},
        {"low": 2, "high": 3, "count": 0},
        {"low": 4, "high": 7, "count": 2},
        {"low": 8, "high": 15, "count": 0},
        {"low": 16, "high": 31, "count": 0},
        {"low": 32, "high": 63, "count": 1},
    ]
    assert set(d) == {"unit", "total", "sum_ns", "buckets", "p50", "p90", "p99", "max"}
    assert d["p50"] == h.percentile(50) and d["max"] == 47
    e = Histogram.empty().to_dict()
    assert e == {
        "unit": "usecs",
        "total": 0,
        "sum_ns": None,
        "buckets": [],
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }


def test_fast_rendering_matches_the_line_by_line_rendering():
    from pyrunq.hist import _render_any, _render_narrow

    rng = random.Random(3)
    for _ in range(500):
        n = rng.randint(1, 26)
        vals = [rng.choice([0, 1, rng.randint(0, 99), rng.randint(0, 10**6)]) for _ in range(n)]
        vals[-1] = vals[-1] or 1
        for unit in ("usecs", "msecs"):
            assert _render_narrow(vals, unit) == _render_any(vals, unit)
