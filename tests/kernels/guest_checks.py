"""What test_matrix.py checks inside each guest kernel (not a test_*.py file: the
host never collects it). Every packaged object loads, attaches and fires; an
object compiled in the guest runs through the generic loader; the CLI prints a
histogram and events; with both program flavours, tp_btf and
raw_tp (PYRUNQ_RAW_TP=1); and a kernel without BTF gets one clear line.

Keep it small: Python runs 10 to 20 times slower under TCG, and each CLI run
pays an interpreter start-up of a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import pyrunq
from pyrunq.bpf import BPFObject
from testobjects import compile_object
from waiting import Command

PYRUNQ = [os.path.join(os.path.dirname(sys.executable), "pyrunq")]  # the console script
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST_WAIT = 300  # seconds: emulated, everything is slow; only bounds a broken check


@pytest.fixture(params=["tp_btf", "raw_tp"])
def flavour(request, monkeypatch):
    """The program flavour; the CLI's subprocesses inherit the choice."""
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if request.param == "raw_tp" else "0")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return request.param


def wakeups(n: int = 50) -> None:
    """Scheduling events of our own: each sleep ends in a wakeup and a switch."""
    for _ in range(n):
        time.sleep(0.002)


def test_runqlat_fires(kernel, flavour):
    with pyrunq.RunqLat() as rq:
        assert rq.raw_tp == (flavour == "raw_tp")
        wakeups()
        hist = rq.snapshot()[None]
    assert hist.total > 0


def test_runqslower_fires(kernel, flavour):
    events = []
    with pyrunq.RunqSlower(min_us=0, callback=events.append) as rs:
        assert rs.raw_tp == (flavour == "raw_tp")
        wakeups()
        # not "until quiet": with min_us=0 our own polling makes events forever
        deadline = time.monotonic() + 10
        while not any(e.tid == os.getpid() for e in events) and time.monotonic() < deadline:
            rs.poll(0.1)
    assert any(e.tid == os.getpid() for e in events), events  # our own wakeups, decoded
    assert all(e.delta_ns >= 0 and e.task for e in events)


def test_selftest_fires(kernel):
    with BPFObject.open("selftest") as obj:
        obj.rodata["targ_tgid"] = os.getpid()
        obj.load()
        obj.attach()
        rb = obj.ring_buffer("events", event="selftest_event")
        try:
            os.getpgid(10_000_002)  # the program records getpgid()'s argument
        except ProcessLookupError:
            pass
        assert [e.seq for e in rb.events(timeout=0.5)] == [10_000_002]
        assert obj.bss["hits"] == 1


def test_bootstrap_fires(kernel):
    from pyrunq.tools.bootstrap import Bootstrap

    with Bootstrap() as bs:
        child = subprocess.Popen(["sh", "-c", "exit 3"])
        child.wait()
        events = []
        for e in bs.events(timeout=5):
            events += [e] if e.pid == child.pid else []
            if e.pid == child.pid and e.exit_event:
                break
    assert [(e.exit_event, e.exit_code) for e in events] == [(0, 0), (1, 3)], events
    assert events[0].filename.endswith("/sh") and events[1].duration_ns > 0


def test_funclatency_fires(kernel):
    from pyrunq.tools.funclatency import FuncLatency

    with FuncLatency("c:getppid", pid=os.getpid()) as fl:  # a uprobe on libc
        for _ in range(20):
            os.getppid()
        assert fl.snapshot().count == 20


def test_stackcount_fires(kernel):
    from pyrunq.tools.stackcount import StackCount

    with StackCount("c:getppid", pid=os.getpid()) as sc:
        for _ in range(20):
            os.getppid()
        counts = sc.counts()
    assert sum(s.count for s in counts) == 20 and all(s.frames for s in counts), counts


def test_memleak_fires(kernel):
    import ctypes

    from pyrunq.tools.memleak import MemLeak

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    with MemLeak(os.getpid()) as ml:
        block = libc.malloc(123457)
        sizes = [s.bytes for s in ml.outstanding()]
        libc.free(ctypes.c_void_p(block))
        assert 123457 in sizes and 123457 not in [s.bytes for s in ml.outstanding()]


