"""What test_matrix.py checks inside each guest kernel (not a test_*.py file: the
host never collects it). Every packaged object loads, attaches and fires; an
object compiled in the guest runs through the generic loader; the CLI prints a
histogram and events; with both program flavours, tp_btf and
raw_tp (PYRUNQ_RAW_TP=1), where a kernel without task storage (5.10) runs
raw_tp for both; and a kernel without BTF gets one clear line.

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
from pyrunq.hist import bucket_of
from pyrunq.bpf import BPFObject, features
from testobjects import ARCHES, compile_object
from waiting import Command

PYRUNQ = [os.path.join(os.path.dirname(sys.executable), "pyrunq")]  # the console script
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST_WAIT = 300  # seconds: emulated, everything is slow; only bounds a broken check
RELEASE = tuple(int(n) for n in os.uname().release.split("-")[0].split(".")[:2])
ARCH = ARCHES[os.uname().machine]
SYS_GETPGID = {"x86": "__x64_sys_getpgid", "arm64": "__arm64_sys_getpgid"}  # the syscall's function


@pytest.fixture(params=["tp_btf", "raw_tp"])
def flavour(request, monkeypatch):
    """The program flavour; the CLI's subprocesses inherit the choice."""
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if request.param == "raw_tp" else "0")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return request.param


def runs_raw_tp(flavour: str) -> bool:
    """The flavour a tool must pick: tp_btf needs task storage (5.11+); without
    it the tools fall back to raw_tp by themselves."""
    return flavour == "raw_tp" or not features.task_storage()


def test_task_storage_is_found_where_the_kernel_has_it(kernel):
    assert features.task_storage() == (RELEASE >= (5, 11)), os.uname().release


def compiled_here(name: str, tmp_path) -> str:
    """tests/objects/NAME.bpf.c compiled in this guest. Those objects name x86_64's
    syscall number and functions unless they define this architecture's."""
    source = os.path.join(ROOT, "tests", "objects", f"{name}.bpf.c")
    with open(source) as f:
        if ARCH != "x86" and f"__TARGET_ARCH_{ARCH}" not in f.read():
            pytest.skip(f"{name}.bpf.c knows x86_64's getpgid() only (its number, __x64_sys_getpgid)")
    return compile_object(source, tmp_path / f"{name}.bpf.o")


def wakeups(n: int = 50) -> None:
    """Scheduling events of our own: each sleep ends in a wakeup and a switch."""
    for _ in range(n):
        time.sleep(0.002)


def test_runqlat_fires(kernel, flavour):
    with pyrunq.RunqLat() as rq:
        assert rq.raw_tp == runs_raw_tp(flavour)
        wakeups()
        hist = rq.snapshot()[None]
    assert hist.total > 0


def test_cpudist_counts_our_own_runs(kernel, flavour):
    """Our sleeps end runs on the CPU and stay off it 2 ms or more (a sleep
    whose timer fires before it leaves the CPU has neither: a few may)."""
    me = os.getpid()
    with pyrunq.CpuDist(per="tid", pids=[me]) as on, pyrunq.CpuDist(offcpu=True, per="tid", pids=[me]) as off:
        assert on.raw_tp == off.raw_tp == runs_raw_tp(flavour)
        wakeups()
        runs, rests = on.snapshot(), off.snapshot()
    assert [(k.kind, k.id) for k in runs] == [("tid", me)] == [(k.kind, k.id) for k in rests]
    ((_, ran),), ((_, off),) = runs.items(), rests.items()
    assert ran.total >= 40 and sum(off.buckets[bucket_of(1000) :]) >= 40, (ran, off)


def test_runqlen_counts_the_cpus_queue(kernel):
    """Three busy children on CPU 1 of a quiet guest: two wait whenever one
    runs. The CPU's queue, found through the cfs_rq's rq on every kernel."""
    children = []
    try:
        for _ in range(3):
            pid = os.fork()
            if pid == 0:  # busy until killed
                os.sched_setaffinity(0, {1})
                while True:
                    pass
            children.append(pid)
        with pyrunq.RunqLen(frequency=199, cpus=[1]) as rl:
            rl.snapshot()
            time.sleep(0.5)  # about 100 samples
            q = rl.snapshot()[1]
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert q.samples > 0 and max(range(len(q.counts)), key=q.counts.__getitem__) == 2, q.counts


def test_offcputime_names_our_sleeps(kernel, flavour):
    """Our sleeps leave the CPU in the kernel's nanosleep (but a few whose
    timer fires first), from sched_switch alone (the tracing frames above it
    left out)."""
    with pyrunq.OffCpuTime(pids=[os.getpid()]) as oc:
        assert oc.raw_tp == runs_raw_tp(flavour)
        wakeups()
        stacks = oc.stacks()
    slept = [s for s in stacks if s.kernel and any("nanosleep" in str(f) for f in s.kernel)]
    assert sum(s.count for s in slept) >= 40, [(s.count, [str(f) for f in s.kernel or []]) for s in stacks]
    assert all(str(s.kernel[0]) == "__schedule" for s in slept), [str(f) for f in slept[0].kernel]


