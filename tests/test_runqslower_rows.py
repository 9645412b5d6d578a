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
