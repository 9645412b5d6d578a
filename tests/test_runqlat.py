"""runqlat on the real kernel: what it measures, its filters, its command line."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from pyrunq.cgroup import resolve
from pyrunq.cli.runqlat import text
from pyrunq.hist import Histogram, bucket_bounds, bucket_of
from pyrunq.tools.runqlat import Key, RunqLat
import cli
from cli import assert_usage_error
from waiting import gather, wait_for
from workload import VICTIM_COMM, Contention, Quiet

MS_SLOT = 10  # log2 slot of 1024..2047 us


def ms_waits(h: Histogram) -> int:
    return sum(h.slots[MS_SLOT:])


def cumulative(rq: RunqLat, key, enough) -> Histogram:
    """The histogram of ``key`` since the last cleared snapshot, once
    ``enough(histogram)`` holds (the tracer's snapshot baseline stays)."""
    return gather(lambda: rq.snapshot(clear=False).get(key, Histogram.empty(rq.unit)), enough)


@pytest.mark.parametrize("flavour", ["tp_btf", "raw_tp"])
def test_victim_behind_a_realtime_hog_waits_milliseconds(kernel, monkeypatch, flavour):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    results = {}
    for name, workload in (("contended", Contention), ("alone", Quiet)):
        with workload() as w, RunqLat(per="tid", pids=[w.victim.pid]) as rq:
            key = Key("tid", w.victim.pid, VICTIM_COMM)
            enough = (lambda h: ms_waits(h) >= 20) if name == "contended" else (lambda h: h.total >= 300)
            results[name] = cumulative(rq, key, enough)
            assert list(rq.snapshot()) == [key]
    contended, alone = results["contended"], results["alone"]
    # a wakeup during one of the hog's 8 ms bursts waits for its end (about one
    # in four: 20 came within the deadline), so the tail is milliseconds
    assert contended.percentile(99) >= 2000, contended.render()
    # a real-time victim preempts whatever runs: microseconds, even on a loaded machine
    assert ms_waits(alone) * 100 <= alone.total, alone.render()
    assert alone.percentile(99) < 1000, alone.render()
    for h in (contended, alone):  # the exact sum lies within what the buckets allow
        low = sum(bucket_bounds(i)[0] * n for i, n in enumerate(h.buckets))
        high = sum(((bucket_bounds(i)[1] or 2**40) + 1) * n for i, n in enumerate(h.buckets))
        assert low * 1000 <= h.sum_ns <= high * 1000


def test_pid_filter_excludes_other_processes(kernel):
    with Contention(victims=2) as w, RunqLat(per="pid", pids=[w.victim.pid, w.hog.pid]) as rq:
        cumulative(rq, Key("pid", w.victim.pid, VICTIM_COMM), lambda h: h.total >= 100)
        seen = {k.id for k in rq.snapshot()}
    assert w.victim.pid in seen
    assert seen <= {w.victim.pid, w.hog.pid}  # not the second victim, busy as it is


def test_set_pids_changes_the_traced_processes_live(kernel):
    with Contention(victims=2, hog=False) as w:
        a, b = (Key("pid", v.pid, VICTIM_COMM) for v in w.victims)
        with RunqLat(per="pid", pids=[a.id]) as rq:
            cumulative(rq, a, lambda h: h.total >= 20)
            assert list(rq.snapshot()) == [a]
            rq.set_pids([b.id])
            rq.snapshot()  # what a did before the switch
            cumulative(rq, b, lambda h: h.total >= 20)
            assert list(rq.snapshot()) == [b]


def test_cgroup_filter_includes_only_its_tasks(kernel, cgroup_tree):
    with Contention(victims=2, hog=False) as w:
        path = cgroup_tree("a", w.victim)
        with RunqLat(per="pid", cgroup=path) as rq:
            cumulative(rq, Key("pid", w.victim.pid, VICTIM_COMM), lambda h: h.total >= 100)
            assert {k.id for k in rq.snapshot()} == {w.victim.pid}


def test_cgroup_id_set_filter_changes_live(kernel, cgroup_tree):
    with Contention(victims=2, hog=False) as w:
        first, second = (cgroup_tree(name, v) for name, v in zip("ab", w.victims))
        a, b = (Key("cgroup", resolve(p)[1], p) for p in (first, second))
        with RunqLat(per="cgroup", cgroup_ids=[a.id]) as rq:
            cumulative(rq, a, lambda h: h.total >= 20)
            assert list(rq.snapshot()) == [a]
            rq.set_cgroup_ids([b.id])
            rq.snapshot()
            cumulative(rq, b, lambda h: h.total >= 20)
            assert list(rq.snapshot()) == [b]


def test_per_cgroup_histograms_separate_cgroups(kernel, cgroup_tree):
    with Contention(victims=2, hog=False) as w:
        paths = [cgroup_tree(name, v) for name, v in zip("ab", w.victims)]
        with RunqLat(per="cgroup") as rq:
            gather(
                lambda: {k.name: h for k, h in rq.snapshot(clear=False).items()},
                lambda by_name: all(by_name.get(p, Histogram.empty()).total >= 50 for p in paths),
            )


def test_removed_cgroups_leave_the_map(kernel):
    """A removed cgroup's entry goes once it has nothing new: a long run with
    containers coming and going must not fill the map."""
    from pyrunq import cgroup

    path = os.path.join(cgroup.cgroup2_mount(), f"pyrunq-gone-{os.getpid()}")
    with Contention(victims=1, hog=False) as w:
        home = cgroup_of(w.victim.pid)
        os.mkdir(path)
        try:
            move(w.victim.pid, path)
            cid = os.stat(path).st_ino
            with RunqLat(per="cgroup") as rq:
                gather(lambda: {k.id for k in rq.snapshot(clear=False)}, lambda ids: cid in ids)
                move(w.victim.pid, home)
                os.rmdir(path)

                def forgotten():
                    rq.snapshot()  # forgets the idle keys whose cgroup is gone
                    return cid not in {raw for raw, _ in rq.obj.maps["hists"].items()}

                wait_for(forgotten, seen=lambda: f"cgroup id {cid} still in the map")
        finally:
            if os.path.isdir(path):
                move(w.victim.pid, home)
                os.rmdir(path)


def cgroup_of(pid: int) -> str:
    from pyrunq import cgroup

    with open(f"/proc/{pid}/cgroup") as f:
        rel = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
    return cgroup.cgroup2_mount() + rel


def move(pid: int, cgroup_dir: str) -> None:
    with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
        f.write(str(pid))


def test_milliseconds_divide_consistently(kernel):
    with Contention() as w:
        with (
            RunqLat(per="pid", pids=[w.victim.pid]) as us,
            RunqLat(per="pid", pids=[w.victim.pid], milliseconds=True) as ms,
        ):
            us.snapshot(), ms.snapshot()  # the same start for both
            cumulative(us, Key("pid", w.victim.pid, VICTIM_COMM), lambda h: ms_waits(h) >= 30)
            u, m = us.snapshot(), ms.snapshot()
    (hu,), (hm,) = u.values(), m.values()
    assert hm.unit == "msecs" and hu.unit == "usecs"
    assert abs(hu.total - hm.total) <= max(3, hu.total // 20)
    # every sample of N us is floor(N/1000) ms: bucket counts must agree
    ms_from_us = sum(hu.buckets[bucket_of(1000) :])
    assert ms_from_us >= 30
    assert abs(sum(hm.buckets[1:]) - ms_from_us) <= max(3, ms_from_us // 10)


def test_snapshot_reports_only_new_samples(kernel):
    with Contention(hog=False) as w, RunqLat(pids=[w.victim.pid]) as rq:
        first = cumulative(rq, None, lambda h: h.total >= 50)
        both = rq.snapshot()[None]  # covers the first look too, and clears
        assert both.total >= first.total
        third = cumulative(rq, None, lambda h: h.total >= 50)
        w.stop()  # the victim's last sample is in before it is reaped
        rest = rq.snapshot()[None]
        assert rest.total >= third.total
        assert rq.snapshot() == {}  # nothing new since


@pytest.mark.slow  # seconds of intervals: out of the quick loop
def test_cli_interval_count_prints_exactly_that_many(kernel):
    with Contention():
        out = cli.run("runqlat", "1", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Tracing run queue latency... Hit Ctrl-C to end."
    assert sum(line == "     usecs               : count    distribution" for line in lines) == 3


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_cli_per_process_milliseconds_timestamps(kernel):
    with Contention() as w:
        out = cli.run("runqlat", "-P", "-m", "-T", "-p", str(w.victim.pid), "1", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1] == ""
    time.strptime(lines[2].strip(), "%H:%M:%S")
    assert lines[3:6] == [
        "",
        f"pid = {w.victim.pid} {VICTIM_COMM}",
        "     msecs               : count    distribution",
    ]


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_cli_json_lines(kernel):
    with Contention() as w:
        out = cli.run("runqlat", "--json", "-L", "-p", str(w.victim.pid), "1", "2")
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == 2
    for doc in docs:
        assert doc["key"] == {"kind": "tid", "id": w.victim.pid, "comm": VICTIM_COMM}
        assert doc["unit"] == "usecs" and doc["total"] == sum(b["count"] for b in doc["buckets"])
        assert doc["p50"] <= doc["p90"] <= doc["p99"] <= doc["max"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_signal_without_interval_prints_one_histogram(kernel, signum):
    with (
        Contention(),
        cli.spawn("runqlat", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) as p,
    ):
        p.wait_line("^Tracing run queue latency")  # attached: every wakeup from now counts
        rc, out, err = p.finish(signum)
    assert rc == 0, err
    assert out.count("usecs               : count    distribution") == 1
    assert sum(int(line.split(":")[1].split()[0]) for line in out.splitlines() if " -> " in line) > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["0"], "must be positive"),
        (["-5"], "must be positive"),
        (["1", "x"], "invalid integer"),
        (["-P", "-L"], "not allowed with argument"),
        (["-p", "12,abc"], "invalid PID list"),
        (["-c", "/tmp"], "not a cgroup v2 directory"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_cli_bad_input_one_line_exit_2(args, message):
    assert_usage_error("runqlat", args, message)


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_cli_missing_pid_is_reported(kernel):
    out = cli.run("runqlat", "-p", "4194999", "1", "1")
    assert out.returncode == 0, out.stderr
    assert "pyrunq runqlat: warning: no process with PID 4194999" in out.stderr


def test_text_renders_like_the_c_tool():
    a = Histogram.from_values([1, 3, 40, 40, 41], "msecs")
    b = Histogram.from_values([7], "msecs")
    snap = {Key("pid", 42, "sshd"): a, Key("pid", 7, "bash"): b}
    expected = (
        "\n"
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
        "         4 -> 7          : 1        |****************************************|\n"
    )
    assert text(snap, timestamp=False) == expected
    stamped = text(snap, timestamp=True)
    assert stamped.startswith("\n") and stamped[9] == "\n" and stamped[10:] == expected[1:]
    assert text({}, timestamp=False) == "\n"


def test_cgroup_names_remember_a_removed_cgroup_until_forgotten(kernel, monkeypatch):
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
    lookups = []
    by_id = cgroup.paths_by_id
    monkeypatch.setattr(cgroup, "paths_by_id", lambda *a: lookups.append(1) or by_id(*a))
    assert names(cid) == f"<cgroup id {cid}, removed>" and not names.exists(cid)
    assert names(cid) == f"<cgroup id {cid}, removed>" and len(lookups) == 1  # looked for once
