"""Every command against bad input, broken environments, few privileges,
interruption at any moment and overload: one clear line, the right exit code,
nothing left in the kernel."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest

import pyrunq
from pyrunq.bpf import packaged_object
import cli
from cli import BPF_CAPS, NO_CAPS, UNPRIVILEGED
from needs import need
from waiting import Command

PACKAGE = os.path.dirname(pyrunq.__file__)


@pytest.fixture(scope="module")
def fake_old_libbpf(tmp_path_factory):
    """A libbpf.so.1 with only the version calls of an old libbpf."""
    d = tmp_path_factory.mktemp("libbpf")
    (d / "old.c").write_text(
        "unsigned libbpf_major_version(void) { return 0; }\n"
        "unsigned libbpf_minor_version(void) { return 8; }\n"
    )
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libbpf.so.1",
            "-o",
            str(d / "libbpf.so.1"),
            str(d / "old.c"),
        ],
        check=True,
    )
    return str(d / "libbpf.so.1")


@pytest.fixture(scope="module")
def broken_package(tmp_path_factory):
    """A copy of the package whose runqlat object is truncated and whose
    runqslower object is missing."""
    d = tmp_path_factory.mktemp("pkg")
    shutil.copytree(PACKAGE, d / "pyrunq", ignore=shutil.ignore_patterns("__pycache__"))
    objects = d / "pyrunq" / os.path.relpath(os.path.dirname(packaged_object("runqlat")), PACKAGE)
    obj = objects / "runqlat.bpf.o"
    obj.write_bytes(obj.read_bytes()[:4096])
    (objects / "runqslower.bpf.o").unlink()
    return str(d)


USAGE = [  # (arguments, what stderr names); all exit 2
    ([], "the following arguments are required: TOOL"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["runqlat", "0"], "must be positive"),
    (["runqlat", "-5"], "must be positive"),
    (["runqlat", "1", "x"], "invalid integer"),
    (["runqlat", "1.5"], "invalid integer"),
    (["runqlat", "1", "0"], "must be positive"),
    (["runqlat", "1", "2", "3"], "unrecognized arguments: 3"),
    (["runqlat", "-P", "-L"], "not allowed with argument"),
    (["runqlat", "-P", "--pidnss"], "not allowed with argument"),
    (["runqlat", "-L", "--cgroups"], "not allowed with argument"),
    (["runqlat", "--pidnss", "--cgroups"], "not allowed with argument"),
    (["runqlat", "-p", "abc"], "invalid PID list"),
    (["runqlat", "-p", "12,abc"], "invalid PID list"),
    (["runqlat", "-p", "0"], "invalid PID list"),
    (["runqlat", "-p", "-3"], "invalid PID list"),
    (["runqlat", "-p", ""], "invalid PID list"),
    (["runqlat", "-p"], "expected one argument"),
    (["runqlat", "-c", "/tmp"], "not a cgroup v2 directory"),
    (["runqlat", "-c", "/no/such/cgroup"], "not a cgroup v2 directory"),
    (["runqlat", "-c"], "expected one argument"),
    (["runqlat", "--bogus"], "unrecognized arguments: --bogus"),
    (["runqlat", "-x"], "unrecognized arguments: -x"),
    (["runqslower", "-5"], "must be >= 0"),
    (["runqslower", "abc"], "invalid number"),
    (["runqslower", "1.5"], "invalid number"),
    (["runqslower", "-p", "junk"], "invalid integer"),
    (["runqslower", "-p", "0"], "must be positive"),
    (["runqslower", "-t", "-1"], "must be positive"),
    (["runqslower", "-p", "1", "-t", "2"], "not allowed with argument"),
    (["runqslower", "100", "200"], "unrecognized arguments: 200"),
    (["runqslower", "--bogus"], "unrecognized arguments: --bogus"),
    (["runqslower", "-p"], "expected one argument"),
    (["runqslower", "--json", "-L"], "unrecognized arguments: -L"),
]


@pytest.mark.parametrize("args, message", USAGE, ids=[" ".join(a) or "none" for a, _ in USAGE])
def test_usage_errors(args, message):
    out = cli.run(*args)
    tool = f"pyrunq {args[0]}" if args and args[0] in ("runqlat", "runqslower") else "pyrunq"
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [out.stderr.rstrip("\n")], out.stderr
    assert out.stderr.startswith(f"{tool}: error: ") and message in out.stderr, out.stderr


RUNTIME = [  # (id, arguments, environment, as uid 65534, what stderr names); all exit 1
    (
        "no-btf-runqlat",
        ["runqlat", "1", "1"],
        {"PYRUNQ_BTF": "/nonexistent/vmlinux"},
        False,
        "this kernel has no BTF at /nonexistent/vmlinux; pyrunq needs CONFIG_DEBUG_INFO_BTF=y",
    ),
    (
        "no-btf-runqslower",
        ["runqslower"],
        {"PYRUNQ_BTF": "/nonexistent/vmlinux"},
        False,
        "has no BTF at /nonexistent/vmlinux",
    ),
    (
        "corrupt-btf",
        ["runqlat", "1", "1"],
        {"PYRUNQ_BTF": "/etc/hostname"},
        False,
        "no valid BTF (bad magic) at /etc/hostname",
    ),
    (
        "no-libbpf",
        ["runqlat", "1", "1"],
        {"PYRUNQ_LIBBPF": "/nonexistent/libbpf.so.1"},
        False,
        "cannot load libbpf from PYRUNQ_LIBBPF: /nonexistent/libbpf.so.1",
    ),
    (
        "libbpf-not-a-library",
        ["runqslower"],
        {"PYRUNQ_LIBBPF": "/etc/hostname"},
        False,
        "cannot load libbpf from PYRUNQ_LIBBPF",
    ),
    ("libbpf-too-old", ["runqlat", "1", "1"], {"PYRUNQ_LIBBPF": "<old>"}, False, "libbpf is too old"),
    (
        "unprivileged-runqlat",
        ["runqlat", "1", "1"],
        {},
        True,
        "needs root, or CAP_BPF and CAP_PERFMON",
    ),
    (
        "unprivileged-runqslower",
        ["runqslower"],
        {},
        True,
        "needs root, or CAP_BPF and CAP_PERFMON",
    ),
    ("corrupt-object", ["runqlat", "1", "1"], {"PYTHONPATH": "<broken>"}, False, "open BPF object"),
    (
        "missing-object",
        ["runqslower"],
        {"PYTHONPATH": "<broken>"},
        False,
        "find packaged object 'runqslower'",
    ),
]


@pytest.mark.parametrize(
    "args, env, as_nobody, message", [r[1:] for r in RUNTIME], ids=[r[0] for r in RUNTIME]
)
def test_runtime_errors(kernel, fake_old_libbpf, broken_package, request, args, env, as_nobody, message):
    env = {k: {"<old>": fake_old_libbpf, "<broken>": broken_package}.get(v, v) for k, v in env.items()}
    out = subprocess.run(
        request.getfixturevalue("unprivileged").cmd(*args) if as_nobody else cli.cmd(*args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        cwd="/",
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [out.stderr.rstrip("\n")], out.stderr
    assert out.stderr.startswith(f"pyrunq {args[0]}: error: ") and message in out.stderr, out.stderr
    assert out.stdout == ""


def test_verbose_shows_the_traceback_and_libbpf_log(kernel, unprivileged):
    out = subprocess.run(
        unprivileged.cmd("runqlat", "-v", "1", "1"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "BPFPermissionError" in out.stderr
    assert "pyrunq.libbpf: " in out.stderr


# (arguments, the line to wait for before the signal; None: ends by itself)
WITH_BPF_CAPS = [
    (["runqlat", "1", "1"], None),
    (["runqlat", "-L", "--json", "1", "1"], None),
    (["runqslower", "-P", "0"], r"^\d\d:\d\d:\d\d "),
    (["bootstrap"], r"^\d\d:\d\d:\d\d EXIT  true "),
]


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
@pytest.mark.parametrize("args, row", WITH_BPF_CAPS, ids=[" ".join(a) for a, _ in WITH_BPF_CAPS])
def test_commands_work_with_only_cap_bpf_and_cap_perfmon(kernel, unprivileged, args, row):
    with Command(unprivileged.cmd(*args, caps=BPF_CAPS), cwd="/") as p:
        if row:
            p.wait_line("^TIME ")  # attached
            if args[0] == "bootstrap":
                subprocess.run(["true"])  # an exec and an exit to report
            p.wait_line(row)
        rc, out, err = p.finish(signal.SIGINT if row else None)
    assert rc == 0, err
    assert len(out.splitlines()) >= 3, out


UPROBE_TOOLS = [  # (arguments, the last line of the output of a run that works)
    (["funclatency", "c:getppid", "1", "1"], r"Detaching\.\.\."),
    (["stackcount", "c:getppid", "1"], r"Detaching\.\.\."),
    # its target sleeps: nothing allocated, the report's heading alone
    (
        ["memleak", "-p", "SLEEPER", "1", "1"],
        r"\[\d\d:\d\d:\d\d\] Top 10 stacks with outstanding allocations:",
    ),
]


@pytest.fixture
def sleeper():
    """A process of nobody's to trace (memleak reads its /proc/PID/maps)."""
    p = subprocess.Popen(UNPRIVILEGED + NO_CAPS + ["sleep", "60"])
    yield lambda args: [str(p.pid) if a == "SLEEPER" else a for a in args]
    p.kill()
    p.wait()


