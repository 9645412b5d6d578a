"""pyrunq inspect / pyrunq run / pyrunq.run on objects written for these tests
(tests/objects/*.bpf.c), compiled here with clang. Each object fires on
getpgid(value) from this test process only (its tgid is set with --set), so
the events a test expects are exactly the syscalls it makes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading

import pytest

import pyrunq
from pyrunq.bpf import Record
from pyrunq.hist import render_log2_bcc as render_log2
import cli
from cli import inspect_json, run_and_fire
from needs import skip_or_fail
from pyrunq.tools.generic import Runner
from testobjects import fire, my_comm

# -- inspect (needs no privileges, loads nothing) ----------------------------------


def test_inspect_lists_what_the_source_declares(objs):
    d = inspect_json(objs["gen_events"])
    assert d["license"] == "Dual BSD/GPL" and d["core"] is True
    progs = {p["name"]: p for p in d["programs"]}
    assert progs["on_enter"] | {"instructions": 0} == {
        "name": "on_enter",
        "section": "raw_tp/sys_enter",
        "type": "raw_tracepoint",
        "attach_target": "sys_enter",
        "autoload": True,
        "instructions": 0,
    }
    assert progs["on_enter"]["instructions"] > 10
    assert (progs["manual_probe"]["section"], progs["manual_probe"]["type"]) == ("uprobe", "kprobe")
    maps = {m["name"]: m for m in d["maps"]}
    assert (
        maps["counts"]["type"],
        maps["counts"]["key"],
        maps["counts"]["value"],
        maps["counts"]["max_entries"],
        maps["counts"]["pinning"],
    ) == ("hash", "__u32", "__u64", 64, None)
    assert (maps["events"]["type"], maps["events"]["max_entries"], maps["events"]["shown_as"]) == (
        "ringbuf",
        1 << 16,
        "events of struct event",
    )
    assert [(g["section"], g["declaration"], g["default"]) for g in d["globals"]] == [
        (".rodata", "const volatile __u32 target_tgid", 0),
        (".rodata", "const volatile __s32 bias", -3),
        (".rodata", "const volatile bool force", False),
        (".rodata", "const volatile enum parity forced_parity", "PARITY_FORCED"),
        (".rodata", "const volatile char tag[8]", "none"),
        (".bss", "__u64 emitted", 0),
        (".bss", "const struct event *unused_event", 0),
    ]
    assert [(s["name"], s["size"], s["definition"]) for s in d["event_structs"]] == [
        (
            "event",
            48,
            "struct event {\n\t__u32 pid;\n\t__u64 seq;\n\tchar comm[16];\n"
            "\tenum parity parity;\n\t__s32 delta;\n\tchar tag[8];\n};",
        )
    ]


def test_inspect_text_and_histogram_rules(objs):
    out = cli.run("inspect", objs["gen_hist"])
    assert out.returncode == 0, out.stderr
    lines = [" ".join(line.split()) for line in out.stdout.splitlines()]
    assert "license: GPL" in lines
    prog = next(line.split() for line in lines if line.startswith("on_enter "))
    assert prog[:5] == ["on_enter", "raw_tp/sys_enter", "raw_tracepoint", "sys_enter", "yes"]
    assert "hist_us array __u32 __u64 24 - log2 histogram (usecs)" in lines
    assert "per_parity hash __u32 struct hist 4 - log2 histogram (value)" in lines
    assert ".rodata const volatile __u32 target_tgid = 0;" in lines
    assert "event structs (0):" in lines  # struct hist is a map value, not an event


def test_inspect_needs_no_privileges(objs, unprivileged):
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)  # the objects' directory is only root's
        path = shutil.copy(objs["gen_filter"], d)
        out = subprocess.run(
            unprivileged.cmd("inspect", path, "--json"), capture_output=True, text=True, timeout=60, cwd="/"
        )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert [s["name"] for s in d["event_structs"]] == ["record"]
    assert [(g["name"], g["default"]) for g in d["globals"]][:2] == [("target_tgid", 0), ("min_value", 16)]


# -- run ----------------------------------------------------------------------


def test_run_decodes_each_event_exactly(kernel, objs):
    seqs = [5_000_001, 5_000_002, 5_000_003]
    rc, out, err = run_and_fire(objs["gen_events"], seqs, "--json")
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    events = [d for d in docs if d["type"] == "event"]
    assert [(e["map"], e["event"]) for e in events] == [
        (
            "events",
            {
                "pid": os.getpid(),
                "seq": s,
                "comm": my_comm(),
                "parity": "PARITY_ODD" if s & 1 else "PARITY_EVEN",
                "delta": -3 - s,
                "tag": "none",
            },
        )
        for s in seqs
    ]
    maps = [d for d in docs if d["type"] == "map"]
    assert [(m["map"], m["entries"]) for m in maps] == [
        ("counts", [{"key": 1, "value": 1}, {"key": 2, "value": 1}, {"key": 3, "value": 1}])
    ]
    assert 'program manual_probe (SEC("uprobe")) not attached' in err


def test_run_reads_a_perf_event_array_exactly(kernel, objs):
    seqs = list(range(7_000_001, 7_000_101))
    rc, out, err = run_and_fire(objs["gen_perf"], seqs, "--json")
    assert rc == 0, err
    events = [d for d in map(json.loads, out.splitlines()) if d["type"] == "event"]
    assert [(e["map"], e["event"]["seq"], e["event"]["tgid"], e["event"]["comm"]) for e in events] == [
        ("events", s, os.getpid(), my_comm()) for s in seqs
    ]
    assert all(e["event"]["cpu"] in range(os.cpu_count()) for e in events)
    assert "lost" not in err, err


def test_variable_length_records_end_in_their_strings(kernel, objs):
    """A record that ends inside its last member, a char array, sent the
    NUL-separated strings there (execsnoop's args): shown joined, as its C
    front end does, and not counted as short; one cut before it is. A union
    shows each of its members."""
    rc, out, err = run_and_fire(objs["gen_varlen"], [3, 1, 2, 0], "--json")
    assert rc == 0, err
    events = [d["event"] for d in map(json.loads, out.splitlines()) if d["type"] == "event"]
    assert [(e["args_count"], e["args"]) for e in events] == [
        (3, "one two three"),
        (1, "one"),  # not the "two" and "three" the buffer still held
        (2, "one two"),
        (0, ""),
    ]
    assert "warning: 1 record(s) of events were shorter than struct event" in err
    two = {"as_u64": 0x6F7774, "as_text": "two", "halves": {"lo": 0x6F7774, "hi": 0}}
    assert [e["value"] for e in events[:3]] == [two] * 3  # a union: each member decoded


def test_ip_addresses_are_shown_by_their_family_and_kernel_structs_are_no_records(kernel, objs):
    rc, out, err = run_and_fire(objs["gen_inet"], [4, 6, 5], "--json")
    assert rc == 0, err
    events = [d["event"] for d in map(json.loads, out.splitlines()) if d["type"] == "event"]
    assert [(e["family"], e["saddr"], e["daddr"]) for e in events] == [
        (2, "127.0.0.1", "10.1.2.3"),  # the first 4 bytes only: the rest is not the address
        (10, "::1", "fe80::1"),
        (1, "7f000001" + "ee" * 12, "0a010203" + "ee" * 12),  # AF_UNIX: no IP address, bytes
    ]
    # the ring buffer's name is a kernel struct's: not what its records are
    assert "note: records of pt_regs decoded as struct conn (the only struct of their size" in err


def test_pyrunq_run_reads_perf_and_ring_buffers_alike(kernel, objs):
    def on_maps(reports):  # called in the loop, after attach: fire, then end as Ctrl-C would
        fire(7_000_001, 7_000_002)
        raise KeyboardInterrupt

    for name, seq in (("gen_perf", "seq"), ("gen_events", "seq")):
        result = pyrunq.run(
            objs[name], set={"target_tgid": os.getpid()}, interval=0.01, on_maps=on_maps, duration=600
        )
        assert [(m, getattr(e, seq)) for m, e in result.events] == [
            ("events", 7_000_001),
            ("events", 7_000_002),
        ], name
        assert result.lost == ({"events": 0} if name == "gen_perf" else {})


def test_set_changes_what_the_program_emits(kernel, objs):
    rc, out, err = run_and_fire(
        objs["gen_events"],
        [6_000_002],
        "--set",
        "force=true",
        "--set",
        "forced_parity=PARITY_ODD",
        "--set",
        "bias=0x10",
        "--set",
        "tag=hello",
    )
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "PID", "SEQ", "COMM", "PARITY", "DELTA", "TAG"]
    assert lines[1].split()[1:] == [
        str(os.getpid()),
        "6000002",
        my_comm(),
        "PARITY_ODD",
        str(16 - 6_000_002),
        "hello",
    ]
    assert "counts[2]: 1" in lines
    # an enum by number, a negative integer
    rc, out, err = run_and_fire(
        objs["gen_events"],
        [6_000_003],
        "--json",
        "--set",
        "force=1",
        "--set",
        "forced_parity=0",
        "--set",
        "bias=-100",
    )
    assert rc == 0, err
    event = json.loads(out.splitlines()[0])["event"]
    assert (event["parity"], event["delta"]) == ("PARITY_EVEN", -100 - 6_000_003)


def test_const_volatile_filter(kernel, objs):
    values = [5, 16, 100, 1000]
    rc, out, err = run_and_fire(objs["gen_filter"], values, "--json")
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    got = [d["event"]["value"] for d in docs if d["type"] == "event"]
    assert got == [16, 100, 1000]  # min_value defaults to 0x10
    rc, out, err = run_and_fire(
        objs["gen_filter"], values, "--json", "--set", "min_value=0x64", "--event", "records=record"
    )
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["map"], r.get("event")) for r in records if r["type"] == "event"] == [
        ("records", {"value": v, "tid": os.getpid()}) for v in (100, 1000)
    ]


def test_maps_the_object_pins_are_not_pinned(kernel, objs):
    pinned = "/sys/fs/bpf/pyrunq_test_passed"
    assert inspect_json(objs["gen_filter"])["maps"][1]["pinning"] == pinned
    rc, out, err = run_and_fire(objs["gen_filter"], [5, 16, 100])
    assert rc == 0, err
    assert f"map pyrunq_test_passed not pinned at {pinned}" in err
    assert out.endswith("\npyrunq_test_passed[0]: 2\n")
    assert not os.path.exists(pinned)


def log2_slot(v: int) -> int:
    return max(v.bit_length() - 1, 0)


def test_log2_histograms_in_bcc_format(kernel, objs):
    values = [0, 1, 2, 3, 5, 100, 1000, 1001, 1_000_000]
    rc, out, err = run_and_fire(objs["gen_hist"], values)
    assert rc == 0, err
    slots = [0] * 24
    per_parity = {0: [0] * 24, 1: [0] * 24}
    for v in values:
        slots[log2_slot(v)] += 1
        per_parity[v & 1][log2_slot(v)] += 1
    assert out == (
        f"\nhist_us:\n{render_log2(slots, 'usecs')}"
        f"\nper_parity[0]:\n{render_log2(per_parity[0], 'value')}"
        f"\nper_parity[1]:\n{render_log2(per_parity[1], 'value')}"
    )


def test_duration_and_sigterm_end_cleanly(kernel, objs):
    out = cli.run("run", objs["gen_hist"], "--duration", "0.2", "--json")
    assert out.returncode == 0, out.stderr
    maps = [json.loads(line)["map"] for line in out.stdout.splitlines()]
    assert maps == ["hist_us", "per_parity"]
    with cli.spawn("run", objs["gen_events"]) as p:
        p.wait_line("^Tracing with", stream="err")
        rc, _, err = p.finish(signal.SIGTERM)
    assert rc == 0, err


# -- bad input -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad(objs, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "text.o").write_text("not an object\n")
    (d / "x86.c").write_text("int f(void) { return 1; }\n")
    subprocess.run(["gcc", "-c", str(d / "x86.c"), "-o", str(d / "x86.o")], check=True)
    made = {"text": d / "text.o", "x86": d / "x86.o"}
    for name, mode in (("world", 0o646), ("group", 0o664), ("other", 0o644)):
        made[name] = d / f"{name}.bpf.o"
        shutil.copy(objs["gen_events"], made[name])
        os.chmod(made[name], mode)
    if os.geteuid() == 0:
        os.chown(made["other"], 65534, -1)
    return {k: str(v) for k, v in made.items()}


BAD = [  # (command, object, extra arguments, what stderr says)
    ("run", "text", [], "is not an ELF file"),
    ("inspect", "text", [], "is not an ELF file"),
    ("run", "x86", [], "is not a BPF object: it is an ELF for Advanced Micro Devices X86-64"),
    ("inspect", "x86", [], "is not a BPF object"),
    ("run", "gen_events", ["--set", "nope=1"], "--set nope=1: no global 'nope' in gen_events"),
    ("run", "gen_events", ["--set", "target_tgid=-1"], "out of range for const volatile __u32"),
    ("run", "gen_events", ["--set", "bias=0x80000000"], "(-2147483648..2147483647)"),
    ("run", "gen_events", ["--set", "forced_parity=NOPE"], "no such value of"),
    ("run", "gen_events", ["--set", "tag=eightchr"], "longer than the 7 characters"),
    ("run", "gen_events", ["--set", "force=maybe"], "expected true or false"),
    ("run", "gen_events", ["--set", "x"], "expected NAME=VALUE"),
    ("run", "gen_events", ["--event", "events=nope"], "no struct 'nope' in the object's BTF"),
    ("run", "gen_events", ["--event", "counts=event"], "has no ring buffer or perf event array 'counts'"),
    ("run", "world", [], "writable by others"),
    ("run", "group", [], "writable by its group"),
    ("run", "other", [], "owned by uid 65534"),
]


@pytest.mark.parametrize(
    "tool, obj, extra, message", BAD, ids=[f"{t}-{o}-{' '.join(e)}" for t, o, e, _ in BAD]
)
def test_bad_input_one_line_exit_2(objs, bad, tool, obj, extra, message):
    if obj == "other" and os.geteuid() != 0:
        skip_or_fail("needs root to chown")
    path = bad.get(obj) or objs[obj]
    out = cli.run(tool, path, *extra)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"pyrunq {tool}: error: ")
    assert message in out.stderr, out.stderr
    assert out.stdout == ""


def test_allow_untrusted_object(kernel, bad):
    out = cli.run("run", bad["world"], "--allow-untrusted-object", "--duration", "0.1")
    assert out.returncode == 0, out.stderr


# -- Python ------------------------------------------------------------------------


def test_python_pieces(kernel, objs):
    from pyrunq.tools.generic import Runner

    with Runner(objs["gen_filter"], settings={"target_tgid": os.getpid(), "min_value": 50}) as r:
        assert r.obj.state == "loaded" and len(r.links) == 1
        fire(10, 50, 60)
        r.stop()  # detach, then hand over what the ring buffer holds
        assert [(m, e._asdict()) for m, e in r.events] == [
            ("records", {"value": 50, "tid": os.getpid()}),
            ("records", {"value": 60, "tid": os.getpid()}),
        ]
        # the shape BPFObject.ring_buffer() gives: a Record of the struct
        assert all(isinstance(e, Record) for _, e in r.events)
        assert [e.value for _, e in r.events] == [50, 60]
        (passed,) = r.maps()
        assert (passed.name, passed.kind, passed.entries) == ("pyrunq_test_passed", "entries", [(0, 2)])


def test_pyrunq_run(kernel, objs):
    def on_maps(reports):  # called in the loop, after attach: fire, then end as Ctrl-C would
        fire(1, 3, 8)
        raise KeyboardInterrupt

    result = pyrunq.run(
        objs["gen_hist"], set={"target_tgid": os.getpid()}, interval=0.01, on_maps=on_maps, duration=600
    )
    hist = {r.name: r for r in result.maps}
    assert hist["hist_us"].kind == "hist" and hist["hist_us"].unit == "usecs"
    assert hist["hist_us"].entries == [(None, [1, 1, 0, 1] + [0] * 20, {})]
    assert [(k, s[:4]) for k, s, _ in hist["per_parity"].entries] == [(0, [0, 0, 0, 1]), (1, [1, 1, 0, 0])]
    assert result.events == [] and result.not_attached == []
    with pytest.raises(pyrunq.UsageError, match="out of range"):
        pyrunq.run(objs["gen_hist"], set={"target_tgid": -1})


def test_numbers_that_say_what_they_hold_are_shown_so(kernel, objs):
    """tests/objects/gen_exporter.bpf.c, in ebpf_exporter's style: a key that
    is a kernel function's address by its name (as bpftrace's ksym()), a
    dev_t as major:minor, an errno by name, a pid_tgid as pid and tid."""
    with Runner(objs["gen_exporter"], settings={"target_tgid": os.getpid()}) as r:
        fire(1, 2)
        r.stop()
        reports = {report.name: report for report in r.maps()}
    assert reports["function_calls_total"].entries == [("schedule", 2)]
    ((key, count),) = reports["calls_total"].entries
    assert count == 2
    assert key["dev"].split()[0] == "8:0" and key["ret"] == "-ENOENT"
    assert key["pid_tgid"] == {"pid": os.getpid(), "tid": threading.get_native_id()}
