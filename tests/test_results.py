"""What `pyrunq run` shows of an object's results: .bss/.data globals (values,
arrays, histograms), the default view (working state not shown unless
named), per-interval counts, units, and maps sized at run time. The objects
(tests/objects/gen_results.bpf.c, gen_state.bpf.c) fire on getpgid(value)
from this test process only."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

import pyrunq
from pyrunq.hist import render_log2_bcc
from pyrunq.tools.generic import DEFAULT_MAX_ENTRIES, MapReport, Runner, difference
from pyrunq.tools.generic.settings import RINGBUF_MIN
import cli
from cli import inspect_json, run_and_fire
from testobjects import fire, my_comm
from waiting import wait_for

NSLOTS = 16  # gen_results.bpf.c


def slot(v: int) -> int:
    return min(max(v.bit_length() - 1, 0), NSLOTS - 1)


def docs(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def by_name(out: str) -> dict:
    return {d.get("global") or d.get("map"): d for d in docs(out) if d["type"] != "event"}


# -- globals ----------------------------------------------------------------------

VALUES = [0, 1, 2, 3, 5, 100, 1000, 1001, 1 << 20]


def test_bss_counter_histogram_array_and_struct_exactly(kernel, objs):
    rc, out, err = run_and_fire(objs["gen_results"], VALUES, "--json")
    assert rc == 0, err
    got = by_name(out)
    slots = [0] * NSLOTS
    parity = {0: [0] * NSLOTS, 1: [0] * NSLOTS}
    for v in VALUES:
        slots[slot(v)] += 1
        parity[v & 1][slot(v)] += 1
    assert got["triggers"] == {
        "type": "global",
        "time": got["triggers"]["time"],
        "global": "triggers",
        "section": ".bss",
        "value": len(VALUES),
    }
    assert (got["scale"]["section"], got["scale"]["value"]) == (".data", 1)
    assert got["scaled"]["value"] == len(VALUES)
    assert (got["value_slots"]["type"], got["value_slots"]["unit"]) == ("hist", "value")
    assert got["value_slots"]["histograms"] == [{"key": None, "slots": slots, "labels": {}}]
    evens = sum(1 for v in VALUES if not v & 1)
    assert got["parity_counts"]["entries"] == [
        {"key": 0, "value": evens},
        {"key": 1, "value": len(VALUES) - evens},
    ]
    assert got["by_parity"]["histograms"] == [
        {"key": p, "slots": parity[p], "labels": {"parity": p}} for p in (0, 1)
    ]
    assert got["last"]["value"] == {"value": VALUES[-1], "tgid": os.getpid()}
    assert "seen" not in got  # working state beside histograms


def test_globals_in_text(kernel, objs):
    values = [3, 4, 6]
    rc, out, err = run_and_fire(objs["gen_results"], values)
    assert rc == 0, err
    slots = [0] * NSLOTS
    for v in values:
        slots[slot(v)] += 1
    lines = out.splitlines()
    assert [f"target_tgid: {os.getpid()}", "triggers: 3", "scaled: 3"] == lines[1:4]
    assert f"\nvalue_slots:\n{render_log2_bcc(slots, 'value')}" in out
    assert "parity_counts[0]: 2" in lines and "parity_counts[1]: 1" in lines
    assert f"last: {{value=6, tgid={os.getpid()}}}" in lines
    assert lines[-1] == "scale: 1"
    assert "by_parity[0]: parity=0" in lines and "by_parity[1]: parity=1" in lines


def test_set_bss_and_data_globals_changes_what_the_program_does(kernel, objs):
    # target_tgid is a .bss global: unset, the program counts nothing
    rc, out, err = run_and_fire(objs["gen_results"], [7, 8], "--json", tgid=False)
    assert rc == 0, err
    assert by_name(out)["triggers"]["value"] == 0
    rc, out, err = run_and_fire(objs["gen_results"], [7, 8], "--json", "--set", "scale=5")
    assert rc == 0, err
    got = by_name(out)
    assert (got["triggers"]["value"], got["scaled"]["value"], got["scale"]["value"]) == (2, 10, 5)


# -- the default view ---------------------------------------------------------------


def test_working_state_not_shown_unless_named(kernel, objs):
    values = [10, 11, 20]  # 11 ends 10's pending entry: 11 and 20 stay
    rc, out, err = run_and_fire(objs["gen_state"], values, "--json")
    assert rc == 0, err
    shown = [(d["type"], d.get("map")) for d in docs(out)]
    assert shown == [("event", "events"), ("map", "counts"), ("global", None)]
    assert by_name(out)["counts"]["entries"] == [{"key": 0, "value": 2}, {"key": 1, "value": 1}]
    assert by_name(out)["exits"]["value"] == 3
    assert err.count("maps not shown") == 1
    assert (
        "maps not shown: pending (working state: its programs delete its entries); "
        "entered (working state: one program writes it, another only reads it)"
    ) in err
    assert "--map NAME" in err
    rc, out, err = run_and_fire(objs["gen_state"], values, "--map", "pending", "--map", "entered")
    assert rc == 0, err
    pending = [line.split(":")[0] for line in out.splitlines() if line.startswith("pending[")]
    assert pending == ["pending[11]", "pending[20]"]
    entered = [line.split(":")[0] for line in out.splitlines() if line.startswith("entered[")]
    assert entered == [f"entered[{threading.get_native_id()}]"]
    assert "maps not shown" not in err
    # beside histograms, a map that is not one is working state too
    rc, out, err = run_and_fire(objs["gen_results"], values, "--map", "all")
    assert rc == 0, err
    seen = [line.split(":")[0] for line in out.splitlines() if line.startswith("seen[")]
    assert seen == [f"seen[{v}]" for v in values]


def test_working_state_is_read_from_the_instructions(objs):
    """Without loading anything: the rules of plan.working_state on the
    objects' helper calls (bytecode), read once per file (ObjectFile)."""
    from pyrunq.tools.generic import plan
    from pyrunq.tools.generic.objfile import ObjectFile

    calls = {name: ObjectFile(objs[name]).calls for name in ("gen_state", "gen_summary", "gen_ksyms")}
    assert plan.working_state(calls["gen_state"]) == {"pending": plan.DELETED, "entered": plan.HANDED_OVER}
    assert plan.working_state(calls["gen_summary"]) == {"start": plan.DELETED}
    assert plan.summaries(calls["gen_summary"]) == {"summaries"}
    assert plan.working_state(calls["gen_ksyms"]) == {}  # last is read and written by one program


