"""Who held the CPU while a task waited (bpf/blame.bpf.h), on the real kernel,
with workloads whose culprit is known: every wait's parts add up to it."""

from __future__ import annotations

import collections
import json
import os
import signal

import pytest

from pyrunq.cgroup import cgroup2_mount
from pyrunq.prometheus import ATTRIBUTED, BLAME, LATENCY
from pyrunq.bpf import BPFObject
from pyrunq.tools.blame import KINDS, Attributions, Culprit, Kinds, merged
from pyrunq.tools.runqlat import RunqLat
from pyrunq.tools.runqslower import RunqSlower
import cli
from cli import Exporter
from waiting import collect, wait_for
from workload import (
    HOG_COMM,
    PINGPONG_COMM,
    Contention,
    PingPong,
    Quiet,
    Workload,
    busy,
    victim,
)

CONTAINER = "libpod-" + "3f2a" * 16  # a name pyrunq.containers reads as podman's


# -- without a kernel: labels, merging, interval differences ------------------


def culprit(kind="self", ns=1, tid=7, comm="app", cgroup="/a", pid=7) -> Culprit:
    return Culprit(pid, tid, comm, cgroup, 1, kind, ns)


def test_culprits_are_named_as_people_name_them():
    box = f"/libpod_parent/{CONTAINER}"
    assert culprit("container", cgroup=box).label() == "podman:3f2a3f2a3f2a app[7]"
    assert culprit("host", cgroup="/system.slice/ssh.service").label() == "app[7] /system.slice/ssh.service"
    assert culprit("self").label() == culprit("kernel").label() == "app[7]"
    assert culprit("idle", tid=0, comm="swapper/1").label() == "idle"
    assert culprit("container", tid=0, pid=0, comm="", cgroup=box).label() == "podman:3f2a3f2a3f2a"
    assert culprit("self", tid=0, pid=9).label() == "app[9]"  # a process, per process


def test_one_culprit_per_task_and_kind_largest_first():
    parts = [
        culprit(ns=3),
        culprit("idle", ns=5, tid=0),
        culprit(ns=4),
        culprit(tid=8, ns=6),
        culprit("idle", ns=1, tid=0),
    ]
    assert [(c.tid, c.kind, c.ns) for c in merged(parts)] == [(7, "self", 7), (0, "idle", 6), (8, "self", 6)]


def test_interval_attribution_splits_other_cgroups_by_path_and_adds_up():
    rec = collections.namedtuple("rec", "blame_ns")
    key = collections.namedtuple("key", "victim cgroup_id culprit kind")
    val = collections.namedtuple("val", "ns comm")
    with BPFObject.open("runqlat") as obj:
        kinds = Kinds(obj.btf, names={11: "/", 12: f"/libpod_parent/{CONTAINER}", 13: "/system.slice"}.get)
        enum = obj.btf.enum("blame_kind")
    a = Attributions(kinds, "pid")
    other, self_ = enum["BLAME_OTHER"], enum["BLAME_SELF"]
    hists = [(5, rec([10, 30 + 20, 0, 4, 1]))]  # self, other, kernel, idle, unattributed
    pairs = [
        (key(5, 12, 42, other), val(30, "hog")),
        (key(5, 13, 43, other), val(20, "sshd")),
        (key(5, 11, 5, self_), val(10, "app")),
    ]
    first = a.diff(hists, a.culprits(pairs))[5]
    assert first.kinds == {"self": 10, "container": 30, "host": 20, "kernel": 0, "idle": 4, "unattributed": 1}
    assert [(c.label(), c.kind, c.ns) for c in first.culprits] == [
        ("podman:3f2a3f2a3f2a hog[42]", "container", 30),
        ("sshd[43] /system.slice", "host", 20),
        ("app[5]", "self", 10),
    ]
    hists = [(5, rec([10, 50 + 7, 0, 4, 1]))]
    pairs[0] = (key(5, 12, 42, other), val(37, "hog"))
    second = a.diff(hists, a.culprits(pairs))[5]  # only what is new
    assert second.kinds == {"self": 0, "container": 7, "host": 0, "kernel": 0, "idle": 0, "unattributed": 0}
    assert [(c.comm, c.ns) for c in second.culprits] == [("hog", 7)]
    assert a.diff(hists, a.culprits(pairs)) == {}  # nothing new: no key


