"""How `pyrunq run` attaches objects it did not write (tests/objects/*.bpf.c):
one program per attach point of twins, SEC("perf_event") programs on every
CPU's clock, iter/* programs read as text, tracefs mounted for tracepoint/
programs, and programs that cannot attach reported while the rest run."""

from __future__ import annotations

import json
import mmap
import os
import re
import signal
import struct
import subprocess
import time

import pytest

import pyrunq
from pyrunq.bpf import BPFObject, features
from pyrunq.bpf import btf as B
from pyrunq.errors import BPFError, StateError, UsageError
from pyrunq.tools.generic import NothingAttached, Runner
from pyrunq.tools.generic.twins import attach_point
import cli
from cli import run_and_fire
from testobjects import fire, my_comm
from waiting import wait_for
from workload import Workload, spawn

N = 25  # getpgid() triggers per run
PROG = "pyrunq run"
# gen_twins.bpf.c's hits[] slots, one per mechanism
TP_BTF, RAW_TP, TRACEPOINT, FENTRY, KPROBE, FEXIT, KRETPROBE = range(7)
# a private mount namespace in which tracefs (and debugfs, where libbpf also
# looks) is not mounted, whatever the host has: nothing done there shows outside
NO_TRACEFS = [
    "unshare",
    "-m",
    "sh",
    "-c",
    "mount -t tmpfs none /sys/kernel/tracing && "
    "{ [ ! -d /sys/kernel/debug ] || mount -t tmpfs none /sys/kernel/debug; } && "
    'exec "$@"',
    "sh",
]
NO_SYS_ADMIN = ["setpriv", "--bounding-set=-sys_admin"]  # root, but cannot mount
SEVEN_VALUES = [9_000_001 + i for i in range(7)]


def json_docs(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def map_doc(out: str, name: str) -> dict:
    """key -> value of the last JSON document of map ``name``."""
    docs = [d for d in json_docs(out) if d["type"] == "map" and d["map"] == name]
    assert docs, out
    return {e["key"]: e["value"] for e in docs[-1]["entries"]}


NO_FENTRY = "this kernel cannot attach fentry/fexit programs to __x64_sys_getpgid"
NO_KPROBES = "this kernel has no kprobes"


def expected_function_hits(fentry_skipped: bool = False) -> tuple[dict[int, int], list[str]]:
    """The hits[] slots gen_twins fills on this kernel from the syscall's
    function, and the notes that say why: fentry/fexit where they attach,
    else kprobes where the kernel has them, else none (each one reported)."""
    fentry = features.fentry_can_attach("__x64_sys_getpgid") and not fentry_skipped
    if fentry:
        return {FENTRY: N, FEXIT: N}, [
            f"{PROG}: note: count_call (fentry/__x64_sys_getpgid) chosen over count_call_kprobe "
            "(kprobe/__x64_sys_getpgid)",
            f"{PROG}: note: count_return (fexit/__x64_sys_getpgid) chosen over "
            "count_return_kretprobe (kretprobe/__x64_sys_getpgid)",
        ]
    if features.kprobes():
        return {KPROBE: N, KRETPROBE: N}, [] if fentry_skipped else [
            f"{PROG}: note: count_call_kprobe (kprobe/__x64_sys_getpgid) chosen over count_call "
            f"(fentry/__x64_sys_getpgid): count_call: {NO_FENTRY}",
            f"{PROG}: note: count_return_kretprobe (kretprobe/__x64_sys_getpgid) chosen over "
            f"count_return (fexit/__x64_sys_getpgid): count_return: {NO_FENTRY}",
        ]
    return {}, [
        f'{PROG}: note: program {name} (SEC("{section}")) not attached: {why}'
        for name, section, why in NOT_ATTACHED_HERE
    ]


# gen_twins' programs for the syscall's function on a kernel with neither fentry nor kprobes
NOT_ATTACHED_HERE = [
    ("count_call", "fentry/__x64_sys_getpgid", NO_FENTRY),
    ("count_call_kprobe", "kprobe/__x64_sys_getpgid", NO_KPROBES),
    ("count_return", "fexit/__x64_sys_getpgid", NO_FENTRY),
    ("count_return_kretprobe", "kretprobe/__x64_sys_getpgid", NO_KPROBES),
]


def hits(r: Runner) -> dict[int, int]:
    return {k: v for k, v in r.obj.maps["hits"].items() if v}


def tracefs_mounts() -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line for line in f if line.split()[2] == "tracefs"]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# -- the rules (nothing loaded) -------------------------------------------------------


