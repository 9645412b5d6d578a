"""The pictures as a user sees them: made by the tools from real traces, then
opened in Debian's chromium (headless, through selenium: tests/browser.py).
Each picture must open with no console error and no request but its own
file, show what the tool measured, and answer the mouse and the keyboard
as its legend says; a process named with markup shows as text.

Slow tier: a browser start and a trace each."""

from __future__ import annotations

import json
import os
import re
import signal
import xml.etree.ElementTree as ET

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from pyrunq.hist import LOG2_SLOTS, bucket_bounds, slot_of_bucket
import cli
from userprogs import Waiting
from waiting import wait_for
from workload import BURST_S, HOG, HOG_COMM, IDLE_S, Workload, spawn, victim

pytestmark = pytest.mark.slow

HOSTILE = "<b id=h>&amp;"  # a comm (15 bytes at most, no "/"): markup, an entity, the folded separator
SVG = "{http://www.w3.org/2000/svg}"
FULL = 1180.0  # the flame graph's full width: 1200 px less two 10 px margins


def frame(browser, name: str):
    """The <g> of the first frame named ``name``."""
    for g in browser.driver.find_elements(By.CSS_SELECTOR, "#frames > g"):
        if g.get_attribute("data-f") == name:
            return g
    raise AssertionError(f"no frame {name!r}")


def width(g) -> float:
    return float(g.find_element(By.TAG_NAME, "rect").get_attribute("width"))


def opened_cleanly(browser, path) -> None:
    """No console error, no request but the file itself, and the script ran."""
    wait_for(lambda: browser.js("return document.readyState") == "complete", timeout=10)
    assert [e for e in browser.console() if e["level"] == "SEVERE"] == []
    # (chrome:// pages are the browser's own new tab, from before the file was opened)
    fetched = {url for url in browser.requests() if not url.startswith("chrome://")}
    assert fetched <= {f"file://{path}"}, fetched


def test_stackcount_flame_graph(kernel, foobar, browser, tmp_path):
    """Two processes call main -> Bar -> Foo: one named with markup (3 calls),
    one ``foobar`` (1 call); stackcount without -p roots each stack in its
    process name."""
    hostile = tmp_path / HOSTILE
    os.link(foobar, hostile)  # the same inode: the uprobe on foobar's Foo fires in both
    svg = tmp_path / "stacks.svg"
    with cli.spawn("stackcount", "--folded", "--flamegraph", str(svg), f"{foobar}:Foo") as p:
        p.wait_line("^Tracing 1 functions for ", stream="err")
        for prog, calls in ((foobar, "1"), (str(hostile), "3")):
            with Waiting(prog, calls, "0") as fb:
                fb.go(reply=False)
                fb.finish()
        rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    pairs = [line.rsplit(" ", 1) for line in out.splitlines()]
    assert {stack.split(";")[0]: int(n) for stack, n in pairs} == {"<b id=h>&amp:": 3, "foobar": 1}
    prefixes = {tuple(stack.split(";")[:i]) for stack, _ in pairs for i in range(1, stack.count(";") + 2)}

    browser.open(str(svg))
    opened_cleanly(browser, svg)
    frames = browser.driver.find_elements(By.CSS_SELECTOR, "#frames > g")
    assert len(frames) == len(prefixes) + 1  # every distinct frame of the folded input, and "all"
    assert browser.js("return document.documentElement.getAttribute('data-total')") == "4"

    # the process that named itself with markup: shown as text, no element made of it
    named = frame(browser, "<b id=h>&amp:")
    assert named.find_element(By.TAG_NAME, "text").text == "<b id=h>&amp:"
    assert browser.js("return document.getElementById('h') === null && !document.querySelector('b')")

    # hover: the details line names the frame and its share
    ActionChains(browser.driver).move_to_element(named.find_element(By.TAG_NAME, "rect")).perform()
    details = browser.driver.find_element(By.ID, "details")
    wait_for(
        lambda: details.text == "Function: <b id=h>&amp: (3 calls, 75.00%)",
        timeout=5,
        seen=lambda: details.text,
    )

    # click: the frame takes the full width, its callees with it, the other process hidden
    small = frame(browser, "foobar")
    assert abs(width(small) - FULL / 4) < 0.1
    small.find_element(By.TAG_NAME, "rect").click()
    assert abs(width(small) - FULL) < 0.01
    assert not named.is_displayed()
    unzoom = browser.driver.find_element(By.ID, "unzoom")
    assert unzoom.is_displayed()
    unzoom.click()
    assert abs(width(small) - FULL / 4) < 0.1 and named.is_displayed()

    # search: a regular expression typed at the prompt; nested matches count once
    browser.driver.find_element(By.ID, "search").click()
    alert = browser.driver.switch_to.alert
    alert.send_keys("^(Foo|foobar)$")
    alert.accept()
    matched = browser.driver.find_element(By.ID, "matched")
    assert matched.text == "Matched: 100.00% (4 calls)"
    lit = browser.driver.find_elements(By.CSS_SELECTOR, "#frames > g.match")
    assert sorted(g.get_attribute("data-f") for g in lit) == ["Foo", "Foo", "foobar"]
    assert {g.find_element(By.TAG_NAME, "rect").get_attribute("fill") for g in lit} == {"rgb(230,0,230)"}