def test_culprit_table_sums_in_c_are_the_references():
    """BlameDiffs (pyrunq top's culprit table, in C) against Attributions
    over intervals of a seeded random table: the entries that grew, and per
    victim the part of containers and the largest culprit;
    victims and cgroups forgotten."""
    import random

    from pyrunq.bpf import BlameDiffs, StatsRows

    paths = {11: "/", 12: f"/libpod_parent/{CONTAINER}", 13: "/system.slice", 14: "/user.slice"}
    with BPFObject.open("runqlat") as obj:
        kinds = Kinds(obj.btf, names=paths.__getitem__)
        enum = obj.btf.enum("blame_kind")
        key_layout, value_layout = obj.maps["blames"].key_layout, obj.maps["blames"].value_layout
    other, culprit_kinds = enum["BLAME_OTHER"], [enum[f"BLAME_{k}"] for k in ("SELF", "OTHER", "KERNEL")]
    c, ref, asked = BlameDiffs(key_layout, value_layout, other), Attributions(kinds, "tid"), []
    rng, table, last = random.Random(2612), {}, {}  # seeded: the same intervals every run
    for step in range(8):
        for _ in range(60):  # entries grow, and appear (some with 0 ns)
            k = (rng.randrange(1, 9), rng.choice(list(paths)), rng.randrange(1, 6), rng.choice(culprit_kinds))
            table[k] = table.get(k, 0) + rng.choice((0, 1, 5, 1000))
        if step == 5:  # victim 3, and the culprits of cgroup 14, are gone
            forgotten = c.forget(victims=[3], cgroups=[14])
            assert sorted(forgotten) == sorted(k for k in last if k[0] == 3 or k[1] == 14)
            for key in forgotten:
                del table[key], last[key]
            ref.forget([3])
            ref.forget_culprits([14])
        entries = sorted(table.items())
        values = [{"ns": ns, "comm": b"t%d" % k[2]} for k, ns in entries]
        c.diff(
            b"".join(key_layout.encode(k) for k, _ in entries),
            b"".join(value_layout.encode(v) for v in values),
            len(entries),
        )
        grown = [(*k, ns - last.get(k, 0)) for k, ns in entries if ns != last.get(k, 0)]
        assert [(e.victim, e.cgroup_id, e.culprit, e.kind, e.ns) for e in c.changes()] == grown
        expected = ref.culprits(
            [
                (key_layout.decode(key_layout.encode(k)), value_layout.decode(value_layout.encode(v)))
                for (k, _), v in zip(entries, values)
            ]
        )
        for cgroup_id in c.unnamed():
            asked.append(cgroup_id)
            c.name(cgroup_id, kinds.cgroup(cgroup_id)[1])
        victims = c.victims()
        assert [v.victim for v in victims] == list(expected)  # in the order first seen
        for v in victims:
            want = expected[v.victim]
            assert v.container_ns == sum(c.ns for c in want if c.kind == "container")
            top = ref.attribution([0] * 5, want).culprits[0]  # largest first, the first of equals
            assert (v.top.culprit, v.top.cgroup_id, v.top.ns) == (top.tid, top.cgroup_id, top.ns)
        # pyrunq top's rows (keys 0..9: some never a victim) joined with the same sums
        rows = StatsRows(b"".join(stats_bytes(key) for key in range(10)))
        joined, by_victim = c.join(rows), {v.victim: v for v in victims}
        for key in range(10):
            v = by_victim.get(key)
            assert joined[key] == ((v.container_ns, v.top) if v else (0, None))
        last = dict(table)
        assert len(c) == len(table)
    assert sorted(asked) == sorted({k[1] for k in table if k[3] == other})  # each asked about once
    assert sorted(c.cgroups()) == sorted({k[1] for k in table})