@pytest.mark.parametrize("args", [a for a, _ in UPROBE_TOOLS], ids=lambda a: a[0])
def test_uprobe_tools_need_cap_sys_admin_and_say_so(kernel, unprivileged, sleeper, args):
    out = subprocess.run(
        unprivileged.cmd(*sleeper(args), caps=BPF_CAPS),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1, out.stderr
    assert "uprobes need root, or CAP_SYS_ADMIN with CAP_BPF and CAP_PERFMON" in out.stderr


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
@pytest.mark.parametrize("args, last", UPROBE_TOOLS, ids=[a[0] for a, _ in UPROBE_TOOLS])
def test_uprobe_tools_work_with_cap_sys_admin_bpf_perfmon(kernel, unprivileged, sleeper, args, last):
    caps = [c.replace("+perfmon", "+perfmon,+sys_admin") for c in BPF_CAPS]
    out = subprocess.run(
        unprivileged.cmd(*sleeper(args), caps=caps), capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(last, out.stdout.splitlines()[-1]), out.stdout


INTERRUPTED = [
    ["runqlat"],
    ["runqlat", "-L", "1"],
    ["runqlat", "--cgroups", "--json", "1"],
    ["runqlat", "-m", "-P", "1", "10"],
    ["runqslower", "0"],
    ["runqslower", "-P", "100"],
    ["runqslower", "--json", "0"],
    ["runqlat", "-c", "/", "1"],
    ["bootstrap"],
    ["bootstrap", "--json"],
    ["funclatency", "c:getppid"],
    # malloc only in this process: probed in every process, each malloc of
    # the other tracers here would trap into the kernel
    ["funclatency", "--json", "-u", "-p", str(os.getpid()), "c:malloc", "1"],
    ["stackcount", "c:getppid"],
    ["stackcount", "--json", "-p", str(os.getpid()), "c:malloc"],
    ["memleak", "-p", str(os.getpid()), "1"],
]


LOSS_REPORT = re.compile(
    r"pyrunq \w+: (lost \d+ events|\d+ calls not (counted|timed)"
    r"|\d+ allocations not tracked)"
)


@pytest.mark.slow
def test_interrupted_at_random_moments_200_times(kernel):
    rng = random.Random(7)
    runs, live = 200, []
    results = []
    try:
        while runs or live:
            while runs and len(live) < 4:
                runs -= 1
                args = rng.choice(INTERRUPTED)
                p = subprocess.Popen(
                    cli.cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
                live.append(
                    (p, time.monotonic() + rng.uniform(0, 0.8), rng.choice([signal.SIGINT, signal.SIGTERM]))
                )
            time.sleep(0.01)
            for entry in list(live):
                p, when, signum = entry
                if time.monotonic() >= when:
                    p.send_signal(signum)
                    results.append((p.args, p.communicate(timeout=30)[1], p.wait()))
                    live.remove(entry)
    finally:  # a failure must not leave tracers behind
        for p, _, _ in live:
            p.kill()
            p.wait()
    for args, err, rc in results:
        if rc == 0:  # nothing but the banner (--json writes it to stderr) and loss reports
            assert all(line.startswith("Tracing ") or LOSS_REPORT.match(line) for line in err.splitlines()), (
                args,
                err,
            )
        else:  # a signal before pyrunq's handlers exist: the interpreter's default
            assert rc in (1, -signal.SIGINT, -signal.SIGTERM), (args, rc, err)
            assert rc < 0 or err.rstrip().endswith("KeyboardInterrupt"), (args, err)
    assert len(results) == 200
    assert sum(rc == 0 for _, _, rc in results) > 150


@pytest.mark.slow
def test_overload_threshold_zero_for_a_minute(kernel):
    """runqslower 0 under heavy context switching: no crash, bounded memory,
    every event that arrives intact, losses counted and reported."""
    load = subprocess.Popen([need("stress-ng"), "--switch", "2", "--timeout", "70s", "--quiet"])
    p = subprocess.Popen(
        cli.cmd("runqslower", "--json", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline, rss, lines = time.monotonic() + 60, [], 0
        for line in p.stdout:
            json.loads(line)  # intact
            lines += 1
            if lines % 20000 == 0:
                rss.append(int(open(f"/proc/{p.pid}/statm").read().split()[1]) * 4096)
                if time.monotonic() > deadline:
                    break
        p.send_signal(signal.SIGINT)
        # read on through the same buffered file: communicate() would skip
        # what its read-ahead already holds
        for line in p.stdout:
            json.loads(line)
        err = p.stderr.read()
        p.wait(timeout=60)
    finally:
        load.kill()
        load.wait()
        p.kill()
    assert p.returncode == 0, err
    assert lines > 100_000
    assert max(rss) < 80 * 2**20, rss
    reports = [line for line in err.splitlines() if line]
    assert all(
        line.startswith("pyrunq runqslower: lost ") or line.startswith("Tracing") for line in reports
    ), err
    # Python cannot keep up with every switch of this load: losses must show,
    # while it runs (at most once a second) and in total at exit
    assert any(line.endswith("events so far (ring buffer full)") for line in reports), err
    assert reports[-1].endswith("events in all (ring buffer full)"), err