def heatmap_cells(path) -> dict:
    """panel label -> {(interval, fine bucket): count}, read from the file."""
    root = ET.parse(path).getroot()
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "panel":
            out[g.get("data-label")] = {
                (int(c.get("data-i")), int(c.get("data-b"))): int(c.get("data-n"))
                for c in g.iter(f"{SVG}rect")
                if c.get("class") == "c"
            }
    return out


def by_slot(cells: dict, interval: int) -> list[int]:
    """One interval's cells folded into runqlat's log2 slots (as its JSON has them)."""
    slots = [0] * LOG2_SLOTS
    for (i, b), n in cells.items():
        if i == interval:
            slots[slot_of_bucket(b)] += n
    return slots


def test_runqlat_heatmap(kernel, browser, tmp_path):
    """A victim named with markup waits behind a real-time hog (tests/workload.py):
    runqlat -P prints each interval's histograms as JSON and draws the same
    in the heatmap, one small heatmap per process."""
    svg = tmp_path / "latency.svg"
    with Workload(
        [victim(0, comm=HOSTILE), spawn(HOG.format(comm=HOG_COMM, burst=BURST_S, idle=IDLE_S), 0, fifo=True)]
    ) as w:
        pids = ",".join(str(p.pid) for p in w.procs)
        done = cli.run("runqlat", "-P", "-p", pids, "--json", "--heatmap", str(svg), "1", "2")
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    ends = sorted({d["time"] for d in docs})
    assert len(ends) == 2
    cells = heatmap_cells(svg)
    victim_label = f"pid = {w.procs[0].pid} {HOSTILE}"
    assert set(cells) == {"every wait", victim_label, f"pid = {w.procs[1].pid} {HOG_COMM}"}
    for i, end in enumerate(ends):  # every cell is a count of the interval's histogram
        every = [0] * LOG2_SLOTS
        for d in (d for d in docs if d["time"] == end):
            slots = [b["count"] for b in d["buckets"]]
            label = f"pid = {d['key']['id']} {d['key']['comm']}"
            assert by_slot(cells[label], i)[: len(slots)] == slots
            assert sum(by_slot(cells[label], i)) == d["total"]
            every = [a + b for a, b in zip(every, slots + [0] * (LOG2_SLOTS - len(slots)))]
        assert by_slot(cells["every wait"], i) == every
    assert (
        sum(n for (i, b), n in cells[victim_label].items() if bucket_bounds(b)[0] >= 1000) > 0
    )  # the hog's ms

    browser.open(str(svg))
    opened_cleanly(browser, svg)
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "rect.c")) == sum(map(len, cells.values()))
    title = browser.driver.find_element(By.CSS_SELECTOR, "g.panel[data-panel='1'] > text")
    assert title.text == victim_label  # markup shown as text
    assert browser.js("return document.getElementById('h') === null && !document.querySelector('b')")
    # hover: the cell's panel, interval, bucket and count
    (i, b), n = max(cells[victim_label].items(), key=lambda kv: kv[1])
    cell = browser.driver.find_element(
        By.CSS_SELECTOR, f"g.panel[data-panel='1'] > rect.c[data-i='{i}'][data-b='{b}']"
    )
    ActionChains(browser.driver).move_to_element(cell).perform()
    low, high = bucket_bounds(b)
    span = f"{low}" if low == high else f"{low}-{high}"
    details = browser.driver.find_element(By.ID, "details")
    wait_for(
        lambda: details.text.startswith(f"{victim_label}: interval {i + 1} (ending "),
        timeout=5,
        seen=lambda: details.text,
    )
    assert re.fullmatch(rf".*\(ending \d\d:\d\d:\d\d\), {span} us: {n:,} waits?", details.text), details.text
