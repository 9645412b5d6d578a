"""Stacks an object keeps, as `pyrunq run` names them (tools/generic/stacks.py):
stack ids into a STACK_TRACE map in a map's key (libbpf-tools' profile,
offcputime) and stacks inline in a record only DWARF describes
(libbpf-bootstrap's profile). tests/objects/gen_stacks.bpf.c counts each
getpgid() of this test process under both of its stacks."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pyrunq.tools.generic import Runner
import cli
from cli import run_and_fire
from testobjects import fire
from workload import BUSY, spawn

SPIN_COMM = "pyrunq-spin"

SYSCALL_ENTRY = {"x86_64": "do_syscall_64", "aarch64": "invoke_syscall"}[os.uname().machine]


def kernel_functions() -> set[str]:
    with open("/proc/kallsyms") as f:
        return {line.split()[2] for line in f if line.split()[1] in "tTwW"}


def test_stack_ids_and_inline_stacks_are_named_and_agree(kernel, objs):
    with Runner(objs["gen_stacks"], settings={"target_tgid": os.getpid()}) as r:
        # libbpf-tools leave a stack map's value size to their user space: without one, EINVAL at load
        assert r.obj.maps["stackmap"].value_size == 127 * 8
        fire(1, 2, 3)
        r.stop()
        (counts,) = [report for report in r.maps() if report.name == "counts"]
        named = kernel_functions()  # with the object's own programs (bpf_prog_...)
    assert counts.stacks == ["user_stack_id", "kern_stack_id"]
    # the interpreter may reach getpgid() through more than one path: a stack each
    assert sum(value for _, value in counts.entries) == 3
    stacks = [(key["kern_stack_id"], key["user_stack_id"]) for key, _ in counts.entries]
    for key, _ in counts.entries:
        assert key["pid"] == os.getpid()
    for kernel_stack, user_stack in stacks:
        assert SYSCALL_ENTRY in kernel_stack
        assert set(kernel_stack) <= named  # every frame named, from kallsyms
        assert re.fullmatch(r"_*getpgid", user_stack[0]), user_stack  # libc's wrapper, where the syscall is
    events = [record for name, record in r.events if name == "events"]
    assert len(events) == 3
    for e in events:  # the same stacks through bpf_get_stack, inline in a DWARF-only struct
        assert e.pid == os.getpid() and e.kstack_sz == 8 * len(e.kstack)
        assert (e.kstack, e.ustack) in stacks


def test_missed_stacks_and_merged_entries(kernel, objs):
    """A negative id is bpf_get_stackid's error: EFAULT, no stack (empty), others
    a frame that says so; entries whose stacks name the
    same functions (other instructions of them) are one, their numbers added."""
    with Runner(objs["gen_stacks"], settings={"target_tgid": os.getpid()}) as r:
        fire(7)
        r.stop()
        (counts,) = [report for report in r.maps() if report.name == "counts"]
        key_members = r.stacks.members(r.obj.btf, r.obj.maps["counts"].key_type_id)
        (key, _), *_ = r.obj.maps["counts"].items()
        raw = {"pid": os.getpid(), "user_stack_id": -17, "kern_stack_id": key.kern_stack_id, "name": "x"}
        missed = r.stacks.name(raw, key_members)
        none = r.stacks.name({**raw, "user_stack_id": -14}, key_members)
        twice, merged = r.stacks.name_entries(
            [(dict(raw), {"delta": 5, "comm": "a"}), (dict(raw), {"delta": 7, "comm": "b"})],
            key_members,
            None,
        )
        # the same stacks, but another inode: not the same entry, nothing added up
        apart, none_merged = r.stacks.name_entries(
            [(dict(raw), {"count": 1, "inode": 3099868}), (dict(raw), {"count": 2, "inode": 29464})],
            key_members,
            None,
        )
    assert missed["user_stack_id"] == ["[missed stack: EEXIST]"]  # lost: its bucket was taken
    assert none["user_stack_id"] == []  # EFAULT: there was no stack to take
    assert missed["kern_stack_id"] == counts.entries[0][0]["kern_stack_id"]
    assert [value for _, value in twice] == [{"delta": 12, "comm": "a"}] and merged == 1
    assert [value for _, value in apart] == [{"count": 1, "inode": 3099868}, {"count": 2, "inode": 29464}]
    assert none_merged == 0


CALLER = """import os, sys
os.sched_setaffinity(0, {{{cpu}}})
print("ready", flush=True)
sys.stdin.readline()
for _ in range({calls}):
    os.getpgid(0)