@pytest.mark.parametrize(
    "section, expected",
    [
        ("tp_btf/sched_switch", ("tp_btf", ("tracepoint", "sched_switch"))),
        ("raw_tp/sched_switch", ("raw_tp", ("tracepoint", "sched_switch"))),
        ("raw_tracepoint/sched_switch", ("raw_tp", ("tracepoint", "sched_switch"))),
        ("tracepoint/sched/sched_switch", ("tracepoint", ("tracepoint", "sched_switch"))),
        ("tp/sched/sched_switch", ("tracepoint", ("tracepoint", "sched_switch"))),
        ("tp/sched_switch", ("tracepoint", None)),  # no category: libbpf cannot attach it
        ("fentry/do_nanosleep", ("fentry", ("entry", "do_nanosleep"))),
        ("kprobe/do_nanosleep", ("kprobe", ("entry", "do_nanosleep"))),
        ("kprobe/do_nanosleep+0x10", ("kprobe", None)),  # not the function's entry
        ("fexit/do_nanosleep", ("fexit", ("return", "do_nanosleep"))),
        ("kretprobe/do_nanosleep", ("kretprobe", ("return", "do_nanosleep"))),
        ("kprobe", None),
        ("uprobe/bin:f", None),
        ("perf_event", None),
        ("iter/task", None),
    ],
)
def test_attach_points_of_sections(section, expected):
    assert attach_point(section) == expected


def test_kernel_btf_names():
    found = features.kernel_btf_has(
        ("btf_trace_sys_enter", B.TYPEDEF), ("btf_trace_pyrunq_missing", B.TYPEDEF), ("do_nanosleep", B.FUNC)
    )
    assert found == {("btf_trace_sys_enter", B.TYPEDEF), ("do_nanosleep", B.FUNC)}


# -- twins ----------------------------------------------------------------------


def test_twins_count_once_and_the_note_names_the_choice(kernel, objs):
    rc, out, err = run_and_fire(objs["gen_twins"], range(9_000_001, 9_000_001 + N), "--json")
    assert rc == 0, err
    function_hits, notes = expected_function_hits()
    assert map_doc(out, "hits") == {TP_BTF: N} | function_hits, err  # not 2N, not 3N
    lines = err.splitlines()
    assert (
        f"{PROG}: note: count_enter (tp_btf/sys_enter) chosen over count_enter_raw "
        "(raw_tp/sys_enter), count_enter_tp (tracepoint/raw_syscalls/sys_enter)"
    ) in lines
    assert all(note in lines for note in notes), err
    assert "tracefs" not in err  # the tracepoint twin did not run: it needs none
    attached = 1 + len(function_hits)
    assert f"Tracing with {attached} program(s) of gen_twins... Hit Ctrl-C to end." in lines


def test_program_picks_the_raw_tp_twin(kernel, objs):
    with Runner(objs["gen_twins"], settings={"target_tgid": os.getpid()}, programs=["count_enter_raw"]) as r:
        assert (r.attached, r.choices, r.not_attached) == (["count_enter_raw"], [], [])
        fire(*range(9_000_001, 9_000_001 + N))
        r.stop()
        assert hits(r) == {RAW_TP: N}

    # the same through pyrunq.run() and the command line
    def on_maps(reports):  # in the loop, after attach: fire, then end as Ctrl-C would
        fire(*SEVEN_VALUES)
        raise KeyboardInterrupt

    result = pyrunq.run(
        objs["gen_twins"],
        set={"target_tgid": os.getpid()},
        programs=["count_enter_raw"],
        interval=0.01,
        on_maps=on_maps,
        duration=600,
    )
    assert [(m.name, m.entries) for m in result.maps] == [("hits", [(RAW_TP, 7)])]
    assert (result.not_attached, result.choices) == ([], [])
    rc, out, err = run_and_fire(objs["gen_twins"], SEVEN_VALUES, "--json", "--program", "count_enter_raw")
    assert rc == 0, err
    assert map_doc(out, "hits") == {RAW_TP: 7}
    assert err.splitlines() == ["Tracing with 1 program(s) of gen_twins... Hit Ctrl-C to end."]


