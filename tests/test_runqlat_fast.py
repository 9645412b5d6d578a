"""runqlat's per-key work in C (pyrunq.bpf.HistDiffs, RunqLat.interval_text)
against the Python reference (tools.runqlat.differences, cli.runqlat.text),
byte for byte: on synthetic batch reads, and on the kernel's counters."""

from __future__ import annotations

import random
import struct

import pytest

from pyrunq.bpf import BPFObject, HistDiffs, packaged_object
from pyrunq.cli.runqlat import text
from pyrunq.hist import HIST_BUCKETS, interval_header
from pyrunq.tools.runqlat import Key, RunqLat, differences
from waiting import wait_for
from workload import VICTIM_COMM, Contention

U32 = 1 << 32
CLAMP = HIST_BUCKETS - 1  # every latency >= 2**25 lands here (log2 slot 25)


@pytest.fixture(scope="module")
def layout():
    """The hists map's key size and value layout, from the packaged object's BTF."""
    obj = BPFObject(packaged_object("runqlat"))
    try:
        m = obj.maps["hists"]
        return m.key_size, m.value_layout
    finally:
        obj.close()


class Twins:
    """The C path and the Python reference fed the same batch reads, one
    interval at a time; each interval's text from both must be the same bytes."""

    def __init__(self, layout, per, unit="usecs", names=None):
        self.key_size, self.layout = layout
        self.per, self.unit, self.names = per, unit, names or {}
        self.c = HistDiffs(self.key_size, self.layout)
        self.previous: dict = {}

    def key(self, raw, comm):
        if self.per is None:
            return None
        return Key(self.per, raw, self.names[raw] if self.per == "cgroup" else comm)

    def interval(self, entries, clear=True) -> bytes:
        """entries: [(raw key, {"sum_ns", "buckets", "comm"})] in map order."""
        keys = b"".join(struct.pack("=Q" if self.key_size == 8 else "=I", k) for k, _ in entries)
        values = b"".join(self.layout.encode(v) for _, v in entries)
        return self.interval_raw(keys, values, len(entries), clear)

    def interval_raw(self, keys, values, count, clear=True) -> bytes:
        """count entries of a batch read, packed as libbpf returns them."""
        fmt = "=Q" if self.key_size == 8 else "=I"
        items = [
            (
                struct.unpack_from(fmt, keys, i * self.key_size)[0],
                self.layout.decode(values, i * self.layout.size),
            )
            for i in range(count)
        ]
        snap, idle = differences(items, self.previous, self.unit, self.key, clear)
        expected = text(snap, timestamp=False).encode("utf-8", "surrogateescape")

        self.c.diff(keys, values, count, clear)
        names = [self.names[k] for k in self.c.changed()] if self.per == "cgroup" else None
        got = interval_header(None).encode() + self.c.render(self.per, self.unit, names)
        assert got == expected
        assert self.c.idle() == idle
        assert self.c.changed() == [k for k, _ in items if k not in idle]
        return got

    def forget(self, raw):
        self.previous.pop(raw, None)
        self.c.forget(raw)


def value(buckets=None, comm=b"task", sum_ns=0):
    b = [0] * HIST_BUCKETS
    for i, c in (buckets or {}).items():
        b[i] = c
    return {"sum_ns": sum_ns, "buckets": b, "comm": comm, "blame_ns": [0] * 5}


@pytest.mark.parametrize("per", ["tid", "pid", "pidns"])
@pytest.mark.parametrize("unit", ["usecs", "msecs"])
def test_intervals_match_the_reference(layout, per, unit):
    t = Twins(layout, per, unit)
    first = t.interval([(7, value({0: 1, 5: 3, CLAMP: 2}, b"victim")), (9, value({}, b"idle"))])
    assert f"     {unit}".encode() in first
    assert b"33554432 -> 67108863   : 2" in first  # the clamp slot
    assert first.endswith(f"\n{per} = 9 idle\n".encode())  # a new, empty key: heading only
    # 7 gains samples, 9 stays idle: only 7 is printed
    second = t.interval([(7, value({0: 2, 5: 3, CLAMP: 2, 40: 1}, b"victim")), (9, value({}, b"idle"))])
    assert b"idle" not in second and second.count(b"distribution") == 1
    # nothing new anywhere: just the interval's blank line
    assert t.interval([(7, value({0: 2, 5: 3, CLAMP: 2, 40: 1})), (9, value({}))]) == b"\n"