print("done", flush=True)
sys.stdin.readline()  # alive while its stacks are named: its maps are read then
"""


def test_per_cpu_identities_are_not_added_and_each_side_has_its_stack_map(kernel, objs):
    """tests/objects/gen_gadget.bpf.c: two processes on two CPUs write their
    pid into a per-CPU scratch value (pids are not added: the value is shown
    per CPU); their stack ids go to two stack maps, kstacks and ustacks, and
    each is named from its own."""
    callers = [
        subprocess.Popen(
            [sys.executable, "-c", CALLER.format(cpu=cpu, calls=calls)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for cpu, calls in ((0, 2), (1, 3))
    ]
    try:
        for c in callers:
            assert c.stdout.readline() == "ready\n"
        settings = {"target_a": callers[0].pid, "target_b": callers[1].pid}
        with Runner(objs["gen_gadget"], settings=settings) as r:
            for c in callers:
                c.stdin.write("go\n")
                c.stdin.flush()
                assert c.stdout.readline() == "done\n"
            r.stop()
            reports = {report.name: report for report in r.maps()}
    finally:
        for c in callers:
            c.kill()
            c.wait()
    (scratch,) = [value for _, value in reports["scratch_map"].entries]
    assert sorted((v["pid"], v["calls"]) for v in scratch) == [(callers[0].pid, 2), (callers[1].pid, 3)]
    counts = reports["counts"]
    assert {k["pid"] for k, _ in counts.entries} == {c.pid for c in callers}
    assert sum(v for _, v in counts.entries) == 5
    for key, _ in counts.entries:
        assert SYSCALL_ENTRY in key["kern_stack_id"], key
        assert re.fullmatch(r"_*getpgid", key["user_stack_id"][0]), key  # libc's wrapper: a user frame


def test_cli_prints_stacks_under_their_entry_and_record(kernel, objs):
    """A function per line under the entry or record, the kernel's above the user's, "--" between."""
    rc, out, err = run_and_fire(objs["gen_stacks"], [1, 2])
    assert rc == 0, err
    lines = out.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("counts[")]
    entry = re.compile(rf"counts\[\{{pid={os.getpid()}, name=\S+\}}\]: (\d+)")
    assert sum(int(entry.fullmatch(lines[i]).group(1)) for i in heads) == 2  # type: ignore[union-attr]
    block = lines[heads[0] + 1 :]
    split = block.index("    --")
    assert f"    {SYSCALL_ENTRY}" in block[:split]
    assert re.fullmatch(r"    _*getpgid", block[split + 1])
    assert sum(1 for line in lines if line.startswith("TIME")) == 1  # the records' header
    assert "KSTACK " not in lines[0] and "KSTACK_SZ" in out  # stacks are not columns


def test_cli_folded_and_flame_graph_of_map_stacks(kernel, objs, tmp_path):
    """--folded: stdout holds only the stacks, the process name at the root,
    then the user stack, then the kernel's (marked _[k]), each outermost
    first, weighed by the entry's count; --flamegraph draws the same."""
    svg = tmp_path / "stacks.svg"
    rc, out, err = run_and_fire(objs["gen_stacks"], [1, 2, 3], "--folded", "--flamegraph", str(svg))
    assert rc == 0, err
    lines = [line.rsplit(" ", 1) for line in out.splitlines()]
    assert sum(int(n) for _, n in lines) == 3
    for stack, _ in lines:
        frames = stack.split(";")
        kernel = [i for i, f in enumerate(frames) if f.endswith("_[k]")]
        assert kernel and kernel == list(range(kernel[0], len(frames)))  # the kernel's last, all of it
        assert f"{SYSCALL_ENTRY}_[k]" in frames[kernel[0] :]
        assert re.fullmatch(r"_*getpgid", frames[kernel[0] - 1])  # the user stack's innermost
    doc = svg.read_text()
    assert 'data-total="3"' in doc and f'data-k="1" data-f="{SYSCALL_ENTRY}"' in doc