def test_containers_part_carried_in_c_as_the_reference():
    """A wait that ends between the histogram's read and the culprit
    table's is in the table an interval before the histogram (seeded): the
    containers' part the C join gives each row is
    Attributions.attribution(raw=key)'s, interval after interval, the
    part of a victim with no row carried too, and all of it is given in the
    end."""
    import random
    import struct

    from pyrunq.bpf import BlameDiffs, HistDiffs

    paths = {12: f"/libpod_parent/{CONTAINER}", 13: "/system.slice"}
    with BPFObject.open("runqlat") as obj:
        kinds = Kinds(obj.btf, names=paths.__getitem__)
        other = obj.btf.enum("blame_kind")["BLAME_OTHER"]
        blames, hists = obj.maps["blames"], obj.maps["hists"]
        key_layout, value_layout, hist_layout = blames.key_layout, blames.value_layout, hists.value_layout
        key_fmt = "=Q" if hists.key_size == 8 else "=I"
        c, h = BlameDiffs(key_layout, value_layout, other), HistDiffs(hists.key_size, hist_layout, stats=True)
    ref, rng = Attributions(kinds, "tid"), random.Random(2626)
    table: dict = {}
    hist = {v: {"other": 0, "waits": 0, "late": 0} for v in (1, 2, 3)}
    given, unshown = {v: 0 for v in hist}, 0
    for step in range(16):
        for v, hv in hist.items():
            box, host = rng.choice((0, 0, 700, 8000)), rng.choice((0, 0, 5, 90))
            table[(v, 12, 1, other)] = table.get((v, 12, 1, other), 0) + box
            table[(v, 13, 2, other)] = table.get((v, 13, 2, other), 0) + host
            late = box if rng.random() < 0.3 else 0  # in the table now, in the histogram next time
            shown = box + host - late + hv["late"]
            hv["other"] += shown
            hv["late"], hv["waits"] = late, hv["waits"] + (1 if shown else 0)  # none: no row
        entries = sorted(table.items())
        c.diff(
            b"".join(key_layout.encode(k) for k, _ in entries),
            b"".join(value_layout.encode({"ns": ns, "comm": b"t"}) for _, ns in entries),
            len(entries),
        )
        for cgroup_id in c.unnamed():
            c.name(cgroup_id, kinds.cgroup(cgroup_id)[1])
        values = [
            {
                "sum_ns": hv["other"],
                "buckets": [hv["waits"]] + [0] * 99,
                "comm": b"v",
                "blame_ns": [hv["other"] if k == other else 0 for k in range(5)],
            }
            for hv in hist.values()
        ]
        h.diff(
            b"".join(struct.pack(key_fmt, v) for v in hist),
            b"".join(hist_layout.encode(x) for x in values),
            len(values),
        )
        rows, _ = h.stats_rows()
        joined = c.join(rows, carry=True)
        row_of = {rows.key(i): i for i in range(len(rows))}
        for v in hist:
            culprits = [ref.culprit(x, "t", x.ns) for x in c.changes() if x.victim == v]
            i = row_of.get(v)
            if i is None or not any(rows[i].blame_ns):  # the histogram shows none of it yet
                unshown += i is None and any(x.kind == "container" for x in culprits)
                ref.carry(v, culprits)
                assert i is None or joined[i][0] == 0
                continue
            want = ref.attribution(list(rows[i].blame_ns), culprits, raw=v).kinds["container"]
            assert joined[i][0] == want, (step, v)
            given[v] += want
    assert unshown  # a victim's container time while it had no row: carried too
    for v in hist:  # every nanosecond the containers took, given once the histogram showed it
        assert given[v] + ref._pending.get(v, 0) == table[(v, 12, 1, other)]


def stats_bytes(key: int) -> bytes:
    """A struct pyrunq_key_stats of ``key`` with one wait, as C writes it."""
    from pyrunq.bpf.hists import _STATS

    return _STATS.pack(key, 1, 10, 1, 1.0, 1.0, *[0] * 5, b"")


