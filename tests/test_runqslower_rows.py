"""runqslower's rows written in C (pyrunq.bpf.EventRows, what the command
prints) are the rows of the Python reference (pyrunq.cli.runqslower.Rows),
byte for byte; and a poll's budget holds with them."""

from __future__ import annotations

import io
import re

import pytest

from pyrunq.bpf import BPFObject, EventRows, packaged_object
from pyrunq.cli.runqslower import Rows
from pyrunq.libbpf import ffi, lib
from pyrunq.tools.runqslower import RunqSlower
from waiting import wait_for
from workload import Contention

CLOCK = re.compile(rb"^\d\d:\d\d:\d\d ", re.M)
EVENTS = [
    dict(task="pyrunq-victim", prev_task="swapper/0", delta_ns=1_234_567, tid=4321, prev_tid=0),
    dict(task="a" * 16, prev_task="b" * 16, delta_ns=999, tid=1, prev_tid=2),  # comms without their NUL
    dict(task="", prev_task="", delta_ns=0, tid=0, prev_tid=0),
    dict(task="x", prev_task="y", delta_ns=(1 << 64) - 1, tid=(1 << 31) - 1, prev_tid=4_000_000),
]


@pytest.fixture(scope="module")
def layout():
    with BPFObject(packaged_object("runqslower")) as obj:  # opened only: its BTF
        yield obj.btf.layout(obj.btf.find("event"))


def in_c(layout, events, previous: bool) -> bytes:
    """The rows native/rows.c writes, its sample callback called directly."""
    rows = EventRows(layout, previous)
    for event in events:
        data = layout.encode({**event, "pid": 7, "prev_pid": 8, "cpu": 1})
        assert lib.pyrunq_rows_sample(rows.ptr, ffi.from_buffer(data), len(data)) == 0
    return rows.take()


def in_python(layout, events, previous: bool) -> bytes:
    out = io.StringIO()
    write = Rows(out, previous)
    for event in events:
        write(layout.decode(layout.encode({**event, "pid": 7, "prev_pid": 8, "cpu": 1})))
    return out.getvalue().encode()


@pytest.mark.parametrize("previous", [False, True])
def test_c_rows_are_the_reference_rows(layout, previous):
    c, python = in_c(layout, EVENTS, previous), in_python(layout, EVENTS, previous)
    assert len(CLOCK.findall(c)) == len(EVENTS)
    assert CLOCK.sub(b"", c) == CLOCK.sub(b"", python)  # the clocks may straddle a second


def test_take_empties_and_short_records_are_refused(layout):
    rows = EventRows(layout)
    assert rows.take() == b""
    assert lib.pyrunq_rows_sample(rows.ptr, ffi.new("char[]", 8), 8) < 0
    assert rows.take() == b""


def test_a_layout_without_the_fields_is_refused(layout):
    with BPFObject(packaged_object("runqlat")) as obj:
        with pytest.raises(ValueError, match="not runqslower's event"):
            EventRows(obj.btf.layout(obj.btf.find("hist")))


def test_text_mode_on_the_kernel_keeps_the_budget_and_the_rows(kernel):
    with Contention() as w, RunqSlower(min_us=0, text=True, previous=True) as rs:
        text = b""

        def enough():
            nonlocal text
            assert rs.poll(0.1, limit=3) <= 3  # a budget: never more records than asked
            text += rs.take_text()
            return text.count(f" {w.victim.pid} ".encode()) >= 3

        wait_for(enough, every=0)
    for line in text.splitlines():
        assert re.fullmatch(rb"\d\d:\d\d:\d\d .{16} \d+ +\d+ .{16} \d+ *", line), line


# --blame's column: struct blame_event records with known culprits, written
# by native/culprits.c and by the Python reference (BlameRecords + Rows).
CGROUPS = {
    0: "/",
    11: "/user.slice/user-0.slice/session-1.scope",
    12: "/machine.slice/libpod-" + "3f2a" * 16 + ".scope/container",
    13: "/system.slice/cron.service",
}


