"""Linear histograms in objects pyrunq did not write: what a slot holds is
read from the instructions that count into it (tests/objects/gen_linear.bpf.c,
in libbpf-tools' runqlen and cpufreq style, beside log2 ones), and drawn with
each slot's values as its label."""

from __future__ import annotations

import io
import json
import os
import struct

import pytest

import cli
from pyrunq.cli.printers import JsonPrinter, TablePrinter
from pyrunq.hist import render_labelled
from pyrunq.tools.generic import MapReport, Runner
from pyrunq.tools.generic.bytecode import Index, slot_writes
from pyrunq.tools.generic.describe import describe
from pyrunq.tools.generic.plan import HISTOGRAM, LINEAR
from pyrunq.tools.generic.shapes import Scale
from testobjects import fire

MAX_SLOTS, STEP, COARSE = 8, 200, 16  # as gen_linear.bpf.c
# 3 calls with 2 and 5 with 7 (the slots themselves), 100 past the last
# slot (clamped into it), 450 twice and 1000: slots 2 and 5 of 200 each
VALUES = [2] * 3 + [7] * 5 + [100, 450, 450, 1000]


def linear(values, step: int, slots: int, clamped: bool) -> list[int]:
    """The slots the object fills: value // step, the larger ones in the
    last slot (``clamped``) or not counted."""
    out = [0] * slots
    for v in values:
        if v // step < slots or clamped:
            out[min(v // step, slots - 1)] += 1
    return out


def log2(values, slots: int) -> list[int]:
    out = [0] * slots
    for v in values:
        out[min(max(v.bit_length() - 1, 0), slots - 1)] += 1
    return out


def shown_as(path: str) -> dict:
    d = describe(path)
    shown = {x["name"]: x["shown_as"] for x in d["maps"] + d["globals"]}
    return {name: what for name, what in shown.items() if "histogram" in (what or "")}


@pytest.mark.slow
def test_inspect_says_which_histograms_are_linear(objs):
    assert shown_as(objs["gen_linear"]) == {
        "by_parity": "linear histogram (value, 200 a slot)",
        "coarse_hist": "linear histogram (value, 16 a slot)",
        "depth": "linear histogram (value)",
        "orders": "log2 histogram (value)",  # log2 by halving, as bcc's log2() does
    }
    # log2 objects stay log2 (gen_hist's loop: test_generic's exact output): bcc's log2l, Inspektor Gadget's
    assert shown_as(objs["gen_stackhist"]) == {"hists": "log2 histogram (value)"}
    assert shown_as(objs["gen_gadget_hist"]) == {"hists": "log2 histogram (value)"}


def test_linear_slots_are_counted_and_labelled(kernel, objs):
    with Runner(objs["gen_linear"], settings={"target_tgid": os.getpid()}) as r:
        fire(*VALUES)
        r.stop()
        reports = {rep.name: rep for rep in r.maps()}
        why = {p.name: p.why for p in r.view.plans if p.kind == "hist"}
    assert why == {"by_parity": LINEAR, "coarse_hist": LINEAR, "depth": LINEAR, "orders": HISTOGRAM}
    depth, parity = reports["depth"], reports["by_parity"]
    assert depth.slot_scale == Scale("linear", 1, open_last=True)
    assert depth.entries == [(None, linear(VALUES, 1, MAX_SLOTS, True), {})]
    assert depth.entries[0][1][2] == 3 and depth.entries[0][1][7] == 5 + 4  # 7, and 100, 450, 1000 clamped
    assert parity.slot_scale == Scale("linear", STEP, open_last=True)
    assert parity.entries == [
        (p, linear([v for v in VALUES if v & 1 == p], STEP, MAX_SLOTS, True), {}) for p in (0, 1)
    ]
    assert reports["coarse_hist"].slot_scale == Scale("linear", COARSE, open_last=False)
    assert reports["coarse_hist"].entries == [(None, linear(VALUES, COARSE, COARSE, False), {})]
    assert reports["orders"].slot_scale is None or reports["orders"].slot_scale.kind == "log2"
    assert reports["orders"].entries == [(None, log2(VALUES, MAX_SLOTS), {})]

    out = io.StringIO()
    TablePrinter(out).maps([depth, parity])
    rows = [("2", 3), ("3", 0), ("4", 0), ("5", 0), ("6", 0), (">= 7", 9)]
    even = [("0-199", 4), ("200-399", 0), ("400-599", 2), ("600-799", 0), ("800-999", 0), ("1000-1199", 1)]
    assert out.getvalue() == (
        f"\ndepth:\n{render_labelled(rows, 'value')}"
        f"\nby_parity[0]:\n{render_labelled(even, 'value')}"
        f"\nby_parity[1]:\n{render_labelled([('0-199', 5)], 'value')}"
    )
    assert "                    >= 7 : 9        |" + "*" * 40 + "|\n" in out.getvalue()


def test_json_says_what_slots_hold():
    slots = [0, 2, 1]
    linear_hist = MapReport("h", "hist", [(None, slots, {})], "value", slot_scale=Scale("linear", 200, True))
    log2_hist = MapReport("g", "hist", [(None, slots, {})], "usecs")
    out = io.StringIO()
    JsonPrinter(out).maps([linear_hist, log2_hist])
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["map"], d["bucket_type"], d.get("step"), d.get("open_last")) for d in docs] == [
        ("h", "linear", 200, True),
        ("g", "log2", None, None),
    ]
    assert docs[0]["histograms"] == [{"key": None, "slots": slots, "labels": {}}]


