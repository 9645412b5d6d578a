"""cpudist on the real kernel: runs of known length, the C tool on the same
runs, its filters and keys (inside a container too), its command line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import shlex
import sys

import pytest

from pyrunq.hist import Histogram, bucket_of
from pyrunq.tools.cpudist import CpuDist, Key
import cli
from boxes import run_boxed
from cli import assert_usage_error
from needs import need, skip_or_fail
from waiting import Command, gather
from workload import BUSY, SLICER_COMM, busy_loops, slicer

SLICE_MS = 5
# the middle of the fine bucket a 5 ms slice falls in (4096..5119 us): a run
# or a sleep this long stays in it with 0.5 ms to spare either way, for what
# the VM adds to it (interrupts, the host's own scheduling)
MIDDLE_S = 4.6e-3
C_CPUDIST = "/usr/sbin/cpudist"
ROW = r" *(\d+) -> (\d+) +: (\d+) +\|"


def near_slice(h: Histogram) -> int:
    """Runs of 4096..5119 us: the fine bucket a 5 ms slice falls in."""
    return h.buckets[bucket_of(SLICE_MS * 1000)]


@pytest.mark.slow  # half a second of slices per flavour
@pytest.mark.parametrize("flavour", ["tp_btf", "raw_tp"])
def test_five_ms_slices_run_five_ms_and_sleep_five_ms(kernel, monkeypatch, flavour):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    with slicer(cpu=1, run=MIDDLE_S, sleep=MIDDLE_S) as w:
        tid = w.procs[0].pid
        key = Key("tid", tid, SLICER_COMM)
        with CpuDist(per="tid", pids=[tid]) as on, CpuDist(offcpu=True, per="tid", pids=[tid]) as off:
            assert on.raw_tp == off.raw_tp == (flavour == "raw_tp")
            runs = gather(
                lambda: on.snapshot(clear=False).get(key, Histogram.empty()), lambda h: h.total >= 40
            )
            rests = off.snapshot().get(key, Histogram.empty())
    # an RT task no normal task can cut short: nearly every run is the slice
    assert near_slice(runs) * 10 >= runs.total * 9, runs.render()
    # and nearly every stay off the CPU the sleep (no timer slack for RT)
    assert rests.total >= 30 and near_slice(rests) * 10 >= rests.total * 9, rests.render()
    assert 4096 <= runs.percentile(50) <= 5119


@pytest.mark.slow  # seconds: the C tool's own interval
@pytest.mark.external
@pytest.mark.parametrize("offcpu", [False, True], ids=["on-cpu", "off-cpu"])
def test_counts_and_distribution_agree_with_libbpf_tools(kernel, offcpu):
    """The same runs in the same seconds. On-CPU: two busy loops sharing a
    CPU, whose every run ends in a preemption (the C tool counts only those).
    Off-CPU: a task sleeping 5 ms at a time."""
    workload = slicer(cpu=1, run=0.001, sleep=SLICE_MS / 1000) if offcpu else busy_loops(cpu=1, n=2)
    with workload as w, CpuDist(offcpu=offcpu, pids=[w.procs[0].pid]) as ours:
        # line-buffered: its banner says when it is attached, not at its exit
        argv = [need("stdbuf"), "-oL", need(C_CPUDIST), *(["-O"] if offcpu else [])]
        argv += ["-p", str(w.procs[0].pid), "1", "1"]
        with Command(argv) as c:
            c.wait_line("^Tracing")  # attached: our window starts here too
            ours.snapshot()
            rc, out, err = c.finish()
            theirs_done = ours.snapshot()
    if rc != 0:
        skip_or_fail(f"{C_CPUDIST} failed ({rc}): {err}")
    theirs = parse_c(out)
    mine = theirs_done.get(None, Histogram.empty()).slots
    total = sum(theirs)
    assert total >= 100, out
    # the windows differ at each end by what the banner takes to reach us
    # (wait_line polls every 50 ms) and the C tool's exit: at most a tenth
    # of its one second, so a tenth of its runs
    margin = max(5, total // 10)
    assert abs(sum(mine) - total) <= margin, (mine, theirs)
    for a, b in zip(mine, theirs):
        assert abs(a - b) <= margin, (mine, theirs)


def parse_c(out: str) -> list[int]:
    import re

    slots = [0] * 26
    for m in re.finditer(ROW, out):
        slots[max(int(m.group(1)).bit_length() - 1, 0)] = int(m.group(3))
    return slots


@pytest.mark.slow  # a second of runs
def test_cgroup_filter_and_per_cgroup_keys(kernel, cgroup_tree):
    with busy_loops(cpu=1, n=2) as w:
        path = cgroup_tree("a", w.procs[0])
        with CpuDist(per="cgroup", cgroup=cgroup_tree.parent) as cd:
            seen = gather(lambda: cd.snapshot(clear=False), lambda s: sum(h.total for h in s.values()) >= 20)
    assert [k.name for k in seen] == [path]


def test_cli_bad_input_one_line_exit_2():
    for args, message in [
        (["0"], "must be positive"),
        (["-P", "-L"], "not allowed with argument"),
        (["-p", "1,x"], "invalid PID list"),
        (["-c", "/tmp"], "not a cgroup v2 directory"),
        (["--bogus"], "unrecognized arguments"),
    ]:
        assert_usage_error("cpudist", args, message)


@pytest.mark.slow  # two one-second intervals
def test_cli_per_thread_intervals_end_and_json(kernel, tmp_path):
    """-L with an interval prints that many intervals and ends (bcc #4148);
    --heatmap draws the JSON's counts."""
    svg = tmp_path / "offcpu.svg"
    with busy_loops(cpu=1, n=2) as w:
        pid = w.procs[0].pid
        with (
            cli.spawn("cpudist", "-L", "-m", "-p", str(pid), "1", "2") as text,
            cli.spawn(
                "cpudist", "--json", "-O", "-P", "-p", str(pid), "--heatmap", str(svg), "1", "1"
            ) as docs,
        ):
            (rc, out, err), (jrc, jout, jerr) = text.finish(), docs.finish()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "Tracing on-CPU time... Hit Ctrl-C to end."
    assert lines.count(f"tid = {pid} pyrunq-busy") == 2
    assert lines.count("     msecs               : count    distribution") == 2
    assert jrc == 0, jerr
    (doc,) = [json.loads(line) for line in jout.splitlines()]
    assert doc["key"] == {"kind": "pid", "id": pid, "comm": "pyrunq-busy"} and doc["total"] > 0
    assert jerr == "Tracing off-CPU time... Hit Ctrl-C to end.\n"
    root = ET.parse(svg).getroot()
    assert "Off-CPU time per sleep, per process" in ET.tostring(root, encoding="unicode")
    assert root.get("data-what") == "sleep"  # hover: "N sleeps", not waits
    (panel,) = [
        g
        for g in root.iter("{http://www.w3.org/2000/svg}g")
        if g.get("data-label") == f"pid = {pid} pyrunq-busy"
    ]
    assert sum(int(c.get("data-n")) for c in panel.iter() if c.get("class") == "c") == doc["total"]


@pytest.mark.slow  # a container, a second of tracing
@pytest.mark.external
def test_pids_are_the_containers_inside_a_container(kernel):
    """pyrunq in a podman container (its own PID namespace) takes and shows
    the PIDs it sees there, not the host's (bcc #5101)."""
    script = (
        f"{sys.executable} -c {shlex.quote(BUSY.format(comm='boxed'))} & "
        f"exec {sys.executable} -m pyrunq cpudist -L -p $! 1 1"
    )
    done = run_boxed(script)
    assert done.returncode == 0, done.stderr
    headings = [line for line in done.stdout.splitlines() if line.startswith("tid = ")]
    # sh is the container's PID 1 (exec'd into pyrunq), the busy loop 2 or so
    assert len(headings) == 1 and headings[0].endswith(" boxed"), done.stdout
    assert int(headings[0].split()[2]) < 10, done.stdout