@pytest.mark.slow  # two loads
def test_summaries_and_counts_by_kernel_address_are_results(kernel, objs):
    """Issue 29, item 7: a per-process summary that one program adds to and
    another deletes when the process exits (gen_summary), and counts by
    kernel function beside a histogram (gen_ksyms), are shown; their
    working state stays hidden, each with its reason."""
    from pyrunq.tools.generic import plan

    with Runner(objs["gen_summary"], settings={"target_tgid": os.getpid()}) as r:
        fire(1, 2, 3)
        r.stop()
        assert r.view.hidden == {"start": plan.DELETED}
        assert r.view.plan("summaries").why == plan.SUMMARY
        [(pid, summary)] = {rep.name: rep for rep in r.maps()}["summaries"].entries
        assert (pid, summary["calls"], summary["comm"]) == (os.getpid(), 3, my_comm())
        assert summary["total_ns"] > 0
    with Runner(objs["gen_ksyms"], settings={"target_tgid": os.getpid()}) as r:
        fire(1, 2, 3)
        r.stop()
        # a bare 64-bit key: hidden unless its keys are kernel functions, as these are
        assert r.view.hidden == {"last": plan.BESIDE_HISTOGRAMS, "calls": plan.UNLESS_FUNCTIONS}
        reports = {rep.name: rep for rep in r.maps()}
        assert reports["calls"].entries == [("__x64_sys_getpgid", 3)]
        assert "last" not in reports
        assert reports["hist_slots"].entries[0][1][:3] == [1, 2, 0]  # 1 | 2, 3


def test_inspect_says_what_is_not_shown(objs):
    maps = {m["name"]: m for m in inspect_json(objs["gen_state"])["maps"]}
    assert maps["counts"]["shown_as"] == "entries"
    assert maps["pending"]["shown_as"] == (
        "entries (not by default: working state: its programs delete its entries)"
    )
    assert maps["entered"]["shown_as"] == (
        "entries (not by default: working state: one program writes it, another only reads it)"
    )
    shown = {g["name"]: g["shown_as"] for g in inspect_json(objs["gen_results"])["globals"]}
    assert shown == {
        "target_tgid": "value",
        "triggers": "value",
        "scaled": "value",
        "value_slots": "log2 histogram (value)",
        "parity_counts": "elements",
        "by_parity": "log2 histograms (value)",
        "last": "value",
        "scale": "value",
    }


