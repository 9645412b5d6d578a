"""A histogram's unit from what its programs measure, where its name says
none: the difference of two bpf_ktime_get_ns() readings, divided by 1000
(usecs) or, as a setting says, 1000000 (msecs), counted log2 into its
slots (tests/objects/gen_units.bpf.c, in libbpf-tools' runqlat style);
never for a histogram of sizes counted in the same program."""

from __future__ import annotations

import itertools
import os
import time

import pytest

import cli
from pyrunq.tools.generic import Runner
from pyrunq.tools.generic.plan import MEASURED
from testobjects import fire

MAX_SLOTS = 26  # as gen_units.bpf.c
SIZES = [1, 3, 100, 5000]  # getpgid(size): slots 0, 1, 6, 12 of sizes
APART_NS = [2_000_000, 40_000_000, 0]  # the sleeps between the calls: 2 ms, 40 ms, none


def top_bit(v: int) -> int:
    return min(max(v.bit_length() - 1, 0), MAX_SLOTS - 1)


def fire_apart() -> list[tuple[int, int]]:
    """getpgid(size) for each of SIZES, APART_NS between them; the bounds of
    each time between two calls as the kernel reads it: from the end of one
    call to the start of the next, to the start of one to the end of the next."""
    spans = []
    for k, size in enumerate(SIZES):
        before = time.monotonic_ns()  # bpf_ktime_get_ns's clock
        fire(size)
        after = time.monotonic_ns()
        spans.append((before, after))
        if k < len(APART_NS) and APART_NS[k]:
            time.sleep(APART_NS[k] / 1e9)
    return [(b1 - a0, a1 - b0) for (b0, a0), (b1, a1) in zip(spans, spans[1:])]