@pytest.mark.parametrize("unit", ["usecs", "msecs"])
def test_one_histogram_matches_the_reference(layout, unit):
    t = Twins(layout, None, unit)
    assert t.interval([]) == b"\n"  # nothing traced yet
    assert t.interval([(0, value({}))]) == b"\n"  # the key exists, no sample in it yet
    first = t.interval([(0, value({1: 1, 6: 9}))])
    assert first.startswith(f"\n     {unit}               : count    distribution\n".encode())
    assert t.interval([(0, value({1: 1, 6: 9}))]) == b"\n"


def test_wrapped_counters_give_their_difference(layout):
    t = Twins(layout, "tid")
    t.interval([(1, value({3: U32 - 5, 10: U32 - 1}))])
    got = t.interval([(1, value({3: 3, 10: U32 - 1}))])  # bucket 3 wrapped: 8 new
    assert b"         2 -> 3          : 8        |" in got


def test_counts_beyond_int_print_as_the_c_tool_does(layout):
    t = Twins(layout, "pid")
    # %d of an unsigned int over 2**31 is negative; the 32-bit star product wraps
    got = t.interval([(5, value({4: 1 << 31, 8: 3 << 29, 12: 60_000_000}))])
    assert b": -2147483648 |" in got


def test_keys_that_disappear(layout):
    t = Twins(layout, "tid")
    t.interval([(1, value({4: 10})), (2, value({4: 10})), (3, value({4: 10}))])
    t.forget(2)  # gone from the map, forgotten: seen again, it starts from zero
    t.interval([(1, value({4: 11})), (3, value({4: 10}))])
    again = t.interval([(2, value({4: 4})), (1, value({4: 11})), (3, value({4: 10}))])
    assert b"tid = 2 task" in again and b": 4        |" in again
    # gone without being forgotten: its baseline stays (here, a wrapped difference)
    t.interval([(1, value({4: 12}))])
    t.interval([(3, value({4: 9})), (1, value({4: 12}))])


def test_headings_of_every_kind(layout):
    tid = Twins(layout, "tid").interval([(U32 - 1, value({4: 1}, b"x" * 16))])
    assert tid.startswith(b"\n\ntid = -1 " + b"x" * 16 + b"\n")  # %d; a comm without NUL
    pidns = Twins(layout, "pidns").interval([(4026531836, value({4: 1}, b"sh\0junk"))])
    assert pidns.startswith(b"\n\npidns = 4026531836 sh\n")  # %u; the comm ends at its NUL
    names = {11: "/system.slice/caf\u00e9.scope", 12: "<cgroup id 12, removed>"}
    cg = Twins(layout, "cgroup", names=names).interval([(11, value({4: 1})), (12, value({5: 2}))])
    assert b"\ncgroup = /system.slice/caf\xc3\xa9.scope\n" in cg


def test_clear_false_leaves_the_baselines(layout):
    t = Twins(layout, "tid")
    t.interval([(1, value({4: 1}))])
    peek = t.interval([(1, value({4: 3}))], clear=False)
    assert peek == t.interval([(1, value({4: 3}))])  # the same two samples again


def test_comm_bytes_are_the_kernels(layout):
    """Unlike Key.name (decoded, undecodable bytes replaced), the C path
    writes a comm's bytes as runqlat.c does."""
    d = HistDiffs(*layout)
    d.diff(struct.pack("=Q", 3), layout[1].encode(value({4: 1}, b"\xff\xfeab")), 1)
    assert d.render("tid", "usecs").startswith(b"\ntid = 3 \xff\xfeab\n")


def test_random_histories_match_the_reference(layout):
    rng = random.Random(18)
    for per in ("tid", "pid", "pidns"):
        t = Twins(layout, per, rng.choice(["usecs", "msecs"]))
        counts: dict[int, list[int]] = {}
        for _ in range(8):
            for k in rng.sample(range(1, 40), 12):  # some keys gain samples
                b = counts.setdefault(k, [0] * HIST_BUCKETS)
                for _ in range(rng.randrange(4)):
                    i = rng.randrange(HIST_BUCKETS)
                    b[i] = (b[i] + rng.choice([1, 7, 1000, U32 - 3])) % U32
            for k in rng.sample(sorted(counts), 2):  # some leave, some are forgotten
                del counts[k]
                if rng.random() < 0.5:
                    t.forget(k)
            order = rng.sample(sorted(counts), len(counts))
            t.interval([(k, value(dict(enumerate(counts[k])), b"t%d" % k)) for k in order])


def test_layout_and_buffers_are_checked(layout):
    key_size, lay = layout
    with pytest.raises(ValueError):
        HistDiffs(3, lay)
    d = HistDiffs(key_size, lay)
    with pytest.raises(ValueError):
        d.diff(bytes(key_size), bytes(lay.size - 1), 1)  # one value, a byte short
    d.diff(b"", b"", 0)
    with pytest.raises(ValueError):
        d.render("cgroup", "usecs", ["/one too many"])
    d.close()
    with pytest.raises(ValueError):
        d.diff(b"", b"", 0)


