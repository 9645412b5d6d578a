"""ebpf_exporter's maps on the real kernel: tests/objects/gen_exporter_hist.bpf.c
(in its style) with its YAML beside it, and without; getpgid(v) of this
process for known values, so every bucket, count and sum is known."""

from __future__ import annotations

import io
import json
import os
import re
import shutil

import pytest

import cli
from cli import run_and_fire
from pyrunq.tools.generic import ConfigError, Runner
from testobjects import fire, my_comm

VALUES = [0, 1, 2, 3, 5, 100, 1000, 1001, 70_000_000, 200_000_000]
MAX_EXP2, MAX_ZERO = 27, 12


def exp2_bucket(v: int) -> int:
    """ebpf_exporter's exp2 bucket: the least b with v <= 2^b (0 and 1 in 0)."""
    return min(0 if v <= 1 else (v - 1).bit_length(), MAX_EXP2)


def exp2_row(b: int, last: int) -> str:
    low, high = (0 if b == 0 else 2 ** (b - 1) + 1), 2**b
    if b == last:
        return f"{low} -> ..."
    return str(high) if low == high else f"{low} -> {high}"


def disk() -> tuple[int, str]:
    """A dev_t of this machine's first disk (user space's encoding) and its
    name, as the majorminor decoder names it; 8:0 "unknown:8:0" without one."""
    with open("/proc/partitions") as f:
        for line in f:
            fields = line.split()
            if len(fields) == 4 and fields[0].isdigit():
                return os.makedev(int(fields[0]), int(fields[1])), fields[3]
    return os.makedev(8, 0), "unknown:8:0"


def sections(out: str) -> dict[str, list[str]]:
    """The text output's blocks: head line -> the lines under it."""
    found: dict[str, list[str]] = {}
    head = None
    for line in out.splitlines():
        if not line:
            head = None
        elif head is None or line.startswith("# HELP") or re.match(r"^\S.*\S:$", line):
            head = line
            found[head] = []
        else:
            found[head].append(line)
    return found


def rows(lines: list[str]) -> dict[str, int]:
    return {
        label.strip(): int(count.split()[0])
        for label, count in (
            line.split(" : ") for line in lines if " : " in line and "distribution" not in line
        )
    }


@pytest.mark.slow
def test_with_its_yaml_each_map_reads_as_the_exporter_labels_it(kernel, objs):
    dev, name = disk()
    rc, out, err = run_and_fire(objs["gen_exporter_hist"], VALUES, "--set", f"disk_dev={dev}")
    assert rc == 0, err
    assert "metrics named, labelled and bucketed as " in err and "gen_exporter_hist.yaml says" in err
    blocks = sections(out)
    for parity, op in ((0, "even"), (1, "odd")):
        mine = [v for v in VALUES if v & 1 == parity]
        lines = blocks[f'getpgid_value_seconds{{device="{name}", operation="{op}"}}:']
        expected: dict[str, int] = {}
        for b in range(max(exp2_bucket(v) for v in mine) + 1):
            expected[exp2_row(b, MAX_EXP2)] = sum(1 for v in mine if exp2_bucket(v) == b)
        assert lines[0].split() == ["usecs", ":", "count", "distribution"]
        assert rows(lines) == expected
        assert lines[-1] == f"     count {len(mine)}, sum {sum(mine)} usecs"
    assert "# HELP getpgid_value_seconds getpgid arguments taken as microseconds" in blocks
    linear = blocks["getpgid_linear:"]
    assert rows(linear) == {"<= 0": 5, "<= 50": 0, "<= 100": 1} | {
        f"<= {50 * b}": 0 for b in range(3, 20)
    } | {">= 1000": 4}
    assert linear[-1] == "     count 10"  # the object keeps no sum there
    zero = blocks["getpgid_zero:"]
    zero_rows = rows(zero)
    assert (zero_rows["0"], zero_rows["1"], zero_rows["2"], zero_rows["3 -> 4"], zero_rows["5 -> 8"]) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert (zero_rows["65 -> 128"], zero_rows["513 -> 1024"], zero_rows["1025 -> ..."]) == (1, 2, 2)
    assert zero[-1] == f"     count 10, sum {sum(VALUES)} value"
    lines = out.splitlines()
    assert f'syscalls_total{{syscall="getpgid"}}: {len(VALUES)}' in lines
    assert f'calls_by_function_total{{function="schedule"}}: {len(VALUES)}' in lines
    comm = [line for line in lines if line.startswith("calls_by_comm_total")]
    assert comm == (
        [f'calls_by_comm_total{{comm="py"}}: {len(VALUES)}'] if my_comm().startswith("py") else []
    )
    cpus = [int(line.rsplit(": ", 1)[1]) for line in lines if line.startswith('calls_per_cpu_total{cpu="')]
    assert len(cpus) == os.cpu_count() and sum(cpus) == len(VALUES)