def test_offwaketime_blames_the_timer_for_our_sleeps(kernel, flavour):
    """Our sleeps are ended by the timer: an interrupt (a softirq where
    timers expire in one, PREEMPT_RT), never the task it interrupted."""
    with pyrunq.OffWakeTime(pids=[os.getpid()]) as ow:
        assert ow.raw_tp == runs_raw_tp(flavour)
        wakeups()
        stacks = ow.stacks()
    slept = [s for s in stacks if s.target.kernel and any("nanosleep" in str(f) for f in s.target.kernel)]
    by_timer = [s for s in slept if s.waker.context in ("irq", "softirq") and s.waker.pid == 0]
    assert sum(s.target.count for s in by_timer) >= 40, [(s.waker, s.target.count) for s in slept]


def test_runqslower_fires(kernel, flavour):
    events = []
    with pyrunq.RunqSlower(min_us=0, callback=events.append) as rs:
        assert rs.raw_tp == runs_raw_tp(flavour)
        wakeups()
        # not "until quiet": with min_us=0 our own polling makes events forever
        deadline = time.monotonic() + 10
        while not any(e.tid == os.getpid() for e in events) and time.monotonic() < deadline:
            rs.poll(0.1)
    assert any(e.tid == os.getpid() for e in events), events  # our own wakeups, decoded
    assert all(e.delta_ns >= 0 and e.task for e in events)


def test_blame_adds_up_to_every_wait(kernel, flavour):
    """Attribution loads and runs here (the migrate program, CO-RE for the
    CPU field and task flags): each wait's parts add up to it."""
    with pyrunq.RunqLat(blame=True) as rq:
        wakeups()
        rq.stop()
        hist, blame = rq.snapshot()[None], rq.attribution()[None]
    assert blame.total_ns == hist.sum_ns > 0
    events = []
    with pyrunq.RunqSlower(min_us=0, blame=True, callback=events.append) as rs:
        wakeups()
        rs.stop()
    assert events and all(sum(c.ns for c in e.culprits) + e.unattributed_ns == e.delta_ns for e in events)
    assert any(e.culprits for e in events), events[:5]


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
        tracked = ml.obj.maps["allocs"]  # by address: outstanding() leaves out blocks whose stack was lost
        block = libc.malloc(123457)
        seen = tracked.get(block)
        libc.free(ctypes.c_void_p(block))
        assert seen is not None and seen.size == 123457 and tracked.get(block) is None


def test_generic_runner_decodes_an_object_built_here(kernel, tmp_path):
    """`pyrunq run`'s pieces on an object compiled in this guest, not packaged."""
    from pyrunq.tools.generic import Runner

    obj = compiled_here("gen_filter", tmp_path)
    with Runner(obj, settings={"target_tgid": os.getpid(), "min_value": 50}) as r:
        for value in (10, 50, 60):  # the object records getpgid()'s argument
            try:
                os.getpgid(value)
            except ProcessLookupError:
                pass
        r.stop()
        assert [(m, e._asdict()) for m, e in r.events] == [
            ("records", {"value": v, "tid": os.getpid()}) for v in (50, 60)
        ]


def test_fentry_is_found_where_the_kernel_has_it(kernel):
    """fentry needs BPF trampolines on the function: x86_64 kernels have them;
    arm64 ones only from 6.4 (ftrace direct calls), so not Debian 12's 6.1."""
    assert features.fentry_can_attach(SYS_GETPGID[ARCH]) == (ARCH == "x86" or RELEASE >= (6, 4))


def test_generic_runner_runs_one_twin_of_each_point(kernel, tmp_path):
    """kprobes exist here (not on the host), fentry/fexit where the kernel has
    it: of gen_twins' twins fentry is chosen over kprobe and fexit over
    kretprobe, and each getpgid() counts once; without the fentry ones (skipped,
    or refused by this kernel), the kprobe ones run."""
    from pyrunq.tools.generic import Runner

    obj = compiled_here("gen_twins", tmp_path)
    tp_btf, fentry, kprobe, fexit, kretprobe = 0, 3, 4, 5, 6  # its hits[] slots
    by_fentry = (["count_call", "count_enter", "count_return"], {tp_btf: 5, fentry: 5, fexit: 5})
    by_kprobe = (
        ["count_call_kprobe", "count_enter", "count_return_kretprobe"],
        {tp_btf: 5, kprobe: 5, kretprobe: 5},
    )
    for skip, (attached, hits) in (
        ([], by_fentry if features.fentry_can_attach(SYS_GETPGID[ARCH]) else by_kprobe),
        (["count_call", "count_return"], by_kprobe),
    ):
        with Runner(obj, settings={"target_tgid": os.getpid()}, skip=skip) as r:
            assert r.not_attached == [], r.not_attached
            assert sorted(r.attached) == attached
            for value in range(20_000_001, 20_000_006):
                try:
                    os.getpgid(value)
                except ProcessLookupError:
                    pass
            r.stop()
            assert {k: v for k, v in r.obj.maps["hits"].items() if v} == hits


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
