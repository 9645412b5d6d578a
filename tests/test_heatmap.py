"""pyrunq.heatmap without a browser: the cells are the intervals' fine
buckets, the panels the keys that waited most, the document well-formed
whatever the names hold (tests/test_pictures_browser.py opens it)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from pyrunq import heatmap
from pyrunq.hist import HIST_BUCKETS, Histogram

NS = {"s": "http://www.w3.org/2000/svg"}
HOSTILE = "pid = 7 <b id=h>&amp;\x02"


def buckets(**counts) -> tuple:
    """Fine buckets from latencies: ``buckets(v10=3)`` is 3 waits of 10 us."""
    out = [0] * HIST_BUCKETS
    for name, n in counts.items():
        out[Histogram.from_values([int(name[1:])]).buckets.index(1)] += n
    return tuple(out)


def cells(doc: str) -> dict:
    """panel label -> {(interval, bucket): count}."""
    root = ET.fromstring(doc.encode())
    out = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "panel":
            out[g.get("data-label")] = {
                (int(c.get("data-i")), int(c.get("data-b"))): int(c.get("data-n"))
                for c in g.findall("s:rect[@class='c']", NS)
            }
    return out


def test_cells_are_the_buckets_of_each_interval_and_the_sum_of_keys():
    r = heatmap.Recorder()
    r.add(100.0, {"a": buckets(v10=3, v1000=1), "b": buckets(v10=2)})
    r.add(101.0, {"b": buckets(v5000=4)})
    got = cells(r.svg_text("t"))
    b10, b1000, b5000 = (Histogram.from_values([v]).buckets.index(1) for v in (10, 1000, 5000))
    assert got["every wait"] == {(0, b10): 5, (0, b1000): 1, (1, b5000): 4}
    assert got["b"] == {(0, b10): 2, (1, b5000): 4}  # the most waits: first of the keys
    assert got["a"] == {(0, b10): 3, (0, b1000): 1}
    assert list(got) == ["every wait", "b", "a"]


def test_without_keys_one_panel():
    r = heatmap.Recorder()
    r.add(1.0, {"": buckets(v3=1)})
    assert list(cells(r.svg_text("t"))) == [""]


def test_only_the_top_keys_get_a_panel():
    r = heatmap.Recorder()
    r.add(1.0, {f"k{i}": buckets(v10=i + 1) for i in range(12)})
    got = cells(r.svg_text("t"))
    assert list(got)[1:] == [f"k{i}" for i in range(11, 11 - heatmap.TOP_KEYS, -1)]


def test_rows_on_a_log_axis():
    # each power of two as high as the next: rows at log2 of their bounds
    lo4, hi4 = heatmap.edges(4)  # 4 us
    lo8, hi8 = heatmap.edges(8)  # 8 us
    assert (lo4, lo8) == (2.0, 3.0) and math.isclose(hi4, math.log2(5))
    assert heatmap.edges(0) == (-1.0, 0.0)  # 0 us, below 1 us


def test_percentile_lines_follow_the_intervals():
    r = heatmap.Recorder()
    r.add(1.0, {"": buckets(v10=99, v5000=1)})
    r.add(2.0, {"": buckets()})  # no wait: the line breaks
    r.add(3.0, {"": buckets(v100=100)})
    doc = r.svg_text("t")
    root = ET.fromstring(doc.encode())
    p99 = root.find(".//s:g[@class='panel']/s:path[@class='p99']", NS).get("d")
    assert p99.count("M") == 2 and p99.count("h") == 2  # two runs of one column each


def test_hostile_label_stays_text():
    r = heatmap.Recorder()
    r.add(1.0, {HOSTILE: buckets(v10=1)})
    doc = r.svg_text(HOSTILE)
    root = ET.fromstring(doc.encode())  # well-formed: no control character got through
    assert "pid = 7 <b id=h>&amp;\ufffd" in cells(doc)
    assert root.find(".//s:b", NS) is None and root.find(".//*[@id='h']", NS) is None
    assert "http" not in doc.replace('xmlns="http://www.w3.org/2000/svg"', "") and "href" not in doc


def test_memory_is_bounded():
    r = heatmap.Recorder()
    for t in range(heatmap.MAX_COLUMNS + 5):
        r.add(float(t), {f"k{t % (heatmap.KEEP_KEYS + 50)}": buckets(v10=1)})
    assert len(r.times) == heatmap.MAX_COLUMNS and r.times[0] == 5.0
    assert len(r.keys) <= heatmap.KEEP_KEYS
    assert "the first 5 intervals left out" in r.svg_text("t")