@pytest.mark.slow  # a second of sampling
def test_cli_flame_graph_of_a_cpu_profile(kernel, objs, tmp_path):
    """tests/objects/gen_profile.bpf.c samples every CPU at 499 Hz as
    libbpf-tools' profile does: a process that spins in user space is most
    of its CPU's samples, rooted in its name, its frames user frames. The
    spinner is real-time, and this test's processes are on the other CPU:
    whatever else the machine runs, CPU 0 is the spinner's."""
    svg = tmp_path / "profile.svg"
    spinner = spawn(BUSY.format(comm=SPIN_COMM), 0, fifo=True)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {1})
    try:
        out = cli.run(
            "run",
            objs["gen_profile"],
            "--duration",
            "1",
            "--frequency",
            "499",
            "--folded",
            "--flamegraph",
            str(svg),
        )
    finally:
        os.sched_setaffinity(0, before)
        spinner.kill()
        spinner.wait()
        spinner.stdout.close()
    assert out.returncode == 0, out.stderr
    weights = {}
    for line in out.stdout.splitlines():
        stack, n = line.rsplit(" ", 1)
        weights[stack.split(";")[0]] = weights.get(stack.split(";")[0], 0) + int(n)
    # 499 samples a second on its CPU, but for the ticks others took: most of them
    assert weights.get(SPIN_COMM, 0) > 499 // 2, weights
    doc = svg.read_text()
    assert f'data-total="{sum(weights.values())}"' in doc and 'data-unit="count"' in doc
    assert f'data-d="1" data-f="{SPIN_COMM}"' in doc


def test_cli_folded_without_stacks_says_so(kernel, objs):
    rc, out, err = run_and_fire(objs["gen_events"], [1], "--folded")
    assert rc == 0, err
    assert out == ""  # neither the records nor the maps: --folded's stdout is stacks only
    assert "pyrunq run: note: no map of gen_events held stacks: nothing to draw" in err


def test_a_histogram_per_stack_is_named_and_printed_under_its_stack(kernel, objs):
    """tests/objects/gen_stackhist.bpf.c, in futexctn's shape: the stack in
    a histogram's key is named, printed above its histogram, and the
    histograms of stacks that name the same functions added up."""
    rc, out, err = run_and_fire(objs["gen_stackhist"], [1, 2, 3, 100])
    assert rc == 0, err
    heads = [i for i, line in enumerate(out.splitlines()) if line.startswith("hists[")]
    assert heads, out
    lines = out.splitlines()
    for i in heads:
        assert re.fullmatch(
            rf"hists\[\{{pid_tgid=\{{pid={os.getpid()}, tid=\d+\}}\}}\]: "
            r"contended=\d+ total_elapsed=\d+ min=\d+ max=\d+",
            lines[i],
        )
        assert re.fullmatch(r"    _*getpgid", lines[i + 1]), lines[i : i + 3]  # its user stack, top first
    contended = sum(int(re.search(r"contended=(\d+)", lines[i]).group(1)) for i in heads)  # type: ignore[union-attr]
    assert contended == 4


def test_cli_folded_histograms_per_stack_weigh_their_samples(kernel, objs):
    rc, out, err = run_and_fire(objs["gen_stackhist"], [1, 2, 3, 100], "--folded")
    assert rc == 0, err
    lines = [line.rsplit(" ", 1) for line in out.splitlines()]
    assert sum(int(n) for _, n in lines) == 4  # the 4 calls' samples
    # the user stack's innermost frame last (or the kernel's word for a stack it lost)
    assert all(re.search(r"(^|;)(_*getpgid|\[missed stack: \w+\])$", stack) for stack, _ in lines), out
