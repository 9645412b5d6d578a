"""offcputime on the real kernel: a process blocked in a known syscall
stack, the C tool on the same block, a containerised process's own
binary, the command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from pyrunq.folded import KERNEL_SUFFIX
from pyrunq.tools.offcputime import OffCpuTime
import cli
from boxes import ENV
from cli import assert_usage_error
from needs import need, skip_or_fail
from userprogs import Waiting
from waiting import NO_WAIT, wait_for

USER = ["blocked_in_read", "waits_for_a_byte", "main"]  # leaf first
BLOCK_S = 0.2
C_OFFCPUTIME = "/usr/sbin/offcputime"


class Blocked:
    """The blocker made to block for BLOCK_S once ``block()`` is called;
    ``low_us``/``high_us`` bound that block's length as seen from outside."""

    def __init__(self, prog: Waiting):
        self.prog = prog

    def block(self) -> None:
        start = time.monotonic()
        assert self.prog.go() == "blocking\n"  # printed just before it blocks
        time.sleep(BLOCK_S)  # the workload: how long it stays blocked
        self.prog.proc.stdin.write("x")
        self.prog.proc.stdin.flush()
        assert self.prog.proc.stdout.readline() == "unblocked\n"
        # from the "blocking" line to the read is a few instructions: 50 ms
        # spares a loaded machine; it cannot have blocked before "go"
        self.low_us, self.high_us = (BLOCK_S - 0.05) * 1e6, (time.monotonic() - start) * 1e6


def the_block(stacks, pid: int):
    """The one stack of ``pid`` that slept in the blocker's read. The same
    user frames may come with other spells off the CPU in that system call
    (a preemption, the pipe's mutex after the wake-up: seen once in CI, in
    a container), each with a kernel stack of its own."""
    (s,) = [
        s
        for s in stacks
        if s.pid == pid
        and [f.name for f in s.user[:3]] == USER
        and slept_in_pipe_read([f.name for f in s.kernel])
    ]
    return s


def slept_in_pipe_read(kernel: list[str]) -> bool:
    """Whether a kernel stack (leaf first) is a sleep called from pipe_read
    (anon_pipe_read since 6.16), not one of the locks it takes."""
    caller = kernel[kernel.index("schedule") + 1 :][:1] if "schedule" in kernel else []
    return caller in (["pipe_read"], ["anon_pipe_read"])


@pytest.mark.slow  # a fifth of a second blocked per flavour
@pytest.mark.parametrize("flavour", ["tp_btf", "raw_tp"])
def test_blocked_in_a_known_syscall_stack(kernel, blocker, monkeypatch, flavour):
    monkeypatch.setenv("PYRUNQ_RAW_TP", "1" if flavour == "raw_tp" else "0")
    with Waiting(blocker) as prog, OffCpuTime(pids=[prog.pid], min_block_us=1000) as oc:
        assert oc.raw_tp == (flavour == "raw_tp")
        b = Blocked(prog)
        b.block()
        s = the_block(oc.stacks(), prog.pid)
        folded = list(oc.folded([s]))
    assert s.tid == prog.pid and s.comm == "blocker" and s.count == 1
    kernel = [f.name for f in s.kernel]
    assert any(n.endswith("pipe_read") for n in kernel) and "ksys_read" in kernel, kernel
    assert kernel[0] == "__schedule" and not any(n.startswith("bpf_") for n in kernel), kernel
    assert b.low_us <= s.total_us <= b.high_us, (b.low_us, s.total_us, b.high_us)
    # folded: the comm, user frames root to leaf, kernel frames marked
    ((frames, weight),) = folded
    assert frames[0] == "blocker" and frames[1 + frames[1:].index("main") :][:3] == USER[::-1]
    assert frames[-1] == "__schedule" + KERNEL_SUFFIX and weight == s.total_us