def possible(bounds: list[tuple[int, int]], divisor: int) -> list[list[int]]:
    """Every histogram the object may fill with these times (each between its
    bounds: any slot from the low bound's to the high one's), in ``divisor`` units."""
    choices = [range(top_bit(low // divisor), top_bit(high // divisor) + 1) for low, high in bounds]
    out = []
    for slots in itertools.product(*choices):
        hist = [0] * MAX_SLOTS
        for s in slots:
            hist[s] += 1
        out.append(hist)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("targ_ms, unit, divisor", [(False, "usecs", 1000), (True, "msecs", 1_000_000)])
def test_a_durations_unit_is_what_the_programs_divide_it_into(kernel, objs, targ_ms, unit, divisor):
    settings = {"target_tgid": os.getpid(), "targ_ms": targ_ms}
    with Runner(objs["gen_units"], settings=settings) as r:
        bounds = fire_apart()
        r.stop()
        reports = {rep.name: rep for rep in r.maps()}
        plans = {p.name: p for p in r.view.plans if p.kind == "hist"}
    latency, sizes = reports["latency"], reports["sizes"]
    assert (latency.unit, sizes.unit) == (unit, "value")  # on main: "value" for both
    divided = " / 1000" if divisor == 1000 else " / 1000000"
    assert plans["latency"].unit_why == MEASURED.format(unit=unit, divided=divided)
    assert plans["sizes"].unit_why is None
    ((key, slots, labels),) = latency.entries
    assert key == os.getpid() and labels["comm"]
    assert slots in possible(bounds, divisor), (slots, bounds)
    ((_, size_slots, _),) = sizes.entries
    assert size_slots == possible([(s, s) for s in SIZES], 1)[0]


@pytest.mark.slow
def test_pyrunq_run_says_where_a_histograms_unit_comes_from(kernel, objs):
    rc, out, err = cli.run_and_fire(objs["gen_units"], [1, 1], "--set", "targ_ms=true")
    assert rc == 0, err
    assert f"\nlatency[{os.getpid()}]: comm=" in out
    assert "\n     msecs               : count     distribution\n" in out
    assert "\n     value               : count     distribution\n" in out  # sizes
    assert (
        "pyrunq run: note: histogram latency in msecs: durations its programs count into its slots "
        "(bpf_ktime_get_ns() differences / 1000000); --unit latency=UNIT says otherwise\n"
    ) in err
    assert "histogram sizes" not in err
    rc, out, err = cli.run_and_fire(objs["gen_units"], [1, 1], "--unit", "latency=nsecs")
    assert rc == 0, err
    assert "\n     nsecs               : count     distribution\n" in out and "histogram latency" not in err


# -- the pass, on instructions assembled by hand --------------------------------------


def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> tuple:
    return (op, dst, src, off, imm)


def load_map(reg: int) -> list[tuple]:
    return [insn(0x18, reg), insn(0)]  # reg = &map (an ld_imm64: the map is its relocation's)


def program(divided: list[tuple], index: list[tuple], stored: tuple | None = None) -> list[tuple]:
    """now = bpf_ktime_get_ns(); delta = now - start[key]; ``divided`` (on
    r6), ``index`` (r6 -> r6, a slot); hists[key].slots[r6]++; start[key] =
    now, or what ``stored`` (an instruction) puts at fp-8 instead."""
    return [
        insn(0x85, imm=5),  # call bpf_ktime_get_ns
        insn(0xBF, 9, 0),  # r9 = now
        insn(0x7A, 10, 0, -16, 0),  # *(u64 *)(fp - 16) = 0: the key
        *load_map(1),  # start
        insn(0xBF, 2, 10),
        insn(0x07, 2, 0, 0, -16),
        insn(0x85, imm=1),  # r0 = bpf_map_lookup_elem(&start, &key)
        insn(0x79, 7, 0),  # r7 = *(u64 *)(r0 + 0)
        insn(0xBF, 6, 9),
        insn(0x1F, 6, 7),  # r6 = now - then
        *divided,
        *index,
        insn(0x67, 6, 0, 0, 2),  # r6 <<= 2: u32 slots
        *load_map(1),  # hists
        insn(0xBF, 2, 10),
        insn(0x07, 2, 0, 0, -16),
        insn(0x85, imm=1),
        insn(0x0F, 0, 6),  # r0 += r6: the slot
        insn(0xB7, 1, 0, 0, 1),
        insn(0xDB, 0, 1),  # lock *(u64 *)(r0 + 0) += r1
        stored or insn(0x7B, 10, 9, -8),  # *(u64 *)(fp - 8) = now
        *load_map(1),  # start
        insn(0xBF, 2, 10),
        insn(0x07, 2, 0, 0, -16),
        insn(0xBF, 3, 10),
        insn(0x07, 3, 0, 0, -8),
        insn(0xB7, 4),
        insn(0x85, imm=2),  # bpf_map_update_elem(&start, &key, &now, 0)
        insn(0xB7, 0),
        insn(0x95),
    ]


def units(*programs: list[tuple], rodata: bytes | None = None) -> dict[str, str]:
    from pyrunq.tools.generic import origins as O

    shared = O._Shared(O.Seen(), rodata, {}, {})
    for k, insns in enumerate(programs):
        maps = {i: "start" for i, x in enumerate(insns) if x[0] == 0x18}
        maps[[i for i in maps][1]] = "hists"  # the second ld_imm64 of a map is hists'
        O._scan(O._Code(f"tp/p{k}", insns, maps, {}, {}, {}, {}), shared)
    return O._units(shared, shared.seen.agreed({}))


BY_1000 = [insn(0x37, 6, 0, 0, 1000)]  # r6 /= 1000
LOG2L = [insn(0x77, 6, 0, 0, 32), insn(0x7F, 6, 8), insn(0x4F, 6, 8)]  # >> 32, >>= r8, |= r8


@pytest.mark.parametrize(
    "programs, found",
    [
        ([program(BY_1000, LOG2L)], {"hists": "usecs"}),
        ([program([insn(0x37, 6, 0, 0, 1_000_000)], LOG2L)], {"hists": "msecs"}),
        ([program([], LOG2L)], {"hists": "nsecs"}),
        ([program(BY_1000, [])], {"hists": "usecs"}),  # linear: the duration is the slot
        # scaled otherwise: by a shift (about usecs), by 100, by a number not known
        ([program([insn(0x77, 6, 0, 0, 10)], LOG2L)], {}),
        ([program([insn(0x37, 6, 0, 0, 100)], LOG2L)], {}),
        ([program([insn(0x3F, 6, 8)], LOG2L)], {}),
        # the slot is a size's, a duration at hand: r6 = a number read, not the duration
        ([program(BY_1000, [insn(0x79, 6, 10, -24)])], {}),
        ([program(BY_1000, [insn(0x0F, 6, 7)])], {}),  # the duration plus a time: not followed
        # two programs, two units
        ([program(BY_1000, LOG2L), program([insn(0x37, 6, 0, 0, 1_000_000)], LOG2L)], {}),
        ([program(BY_1000, LOG2L), program(BY_1000, LOG2L)], {"hists": "usecs"}),
        # the start map also gets another number than a time (the duration): its values are not times
        ([program(BY_1000, LOG2L, stored=insn(0x7B, 10, 6, -8))], {}),
    ],
)
def test_which_durations_make_a_unit(programs, found):
    assert units(*programs) == found


def test_a_division_by_a_setting_goes_the_way_the_setting_says():
    by_setting = [
        insn(0x18, 1),
        insn(0),  # r1 = &.rodata (its relocation: globs, below)
        insn(0x71, 2, 1),  # r2 = *(u8 *)(r1 + 0): targ_ms
        insn(0xB7, 1, 0, 0, 1000),
        insn(0x15, 2, 0, 1, 0),  # if r2 == 0 goto +1
        insn(0xB7, 1, 0, 0, 1_000_000),
        insn(0x3F, 6, 1),  # r6 /= r1
    ]
    from pyrunq.tools.generic import origins as O

    insns = program(by_setting, LOG2L)
    at = next(i for i, x in enumerate(insns) if x == insn(0x71, 2, 1)) - 2
    for rodata, found in ((b"\0", {"hists": "usecs"}), (b"\1", {"hists": "msecs"}), (None, {})):
        shared = O._Shared(O.Seen(), rodata, {}, {})
        maps = {i: "start" for i, x in enumerate(insns) if x[0] == 0x18 and i != at}
        maps[[i for i in maps][1]] = "hists"
        O._scan(O._Code("tp/p", insns, maps, {at: (".rodata", 0)}, {}, {}, {}), shared)
        assert O._units(shared, shared.seen.agreed({})) == found, rodata