def test_no_program_leaves_the_next_best_twin(kernel, objs):
    skip = ["count_enter", "count_call", "count_return"]
    with Runner(objs["gen_twins"], settings={"target_tgid": os.getpid()}, skip=skip) as r:
        assert str(r.choices[0]) == (
            "count_enter_raw (raw_tp/sys_enter) chosen over "
            "count_enter_tp (tracepoint/raw_syscalls/sys_enter)"
        )
        assert not {"count_enter", "count_call", "count_return"} & set(r.attached)
        fire(*SEVEN_VALUES)
        r.stop()
        assert hits(r) == {RAW_TP: 7} | {k: 7 for k in expected_function_hits(True)[0]}


@pytest.mark.parametrize("flag", ["--program", "--no-program"])
def test_unknown_program_is_a_usage_error(objs, flag):
    out = cli.run("run", objs["gen_twins"], flag, "nope")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (
        f"{PROG}: error: {flag} nope: no program 'nope' in gen_twins (has: "
        "count_enter, count_enter_raw, count_enter_tp, count_call, "
        "count_call_kprobe, count_return, count_return_kretprobe)\n"
    )


# -- perf_event programs ------------------------------------------------------------

SPIN = """import os
os.nice(19)  # busy, but out of everyone's way
parent = os.getppid()
print('ready', flush=True)
while os.getppid() == parent:
    pass
"""


def test_perf_event_program_samples_every_cpu_at_the_frequency(kernel, objs):
    """A CPU's clock ticks while the CPU runs: an idle CPU may take few samples
    (this machine's hardly any), so each CPU gets a spinning process first."""
    frequency = 199
    online = _online_cpus()
    cpus = len(online)
    fds = open_fds()
    with Workload([spawn(SPIN, cpu) for cpu in online]):
        start = time.monotonic()
        seen = _sample(objs["gen_sampler"], frequency, frequency * cpus, start)  # about 1 s
    total, elapsed = sum(seen["counts"].values()), seen["elapsed"]
    expected = frequency * cpus * elapsed
    assert 0.3 * expected <= total <= 3 * expected, (total, expected, seen)
    assert set(seen["counts"]) == set(online), seen  # every CPU sampled
    assert open_fds() == fds  # the perf events closed with their links


def _sample(path: str, frequency: int, threshold: int, start: float) -> dict:
    """Samples per CPU once they pass ``threshold``, and the seconds since ``start``."""
    cpus = len(_online_cpus())
    with Runner(path, frequency=frequency) as r:
        assert r.attached == ["on_sample"] and len(r.links) == cpus
        samples = r.obj.maps["samples"]
        seen: dict = {}

        def enough():
            seen["counts"] = {cpu: n for cpu, n in samples.items() if n}
            seen["elapsed"] = time.monotonic() - start
            return sum(seen["counts"].values()) >= threshold

        wait_for(enough, timeout=60, every=0.05, seen=lambda: seen)
    return seen


def _online_cpus() -> list[int]:
    from pyrunq.bpf.program import online_cpus

    return online_cpus()


def test_cpu_clock_is_all_or_nothing(kernel, objs):
    fds = open_fds()
    with BPFObject.open(objs["gen_sampler"]) as obj:
        obj.load()
        with pytest.raises(BPFError, match="CPU 4096"):
            obj.programs["on_sample"].attach_cpu_clock(99, cpus=[0, 4096])
        assert obj._owned == []  # the first CPU's link was closed again
    assert open_fds() == fds


def test_frequency_on_the_command_line(kernel, objs):
    out = cli.run("run", objs["gen_sampler"], "--frequency", "0")
    assert out.returncode == 2 and "--frequency: must be positive" in out.stderr, out.stderr
    with cli.spawn("run", objs["gen_sampler"], "--frequency", "50", "--json") as p:
        p.wait_line("^Tracing with 1 program", stream="err")
        rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    assert set(map_doc(out, "samples")) <= set(_online_cpus())