# -- units ------------------------------------------------------------------------


def test_unit(kernel, objs):
    rc, out, err = run_and_fire(objs["gen_results"], [3], "--unit", "value_slots=usecs")
    assert rc == 0, err
    assert "\nvalue_slots:\n     usecs               : count     distribution\n" in out
    assert "\nby_parity[1]: parity=1\n     value               : count" in out
    rc, out, err = run_and_fire(objs["gen_results"], [3], "--unit", "msecs", "--json")
    assert rc == 0, err
    assert [d["unit"] for d in docs(out) if d["type"] == "hist"] == ["msecs", "msecs"]


# -- intervals ----------------------------------------------------------------------


def interval_run(obj, first, second, *args):
    """Run with --interval and --json; fire ``first``, wait until the intervals
    printed so far count them, fire ``second``, wait likewise: every document
    printed. A group may straddle two intervals (the test can be preempted
    between two triggers), so tests check what intervals add up to."""
    me = ["--set", f"target_tgid={os.getpid()}"]
    cumulative = "--cumulative" in args
    with cli.spawn("run", obj, *me, "--interval", "0.2", "--json", *args) as cmd:
        cmd.wait_line("^Tracing with", stream="err")

        def counted():
            values = [json.loads(line)["value"] for line in list(cmd.out) if '"global": "triggers"' in line]
            return max(values, default=0) if cumulative else sum(values)

        for total in (len(first), len(first) + len(second)):
            fire(*(first if total == len(first) else second))
            wait_for(lambda total=total: counted() >= total, seen=cmd.text)
        rc, out, err = cmd.finish(signal.SIGINT)
    assert rc == 0, err
    return docs(out)


def test_each_interval_shows_its_own_counts(kernel, objs):
    first, second = [1, 2, 3], [64, 65, 66, 67, 68]
    got = interval_run(objs["gen_results"], first, second)
    triggers = [d["value"] for d in got if d.get("global") == "triggers" and d["value"]]
    # running totals would reach 8 in one interval: each shows only its own
    assert sum(triggers) == 8 and max(triggers) <= 5, triggers
    hists = [d["histograms"][0]["slots"] for d in got if d.get("global") == "value_slots"]
    assert [sum(column) for column in zip(*hists)] == [1, 2] + [0] * 4 + [5] + [0] * 9
    evens: dict[int, int] = {}
    for d in got:
        if d.get("global") == "parity_counts":
            for entry in d["entries"]:
                evens[entry["key"]] = evens.get(entry["key"], 0) + entry["value"]
    assert evens == {0: 4, 1: 4}
    parity = [d["histograms"] for d in got if d.get("global") == "by_parity" and d["histograms"]]
    assert {h["key"] for hs in parity for h in hs} == {0, 1}


def test_cumulative_intervals_show_running_totals(kernel, objs):
    got = interval_run(objs["gen_results"], [1, 2, 3], [64, 65, 66, 67, 68], "--cumulative")
    triggers = [d["value"] for d in got if d.get("global") == "triggers"]
    assert triggers == sorted(triggers)  # never back down
    assert triggers[-1] == 8 and 3 in triggers  # the first group was counted before the second


def test_interval_differences_in_maps_through_python(kernel, objs):
    """on_maps gets each interval's counts: fired between two readings, exactly."""
    seen = []

    def on_maps(reports):
        seen.append({r.name: r.entries for r in reports})
        if len(seen) == 1:
            fire(100, 102, 104, 105)
        elif len(seen) == 2:
            fire(7)
        else:
            raise KeyboardInterrupt

    for cumulative in (False, True):
        seen.clear()
        result = pyrunq.run(
            objs["gen_state"],
            set={"target_tgid": os.getpid()},
            interval=0.01,
            on_maps=on_maps,
            duration=600,
            cumulative=cumulative,
        )
        counts = [s["counts"] for s in seen]
        if cumulative:
            assert counts == [[], [(0, 3), (1, 1)], [(0, 3), (1, 2)]]
        else:
            assert counts == [[], [(0, 3), (1, 1)], [(1, 1)]]  # the even count did not change
        assert dict(next(r.entries for r in result.maps if r.name == "counts")) == {0: 3, 1: 2}
        assert result.hidden == {
            "pending": "working state: its programs delete its entries",
            "entered": "working state: one program writes it, another only reads it",
        }
        assert result.sized == {"pending": DEFAULT_MAX_ENTRIES}


