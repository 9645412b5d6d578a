"""offwaketime on the real kernel: a known block woken by a known waker,
timer wakeups named for the interrupt and not for the task it interrupted,
the command line."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from pyrunq.folded import KERNEL_SUFFIX
from pyrunq.tools.offwaketime import OffWakeTime
import cli
from cli import assert_usage_error
from userprogs import Waiting
from waiting import gather
from workload import VICTIM_COMM, victim

USER = ["blocked_in_read", "waits_for_a_byte", "main"]  # leaf first
BLOCK_S = 0.2


def wake_after_block(prog: Waiting) -> None:
    """The blocker blocks (about BLOCK_S), then this thread wakes it."""
    assert prog.go() == "blocking\n"
    time.sleep(BLOCK_S)  # the workload: how long it stays blocked
    prog.proc.stdin.write("x")
    prog.proc.stdin.flush()  # the write that wakes it, from this thread
    assert prog.proc.stdout.readline() == "unblocked\n"


@pytest.mark.slow  # a fifth of a second blocked per flavour
@pytest.mark.parametrize("flavour", ["tp_btf", "raw_tp"])
def test_the_waker_of_a_known_block(kernel, blocker, monkeypatch, flavour):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    with Waiting(blocker) as prog, OffWakeTime(pids=[prog.pid], min_block_us=1000) as ow:
        assert ow.raw_tp == (flavour == "raw_tp")
        wake_after_block(prog)
        (s,) = [s for s in ow.stacks() if s.target.user and [f.name for f in s.target.user[:3]] == USER]
        (folded,) = list(ow.folded([s]))
    w = s.waker
    assert (w.pid, w.tid, w.context) == (os.getpid(), os.getpid(), None)  # this process's main thread
    kernel = [f.name for f in w.kernel]
    assert kernel[0] == "try_to_wake_up" and any(n.endswith("pipe_write") for n in kernel), kernel
    assert s.target.count == 1 and s.total_us >= (BLOCK_S - 0.05) * 1e6
    frames, weight = folded
    assert frames[0] == "blocker" and frames[-1] == w.comm and weight == s.total_us
    middle = frames.index("--")
    assert (
        frames[middle - 1] == "__schedule" + KERNEL_SUFFIX
        and frames[middle + 1] == "try_to_wake_up" + KERNEL_SUFFIX
    )


@pytest.mark.slow  # a hundred timer wakeups
def test_timer_wakeups_blame_the_interrupt_not_the_interrupted_task(kernel):
    """A task sleeping 1 ms at a time is woken by the timer interrupt, on
    top of whatever ran: named "[irq]" (or "[softirq]" where timers expire
    in softirq, PREEMPT_RT), never for that task (bcc #1679)."""
    sleeper = victim(cpu=1)
    try:
        with OffWakeTime(pids=[sleeper.pid], min_block_us=500) as ow:

            def slept():
                return [
                    s for s in ow.stacks() if any(f.name == "do_nanosleep" for f in s.target.kernel or [])
                ]

            stacks = gather(slept, lambda stacks: sum(s.target.count for s in stacks) >= 100)
    finally:
        sleeper.kill()
        sleeper.wait()
        sleeper.stdout.close()
    assert {s.target.comm for s in stacks} == {VICTIM_COMM}
    for s in stacks:
        w = s.waker
        assert w.context in ("irq", "softirq") and (w.pid, w.comm, w.user) == (0, f"[{w.context}]", []), w


@pytest.mark.slow  # a second or two of tracing
def test_cli_text_folded_and_json(kernel, blocker):
    with Waiting(blocker) as prog:
        pid = str(prog.pid)
        with (
            cli.spawn("offwaketime", "-p", pid, "-m", "1000", "2") as text,
            cli.spawn("offwaketime", "-f", "-p", pid, "-m", "1000", "2") as folded,
            cli.spawn("offwaketime", "--json", "-K", "-p", pid, "-m", "1000", "2") as docs,
        ):
            text.wait_line("^Tracing blocked time")
            folded.wait_line("^Tracing blocked time", stream="err")
            docs.wait_line("^Tracing blocked time", stream="err")
            wake_after_block(prog)
            (rc, out, err), (frc, fout, ferr), (jrc, jout, jerr) = (
                text.finish(),
                folded.finish(),
                docs.finish(),
            )
    assert rc == frc == jrc == 0, err + ferr + jerr
    assert out.startswith("Tracing blocked time (us) by user + kernel off-CPU and waker stack for 2 secs.\n")
    block = next(b for b in out.split("\n", 1)[1].split("\n\n") if "    blocked_in_read\n" in b)
    lines = block.splitlines()
    me = os.getpid()
    assert re.fullmatch(rf"    waker:           \S.* {me}", lines[0]), lines[0]
    assert lines.index("    try_to_wake_up") == lines.index("    --               --") - 1
    assert lines.index("    --               --") == lines.index("    __schedule") - 1
    assert lines[-2] == f"    target:          blocker {pid}" and re.fullmatch(r"        \d+", lines[-1])
    (line,) = [x for x in fout.splitlines() if ";main;waits_for_a_byte;blocked_in_read;" in x]
    assert line.startswith("blocker;") and ";--;try_to_wake_up_[k];" in line
    doc = next(d for d in map(json.loads, jout.splitlines()) if d["target"]["pid"] == prog.pid)
    assert doc["waker"]["pid"] == me and doc["waker"]["user"] is not None and doc["total_us"] >= 1000


def test_cli_bad_input_one_line_exit_2():
    for args, message in [
        (["-u", "-k"], "not allowed with argument"),
        (["-m", "9", "-M", "5"], "must be above"),
    ]:
        assert_usage_error("offwaketime", args, message)