# ---- on the kernel ---------------------------------------------------------------


def test_same_counters_same_text(kernel):
    """Batch reads of the live map, each fed raw to both paths: the same
    bytes, with both victims' waits in them."""
    with Contention(victims=2) as w, RunqLat(per="tid", pids=[p.pid for p in w.procs]) as rq:
        hists = rq.obj.maps["hists"]
        t = Twins((hists.key_size, hists.value_layout), "tid")
        headings = [b"\ntid = %d %s\n" % (p.pid, VICTIM_COMM.encode()) for p in w.victims]
        for _ in range(2):  # the second from the first's baselines
            wait_for(lambda seen=set(): all_seen(t.interval_raw(*t.c.read(hists)), headings, seen))


def test_interval_text_forgets_exited_threads(kernel):
    with Contention(victims=2, hog=False) as w, RunqLat(per="tid", pids=[p.pid for p in w.victims]) as rq:
        hists = rq.obj.maps["hists"]
        gone = w.victims[1]
        wait_for(lambda: b"tid = %d " % gone.pid in rq.interval_text())
        gone.kill()
        gone.wait()
        last = hists[gone.pid]  # its counts are final: it never runs again

        def forgotten():
            rq.interval_text()  # forgets the idle keys whose thread is gone
            return gone.pid not in hists.keys()

        wait_for(forgotten)
        # its baseline went with it: the same counts under its key again are
        # new (a kept baseline would find them unchanged, and show nothing)
        hists[gone.pid] = last
        assert b"tid = %d " % gone.pid in rq.interval_text()
        with pytest.raises(RuntimeError, match="interval_text"):
            rq.snapshot()


def test_cgroup_sections_name_their_cgroups(kernel, cgroup_tree):
    with Contention(victims=2, hog=False) as w:
        paths = [cgroup_tree(name, v) for name, v in zip("ab", w.victims)]
        with RunqLat(per="cgroup", cgroup=cgroup_tree.parent) as rq:
            seen: set = set()
            wait_for(
                lambda: all_seen(rq.interval_text(), [b"\ncgroup = %s\n" % p.encode() for p in paths], seen)
            )


def all_seen(text: bytes, wanted: list, seen: set) -> bool:
    """Whether each of ``wanted`` was in this text or an earlier one."""
    seen.update(x for x in wanted if x in text)
    return len(seen) == len(wanted)


def test_key_stats_in_c_are_the_references(layout):
    """HistDiffs(stats=True): each changed key's waits, sum, blame and
    quantiles as pyrunq top's Python reference (differences, quantiles)."""
    from pyrunq.tools.top import quantiles

    key_size, lay = layout
    c, previous = HistDiffs(key_size, lay, stats=True), {}
    fmt = "=Q" if key_size == 8 else "=I"
    rng = random.Random(26)  # seeded: the same intervals every run
    blame = {7: [0] * 5, 9: [0] * 5}
    for step in range(6):
        entries, last = [], {k: list(v) for k, v in blame.items()}
        for k in (7, 9):
            b = [rng.choice((0, 0, 1, 5, 1000)) if k == 7 or step % 2 else 0 for _ in range(HIST_BUCKETS)]
            blame[k] = [v + rng.randrange(1 << 40) for v in blame[k]]
            entries.append(
                (k, {**value(dict(enumerate(b)), b"t%d" % k, sum_ns=step << 33), "blame_ns": blame[k]})
            )
        if step == 4:  # counters that wrapped since the last interval still give their difference
            entries[0][1]["buckets"][3] = (entries[0][1]["buckets"][3] - 7) % U32
        keys = b"".join(struct.pack(fmt, k) for k, _ in entries)
        values = b"".join(lay.encode(v) for _, v in entries)
        items = [(k, lay.decode(lay.encode(v))) for k, v in entries]
        snap, _ = differences(items, previous, "usecs", lambda raw, comm: raw)
        c.diff(keys, values, len(entries))
        stats, total = c.stats()
        assert [s.key for s in stats] == list(snap)
        for s in stats:
            h = snap[s.key]
            assert (s.waits, s.sum_ns) == (h.total, h.sum_ns)
            if h.total:  # a key made but not counted in yet has no quantiles
                assert (s.p50, s.p99, s.max) == quantiles(h.buckets, h.total)
            assert s.comm == b"t%d" % s.key
            assert list(s.blame_ns) == [a - b for a, b in zip(blame[s.key], last[s.key])]
        assert total == [sum(col) for col in zip(*(h.buckets for h in snap.values()))] or not snap