def test_difference_rules():
    before = MapReport("m", "entries", [(1, 5), (2, 7), (3, {"n": 4, "comm": "a"})])
    now = MapReport("m", "entries", [(1, 5), (2, 9), (3, {"n": 6, "comm": "b"}), (4, 1)])
    assert difference(now, before).entries == [(2, 2), (3, {"n": 2, "comm": "b"}), (4, 1)]
    restarted = MapReport("m", "entries", [(2, 3)])  # deleted and made anew: as it is now
    assert difference(restarted, before).entries == [(2, 3)]
    scalar = MapReport("g", "entries", [(None, 4)], section=".bss")
    assert difference(scalar, scalar).entries == [(None, 0)]
    h0 = MapReport("h", "hist", [(None, [1, 2], {}), (5, [1, 0], {"x": 1})], "usecs")
    h1 = MapReport("h", "hist", [(None, [1, 3], {}), (5, [1, 0], {"x": 1}), (6, [0, 2], {})], "usecs")
    assert difference(h1, h0).entries == [(None, [0, 1], {}), (6, [0, 2], {})]
    assert difference(h1, None) == h1


# -- maps sized at run time ---------------------------------------------------------


def test_map_with_max_entries_0_gets_a_default(kernel, objs):
    rc, out, err = run_and_fire(objs["gen_state"], [1, 2], "--json")
    assert rc == 0, err
    assert (
        f"note: map pending declares max_entries 0 (its own user space sizes it): "
        f"sized {DEFAULT_MAX_ENTRIES}; choose with --max-entries pending=N"
    ) in err
    assert [d["event"] for d in docs(out) if d["type"] == "event"] == [{"first": 1, "second": 2}]
    rc, out, err = run_and_fire(
        objs["gen_state"], [1, 2], "--max-entries", "pending=64", "--max-entries", "counts=2"
    )
    assert rc == 0, err
    assert "max_entries 0" not in err
    with Runner(objs["gen_state"], settings={"target_tgid": os.getpid()}, max_entries={"pending": 64}) as r:
        assert (r.obj.maps["pending"].max_entries, r.sized) == (64, {})
    with Runner(objs["gen_state"]) as r:
        assert r.obj.maps["pending"].max_entries == DEFAULT_MAX_ENTRIES
        assert r.sized == {"pending": DEFAULT_MAX_ENTRIES}


BAD = [  # (object, arguments, what stderr says)
    ("gen_state", ["--max-entries", "nope=4"], "--max-entries nope=4: no map 'nope' in gen_state"),
    ("gen_state", ["--max-entries", "pending=0"], "--max-entries pending=0: a map holds 1 to"),
    ("gen_state", ["--max-entries", "pending=many"], "--max-entries pending=many: not an integer"),
    ("gen_state", ["--max-entries", "pending"], "expected MAP=N"),
    ("gen_state", ["--map", "nope"], "--map nope: no hash, array or event map 'nope'"),
    ("gen_results", ["--unit", "nope=usecs"], "--unit nope=usecs: no histogram 'nope'"),
    ("gen_results", ["--unit", "=usecs"], "expected UNIT or NAME=UNIT"),
    ("gen_results", ["--unit", "12"], "--unit 12: a unit is a word"),
]


@pytest.mark.parametrize("obj, extra, message", BAD, ids=[" ".join(e) for _, e, _ in BAD])
def test_bad_input_one_line_exit_2(objs, obj, extra, message):
    out = cli.run("run", objs[obj], *extra)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("pyrunq run: error: ")
    assert message in out.stderr, out.stderr
    assert out.stdout == ""


def test_small_ring_buffers_get_room_unless_sized(kernel, objs):
    """A ring buffer declared small (gen_state's: 16 KiB) is grown to RINGBUF_MIN:
    Python reads more slowly than a C loop, and a record the program could
    not reserve is lost where no reader can count it."""
    with Runner(objs["gen_state"]) as r:
        assert r.obj.maps["events"].max_entries == RINGBUF_MIN
    with Runner(objs["gen_state"], max_entries={"events": 1 << 14}) as r:
        assert r.obj.maps["events"].max_entries == 1 << 14
