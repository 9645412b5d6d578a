"""runqslower on the real kernel: events, filters, loss accounting, command line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pyrunq.tools.runqslower import RunqSlower
from workload import Contention

THRESHOLD_US = 1000  # well above the tracer's own wake-ups (see NOTES.md)


def collect(seconds: float = 1.5, **kw) -> list:
    with RunqSlower(**kw) as rs:
        deadline = time.monotonic() + seconds
        events = []
        while time.monotonic() < deadline:
            rs.poll(0.1)
            events.extend(rs.events(timeout=0))
        return events


@pytest.mark.parametrize("flavour", ["tp_btf", "raw_tp"])
def test_victim_delays_above_threshold_are_reported(kernel, monkeypatch, flavour):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    with Contention(busy=2) as w:
        time.sleep(0.3)
        events = collect(min_us=THRESHOLD_US, pid=w.victim.pid)
        busy = {p.pid for p in w.busy}
    assert len(events) >= 3
    for e in events:
        assert (e.pid, e.tid, e.task) == (w.victim.pid, w.victim.pid, "python")
        assert e.delta_ns >= THRESHOLD_US * 1000
        assert e.cpu == 0
    # the victim waited behind the busy loops: they are what it replaced
    assert {e.prev_tid for e in events} & busy
    assert all(e.prev_task for e in events)


def test_threshold_above_everything_reports_nothing(kernel):
    with Contention(busy=2):
        assert collect(seconds=1, min_us=10_000_000) == []


def test_every_delay_is_at_least_the_threshold(kernel):
    with Contention(busy=1):
        events = collect(seconds=1, min_us=200)
    assert events and min(e.delta_ns for e in events) >= 200_000


def test_tid_filter_includes_only_that_thread(kernel):
    with Contention(busy=2) as w:
        time.sleep(0.3)
        events = collect(min_us=THRESHOLD_US, tid=w.busy[0].pid)
        others = collect(seconds=0.5, min_us=0, tid=w.victim.pid)
    assert {e.tid for e in events} <= {w.busy[0].pid}
    assert {e.tid for e in others} == {w.victim.pid}


def test_full_ring_buffer_counts_lost_events_and_keeps_the_rest_intact(kernel):
    with Contention(busy=2):
        with RunqSlower(min_us=0, ring_bytes=4096) as rs:
            time.sleep(1)  # nobody reads: the 4 KiB ring fills up
            assert rs.lost > 0
            rs.stop()
            events = list(rs.events(timeout=0))
    assert 10 < len(events) < 4096 // 64
    for e in events:
        assert e.tid > 0 and e.task and e.cpu in range(os.cpu_count())
        assert 0 <= e.delta_ns < 60 * 10**9


def test_events_work_with_selectors(kernel):
    import selectors

    with Contention(busy=2) as w, RunqSlower(min_us=0, pid=w.victim.pid) as rs:
        sel = selectors.DefaultSelector()
        sel.register(rs.fileno(), selectors.EVENT_READ)
        assert sel.select(timeout=2)
        assert rs.poll(0) > 0
        assert list(rs.events(timeout=0))


def run_cli(*args, seconds=1.5, signum=signal.SIGINT):
    p = subprocess.Popen([sys.executable, "-m", "pyrunq", "runqslower", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    p.send_signal(signum)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_output_matches_the_c_tool(kernel, signum):
    with Contention(busy=2) as w:
        rc, out, err = run_cli("-P", "-p", str(w.victim.pid), str(THRESHOLD_US), signum=signum)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Tracing run queue latency higher than {THRESHOLD_US} us"
    assert lines[1] == "TIME     COMM             TID           LAT(us) PREV COMM        PREV TID"
    assert len(lines) > 3
    row = re.compile(r"^\d\d:\d\d:\d\d python           (\d+) *\s(\d{14}| {0,13}\d+) (.{16}) (\d+) *$")
    for line in lines[2:]:
        m = row.match(line)
        assert m, line
        assert int(m.group(1)) == w.victim.pid and int(m.group(2)) >= THRESHOLD_US
        assert len(line.split("python", 1)[0]) == 9  # "%-8s " before the comm


def test_cli_json(kernel):
    with Contention(busy=2) as w:
        rc, out, err = run_cli("--json", "-t", str(w.victim.pid), "500")
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert docs
    for d in docs:
        assert d["tid"] == w.victim.pid and d["latency_us"] >= 500
        assert d["latency_us"] == d["latency_ns"] // 1000
        assert set(d) == {"time", "comm", "pid", "tid", "latency_us", "latency_ns", "cpu",
                          "prev_comm", "prev_pid", "prev_tid"}


def test_cli_closed_pipe_exits_quietly(kernel):
    with Contention(busy=2):
        out = subprocess.run(f"{sys.executable} -m pyrunq runqslower 0 | head -1",
                             shell=True, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.startswith("Tracing run queue latency higher than 0 us")
    assert "Traceback" not in out.stderr and "Error" not in out.stderr, out.stderr


@pytest.mark.parametrize("args, message", [
    (["-5"], "must be >= 0"),
    (["abc"], "invalid number"),
    (["-p", "junk"], "invalid integer"),
    (["-p", "1", "-t", "2"], "not allowed with argument"),
    (["-t", "0"], "must be positive"),
])
def test_cli_bad_input_one_line_exit_2(kernel, args, message):
    out = subprocess.run([sys.executable, "-m", "pyrunq", "runqslower", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert len(out.stderr.splitlines()) == 1 and message in out.stderr, out.stderr
    assert out.stderr.startswith("pyrunq runqslower: error: ")