# -- on the kernel ----------------------------------------------------------------


@pytest.fixture
def off_the_victims_cpu():
    """This test's process, and the tools it starts, kept off CPU 0, where
    the victim waits: a real-time victim still waits out the kernel code of
    whatever runs there (its system calls: a scrape, a ring buffer's poll)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {1})
    yield
    os.sched_setaffinity(0, before)


def exact(events) -> None:
    for e in events:
        assert sum(c.ns for c in e.culprits) + e.unattributed_ns == e.delta_ns, e
        assert [c.ns for c in e.culprits] == sorted((c.ns for c in e.culprits), reverse=True), e


@pytest.mark.usefixtures("off_the_victims_cpu")
@pytest.mark.parametrize(
    "flavour, cgroup, kind",
    [
        ("tp_btf", CONTAINER, "container"),
        ("tp_btf", "batch.slice", "host"),
        ("raw_tp", CONTAINER, "container"),
    ],
)
def test_the_hog_in_its_cgroup_takes_the_victims_waits(
    kernel, cgroup_tree, monkeypatch, flavour, cgroup, kind
):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    with Contention(realtime=True) as w:  # the victim waits behind the hog alone
        path = cgroup_tree(cgroup, w.hog)
        # waits of 3 ms and more: the hog's 8 ms bursts, not the odd task
        # that ran on the CPU for a moment before a burst began
        with RunqSlower(min_us=3000, pid=w.victim.pid, blame=True) as rs:
            events = collect(rs, lambda e: len(e) >= 30)  # 30 bursts: one odd wait is not 10%
    exact(events)
    hog = [c for e in events for c in e.culprits if c.tid == w.hog.pid]
    assert {(c.comm, c.pid, c.cgroup, c.kind) for c in hog} == {(HOG_COMM, w.hog.pid, path, kind)}
    waited = sum(e.delta_ns for e in events)
    assert sum(c.ns for c in hog) >= 0.9 * waited, [e.culprits for e in events]


@pytest.mark.usefixtures("off_the_victims_cpu")
def test_tops_attribution_in_c_names_the_hog(kernel, cgroup_tree):
    """RunqLat.interval_stats() (pyrunq top's per-key work in C): the
    victim's waiting goes to the hog's container, and the hog is its largest
    culprit; the parts add up to the waiting the histogram counted."""
    with Contention(realtime=True) as w:  # the victim waits behind the hog alone
        path = cgroup_tree(CONTAINER, w.hog)
        with RunqLat(per="pid", pids=[w.victim.pid], blame=True) as rq:
            seen: dict = {"kinds": collections.Counter(), "sum": 0}

            def enough():
                stats, _, blame = rq.interval_stats()
                for key, s in stats:
                    seen["sum"] += s.sum_ns
                    a = blame[key]
                    seen["kinds"].update(a.kinds)
                    if a.kinds["container"] > a.total_ns / 2:  # then the hog is the largest culprit
                        top = a.culprits[0]
                        assert (top.pid, top.cgroup, top.kind) == (w.hog.pid, path, "container"), a
                return sum(seen["kinds"].values()) > 250e6  # 250 ms: 30 bursts, one odd interval is not 10%

            wait_for(enough, seen=lambda: seen)
    assert sum(seen["kinds"].values()) == seen["sum"]  # every nanosecond, once
    assert seen["kinds"]["container"] >= 0.9 * seen["sum"], seen


def test_a_victim_alone_waits_for_the_idle_task_not_a_made_up_culprit(kernel):
    with Quiet() as w, RunqSlower(min_us=0, tid=w.victim.pid, blame=True) as rs:
        events = collect(rs, lambda e: sum(ev.prev_tid == 0 for ev in e) >= 20)
    exact(events)
    after_idle = [e for e in events if e.prev_tid == 0]
    for e in after_idle:  # the CPU was idle when the victim got it: idle held it last
        assert "idle" in {c.kind for c in e.culprits} or e.why == "unseen", e  # idle's part unseen
    assert all(c.tid != w.victim.pid for e in events for c in e.culprits)
    assert {c.comm for e in after_idle for c in e.culprits if c.kind == "idle"} <= {"swapper/1"}


def test_a_wait_across_more_switches_than_kept_is_unattributed_with_its_reason(kernel):
    # 3 ms: the pair's 8 ms bursts, not a normal task that held the CPU a millisecond
    with PingPong() as w, RunqSlower(min_us=3000, pid=w.victim.pid, blame=True) as rs:
        events = collect(rs, lambda e: len(e) >= 5)
        counted = rs.unattributed()["history"]
    exact(events)
    for e in events:  # hundreds of switches in a millisecond: only the last 16 segments are named
        assert e.why == "history" and e.unattributed_ns > e.delta_ns / 2, e
        assert len({c.tid for c in e.culprits if c.comm == PINGPONG_COMM}) == 2, e
    assert counted >= len(events)


@pytest.mark.usefixtures("off_the_victims_cpu")
def test_cli_blame_json_and_text(kernel, cgroup_tree):
    with Contention(realtime=True) as w:  # the victim waits behind the hog alone
        path = cgroup_tree(CONTAINER, w.hog)
        args = ["runqslower", "--blame", "-p", str(w.victim.pid), "3000"]  # the hog's bursts
        with cli.spawn(*args, "--json") as p:
            lines = p.wait_line(r"^\{", count=5)
            rc, _, err = p.finish(signal.SIGINT)
        assert rc == 0, err
        with cli.spawn(*args) as p:
            header = p.wait_line("^TIME ")
            rows = p.wait_line(rf" podman:3f2a3f2a3f2a {HOG_COMM}\[{w.hog.pid}\] \d+\.\dms", count=3)
            rc, _, err = p.finish(signal.SIGINT)
        assert rc == 0, err
    assert header == ["TIME     COMM             TID           LAT(us) WHO HELD THE CPU"]
    assert all(row.split()[1:3] == ["pyrunq-victim", str(w.victim.pid)] for row in rows), rows
    for doc in map(json.loads, lines):
        assert sum(c["ns"] for c in doc["culprits"]) + doc["unattributed_ns"] == doc["latency_ns"], doc
        assert {"pid", "tid", "comm", "cgroup", "kind", "ns"} <= set(doc["culprits"][0])
        top = doc["culprits"][0]
        assert (top["tid"], top["cgroup"], top["kind"]) == (w.hog.pid, path, "container"), doc


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def weigh(cgroup_dir: str, weight: int) -> None:
    """Where the cgroup v2 cpu controller groups tasks, their nice levels
    weigh only inside the group: give the cgroups the same 2:1."""
    if os.path.exists(os.path.join(cgroup_dir, "cpu.weight")):
        with open(os.path.join(cgroup_dir, "cpu.weight"), "w") as f:
            f.write(str(weight))


def test_two_hogs_take_the_victims_wait_in_their_share_of_the_cpu(kernel, cgroup_tree):
    """Nice 0 and nice 3 (weights 1024 and 526): about 2:1 of the CPU, and
    so of the victim's waiting, which the kernel attributes to the one that
    ran; compared with the CPU time each hog really got meanwhile. The
    victim is SCHED_BATCH: it never preempts on wakeup, so it waits out the
    slice of whichever hog runs (a normal victim preempts the lighter hog
    sooner, and waits behind the heavier one about 3:1: real, but not the
    share)."""
    with Workload([victim(0, batch=True), busy(0, "pyrunq-big"), busy(0, "pyrunq-small", nice=3)]) as w:
        v, big, small = w.procs
        paths = {cgroup_tree(name, p): p for name, p in (("v", v), ("big", big), ("small", small))}
        for path, weight in zip(paths, (100, 200, 100)):
            weigh(cgroup2_mount() + path, weight)
        victim_path, big_path, small_path = paths
        cpu0 = {p.pid: cpu_seconds(p.pid) for p in (big, small)}
        with RunqLat(per="cgroup", blame=True) as rq:
            taken: dict = collections.Counter()

            def enough():
                for key, a in rq.attribution().items():
                    if key.name == victim_path:
                        taken.update({c.cgroup: c.ns for c in a.culprits})
                return taken[small_path] >= 100_000_000  # 0.1 s: hundreds of waits

            wait_for(enough, timeout=60, every=0.2, seen=lambda: taken)
        cpu = {pid: cpu_seconds(pid) - t for pid, t in cpu0.items()}
    ran = cpu[big.pid] / cpu[small.pid]
    blamed = taken[big_path] / taken[small_path]
    assert 1.4 < ran < 2.9, cpu
    assert abs(blamed / ran - 1) < 0.2, (blamed, ran, taken)


@pytest.mark.usefixtures("off_the_victims_cpu")
def test_exporter_counters_add_up_to_the_histograms_sum(kernel, cgroup_tree):
    with Contention(realtime=True) as w:  # the victim waits behind the hog alone
        victims = cgroup_tree("victim", w.victim)
        hog = cgroup_tree(CONTAINER, w.hog)
        with Exporter("--cgroup", cgroup_tree.parent + "/**", "--refresh", "1") as e:

            def named():
                return {
                    dict(k)["culprit_cgroup"]: (dict(k)["culprit_container_id"], v)
                    for k, v in e.samples(BLAME).items()
                    if dict(k)["cgroup"] == victims
                }

            wait_for(lambda: named().get(hog, ("", 0))[1] > 0.25, seen=named)  # 30 bursts: one odd is not 10%
            w.stop()  # at rest: the victim's cgroup waits no more
            e.scrape()
            kinds = {
                dict(k)["culprit_kind"]: v
                for k, v in e.samples(ATTRIBUTED).items()
                if dict(k)["cgroup"] == victims
            }
            total = next(v for k, v in e.samples(LATENCY + "_sum").items() if dict(k)["cgroup"] == victims)
            by_culprit = named()
            assert e.stop() == 0, e.stderr()
    assert set(kinds) == set(KINDS)
    assert sum(kinds.values()) == pytest.approx(total, rel=1e-9)
    assert kinds["container"] >= 0.9 * total, kinds
    assert sum(v for _, v in by_culprit.values()) == pytest.approx(
        total - kinds["idle"] - kinds["unattributed"], rel=1e-9
    )
    assert by_culprit[hog] == ("3f2a" * 16, pytest.approx(kinds["container"], rel=1e-9))


@pytest.mark.parametrize("method", ["interval", "interval_stats"])  # Python's culprit table, C's
def test_a_removed_culprit_cgroup_leaves_the_culprit_table(kernel, cgroup_tree, method):
    """A culprit's entries go when its cgroup is removed, while the key it
    took the CPU from lives on: a long-lived cgroup must not fill the table
    with containers long gone."""
    with Contention() as w:
        cgroup_tree("victim", w.victim)
        hogs = cgroup2_mount() + cgroup_tree.parent + "/hogs"  # removed by this test, not the fixture
        os.mkdir(hogs)
        try:
            with RunqLat(per="cgroup", blame=True) as rq:
                with open(os.path.join(hogs, "cgroup.procs"), "w") as f:
                    f.write(str(w.hog.pid))
                hog_id = os.stat(hogs).st_ino
                entries = lambda: {k.cgroup_id for k in rq.obj.maps["blames"].keys()}  # noqa: E731
                interval = getattr(rq, method)
                wait_for(lambda: interval() and hog_id in entries(), seen=entries)
                w.hog.kill()
                w.hog.wait()
                os.rmdir(hogs)
                interval()  # the last of the hog's time, read before its entries go
                interval()
                assert hog_id not in entries()
        finally:
            if os.path.exists(hogs):
                w.hog.kill()
                w.hog.wait()
                os.rmdir(hogs)