def test_a_perf_event_program_samples_the_event_it_is_given(kernel, objs):
    """SEC("perf_event") names no event (its own user space picks one, as
    llcstat picks cache misses): it samples the CPU clock, and says so, or
    the event named for it: here every page fault, so the faults of pages
    this test touches are all counted."""
    pages = 500
    with Runner(objs["gen_sampler"]) as r:
        assert r.clock_sampled == ["on_sample"]
    with Runner(objs["gen_sampler"], perf_events={"on_sample": "page-faults,period=1"}) as r:
        assert r.clock_sampled == []
        memory = mmap.mmap(-1, pages * mmap.PAGESIZE)
        memory.madvise(mmap.MADV_NOHUGEPAGE)  # one fault per page
        for page in range(pages):
            memory[page * mmap.PAGESIZE] = 1
        r.stop()
        (samples,) = r.maps()
    assert sum(n for _, n in samples.entries) >= pages  # and other processes' faults
    with pytest.raises(UsageError, match="^perf_events on_sample=cache: no perf event 'cache'") as e:
        Runner(objs["gen_sampler"], perf_events={"on_sample": "cache"})
    assert e.value.param == "perf_events"
    with pytest.raises(UsageError, match="no perf_event program 'sample' in gen_sampler .has: on_sample."):
        Runner(objs["gen_sampler"], perf_events={"sample": "cpu-clock"})


# -- iterators ----------------------------------------------------------------------


def rows(text: str) -> list[list[str]]:
    return [line.split(None, 1) for line in text.splitlines() if line.strip()]


def test_iterator_text_is_read_at_each_call_and_at_the_end(kernel, objs):
    with Runner(objs["gen_iter"]) as r:
        assert r.attached == ["list_tasks"]
        text = r.iterators()["list_tasks"]
        assert rows(text)[0] == ["TID", "COMM"]
        assert [str(os.getpid()), my_comm()] in rows(text)
        child = subprocess.Popen(["sleep", "60"])
        try:
            # read again, each time anew: the child shows up once its exec is done
            wait_for(lambda: [str(child.pid), "sleep"] in rows(r.iterators()["list_tasks"]))
        finally:
            child.kill()
            child.wait()
        r.stop()
        last = r.iterators()["list_tasks"]  # read as it stopped
        assert [str(os.getpid()), my_comm()] in rows(last)
        with pytest.raises(StateError):
            r.iterator_links["list_tasks"].read_iter()  # detached
    result = pyrunq.run(objs["gen_iter"], duration=0.01)
    assert [str(os.getpid()), my_comm()] in rows(result.iterators["list_tasks"])


def test_an_iterators_globals_are_read_after_that_intervals_pass(kernel, objs):
    """gen_iter counts its passes in a global: each interval runs the
    iterator first, then reads the globals, so the k-th shows k passes."""
    seen, texts = [], []

    def on_maps(reports):
        (passes,) = [rep for rep in reports if rep.name == "passes"]
        seen.append(passes.entries[0][1])

    def wait(timeout, fd):
        time.sleep(min(timeout or 0.01, 0.01))
        return len(seen) >= 3

    with Runner(objs["gen_iter"]) as r:
        r.loop(600, 0.01, on_maps=on_maps, on_iterators=texts.append, wait=wait, cumulative=True)
    assert seen[:3] == [1, 2, 3]
    assert all(rows(t["list_tasks"])[0] == ["TID", "COMM"] for t in texts[:3])


def test_iterator_text_on_the_command_line(kernel, objs):
    with cli.spawn("run", objs["gen_iter"], "--interval", "0.1") as p:
        p.wait_line("^Tracing with 1 program", stream="err")
        p.wait_line(r"^TID +COMM$", count=2)  # at intervals
        rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    assert any(r[0] == str(p.pid) for r in rows(out)), out  # the tool itself runs
    with cli.spawn("run", objs["gen_iter"], "--json") as p:
        p.wait_line("^Tracing with 1 program", stream="err")
        rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    docs = json_docs(out)
    (doc,) = [d for d in docs if d["type"] == "iterator"]
    assert (doc["type"], doc["program"]) == ("iterator", "list_tasks")
    assert [(d["global"], d["value"]) for d in docs if d["type"] == "global"] == [("passes", 1)]
    assert any(r[0] == str(p.pid) for r in rows(doc["text"])), doc