def who(cgroup_id, tid, kind, comm, pid=None):
    return {"cgroup_id": cgroup_id, "pid": pid or tid, "tid": tid, "kind": kind, "comm": comm}


def blamed_events(enum):
    self_, other, kernel, idle = (enum[f"BLAME_{k}"] for k in ("SELF", "OTHER", "KERNEL", "IDLE"))
    hog = who(12, 4242, other, "stress-ng")
    return [
        # one task in three segments, merged; a container, a host service, the idle task
        [
            (5_000_000, hog),
            (300_000, who(13, 77, other, "cron")),
            (2_900_000, hog),
            (80, who(0, 0, idle, "")),
            (1_000, hog),
        ],
        # more than three: the rest summed; a kernel thread, the victim's own cgroup, ties kept in order
        [
            (10, who(11, 1, self_, "bash")),
            (10, who(0, 9, kernel, "kworker/0:1")),
            (10, who(13, 5, other, "a")),
            (10, who(13, 6, other, "b")),
            (7, who(13, 7, other, "c")),
        ],
        # a task without a comm: named by its cgroup; a thread of a process: [tid]
        [(999_999, who(12, 0, self_, "", pid=0)), (1_000_000, who(11, 31, self_, "w", pid=30))],
        # nothing attributed
        [],
    ]


def blame_records(layout, enum):
    unattributed = [(0, 0), (123, 2), (0, 0), (4_000_000, 1)]
    for culprits, (rest, why) in zip(blamed_events(enum), unattributed):
        slots = [{"ns": ns, "who": w} for ns, w in culprits]
        slots += [{"ns": 0, "who": who(0, 0, 0, "")}] * (16 - len(slots))
        event = {
            "task": "victim",
            "prev_task": "x",
            "delta_ns": sum(c[0] for c in culprits) + rest,
            "pid": 7,
            "tid": 7,
            "prev_pid": 8,
            "prev_tid": 8,
            "cpu": 1,
        }
        yield layout.encode(
            {"e": event, "unattributed_ns": rest, "why": why, "nculprits": len(culprits), "culprits": slots}
        )


@pytest.fixture(scope="module")
def blame_object():
    with BPFObject(packaged_object("runqslower")) as obj:
        yield obj


@pytest.mark.parametrize("previous", [False, True])
def test_c_blame_column_is_the_reference_column(blame_object, previous):
    from pyrunq.tools.blame import Kinds, enum_names
    from pyrunq.tools.runqslower import BlameRecords

    btf = blame_object.btf
    layout = btf.layout(btf.find("blame_event"))
    kinds = Kinds(btf, names=CGROUPS.__getitem__)
    asked = []

    def name(cgroup_id):
        asked.append(cgroup_id)
        return kinds.cgroup(cgroup_id)

    rows = EventRows.blamed(
        layout,
        previous,
        enum_names(btf, "blame_kind"),
        {raw: kinds.why(raw) for raw in enum_names(btf, "blame_why")},
        name,
    )
    records = list(blame_records(layout, btf.enum("blame_kind")))
    for data in records:
        lib.pyrunq_rows_sample(rows.ptr, ffi.from_buffer(data), len(data))
        rows.settle()  # what a poll does after it: names what a held record needs
    out, write, decode = io.StringIO(), Rows(io.StringIO(), previous), BlameRecords(btf, kinds)
    write = Rows(out, previous)
    for data in records:
        write(decode(data))
    c, python = rows.take(), out.getvalue().encode()
    assert CLOCK.sub(b"", c) == CLOCK.sub(b"", python)
    assert b"podman:3f2a3f2a3f2a stress-ng[4242] 7.9ms, cron[77] /system.slice/cron.service 300us" in c
    assert b"idle 80ns" in c and b"2 more 17ns" in c and b"unattributed (migrated) 4.0ms" in c
    assert sorted(asked) == [12, 13]  # each cgroup named once, only where a label needs it