@pytest.mark.slow
def test_pyrunq_run_prints_linear_labels(kernel, objs):
    rc, out, err = cli.run_and_fire(objs["gen_linear"], VALUES)
    assert rc == 0, err
    assert "\ndepth:\n     value               : count     distribution\n" in out
    assert "                       2 : 3        |*************                           |\n" in out
    assert "                    >= 7 : 9        |****************************************|\n" in out
    assert "\ncoarse_hist:\n" in out and "                   16-31 : 0 " in out


def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, src << 4 | dst, off, imm)


LOAD_VALUE = insn(0x79, 6, 1, 0, 0)  # r6 = *(u64 *)(r1 + 0): a value read from the context
INTO_GLOBAL = (
    insn(0x18, 1)
    + insn(0)  # r1 = &hist (a global: its relocation, below)
    + insn(0x67, 6, 0, 0, 2)  # r6 <<= 2: u32 slots
    + insn(0x0F, 1, 6)  # r1 += r6
    + insn(0xB7, 2, 0, 0, 1)  # r2 = 1
    + insn(0xC3, 1, 2)  # lock *(u32 *)(r1 + 0) += r2
    + insn(0xB7, 0)
    + insn(0x95)  # return 0
)


@pytest.mark.parametrize(
    "computed, index",
    [
        (insn(0x37, 6, 0, 0, 200), Index(step=200, scale=4)),  # r6 /= 200
        (insn(0x77, 6, 0, 0, 3), Index(step=8, scale=4)),  # r6 >>= 3
        # if r6 <= 7 goto +1; r6 = 7: clamped into the last of 8 slots
        (insn(0xB5, 6, 0, 1, 7) + insn(0xB7, 6, 0, 0, 7), Index(clamp=7, scale=4)),
        (insn(0x7F, 6, 7), None),  # r6 >>= r7: a shift by a register (bcc's log2)
        (insn(0xBF, 1, 6) + insn(0x85, 0, 1, 0, 5) + insn(0xBF, 6, 0), None),  # r6 = a BPF function's result
        # a loop: r6 += 1 while r7 > 1 (the count of halvings)
        (insn(0xB7, 6) + insn(0x07, 6, 0, 0, 1) + insn(0x77, 7, 0, 0, 1) + insn(0x25, 7, 0, -3, 1), None),
    ],
)
def test_how_a_slot_index_was_computed(computed, index):
    code = LOAD_VALUE + computed + INTO_GLOBAL
    at = len(LOAD_VALUE + computed) // 8  # the ld_imm64 of the global
    (write,) = slot_writes(code, {}, True, {at: (".bss", 64)})
    assert (write.target, write.indexes) == ((".bss", 64), (index,))


def test_a_cut_short_program_is_no_error():
    assert slot_writes(LOAD_VALUE + insn(0x18, 1), {}, True, {}) == []