# -- tracefs, and programs that cannot attach -----------------------------------------


def test_tracepoint_object_runs_with_tracefs_unmounted(kernel, objs):
    before = tracefs_mounts()
    rc, out, err = run_and_fire(objs["gen_tracepoint"], SEVEN_VALUES, "--json", prefix=NO_TRACEFS)
    assert rc == 0, err
    assert map_doc(out, "calls") == {v: 1 for v in SEVEN_VALUES}
    lines = err.splitlines()
    assert lines[:-1] == [
        # the preferred twin cannot attach (syscall events are no raw tracepoints)
        f"{PROG}: note: on_getpgid (tracepoint/syscalls/sys_enter_getpgid) chosen over "
        "on_getpgid_raw (raw_tp/sys_enter_getpgid): on_getpgid_raw: failed to attach: no raw "
        "tracepoint sys_enter_getpgid in this kernel (No such file or directory)",
        f"{PROG}: note: mounted tracefs at /sys/kernel/tracing for tracepoint programs "
        "(it stays mounted, as perf leaves it)",
        f'{PROG}: note: program on_missing_tp_btf (SEC("tp_btf/pyrunq_missing_btf")) not '
        "attached: no tracepoint pyrunq_missing_btf in the kernel's BTF",
        f"{PROG}: note: program on_missing_tracepoint "
        '(SEC("tracepoint/syscalls/sys_enter_pyrunq_missing")) not attached: no tracepoint '
        "syscalls/sys_enter_pyrunq_missing in this kernel (No such file or directory)",
        f'{PROG}: note: program on_missing_raw_tp (SEC("raw_tp/pyrunq_missing_raw")) not '
        "attached: no raw tracepoint pyrunq_missing_raw in this kernel (No such file or "
        "directory)",
    ], err
    assert lines[-1].startswith("Tracing with 1 program(s) of gen_tracepoint")
    assert tracefs_mounts() == before  # mounted in the private namespace only


def test_without_the_right_to_mount_tracefs_one_line_says_how(kernel, objs):
    rc, out, err = run_and_fire(
        objs["gen_twins"],
        SEVEN_VALUES,
        "--json",
        "--program",
        "count_enter",
        "--program",
        "count_enter_tp",
        prefix=NO_TRACEFS + NO_SYS_ADMIN,
    )
    assert rc == 0, err
    assert map_doc(out, "hits") == {TP_BTF: 7}  # the other program runs
    assert err.splitlines()[:2] == [
        f"{PROG}: note: tracefs is not mounted, and mounting it at /sys/kernel/tracing failed "
        "(Operation not permitted): tracepoint programs cannot attach; as root: mount -t "
        "tracefs nodev /sys/kernel/tracing",
        f'{PROG}: note: program count_enter_tp (SEC("tracepoint/raw_syscalls/sys_enter")) not '
        "attached: tracefs is not mounted",
    ], err
    # nothing else to run: one line, exit 1
    out = cli.run("run", objs["gen_tracepoint"], "--program", "on_getpgid", prefix=NO_TRACEFS + NO_SYS_ADMIN)
    assert (out.returncode, out.stdout) == (1, ""), out.stderr
    assert out.stderr == (
        f"{PROG}: error: no program of gen_tracepoint could attach: on_getpgid "
        "(tracepoint/syscalls/sys_enter_getpgid): tracefs is not mounted. Mounting it at "
        "/sys/kernel/tracing failed (Operation not permitted); "
        "as root: mount -t tracefs nodev /sys/kernel/tracing\n"
    )


