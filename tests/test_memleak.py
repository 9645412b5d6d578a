"""memleak on the real kernel: tests/progs/leaker.c allocates known blocks
from known stacks, holds them, then frees them; the outstanding bytes by
stack must follow, through the Python class, the bcc text and JSON."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from pyrunq.tools.memleak import MemLeak
import cli
from cli import assert_usage_error, missing_pid
from needs import skip_or_fail
from userprogs import Waiting
from waiting import wait_for

# The leaker without address randomization: its stacks, and so the buckets
# they hash to in the kernel's stack map, are the same in every run. With
# random addresses two of its stacks shared a bucket now and then (the
# kernel's -EEXIST, counted as a hash collision), and a stack went missing.
FIXED_ADDRESSES = ("setarch", "-R")

# alloc_others: calloc(4, 250), realloc(malloc(100), 3000), posix_memalign
# 2000, aligned_alloc 4096: one block each, from its own call site
OTHERS = [(1000, 1), (2000, 1), (3000, 1), (4096, 1)]


def by_function(stacks) -> dict[str, list[tuple[int, int]]]:
    """Outstanding (bytes, allocations) by the function that allocated."""
    out: dict[str, list] = {}
    for s in stacks:
        out.setdefault(s.frames[0].name if s.frames else None, []).append((s.bytes, s.allocations))
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_outstanding_by_allocating_stack_then_none(kernel, leaker):
    with Waiting(*FIXED_ADDRESSES, leaker) as lk, MemLeak(lk.pid) as ml:
        assert lk.go() == "allocated\n"
        held = ml.outstanding()
        assert lk.go() == "freed\n"
        after = ml.outstanding()
        stats = ml.stats()
        lk.go(reply=False)
        lk.finish()
    blocks = [s for s in held if s.frames and s.frames[0].name == "alloc_blocks"]
    assert [(s.bytes, s.allocations) for s in blocks] == [(20000, 20)]
    assert held[0] == blocks[0]  # the most bytes first
    frames = blocks[0].frames
    assert [f.name for f in frames[:2]] == ["alloc_blocks", "main"]
    assert {f.module for f in frames[:2]} == {os.path.realpath(leaker)}
    assert frames[0].offset > 0  # a return address inside alloc_blocks
    # realloc's 100-byte block was freed by the realloc itself
    assert by_function(held)["alloc_others"] == OTHERS
    assert set(by_function(held)) == {"alloc_blocks", "alloc_others"}
    assert after == []
    assert stats == {"stack_collisions": 0, "stack_errors": 0, "allocs_full": 0, "pending_full": 0}


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_top_and_min_age(kernel, leaker):
    with Waiting(*FIXED_ADDRESSES, leaker) as lk, MemLeak(lk.pid) as ml:
        lk.go()
        top = ml.outstanding(top=2)
        young = ml.outstanding(min_age_ns=3600 * 10**9)
        lk.go()
        lk.go(reply=False)
        lk.finish()
    assert [(s.bytes, s.frames[0].name) for s in top] == [(20000, "alloc_blocks"), (4096, "alloc_others")]
    assert young == []  # nothing is an hour old


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_full_allocs_map_is_counted(kernel, leaker):
    with Waiting(*FIXED_ADDRESSES, leaker) as lk, MemLeak(lk.pid, max_allocs=5) as ml:
        lk.go()
        held = ml.outstanding()
        stats = ml.stats()
        lk.go()
        lk.go(reply=False)
        lk.finish()
    tracked = sum(s.allocations for s in held)
    assert tracked == 5
    assert stats["allocs_full"] == 20 + len(OTHERS) + 1 - tracked  # +1: the malloc(100)


REPORT = re.compile(r"\[\d\d:\d\d:\d\d\] Top 10 stacks with outstanding allocations:")
STACK = re.compile(r"\t(\d+) bytes in (\d+) allocations from stack")
FRAME = re.compile(r"\t\t0x[0-9a-f]{16}\t(\S+)(?: \[(\S+)\])?")


def reports(lines: list[str]) -> list[list[str]]:
    """The reports in these lines of the CLI's (after its first), each as its
    list of lines (header first); only those complete: the next one began."""
    out: list[list[str]] = []
    for line in lines[1:]:
        if REPORT.fullmatch(line):
            out.append([])
        assert out, f"not a report: {line!r}"
        out[-1].append(line)
    return out[:-1]


def next_report(p, after: int, wanted) -> tuple[int, list]:
    """The first report after the ``after`` first ones whose stacks are
    ``wanted(stacks)``: (how many came up to it, its stacks)."""

    def found():
        done = reports(list(p.out))
        return next(((i + 1, parse(r)) for i, r in enumerate(done) if i >= after and wanted(parse(r))), None)

    return wait_for(found, seen=p.text)


def parse(report: list[str]) -> list[tuple[int, int, list[tuple[str, str]]]]:
    """(bytes, allocations, [(symbol+offset, module)]) per stack."""
    out = []
    for line in report[1:]:
        m = STACK.fullmatch(line)
        if m:
            out.append((int(m[1]), int(m[2]), []))
            continue
        m = FRAME.fullmatch(line)
        assert m and out, f"not a frame line: {line!r}"
        out[-1][2].append((m[1], m[2]))
    return out


@pytest.mark.slow  # seconds of intervals: out of the quick loop
def test_cli_text_as_bcc(kernel, leaker):
    with Waiting(*FIXED_ADDRESSES, leaker) as lk:
        with cli.spawn("memleak", "-p", str(lk.pid), "-o", "0", "1") as p:
            p.wait_line("^Attaching ")
            assert p.out[0] == f"Attaching to pid {lk.pid}, Ctrl+C to quit."
            assert lk.go() == "allocated\n"
            # reports come every second: wait for one made after the mallocs
            seen, held = next_report(p, 0, lambda stacks: len(stacks) == 5)
            assert lk.go() == "freed\n"
            next_report(p, seen, lambda stacks: stacks == [])
            rc, _, err = p.finish(signal.SIGINT)
        assert rc == 0, err
        lk.go(reply=False)
        lk.finish()
    # as bcc: the most bytes last
    assert [(b, n) for b, n, _ in held] == OTHERS + [(20000, 20)]
    frames = held[-1][2]
    assert re.fullmatch(r"alloc_blocks\+0x[0-9a-f]+", frames[0][0]) and frames[0][1] == "leaker"
    assert re.fullmatch(r"main\+0x[0-9a-f]+", frames[1][0]) and frames[1][1] == "leaker"
    assert all(f[0].startswith("alloc_others+0x") for _, _, (f, *_) in held[:-1])
    assert err == ""


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_cli_json(kernel, leaker):
    with Waiting(*FIXED_ADDRESSES, leaker) as lk:
        with cli.spawn("memleak", "--json", "-p", str(lk.pid), "-o", "0", "-T", "1", "1") as p:
            p.wait_line("^Attaching ", stream="err")
            assert p.err[0] == f"Attaching to pid {lk.pid}, Ctrl+C to quit."
            assert lk.go() == "allocated\n"
            doc = wait_for(lambda: next((d for d in map(json.loads, list(p.out)) if d["stacks"]), None))
            rc, _, err = p.finish(signal.SIGINT)
        assert rc == 0, err
        lk.go()
        lk.go(reply=False)
        lk.finish()
    assert doc["pid"] == lk.pid and len(doc["stacks"]) == 1  # -T 1
    stack = doc["stacks"][0]
    assert (stack["bytes"], stack["allocations"]) == (20000, 20)
    assert [f["symbol"] for f in stack["frames"][:2]] == ["alloc_blocks", "main"]
    assert stack["frames"][0]["module"] == os.path.realpath(leaker)
    assert doc["lost"] == {"stack_collisions": 0, "stack_errors": 0, "allocs_full": 0, "pending_full": 0}


@pytest.mark.slow  # seconds of intervals: out of the quick loop
def test_count_ends_by_itself(kernel, leaker):
    with Waiting(*FIXED_ADDRESSES, leaker) as lk:
        out = cli.run("memleak", "-p", str(lk.pid), "1", "2")
        lk.go()
        lk.go()
        lk.go(reply=False)
        lk.finish()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"Attaching to pid {lk.pid}, Ctrl+C to quit."
    assert len(lines) == 3 and all(REPORT.fullmatch(line) for line in lines[1:])


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "the following arguments are required: -p/--pid"),
        (["5"], "the following arguments are required: -p/--pid"),
        (["-p", "MISSING"], "no process with PID"),
        (["-p", "0"], "must be positive"),
        (["-p", "abc"], "invalid integer"),
        (["-p", "1", "0"], "must be positive"),
        (["-p", "1", "5", "0"], "must be positive"),
        (["-p", "1", "-T", "0"], "must be positive"),
    ],
)
def test_bad_input_one_line_exit_2(args, message):
    assert_usage_error("memleak", [a.replace("MISSING", str(missing_pid())) for a in args], message)


def test_static_binary_is_a_usage_error(kernel, tmp_path):
    src = tmp_path / "static.c"
    src.write_text("#include <unistd.h>\nint main(void) { pause(); return 0; }\n")
    exe = tmp_path / "static"
    if subprocess.run(["gcc", "-static", "-o", str(exe), str(src)]).returncode != 0:
        skip_or_fail("no static libc to link with (libc6-dev has it)")
    proc = subprocess.Popen([str(exe)])
    try:
        out = cli.run("memleak", "-p", str(proc.pid))
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode == 2
    assert out.stderr == f"pyrunq memleak: error: process {proc.pid} maps no libc (statically linked?)\n"


@pytest.mark.slow  # a second's interval: out of the quick loop
def test_cli_folded_and_flame_graph_weigh_bytes(kernel, leaker, tmp_path):
    """Every stack (not only -T's top), weighed by its outstanding bytes,
    folded once at the end; the flame graph of the same."""
    svg = tmp_path / "leaks.svg"
    with Waiting(*FIXED_ADDRESSES, leaker) as lk:
        with cli.spawn(
            "memleak", "-p", str(lk.pid), "-o", "0", "-T", "1", "--folded", "--flamegraph", str(svg), "1", "1"
        ) as p:
            p.wait_line("^Attaching ", stream="err")
            assert lk.go() == "allocated\n"
            rc, out, err = p.finish()
        lk.go()
        lk.go(reply=False)
        lk.finish()
    assert rc == 0, err
    folded = {stack: int(n) for stack, n in (line.rsplit(" ", 1) for line in out.splitlines())}
    assert sum(folded.values()) == 20000 + 1000 + 3000 + 2000 + 4096  # leaker.c's outstanding bytes
    (blocks,) = [s for s in folded if s.endswith(";main;alloc_blocks")]
    assert folded[blocks] == 20000
    assert f'data-total="{sum(folded.values())}" data-unit="bytes"' in svg.read_text()
