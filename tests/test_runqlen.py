"""runqlen on the real kernel: the CPU's run queue, whatever the task groups
of the tasks on it; its text and command line. libbpf-tools' runqlen no
longer loads on 6.13+ (struct cfs_rq has no nr_running): runqlen is held to
known answers instead."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from pyrunq.cli.runqlen import text
from pyrunq.hist import render_linear
from pyrunq.tools.runqlen import QueueLengths, RunqLen
import cli
from cli import assert_usage_error
from waiting import gather
from workload import busy_loops

CPU, N = 1, 3  # N busy loops on CPU: at least N - 1 wait whenever one of them runs


def cpu_groups(procs):
    """Each process in a task group of its own (a cpu controller cgroup, v1
    or v2), so that no task group's queue holds more than one of them."""
    with open("/proc/self/mounts") as f:
        mounts = [line.split() for line in f]
    v1 = [m[1] for m in mounts if m[2] == "cgroup" and "cpu" in m[3].split(",")]
    if v1:
        root = v1[0]
    else:
        root = next(m[1] for m in mounts if m[2] == "cgroup2")
        with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
            f.write("+cpu")
    parent = os.path.join(root, f"pyrunq-test-{uuid.uuid4().hex[:8]}")
    made = []
    for p in procs:
        path = os.path.join(parent, str(p.pid))
        os.makedirs(path)
        made.append(path)
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(p.pid))
    return parent, made


def remove_groups(parent, made):
    for path in made:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = f.read().split()
        for pid in pids:
            with open(os.path.join(os.path.dirname(parent), "cgroup.procs"), "w") as f:
                f.write(pid)
        os.rmdir(path)
    os.rmdir(parent)


@pytest.mark.slow  # half a second of samples
def test_busy_loops_in_separate_task_groups_queue_on_the_cpu(kernel):
    """N busy loops on one CPU, each in its own task group: whenever one of
    them runs, the other N - 1 wait on that CPU's run queue (others' tasks
    can only add to it). A task group's queue would hold one, the one
    running: 0 waiting (bcc #4409)."""
    with busy_loops(CPU, N) as w:
        parent, made = cpu_groups(w.procs)
        try:
            with RunqLen(frequency=499) as rl:
                rl.snapshot()
                q = gather(lambda: rl.snapshot(clear=False)[CPU], lambda q: q.samples >= 200)
        finally:
            remove_groups(parent, made)
    short = sum(q.counts[: N - 1])
    assert short * 20 <= q.samples, q.counts  # at most 5%: while none of ours ran
    assert q.occupancy >= 0.95


def test_render_linear_like_trace_helpers():
    assert render_linear([0, 0], "runqlen") == ""
    assert render_linear([3, 0, 6, 0, 0, 1] + [0] * 26, "runqlen") == (
        "     runqlen       : count     distribution\n"
        "        0          : 3        |********************                    |\n"
        "        2          : 6        |****************************************|\n"
        "        5          : 1        |******                                  |\n"
    )


def test_text_per_cpu_and_occupancy():
    snap = {0: QueueLengths((1, 1) + (0,) * 30), 1: QueueLengths((0, 2) + (0,) * 30)}
    assert text(snap, per_cpu=False, occupancy=True, timestamp=False) == "\nrunqocc: 75.00%\n"
    assert text(snap, per_cpu=True, occupancy=True, timestamp=False) == (
        "\nrunqocc, CPU 0    50.00%\nrunqocc, CPU 1   100.00%\n"
    )
    per_cpu = text(snap, per_cpu=True, occupancy=False, timestamp=False)
    assert per_cpu.startswith("\ncpu = 0\n     runqlen       : count     distribution\n")
    assert "\ncpu = 1\n" in per_cpu


@pytest.mark.slow  # a second of samples
def test_cli_occupancy_per_cpu_and_json(kernel):
    with busy_loops(CPU, N), cli.spawn("runqlen", "-O", "-C", "-f", "199", "1", "1") as occ:
        with cli.spawn("runqlen", "--json", "-C", "1", "1") as docs:  # the same second, or nearly
            (rc, out, err), (jrc, jout, jerr) = occ.finish(), docs.finish()
    assert rc == 0 and jrc == 0, err + jerr
    lines = out.splitlines()
    assert lines[:2] == ["Sampling run queue length... Hit Ctrl-C to end.", ""]
    row = next(line for line in lines if line.startswith(f"runqocc, CPU {CPU:<3d}"))
    assert float(row.split()[-1].rstrip("%")) >= 95.0, out
    by_cpu = {d["cpu"]: d for d in map(json.loads, jout.splitlines())}
    # at least N - 1 waiting in 95% of the samples
    assert by_cpu[CPU]["samples"] > 0 and by_cpu[CPU]["mean"] >= 0.95 * (N - 1), jout


def test_cli_bad_input_one_line_exit_2():
    for args, message in [(["-f", "0"], "must be positive"), (["1", "x"], "invalid integer")]:
        assert_usage_error("runqlen", args, message)