def test_nothing_attached_is_one_line_exit_1(kernel, objs):
    out = cli.run(
        "run", objs["gen_tracepoint"], "--program", "on_missing_raw_tp", "--program", "on_missing_tp_btf"
    )
    assert (out.returncode, out.stdout) == (1, ""), out.stderr
    assert out.stderr == (
        f"{PROG}: error: no program of gen_tracepoint could attach: on_missing_tp_btf "
        "(tp_btf/pyrunq_missing_btf): no tracepoint pyrunq_missing_btf in the kernel's BTF; "
        "on_missing_raw_tp (raw_tp/pyrunq_missing_raw): no raw tracepoint pyrunq_missing_raw "
        "in this kernel (No such file or directory)\n"
    )
    with pytest.raises(NothingAttached) as caught:
        pyrunq.run(objs["gen_tracepoint"], programs=["on_missing_raw_tp"])
    assert [tuple(n) for n in caught.value.not_attached] == [
        (
            "on_missing_raw_tp",
            "raw_tp/pyrunq_missing_raw",
            "no raw tracepoint pyrunq_missing_raw in this kernel (No such file or directory)",
        )
    ]


def test_programs_this_kernel_cannot_run_are_reported_and_the_rest_run(kernel, objs):
    function_hits, notes = expected_function_hits()
    with Runner(objs["gen_twins"], settings={"target_tgid": os.getpid()}) as r:
        if not function_hits:  # this kernel: not loaded, each with its reason
            assert r.not_attached == NOT_ATTACHED_HERE
        else:
            assert r.not_attached == []
        fire(*SEVEN_VALUES)
        r.stop()
        assert hits(r) == {TP_BTF: 7} | {k: 7 for k in function_hits}


def test_binary_iterator_output_stays_bytes_and_is_bounded_on_the_command_line(kernel, objs):
    with Runner(objs["gen_iter_binary"]) as r:
        data = r.iterators()["task_tgids"]
    assert isinstance(data, bytes) and len(data) % 4 == 0
    assert os.getpid() in set(struct.unpack(f"<{len(data) // 4}I", data))
    with cli.spawn("run", objs["gen_iter_binary"]) as p:
        p.wait_line("^Tracing with 1 program", stream="err")
        rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    (line,) = out.splitlines()
    assert re.fullmatch(r"task_tgids: \d+ bytes of binary records: [0-9a-f]{32}\.\.\.", line), line


def test_ksyscall_programs_need_kprobes_and_say_so(kernel, objs):
    with Runner(objs["gen_ksyscall"], settings={"target_tgid": os.getpid()}) as r:
        fire(1, 2, 3)
        r.stop()
        counts = (r.obj.bss["by_ksyscall"], r.obj.bss["by_raw_tp"])
        if features.kprobes():  # the kernel matrix's kernels
            assert (r.not_attached, counts) == ([], (3, 3))
        else:  # this kind of host: reported, and the rest runs
            assert [tuple(n) for n in r.not_attached] == [
                (
                    "on_getpgid",
                    "ksyscall/getpgid",
                    "this kernel has no kprobes (ksyscall programs are kprobes)",
                )
            ]
            assert counts == (0, 3)


def test_uprobes_whose_section_names_no_target_attach_where_told(kernel, objs):
    uprobes = {"on_entry": "c:getpgid", "on_return": "c:getpgid"}
    with Runner(objs["gen_uprobe"], settings={"target_tgid": os.getpid()}, uprobes=uprobes) as r:
        assert sorted(r.attached) == ["on_entry", "on_return"]
        assert [n.program for n in r.not_attached] == ["on_self", "on_bare"]
        fire(1, 2, 3, 4)
        r.stop()
        assert (r.obj.bss["entries"], r.obj.bss["returns"]) == (4, 4)
    # one program, several functions (gethostlatency's: getaddrinfo, gethostbyname...)
    with Runner(
        objs["gen_uprobe"],
        settings={"target_tgid": os.getpid()},
        uprobes={"on_entry": ["c:getpgid", "c:getppid"]},
    ) as r:
        assert r.attached == ["on_entry"]
        fire(1, 2)
        for _ in range(3):
            os.getppid()
        r.stop()
        assert r.obj.bss["entries"] == 5
    with pytest.raises(
        NothingAttached, match=r"on_entry \(uprobe\): .* give it a target \(BINARY:FUNCTION\)"
    ):
        Runner(objs["gen_uprobe"])  # without targets: each reported, and nothing else runs


