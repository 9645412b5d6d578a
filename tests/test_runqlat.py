"""runqlat on the real kernel: what it measures, its filters, its command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pyrunq.cgroup import resolve
from pyrunq.cli.runqlat import text
from pyrunq.hist import Histogram, bucket_bounds, bucket_of
from pyrunq.tools.runqlat import Key, RunqLat
from workload import Contention

MS_SLOT = 10  # log2 slot of 1024..2047 us


def pyrunq(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyrunq", *args], capture_output=True,
                          text=True, timeout=60, **kw)


def trace(seconds=1.5, **kw) -> dict:
    with RunqLat(**kw) as rq:
        time.sleep(seconds)
        return rq.snapshot()


@pytest.mark.parametrize("flavour", ["tp_btf", "raw_tp"])
def test_victim_waits_milliseconds_only_under_contention(kernel, monkeypatch, flavour):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    results = {}
    for busy, cpu in ((2, 0), (0, 1)):
        with Contention(busy=busy, cpu=cpu) as w:
            time.sleep(0.3)  # the busy loops get going
            snap = trace(per="tid", pids=[w.victim.pid])
        assert list(snap) == [Key("tid", w.victim.pid, "python")]
        results[busy] = snap[Key("tid", w.victim.pid, "python")]
    contended, alone = results[2], results[0]
    assert contended.total > 100 and alone.total > 100
    waits, alone_waits = sum(contended.slots[MS_SLOT:]), sum(alone.slots[MS_SLOT:])
    assert waits >= max(5, 3 * alone_waits), contended.render() + alone.render()
    assert contended.percentile(99) > 2 * alone.percentile(99)
    for h in (contended, alone):  # the exact sum lies within what the buckets allow
        low = sum(bucket_bounds(i)[0] * n for i, n in enumerate(h.buckets))
        high = sum(((bucket_bounds(i)[1] or 2**40) + 1) * n for i, n in enumerate(h.buckets))
        assert low * 1000 <= h.sum_ns <= high * 1000


def test_pid_filter_excludes_other_processes(kernel):
    with Contention(busy=1) as w:
        snap = trace(seconds=1, per="pid", pids=[w.victim.pid, w.busy[0].pid])
    assert {k.id for k in snap} <= {w.victim.pid, w.busy[0].pid}
    assert w.victim.pid in {k.id for k in snap}


def test_set_pids_changes_the_traced_processes_live(kernel):
    with Contention(busy=0) as a, Contention(busy=0, cpu=1) as b:
        with RunqLat(per="pid", pids=[a.victim.pid]) as rq:
            time.sleep(0.5)
            assert {k.id for k in rq.snapshot()} == {a.victim.pid}
            rq.set_pids([b.victim.pid])
            rq.snapshot()  # what a did before the switch
            time.sleep(0.5)
            assert {k.id for k in rq.snapshot()} == {b.victim.pid}


def test_cgroup_filter_includes_only_its_tasks(kernel, cgroup_tree):
    with Contention(busy=1) as w:
        path = cgroup_tree("a", w.victim)
        snap = trace(seconds=1, per="pid", cgroup=path)
    assert {k.id for k in snap} == {w.victim.pid}


def test_cgroup_id_set_filter_changes_live(kernel, cgroup_tree):
    with Contention(busy=1) as a, Contention(busy=0, cpu=1) as b:
        first, second = cgroup_tree("a", a.victim), cgroup_tree("b", b.victim)
        ids = {resolve(p)[1]: p for p in (first, second)}
        with RunqLat(per="cgroup", cgroup_ids=[resolve(first)[1]]) as rq:
            time.sleep(0.5)
            assert {ids[k.id] for k in rq.snapshot()} == {first}
            rq.set_cgroup_ids([resolve(second)[1]])
            rq.snapshot()
            time.sleep(0.5)
            assert {ids[k.id] for k in rq.snapshot()} == {second}


def test_per_cgroup_histograms_separate_cgroups(kernel, cgroup_tree):
    with Contention(busy=1) as a, Contention(busy=0, cpu=1) as b:
        first, second = cgroup_tree("a", a.victim), cgroup_tree("b", b.victim)
        snap = trace(seconds=1, per="cgroup")
    names = {k.name: h for k, h in snap.items()}
    for path in (first, second):
        assert names[path].total > 50


def test_milliseconds_divide_consistently(kernel):
    with Contention(busy=2) as w:
        with RunqLat(per="pid", pids=[w.victim.pid]) as us, \
                RunqLat(per="pid", pids=[w.victim.pid], milliseconds=True) as ms:
            us.snapshot(), ms.snapshot()  # the same start for both
            time.sleep(1.5)
            u, m = us.snapshot(), ms.snapshot()
    (hu,), (hm,) = u.values(), m.values()
    assert hm.unit == "msecs" and hu.unit == "usecs"
    assert abs(hu.total - hm.total) <= max(3, hu.total // 20)
    # every sample of N us is floor(N/1000) ms: bucket counts must agree
    ms_from_us = sum(hu.buckets[bucket_of(1000):])
    assert abs(sum(hm.buckets[1:]) - ms_from_us) <= max(3, ms_from_us // 10)


def test_snapshot_reports_only_new_samples(kernel):
    with Contention(busy=0) as w:
        with RunqLat(pids=[w.victim.pid]) as rq:
            time.sleep(0.5)
            first = rq.snapshot(clear=False)[None]
            time.sleep(0.3)
            both = rq.snapshot()[None]
            time.sleep(0.3)
            third = rq.snapshot()[None]
    assert both.total > first.total > 0
    assert 0 < third.total < both.total


def test_cli_interval_count_prints_exactly_that_many(kernel):
    with Contention(busy=1):
        out = pyrunq("runqlat", "1", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Tracing run queue latency... Hit Ctrl-C to end."
    assert sum(line == "     usecs               : count    distribution" for line in lines) == 3


def test_cli_per_process_milliseconds_timestamps(kernel):
    with Contention(busy=2) as w:
        out = pyrunq("runqlat", "-P", "-m", "-T", "-p", str(w.victim.pid), "1", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1] == ""
    time.strptime(lines[2].strip(), "%H:%M:%S")
    assert lines[3:6] == ["", f"pid = {w.victim.pid} python",
                          "     msecs               : count    distribution"]


def test_cli_json_lines(kernel):
    with Contention(busy=1) as w:
        out = pyrunq("runqlat", "--json", "-L", "-p", str(w.victim.pid), "1", "2")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == 2
    for doc in docs:
        assert doc["key"] == {"kind": "tid", "id": w.victim.pid, "comm": "python"}
        assert doc["unit"] == "usecs" and doc["total"] == sum(b["count"] for b in doc["buckets"])
        assert doc["p50"] <= doc["p90"] <= doc["p99"] <= doc["max"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_signal_without_interval_prints_one_histogram(kernel, signum):
    with Contention(busy=1):
        p = subprocess.Popen([sys.executable, "-m", "pyrunq", "runqlat"], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        assert p.stdout.readline().startswith("Tracing run queue latency")
        time.sleep(0.5)
        p.send_signal(signum)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert out.count("usecs               : count    distribution") == 1


@pytest.mark.parametrize("args, message", [
    (["0"], "must be positive"),
    (["-5"], "must be positive"),
    (["1", "x"], "invalid integer"),
    (["-P", "-L"], "not allowed with argument"),
    (["-p", "12,abc"], "invalid PID list"),
    (["-c", "/tmp"], "not a cgroup v2 directory"),
    (["--bogus"], "unrecognized arguments"),
])
def test_cli_bad_input_one_line_exit_2(kernel, args, message):
    out = pyrunq("runqlat", *args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and message in out.stderr, out.stderr
    assert out.stderr.startswith("pyrunq runqlat: error: ")


def test_cli_missing_pid_is_reported(kernel):
    p = subprocess.Popen([sys.executable, "-m", "pyrunq", "runqlat", "-p", "4194999", "1", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0
    assert "pyrunq runqlat: warning: no process with PID 4194999" in err


def test_text_renders_like_the_c_tool():
    a = Histogram.from_values([1, 3, 40, 40, 41], "msecs")
    b = Histogram.from_values([7], "msecs")
    snap = {Key("pid", 42, "sshd"): a, Key("pid", 7, "bash"): b}
    expected = ("\n"
                "\npid = 42 sshd\n"
                "     msecs               : count    distribution\n"
                "         0 -> 1          : 1        |*************                           |\n"
                "         2 -> 3          : 1        |*************                           |\n"
                "         4 -> 7          : 0        |                                        |\n"
                "         8 -> 15         : 0        |                                        |\n"
                "        16 -> 31         : 0        |                                        |\n"
                "        32 -> 63         : 3        |****************************************|\n"
                "\npid = 7 bash\n"
                "     msecs               : count    distribution\n"
                "         0 -> 1          : 0        |                                        |\n"
                "         2 -> 3          : 0        |                                        |\n"
                "         4 -> 7          : 1        |****************************************|\n")
    assert text(snap, timestamp=False) == expected
    stamped = text(snap, timestamp=True)
    assert stamped.startswith("\n") and stamped[9] == "\n" and stamped[10:] == expected[1:]
    assert text({}, timestamp=False) == "\n"


def test_cgroup_names_remember_a_removed_cgroup_until_forgotten(kernel):
    from pyrunq import cgroup

    mount = cgroup.cgroup2_mount()
    path = os.path.join(mount, f"pyrunq-names-{os.getpid()}")
    os.mkdir(path)
    try:
        cid = os.stat(path).st_ino
        names = cgroup.Names()
        assert names(cid) == "/" + os.path.basename(path)
    finally:
        os.rmdir(path)
    assert names(cid) == "/" + os.path.basename(path)  # late samples keep their name
    names.forget(cid)
    assert names(cid) == f"<cgroup id {cid}, removed>"