@pytest.mark.slow
def test_without_its_yaml_bucket_maps_are_histograms_with_their_sums(kernel, objs, tmp_path):
    """The object alone (no YAML beside it): the maps keyed {..., bucket} are
    exp2 histograms, the sum taken out of the bucket above the others; then
    the same run with its YAML (the sum's bucket said), in JSON."""
    alone = shutil.copy(objs["gen_exporter_hist"], tmp_path)
    dev, name = disk()
    settings = {"target_tgid": os.getpid(), "disk_dev": dev}
    with Runner(alone, settings=settings) as r:
        fire(*VALUES)
        r.stop()
        reports = {report.name: report for report in r.maps()}
    values = reports["getpgid_value_seconds"]
    assert values.kind == "hist" and values.sum_slot == MAX_EXP2 + 1 and not values.labelled
    by_op = {key["op"]: slots for key, slots, _ in values.entries}
    # a dev_t in user space's encoding (as ebpf_exporter's MKDEV makes it) named as its disk
    shown = f"{os.major(dev)}:{os.minor(dev)}" + ("" if name.startswith("unknown:") else f" {name}")
    assert {key["dev"] for key, _, _ in values.entries} == {shown}
    for parity in (0, 1):
        mine = [v for v in VALUES if v & 1 == parity]
        expected = [sum(1 for v in mine if exp2_bucket(v) == b) for b in range(MAX_EXP2 + 1)] + [sum(mine)]
        assert by_op[parity] == expected
    # a per-CPU array's last element is its sum (the exporter sizes them bucket_max + 2)
    ((_, zero, _),) = reports["getpgid_zero"].entries
    assert reports["getpgid_zero"].sum_slot == MAX_ZERO + 1 and zero[MAX_ZERO + 1] == sum(VALUES)

    from pyrunq.cli.run import JsonPrinter

    # with its YAML, and a unit named for one histogram: the object's own numbers, unscaled
    units = {"getpgid_zero": "ticks"}
    with Runner(objs["gen_exporter_hist"], settings=settings, units=units) as r:
        fire(*VALUES)
        r.stop()
        reports = {report.name: report for report in r.maps()}
        text = io.StringIO()
        JsonPrinter(text).maps(list(reports.values()))
    assert (reports["getpgid_zero"].unit, reports["getpgid_zero"].scale) == ("ticks", 1.0)
    assert (reports["getpgid_value_seconds"].unit, reports["getpgid_value_seconds"].scale) == ("usecs", 1.0)
    docs = {d["map"]: d for d in map(json.loads, text.getvalue().splitlines())}
    (even, _) = sorted(docs["getpgid_value_seconds"]["histograms"], key=lambda h: h["key"]["operation"])
    assert (even["count"], even["sum"], even["le"][:3]) == (
        6,
        70_000_000 + 200_000_000 + 1102,
        [1e-6, 2e-6, 4e-6],
    )
    assert docs["syscalls_total"]["help"] == "System calls of the target process by name"


@pytest.mark.slow
def test_a_yaml_that_does_not_fit_is_one_line_before_load(kernel, objs, tmp_path):
    alone = shutil.copy(objs["gen_exporter_hist"], tmp_path)
    bad = tmp_path / "gen_exporter_hist.yaml"
    bad.write_text("metrics:\n  counters:\n    - name: no_such_map\n      help: x\n")
    with pytest.raises(
        ConfigError, match=r"beside the object\): counter no_such_map: gen_exporter_hi\w* has no "
    ):
        Runner(alone)
    with Runner(alone, config=None) as r:  # told not to read it
        assert r.metrics.config is None
    other = tmp_path / "other.yaml"
    other.write_text("metrics: {counters: [")
    done = cli.run("run", alone, "--config", str(other))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"pyrunq run: error: --config {other}: not valid YAML (line 1, column 22)")
    assert len(done.stderr.splitlines()) == 1