def test_a_program_the_kernel_refuses_to_load_is_left_out_and_the_rest_run(kernel, objs, monkeypatch):
    from pyrunq.tools.generic import objfile

    reads = {"elf": 0, "code": 0, "kernel btf": 0, "opens": 0}

    def counted(what, f):
        def call(*args, **kwargs):
            reads[what] += 1
            return f(*args, **kwargs)

        return call

    monkeypatch.setattr(objfile, "check_object_file", counted("elf", objfile.check_object_file))
    monkeypatch.setattr(objfile, "helper_calls", counted("code", objfile.helper_calls))
    monkeypatch.setattr(features, "kernel_btf_has", counted("kernel btf", features.kernel_btf_has))
    monkeypatch.setattr(objfile, "BPFObject", counted("opens", objfile.BPFObject))
    with Runner(objs["gen_rejected"], settings={"target_tgid": os.getpid()}) as r:
        # loaded twice (the second time without the refused program), the file read once
        assert reads == {"elf": 1, "code": 1, "kernel btf": 0, "opens": 2}, reads
        assert r.attached == ["counted"]
        [(program, section, why)] = r.not_attached
        assert (program, section) == ("rejected", "raw_tp/sys_exit")
        assert why.startswith("the verifier rejected it: ") and "\n" not in why, why
        fire(1, 2, 3)
        r.stop()
        assert r.obj.bss["hits"] == 3
    out = cli.run("run", objs["gen_rejected"], "--program", "rejected")  # nothing else: one line, exit 1
    assert (out.returncode, out.stdout) == (1, ""), out.stderr
    assert out.stderr.startswith(
        f"{PROG}: error: no program of gen_rejected could attach: rejected (raw_tp/sys_exit): "
        "the verifier rejected it: "
    )
    assert out.stderr.count("\n") == 1, out.stderr


def test_uprobe_on_its_own_loader_and_bpf_printk_say_how(kernel, objs):
    out = cli.run(
        "run", objs["gen_uprobe"], "--uprobe", "on_entry=c:getpgid", "--uprobe", "on_entry=c:getppid",
        "--duration", "0.1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (
        'program on_self (SEC("uprobe//proc/self/exe:pyrunq_test_missing")) not attached: no function '
        "pyrunq_test_missing in /proc/self/exe (No such file or directory): that is pyrunq here, not the "
        "program the object was written for; give it a target (BINARY:FUNCTION) with --uprobe "
        "on_self=BINARY:FUNCTION\n"
    ) in out.stderr
    assert (
        'program on_bare (SEC("uretprobe/getpgid")) not attached: libbpf attaches a uprobe by itself only '
        'from SEC("uretprobe/BINARY:FUNCTION") (Invalid argument); give it a target (BINARY:FUNCTION) '
        "with --uprobe on_bare=BINARY:FUNCTION\n"
    ) in out.stderr
    mount = "" if features.tracefs_mounted() else f"mount -t tracefs nodev {features.TRACEFS}; "
    assert (
        f"note: gen_uprobe writes lines with bpf_printk: they go to the kernel's trace_pipe; "
        f"read them with: {mount}cat {features.TRACEFS}/trace_pipe\n"
    ) in out.stderr


def test_usdt_programs_attach_to_the_probes_given(kernel, objs, usdt_prog):
    with Runner(objs["gen_usdt"], usdts={"on_tick": f"{usdt_prog}:pyrunq:tick"}) as r:
        assert r.attached == ["on_tick"]
        # libbpf's own maps (where the probe's arguments are) are not results
        assert r.view.maps == ["last"]
        assert set(r.view.hidden) == {"__bpf_usdt_specs", "__bpf_usdt_ip_to_spec_id"}
        assert r.unfilled == []  # libbpf fills them, not the object's user space
        prog = subprocess.Popen([usdt_prog, "5"])
        assert prog.wait(60) == 0
        r.stop()
        assert (r.obj.bss["ticks"], r.obj.bss["sum"]) == (5, 0 + 1 + 2 + 3 + 4)  # its argument too
        # decoded by the only struct of their size: one that only a map's value type brings
        events = sorted((e._asdict() for _, e in r.events), key=lambda e: e["i"])  # a CPU's buffer at a time
        assert events == [{"i": i, "pid": prog.pid} for i in range(5)]
        assert r.streams["out"].struct == "tick" and r.streams["out"].by_size
    with pytest.raises(
        NothingAttached, match=r"on_tick \(usdt\): .* give it a target \(BINARY:PROVIDER:NAME\)"
    ):
        Runner(objs["gen_usdt"])
    with pytest.raises(NothingAttached, match=r"on_tick \(usdt\): no such USDT probe"):
        Runner(objs["gen_usdt"], usdts={"on_tick": f"{usdt_prog}:pyrunq:nope"})


