"""PerfBuffer on the real kernel, with tests/objects/gen_perf.bpf.c: a perf
event array of struct perf_rec, written on getpgid(seq) from this process.

The kernel writes a sample while the syscall enters, so every record of the
triggers a test made is in the buffer when ``fire()`` returns. A thread pinned
to one CPU puts them all in that CPU's buffer, where their order is kept.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import selectors
import struct

import pytest

import pyrunq
from pyrunq.bpf import BPFObject, PerfBuffer
from pyrunq.errors import StateError, UsageError
from testobjects import fire, my_comm
from waiting import DEADLINE, wait_for

BASE = 10_000_000  # above any pid_max: getpgid() fails, the tracepoint still fires
TRIGGERS = 20_000


@pytest.fixture(scope="module")
def gen_perf(objs):
    return objs["gen_perf"]


@pytest.fixture
def obj(kernel, gen_perf):
    """gen_perf loaded and attached, firing on this process's getpgid()."""
    with BPFObject.open(gen_perf) as o:
        o.rodata["target_tgid"] = os.getpid()
        o.load()
        o.attach()
        yield o


@contextlib.contextmanager
def one_cpu():
    """Run this thread on one CPU (yielded), then where it ran before."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def handed_over(pb: PerfBuffer, n: int) -> int:
    """Poll until ``n`` records were handed over in all; return how many were."""
    total = [0]

    def enough():
        total[0] += pb.poll(0.05)
        return total[0] >= n

    wait_for(enough, every=0, seen=lambda: f"{total[0]} of {n} records")
    return total[0]


def test_every_trigger_gives_one_record_in_order_decoded(obj):
    pb = obj.perf_buffer("events", event="perf_rec")
    seqs = [BASE + i for i in range(500)]
    with one_cpu() as cpu:
        fire(*seqs)
    got = list(itertools.islice(pb.events(timeout=DEADLINE), len(seqs)))
    assert [e.seq for e in got] == seqs
    assert pb.consume() == 0 and not pb.pending  # exactly N: nothing more
    assert {(e.tgid, e.cpu, e.comm) for e in got} == {(os.getpid(), cpu, my_comm()[:15])}
    assert (pb.lost, obj.bss["emitted"], obj.bss["failed"]) == (0, len(seqs), 0)


def test_records_without_event_are_the_raw_samples(obj):
    pb = obj.perf_buffer("events", raw=True)
    size = obj.btf.layout(obj.btf.find("perf_rec")).size
    seqs = [BASE + 7, BASE + 8, BASE + 9]
    with one_cpu() as cpu:
        fire(*seqs)
    assert handed_over(pb, 3) == 3
    records = list(pb.pending)
    # the kernel pads a sample so that with its 4-byte size it fills 8-byte words
    assert {len(r) for r in records} == {(size + 4 + 7) // 8 * 8 - 4}
    comm = my_comm()[:15].encode().ljust(16, b"\0")
    assert [struct.unpack_from("=QII16s", r) for r in records] == [(s, os.getpid(), cpu, comm) for s in seqs]
    assert all(isinstance(r, bytes) and r[size:] == b"\0" * (len(r) - size) for r in records)


def test_a_callback_receives_every_record(obj):
    seen = []
    pb = obj.perf_buffer("events", callback=seen.append, event="perf_rec")
    seqs = [BASE + i for i in range(10)]
    with one_cpu():
        fire(*seqs)
    assert handed_over(pb, 10) == 10
    assert [e.seq for e in seen] == seqs and not pb.pending


def test_selectors_wait_on_fileno(obj):
    pb = obj.perf_buffer("events", pages=8)
    sel = selectors.DefaultSelector()
    sel.register(pb.fileno(), selectors.EVENT_READ)
    assert sel.select(0) == []
    fire(BASE)
    assert len(sel.select(DEADLINE)) == 1
    assert pb.consume() == 1 and len(pb.pending) == 1
    sel.close()


def test_poll_0_after_select_reads_what_made_it_readable(obj):
    """select() on fileno() takes a perf event's readiness (perf's poll clears
    it): the poll(0) that follows must read the buffers all the same, or
    records wait for the next wakeup (the CLI's loop does exactly this)."""
    pb = obj.perf_buffer("events", event="perf_rec")
    sel = selectors.DefaultSelector()
    sel.register(pb.fileno(), selectors.EVENT_READ)
    for i in range(20):
        fire(BASE + i)
        assert len(sel.select(DEADLINE)) == 1
        assert pb.poll(0) == 1, f"round {i}"
        assert pb.pending.pop().seq == BASE + i
    sel.close()


def test_limit_keeps_the_rest_for_the_next_call_in_order(obj):
    seen = []
    pb = obj.perf_buffer("events", callback=seen.append, event="perf_rec")
    seqs = [BASE + i for i in range(10)]
    with one_cpu():
        fire(*seqs)
    assert pb.poll(DEADLINE, limit=3) == 3 and len(seen) == 3
    assert len(pb.backlog) == 7  # libbpf read them all: they wait here
    assert pb.consume(limit=4) == 4
    assert pb.consume() == 3 and not pb.backlog
    assert pb.poll(0) == 0
    assert [e.seq for e in seen] == seqs


def test_a_full_buffer_nobody_reads_counts_every_lost_sample(obj):
    seen = []
    pb = obj.perf_buffer("events", callback=seen.append, event="perf_rec", pages=1)
    fired = [TRIGGERS]

    def settled():
        pb.consume()
        if len(seen) + pb.lost == fired[0]:
            return True
        # the kernel reports what it dropped with the next sample that fits
        fire(BASE + fired[0])
        fired[0] += 1
        return False

    with one_cpu() as cpu:
        fire(*range(BASE, BASE + TRIGGERS))
        wait_for(settled, every=0, seen=lambda: (len(seen), pb.lost, fired[0]))
    n = fired[0]
    assert pb.lost > 0 and len(seen) + pb.lost == n
    assert (obj.bss["emitted"], obj.bss["failed"]) == (n, pb.lost)  # the kernel's own count
    assert pb.lost_per_cpu == {cpu: pb.lost}
    # what fitted is the first samples, then the one that carried the count
    assert [e.seq for e in seen] == [*range(BASE, BASE + len(seen) - 1), BASE + n - 1]


def test_callback_exception_propagates_and_later_records_stay(obj):
    seen = []

    def boom(e):
        if e.seq == BASE:
            raise ValueError("from callback")
        seen.append(e.seq)

    pb = obj.perf_buffer("events", callback=boom, event="perf_rec")
    with one_cpu():
        fire(BASE, BASE + 1, BASE + 2)
    with pytest.raises(ValueError, match="from callback"):
        pb.poll(DEADLINE)
    assert pb.consume() == 2 and seen == [BASE + 1, BASE + 2]


def test_close_is_idempotent_and_blocks_further_use(obj):
    assert pyrunq.PerfBuffer is PerfBuffer
    pb = obj.perf_buffer("events")
    pb.close()
    pb.close()
    for call in (pb.poll, pb.consume, pb.fileno):
        with pytest.raises(StateError, match="perf buffer 'events' is closed"):
            call()
    with obj.perf_buffer("events") as pb:
        pb.fileno()
    with pytest.raises(StateError, match="closed"):
        pb.poll(0)


def test_a_callback_may_close_its_buffer(obj):
    seen = []

    def first_only(e):
        seen.append(e.seq)
        pb.close()

    pb = obj.perf_buffer("events", callback=first_only, event="perf_rec")
    with one_cpu():
        fire(BASE, BASE + 1, BASE + 2)
    assert pb.poll(DEADLINE) == 1 and seen == [BASE]
    with pytest.raises(StateError, match="closed"):
        pb.consume()


def test_the_object_closes_its_perf_buffers(obj):
    pb = obj.perf_buffer("events")
    obj.close()
    with pytest.raises(StateError, match="closed"):
        pb.poll(0)


@pytest.mark.parametrize("pages", [0, 3, -4, 96, 1.0, True, "8"])
def test_pages_must_be_a_power_of_two(obj, pages):
    with pytest.raises(UsageError, match="power of two"):
        obj.perf_buffer("events", pages=pages)


def test_only_a_loaded_perf_event_array(kernel, gen_perf):
    with BPFObject.open(gen_perf) as o:
        with pytest.raises(StateError, match="before load"):
            o.perf_buffer("events")
    with BPFObject.open("selftest") as o:
        o.load()
        with pytest.raises(UsageError, match="'events' is a ringbuf map, not a perf event array"):
            o.perf_buffer("events")
