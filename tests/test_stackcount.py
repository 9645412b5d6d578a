"""stackcount on the real kernel: tests/progs/foobar.c calls main -> Bar ->
Foo a known number of times; the stacks at Foo's entry must say so, through
the Python class, the bcc text and JSON."""

from __future__ import annotations

import json
import os
import signal

import pytest

from pyrunq.tools.stackcount import StackCount
import cli
from cli import assert_usage_error, missing_pid
from userprogs import Waiting
from waiting import NO_WAIT, wait_for


def names(frames) -> list:
    return [f.name for f in frames]


def test_counts_foo_bar_main_of_one_process(kernel, foobar):
    with Waiting(foobar, "3", "0") as fb, StackCount(f"{foobar}:Foo", pid=fb.pid) as sc:
        fb.go(reply=False)
        fb.finish()
        stacks = sc.counts()
        assert [(s.pid, s.comm, s.count) for s in stacks] == [(fb.pid, "foobar", 3)]
        frames = stacks[0].frames
        assert names(frames)[:3] == ["Foo", "Bar", "main"]
        assert {f.module for f in frames[:3]} == {os.path.realpath(foobar)}
        assert frames[0].offset == 0  # the uprobe is at Foo's first instruction
        assert frames[1].offset > 0 and frames[2].offset > 0  # return addresses
        assert sc.stats() == {"stack_collisions": 0, "stack_errors": 0, "counts_full": 0}


def test_other_processes_not_counted_with_pid(kernel, foobar):
    with (
        Waiting(foobar, "2", "0") as other,
        Waiting(foobar, "1", "0") as fb,
        StackCount(f"{foobar}:Foo", pid=fb.pid) as sc,
    ):
        other.go(reply=False)
        other.finish()
        fb.go(reply=False)
        fb.finish()
        assert [(s.pid, s.count) for s in sc.counts()] == [(fb.pid, 1)]


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_every_process_each_symbolized_with_its_own_maps(kernel, foobar):
    # Foo sleeps 1 s per call: each process lives on after its first hit,
    # long enough for counts() to read its maps
    with Waiting(foobar, "2", "1") as a, Waiting(foobar, "1", "1") as b, StackCount(f"{foobar}:Foo") as sc:
        a.go(reply=False)
        b.go(reply=False)
        wait_for(lambda: len(sc.counts()) >= 2, timeout=NO_WAIT, every=0.02)
        a.finish()
        b.finish()
        stacks = sc.counts()
        assert [(s.pid, s.count) for s in stacks] == [(a.pid, 2), (b.pid, 1)]
        for s in stacks:
            assert names(s.frames)[:3] == ["Foo", "Bar", "main"]
        # ASLR: the same function, at different addresses in each process
        assert stacks[0].frames[0].address != stacks[1].frames[0].address


def test_process_gone_before_reading_keeps_frames_of_traced_file(kernel, foobar):
    with Waiting(foobar, "3", "0") as fb, StackCount(f"{foobar}:Foo") as sc:
        fb.go(reply=False)
        fb.finish()
        fb.proc.wait()  # reaped: its maps are gone for good
        stacks = sc.counts()
    assert [(s.pid, s.count) for s in stacks] == [(fb.pid, 3)]
    frames = stacks[0].frames
    assert names(frames)[:3] == ["Foo", "Bar", "main"]
    assert {f.module for f in frames[:3]} == {os.path.realpath(foobar)}
    assert all(f.name is None and f.module == "" for f in frames[3:])  # libc: unknowable


def test_stack_collisions_are_counted(kernel, leaker):
    # one stack slot: alloc_blocks' 20 mallocs take it, alloc_others' collides
    with Waiting(leaker) as lk, StackCount("c:malloc", pid=lk.pid, stack_entries=1) as sc:
        assert lk.go() == "allocated\n"
        stacks, stats = sc.counts(), sc.stats()
        assert lk.go() == "freed\n"
        lk.go(reply=False)
        lk.finish()
    # malloc does not start with push %rbp: the kernel cannot see its caller
    # at entry, so alloc_blocks is missing and the stacks differ in main
    assert [(names(s.frames)[:2], s.count) for s in stacks] == [(["malloc", "main"], 20)]
    assert stats["stack_collisions"] >= 1  # the malloc(100) of alloc_others


def run_cli(fb: Waiting, *args) -> tuple[str, str]:
    """Run pyrunq stackcount until fb has made its calls, then Ctrl-C it:
    (stdout, stderr). The banner is the first line of stdout (of stderr
    with --json)."""
    banner = "err" if "--json" in args else "out"
    with cli.spawn("stackcount", *args) as p:
        p.wait_line("^Tracing 1 functions for ", stream=banner)
        assert getattr(p, banner)[0].startswith("Tracing 1 functions for "), p.text()
        fb.go(reply=False)
        fb.finish()
        rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    return out, err


def test_cli_text_as_bcc(kernel, foobar):
    with Waiting(foobar, "3", "0") as fb:
        out, err = run_cli(fb, "-p", str(fb.pid), f"{foobar}:Foo")
    lines = out.splitlines()
    assert lines[0] == f'Tracing 1 functions for "{foobar}:Foo"... Hit Ctrl-C to end.'
    assert lines[1] == ""
    assert lines[2:5] == ["  Foo", "  Bar", "  main"]
    # frames below main (libc's start code), then the count: no comm line with -p
    assert all(line.startswith("  ") and not line.startswith("    ") for line in lines[5:-3])
    assert lines[-3:] == ["    3", "", "Detaching..."]
    assert err == ""


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_cli_text_offsets_and_comm_for_every_process(kernel, foobar):
    with Waiting(foobar, "2", "1") as fb:
        out, _ = run_cli(fb, "-s", f"{foobar}:Foo")
    lines = out.splitlines()
    assert lines[2] == "  Foo+0x0"
    assert lines[3].startswith("  Bar+0x") and lines[4].startswith("  main+0x")
    assert lines[-4:] == [f"    foobar [{fb.pid}]", "    2", "", "Detaching..."]


def test_cli_json(kernel, foobar):
    with Waiting(foobar, "3", "0") as fb:
        out, err = run_cli(fb, "--json", "-p", str(fb.pid), "Foo")  # bare name, found in PID
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 1
    doc = docs[0]
    assert (doc["pid"], doc["comm"], doc["count"]) == (fb.pid, "foobar", 3)
    assert [f["symbol"] for f in doc["frames"][:3]] == ["Foo", "Bar", "main"]
    top = doc["frames"][0]
    assert top["offset"] == 0 and top["module"] == os.path.realpath(foobar)
    assert isinstance(top["address"], int) and top["address"] > 0


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_cli_duration_ends_by_itself(kernel, foobar):
    out = cli.run("stackcount", f"{foobar}:Foo", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-2:] == ["", "Detaching..."]


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/binary:Foo"], "/no/such/binary: no such file"),
        (["FOOBAR:NoSuchFunction"], "no function 'NoSuchFunction' in"),
        (["-p", "MISSING", "FOOBAR:Foo"], "no process with PID"),
        (["-p", "MISSING", "Foo"], "no process with PID"),
        (["Foo"], "give BINARY:FUNCTION, or -p PID"),
        (["FOOBAR:Foo", "0"], "must be positive"),
        (["-p", "0", "FOOBAR:Foo"], "must be positive"),
    ],
)
def test_bad_input_one_line_exit_2(foobar, args, message):
    assert_usage_error(
        "stackcount",
        [a.replace("FOOBAR", foobar).replace("MISSING", str(missing_pid())) for a in args],
        message,
    )
