"""runqslower on the real kernel: events, filters, loss accounting, command line."""

from __future__ import annotations

import json
import os
import re
import signal
import shlex
import subprocess

import pytest

from pyrunq.tools.runqslower import RunqSlower
import cli
from cli import assert_usage_error
from waiting import DEADLINE, collect, wait_for
from workload import THRESHOLD_US, VICTIM_COMM, Contention


@pytest.mark.parametrize("flavour", ["tp_btf", "raw_tp"])
def test_victim_delays_above_threshold_are_reported(kernel, monkeypatch, flavour):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    with Contention() as w, RunqSlower(min_us=THRESHOLD_US, pid=w.victim.pid) as rs:
        events = collect(rs, lambda e: len(e) >= 10)
    for e in events:
        assert (e.pid, e.tid, e.task) == (w.victim.pid, w.victim.pid, VICTIM_COMM)
        assert e.delta_ns >= THRESHOLD_US * 1000
        assert e.cpu == 0
        assert e.prev_task
    # the victim waited behind the hog's bursts: the hog is what it replaced
    assert w.hog.pid in {e.prev_tid for e in events}


def test_threshold_above_everything_reports_nothing(kernel):
    with (
        Contention() as w,
        RunqSlower(min_us=10_000_000) as high,
        RunqSlower(min_us=THRESHOLD_US, pid=w.victim.pid) as low,
    ):
        collect(low, lambda e: len(e) >= 5)  # both were live while these delays happened
        high.poll(0)
        assert list(high.events(timeout=0)) == []


def test_every_delay_is_at_least_the_threshold(kernel):
    with Contention(), RunqSlower(min_us=200) as rs:
        events = collect(rs, lambda e: len(e) >= 20)
    assert min(e.delta_ns for e in events) >= 200_000


def test_tid_filter_includes_only_that_thread(kernel):
    with Contention(victims=2) as w, RunqSlower(min_us=THRESHOLD_US, tid=w.victim.pid) as rs:
        events = collect(rs, lambda e: len(e) >= 5)
    # the second victim waits behind the same hog, but is not that thread
    assert {e.tid for e in events} == {w.victim.pid}


def test_full_ring_buffer_counts_lost_events_and_keeps_the_rest_intact(kernel):
    with Contention():
        with RunqSlower(min_us=0, ring_bytes=4096) as rs:
            wait_for(lambda: rs.lost > 0)  # nobody reads: the 4 KiB ring fills up
            rs.stop()
            events = list(rs.events(timeout=0))
    assert 10 < len(events) < 4096 // 64
    for e in events:
        assert e.tid > 0 and e.task and e.cpu in range(os.cpu_count())
        assert 0 <= e.delta_ns < 60 * 10**9


def test_events_work_with_selectors(kernel):
    import selectors

    with Contention() as w, RunqSlower(min_us=0, pid=w.victim.pid) as rs:
        sel = selectors.DefaultSelector()
        sel.register(rs.fileno(), selectors.EVENT_READ)
        assert sel.select(timeout=DEADLINE)
        assert rs.poll(0) > 0
        assert list(rs.events(timeout=0))


ROW = re.compile(r"^\d\d:\d\d:\d\d (.{16}) (\d+) *\s(\d{14}| {0,13}\d+) (.{16}) (\d+) *$")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_output_matches_the_c_tool(kernel, signum):
    with (
        Contention() as w,
        cli.spawn("runqslower", "-P", "-p", str(w.victim.pid), str(THRESHOLD_US)) as p,
    ):
        p.wait_line(ROW.pattern, count=3)
        rc, out, err = p.finish(signum)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Tracing run queue latency higher than {THRESHOLD_US} us"
    assert lines[1] == "TIME     COMM             TID           LAT(us) PREV COMM        PREV TID"
    assert len(lines) >= 5
    for line in lines[2:]:
        m = ROW.match(line)
        assert m, line
        assert m.group(1) == f"{VICTIM_COMM:<16}"  # "%-8s %-16s" from the start
        assert int(m.group(2)) == w.victim.pid and int(m.group(3)) >= THRESHOLD_US


def test_cli_json(kernel):
    with Contention() as w, cli.spawn("runqslower", "--json", "-t", str(w.victim.pid), "500") as p:
        p.wait_line("^{", count=3)
        rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) >= 3
    for d in docs:
        assert d["tid"] == w.victim.pid and d["latency_us"] >= 500
        assert d["comm"] == VICTIM_COMM
        assert d["latency_us"] == d["latency_ns"] // 1000
        assert set(d) == {
            "time",
            "comm",
            "pid",
            "tid",
            "latency_us",
            "latency_ns",
            "cpu",
            "prev_comm",
            "prev_pid",
            "prev_tid",
        }


def test_cli_closed_pipe_exits_quietly(kernel):
    with Contention():
        out = subprocess.run(
            f"{shlex.join(cli.cmd('runqslower', '0'))} | head -1",
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0
    assert out.stdout.startswith("Tracing run queue latency higher than 0 us")
    assert "Traceback" not in out.stderr and "Error" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["-5"], "must be >= 0"),
        (["abc"], "invalid number"),
        (["-p", "junk"], "invalid integer"),
        (["-p", "1", "-t", "2"], "not allowed with argument"),
        (["-t", "0"], "must be positive"),
    ],
)
def test_cli_bad_input_one_line_exit_2(args, message):
    assert_usage_error("runqslower", args, message)