@pytest.mark.parametrize(
    "obj, flag, value, message",
    [
        ("gen_uprobe", "--uprobe", "nope=c:getpgid", "no program 'nope' in gen_uprobe"),
        ("gen_uprobe", "--uprobe", "on_entry=c:no_such_function_here", ""),
        ("gen_usdt", "--usdt", "on_tick=c", "expected BINARY:PROVIDER:NAME"),
        ("gen_usdt", "--usdt", "on_tick=/no/such/file:p:n", "/no/such/file: no such binary"),
        ("gen_usdt", "--usdt", "nope=c:p:n", "no program 'nope' in gen_usdt (usdt programs: on_tick)"),
        ("gen_usdt", "--usdt", "on_tick=SCRIPT:p:n", "usdt: SCRIPT is not an ELF file (a script?)"),
    ],
)
def test_target_errors_name_the_flag(objs, obj, flag, value, message, shell_script):
    value, message = (x.replace("SCRIPT", shell_script) for x in (value, message))
    out = cli.run("run", objs[obj], flag, value)
    assert (out.returncode, out.stdout) == (2, ""), out.stderr
    assert out.stderr.startswith(f"{PROG}: error: {flag} {value}: {message}"), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr


@pytest.fixture(scope="module")
def shell_script(tmp_path_factory) -> str:
    """An executable shell script named pyrunq-script-target, as some
    systems' python3 is a shim: no ELF file, so no probe can be in it."""
    path = tmp_path_factory.mktemp("bin") / "pyrunq-script-target"
    path.write_text("#!/bin/sh\nexec true\n")
    path.chmod(0o755)
    return str(path)


def test_every_failure_names_its_cause(kernel, objs, shell_script, monkeypatch):
    """The one error line, or a program's note, says what libbpf or the
    kernel gave as the cause (tests/objects/gen_badmap, gen_extern,
    gen_cannot), not an errno's text for the whole object; and never that
    the kernel refused what it was not asked."""
    with pytest.raises(BPFError) as failed:
        Runner(objs["gen_badmap"])
    cause = "map 'counts': failed to create: Invalid argument"
    assert str(failed.value) == f"load BPF object 'gen_badmap': {cause}"
    assert (failed.value.map, failed.value.program) == ("counts", None)
    with pytest.raises(BPFError) as failed:
        Runner(objs["gen_extern"])
    assert str(failed.value).startswith(
        f"open BPF object '{objs['gen_extern']}': failed to find BTF for extern 'pyrunq_no_such_function'"
    ), str(failed.value)
    # libbpf resolves a section's bare binary name on PATH, as a shell does
    monkeypatch.setenv("PATH", f"{os.path.dirname(shell_script)}:{os.environ['PATH']}")
    with Runner(objs["gen_cannot"], settings={"target_tgid": os.getpid()}) as r:
        assert r.attached == ["counted"]
        assert {n.program: n.reason for n in r.not_attached} == {
            "walk": "libbpf could not load it: "
            "failed to find kernel BTF type ID of 'pyrunq_no_such_iterator'",
            "on_named": f"usdt: {shell_script} is not an ELF file (a script?)",
        }
        fire(1, 2)
        r.stop()
        assert r.obj.bss["hits"] == 2


def test_usage_errors_name_the_parameter_and_the_cli_its_flag(objs):
    with pytest.raises(UsageError) as e:
        Runner(objs["gen_events"], settings={"nope": "1"})
    assert e.value.param == "setting" and str(e.value).startswith("setting nope=1: no global 'nope'")
    assert e.value.text("--set").startswith("--set nope=1: no global 'nope'")