@pytest.mark.slow  # the C tool's own second
@pytest.mark.external
def test_the_same_block_as_libbpf_tools(kernel, blocker):
    """Both tools on the same block, in the same seconds: the same stacks
    (theirs with the tracing frames on top), the same microseconds."""
    with Waiting(blocker) as prog, OffCpuTime(pids=[prog.pid]) as oc:
        c = subprocess.Popen(
            [need(C_OFFCPUTIME), "-p", str(prog.pid), "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(
                lambda: holds_bpf_link(c.pid) or c.poll() is not None,
                seen=lambda: "no bpf_link in the C tool",
            )
            Blocked(prog).block()
            out, err = c.communicate(timeout=NO_WAIT)
        finally:
            c.kill()
        ours = the_block(oc.stacks(), prog.pid)
    if c.returncode != 0:
        skip_or_fail(f"{C_OFFCPUTIME} failed ({c.returncode}): {err}")
    theirs = [
        lines
        for lines in ([line.strip() for line in block.splitlines()] for block in out.split("\n\n"))
        if "blocked_in_read" in lines and slept_in_pipe_read(lines)
    ]
    assert len(theirs) == 1, out
    lines = theirs[0]
    value, who = int(lines[-1]), lines[-2]
    frames = [
        name for name in lines[:-2] if not name.startswith(("bpf_prog_", "bpf_trace_run", "__traceiter_"))
    ]
    assert who == f"- blocker ({prog.pid})".replace("- ", "-                ")
    # up to main: below it, libc's static functions, which each names its own way
    mine = [f.name for f in ours.kernel] + [str(f) for f in ours.user]
    assert frames[: frames.index("main") + 1] == mine[: mine.index("main") + 1], (frames, mine)
    # the same two switches, each seen by both programs one after the other:
    # microseconds apart, unless the host stops this VM's CPU between the two
    # (215 us once in CI): 1% of the block, 2 ms, is allowed
    assert abs(value - ours.total_us) <= BLOCK_S * 1e6 / 100, (value, ours.total_us)


def holds_bpf_link(pid: int) -> bool:
    """Whether process ``pid`` holds a BPF link: it has attached."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf_link":
                return True
        except OSError:
            pass
    return False


@pytest.mark.slow  # a container
@pytest.mark.external
def test_names_a_containerised_binarys_functions(kernel, blocker, monkeypatch):
    """The blocker runs in a podman container from a path that exists only
    there: its functions are named from the file in the container's mount
    namespace (through /proc/PID/root), with its host PID (bcc #4854)."""
    inside = f"/opt/pyrunq-{os.getpid()}-blocker"
    assert not os.path.exists(inside)
    monkeypatch.setenv("CONTAINERS_CONF", ENV["CONTAINERS_CONF"])
    argv = [need("podman"), "run", "--rm", "-i", "--privileged", "--rootfs", "/:O", "sh", "-c"]
    box = Waiting(*argv, f"cp {blocker} {inside} && exec {inside}")
    with box:
        host_pid = wait_for(lambda: find_process(os.path.basename(inside)[:15]))
        with OffCpuTime(pids=[host_pid]) as oc:
            Blocked(box).block()
            s = the_block(oc.stacks(), host_pid)
        box.finish()
    assert s.user[0].module == inside and s.comm == os.path.basename(inside)[:15]
    assert s.cgroup != "/"  # the container's own cgroup


def find_process(comm: str) -> int | None:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    return int(pid)
        except OSError:
            pass
    return None


@pytest.mark.slow  # a second of tracing
def test_cli_text_folded_and_json(kernel, blocker, tmp_path):
    svg = tmp_path / "off.svg"
    with Waiting(blocker) as prog:
        pid = str(prog.pid)
        with (
            cli.spawn("offcputime", "-p", pid, "-m", "1000", "2") as text,
            cli.spawn("offcputime", "-f", "-p", pid, "-m", "1000", "--flamegraph", str(svg), "2") as folded,
            cli.spawn("offcputime", "--json", "-U", "-p", pid, "-m", "1000", "2") as docs,
        ):
            text.wait_line("^Tracing off-CPU time")
            folded.wait_line("^Tracing off-CPU time", stream="err")
            docs.wait_line("^Tracing off-CPU time", stream="err")
            Blocked(prog).block()
            (rc, out, err), (frc, fout, ferr), (jrc, jout, jerr) = (
                text.finish(),
                folded.finish(),
                docs.finish(),
            )
    assert rc == frc == jrc == 0, err + ferr + jerr
    assert out.startswith(f"Tracing off-CPU time (us) of PID {pid} by user + kernel stack for 2 secs.\n")
    block = next(b for b in out.split("\n", 1)[1].split("\n\n") if "    blocked_in_read\n" in b)
    lines = block.splitlines()
    assert lines[-2] == "    %-16s %s (%s)" % ("-", "blocker", pid) and re.fullmatch(
        r"        \d+", lines[-1]
    )
    assert lines.index("    blocked_in_read") == lines.index("    waits_for_a_byte") - 1
    (line,) = [x for x in fout.splitlines() if ";main;waits_for_a_byte;blocked_in_read;" in x]
    assert line.startswith("blocker;") and line.rsplit(" ", 1)[1].isdigit()
    picture = svg.read_text()  # the same stacks drawn (pyrunq.flamegraph's own tests check the drawing)
    assert picture.startswith("<?xml") and "blocked_in_read" in picture and "waits_for_a_byte" in picture
    docs = [json.loads(x) for x in jout.splitlines()]
    doc = next(d for d in docs if d["user"] and d["user"][0]["symbol"] == "blocked_in_read")
    assert doc["pid"] == prog.pid and doc["total_us"] >= BLOCK_S * 1e6 * 0.9


def test_cli_bad_input_one_line_exit_2():
    for args, message in [
        (["-u", "-k"], "not allowed with argument"),
        (["-m", "5", "-M", "5"], "must be above"),
        (["-c", "/tmp"], "not a cgroup v2 directory"),
    ]:
        assert_usage_error("offcputime", args, message)
