"""The pictures as a user sees them: made by the tools from real traces, then
opened in Debian's chromium (headless, through selenium: tests/browser.py).
Each picture must open with no console error and no request but its own
file, show what the tool measured, and answer the mouse and the keyboard
as its legend says; a process named with markup shows as text.

Slow tier: a browser start and a trace each."""

from __future__ import annotations

import os
import signal

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

import cli
from userprogs import Waiting
from waiting import wait_for

pytestmark = pytest.mark.slow

HOSTILE = "<b id=h>&amp;"  # a comm (15 bytes at most, no "/"): markup, an entity, the folded separator
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
    assert set(browser.requests()) <= {f"file://{path}"}


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