def test_generic_runner_decodes_an_object_built_here(kernel, tmp_path):
    """`pyrunq run`'s pieces on an object compiled in this guest, not packaged."""
    from pyrunq.tools.generic import Runner

    obj = compile_object(
        os.path.join(ROOT, "tests", "objects", "gen_filter.bpf.c"), tmp_path / "gen_filter.bpf.o"
    )
    with Runner(obj, settings={"target_tgid": os.getpid(), "min_value": 50}) as r:
        for value in (10, 50, 60):  # the object records getpgid()'s argument
            try:
                os.getpgid(value)
            except ProcessLookupError:
                pass
        r.stop()
        assert r.events == [("records", {"value": v, "tid": os.getpid()}) for v in (50, 60)]


def test_generic_runner_runs_one_twin_of_each_point(kernel, tmp_path):
    """fentry/fexit and kprobes exist here (not on the host): of gen_twins'
    twins fentry is chosen over kprobe and fexit over kretprobe, and each
    getpgid() counts once; without the fentry ones, the kprobe ones run."""
    from pyrunq.tools.generic import Runner

    obj = compile_object(
        os.path.join(ROOT, "tests", "objects", "gen_twins.bpf.c"), tmp_path / "gen_twins.bpf.o"
    )
    tp_btf, fentry, kprobe, fexit, kretprobe = 0, 3, 4, 5, 6  # its hits[] slots
    for skip, expected in (
        ([], {tp_btf: 5, fentry: 5, fexit: 5}),
        (["count_call", "count_return"], {tp_btf: 5, kprobe: 5, kretprobe: 5}),
    ):
        with Runner(obj, settings={"target_tgid": os.getpid()}, skip=skip) as r:
            assert r.not_attached == [], r.not_attached
            assert sorted(r.attached) == (
                ["count_call", "count_enter", "count_return"]
                if not skip
                else ["count_call_kprobe", "count_enter", "count_return_kretprobe"]
            )
            for value in range(20_000_001, 20_000_006):
                try:
                    os.getpgid(value)
                except ProcessLookupError:
                    pass
            r.stop()
            assert {k: v for k, v in r.obj.maps["hits"].items() if v} == expected


def test_cli_runqlat_prints_a_histogram(kernel, flavour):
    out = subprocess.run([*PYRUNQ, "runqlat", "1", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if "->" in line]
    assert "usecs" in out.stdout and rows, out.stdout
    assert sum(int(r[4]) for r in rows) > 0, out.stdout  # "lo -> hi : count |bars|"


def test_cli_runqslower_prints_events(kernel, flavour):
    with Command([*PYRUNQ, "runqslower", "0"]) as p:
        p.wait_line("^Tracing run queue latency higher than 0 us", timeout=GUEST_WAIT)
        p.wait_line(r"^TIME +COMM +TID +LAT\(us\)$", timeout=GUEST_WAIT)  # tracing from here
        wakeups()
        p.wait_line(r"^\d\d:\d\d:\d\d ", count=3, timeout=GUEST_WAIT)
        rc, out, err = p.finish(signal.SIGINT, timeout=GUEST_WAIT)
    assert rc == 0, err
    events = out.splitlines()[2:]
    assert len(events) >= 3 and all(len(e.split()) >= 4 for e in events), events


@pytest.mark.parametrize("how", ["hidden /sys/kernel/btf", "PYRUNQ_BTF=/nonexistent"])
def test_without_btf_one_clear_line(kernel, how):
    cmd = [*PYRUNQ, "runqlat", "1", "1"]
    if how.startswith("hidden"):  # as on a kernel built without BTF: libbpf finds none either
        cmd = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /sys/kernel/btf && exec "$@"', "sh", *cmd]
    env = dict(os.environ, PYRUNQ_BTF="/nonexistent") if how.startswith("PYRUNQ") else None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1 and out.stdout == "", out
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert "no BTF" in out.stderr and "CONFIG_DEBUG_INFO_BTF" in out.stderr, out.stderr
