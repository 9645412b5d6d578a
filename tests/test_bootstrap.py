"""bootstrap on the real kernel: execs and exits with codes and lifetimes,
the kernel-side duration filter, loss accounting, command line.

Other processes on the machine exec and exit all the time: every assertion
looks only at the processes this test started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from pyrunq.errors import UsageError
from pyrunq.tools.bootstrap import Bootstrap
import cli
from waiting import collect, wait_for

TRUE = "/bin/true"

# Sleeps argv[1] ms and exits with code argv[2]; a second thread starts and
# exits first, so its exit must not count as the process's.
LIFETIME_C = r"""
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *quit(void *arg) { return arg; }

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 3 || pthread_create(&t, NULL, quit, NULL) || pthread_join(t, NULL))
		return 100;
	usleep(atoi(argv[1]) * 1000);
	return atoi(argv[2]);
}
"""


@pytest.fixture(scope="module")
def lifetime(tmp_path_factory):
    """Path of the compiled LIFETIME_C program (its comm is "lifetime")."""
    d = tmp_path_factory.mktemp("bootstrap")
    (d / "lifetime.c").write_text(LIFETIME_C)
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(d / "lifetime"), str(d / "lifetime.c")], check=True)
    return str(d / "lifetime")


def run(*argv) -> int:
    """Run a command to its end; its PID."""
    p = subprocess.Popen(argv)
    p.wait()
    return p.pid


def exited(pid):
    return lambda events: any(e.exit_event and e.pid == pid for e in events)


def of(events, pid) -> list:
    return [e for e in events if e.pid == pid]


def test_exec_and_exit_of_a_child(kernel):
    with Bootstrap() as bs:
        pid = run(TRUE)
        events = of(collect(bs, exited(pid)), pid)
    assert [e.exit_event for e in events] == [0, 1]
    exec_, exit_ = events
    assert (exec_.comm, exec_.filename, exec_.ppid) == ("true", TRUE, os.getpid())
    assert (exit_.comm, exit_.ppid, exit_.exit_code, exit_.filename) == ("true", os.getpid(), 0, "")
    assert 0 < exit_.duration_ns < 60 * 10**9


def test_exit_code_and_lifetime_and_no_thread_exits(kernel, lifetime):
    with Bootstrap() as bs:
        pid = run(lifetime, "300", "7")
        events = of(collect(bs, exited(pid)), pid)
    assert [e.exit_event for e in events] == [0, 1]  # the thread's exit is not there
    assert events[0].filename == lifetime and events[0].comm == "lifetime"
    assert events[1].exit_code == 7
    assert events[1].duration_ns >= 300 * 10**6


def test_shell_exit_code_and_its_child(kernel):
    with Bootstrap() as bs:
        pid = run("sh", "-c", f"{TRUE}; exit 3")
        events = collect(bs, exited(pid))
    [shell] = [e for e in of(events, pid) if e.exit_event]
    assert shell.exit_code == 3 and shell.ppid == os.getpid()
    child = [e for e in events if e.ppid == pid]
    assert [(e.exit_event, e.comm) for e in child] == [(0, "true"), (1, "true")]


def started_before(code: int) -> subprocess.Popen:
    """A shell exec'd now (Popen returns after the exec) that exits with
    ``code`` once ``end()`` is called."""
    p = subprocess.Popen(["sh", "-c", f"read line; exit {code}"], stdin=subprocess.PIPE)
    p.end = lambda: (p.stdin.close(), p.wait())
    return p


def test_exec_before_tracing_has_an_unknown_lifetime(kernel):
    early = started_before(5)
    with Bootstrap() as bs:
        early.end()
        [e] = of(collect(bs, exited(early.pid)), early.pid)
    assert (e.exit_event, e.exit_code, e.duration_ns, e.comm) == (1, 5, 0, "sh")


def test_min_duration_shows_only_long_lived_exits(kernel, lifetime):
    early = started_before(0)  # lifetime unknown: not known to be long enough
    with Bootstrap(min_duration_ms=200) as bs:
        short = run(TRUE)
        early.end()
        long = run(lifetime, "300", "9")
        # the ring buffer is in order: anything of `short` came before `long`
        events = collect(bs, exited(long))
        events += bs.events(timeout=0.2)
    ours = [e for e in events if e.pid in (short, long, early.pid)]
    assert [(e.pid, e.exit_event, e.exit_code) for e in ours] == [(long, 1, 9)]
    assert ours[0].duration_ns >= 300 * 10**6


def test_full_ring_buffer_counts_lost_events_and_keeps_the_rest(kernel):
    with Bootstrap(ring_bytes=4096) as bs:
        pids = {run(TRUE) for _ in range(60)}  # nobody reads: the 4 KiB ring fills up
        assert bs.lost > 0
        assert bs.stop() > 0
        events = list(bs.events(timeout=0))
        assert bs.stats()["start_full"] == 0
    assert 0 < len(events) < 4096 // 256
    mine = [e for e in events if e.pid in pids]
    assert all(e.comm == "true" and e.ppid == os.getpid() for e in mine)


def test_callback_gets_every_event_and_close_is_idempotent(kernel):
    got: list = []
    bs = Bootstrap(callback=got.append)

    def arrived():
        bs.poll(0.1)  # hands what came to the callback
        return exited(pid)(got)

    try:
        pid = run(TRUE)
        wait_for(arrived, every=0, seen=lambda: got)
    finally:
        bs.close()
    bs.close()
    assert [e.exit_event for e in of(got, pid)] == [0, 1]


@pytest.mark.parametrize("value", [-1, 1.5, "10", True, None])
def test_bad_min_duration_is_refused_before_loading(value):
    with pytest.raises(UsageError, match="min_duration_ms"):
        Bootstrap(min_duration_ms=value)


def test_bad_ring_size_is_refused():
    with pytest.raises(UsageError, match="power of two"):
        Bootstrap(ring_bytes=5000)


# --- command line -------------------------------------------------------------


ROW = re.compile(r"^(\d\d:\d\d:\d\d) (EXEC |EXIT ) (.{16}) (\d+ *) (\d+ *) (.*)$")


def fields(line: str):
    m = ROW.match(line)
    assert m, line
    return [g.strip() for g in m.groups()]


def test_cli_rows_in_bootstrap_format(kernel, lifetime):
    with cli.spawn("bootstrap") as c:
        c.wait_line("^TIME ")  # written once attached
        pid = run(lifetime, "300", "4")
        c.wait_line(rf" EXIT  lifetime +{pid} ")
        rc, out, err = c.finish(signal.SIGINT)
    assert rc == 0 and err == ""
    header, *lines = out.splitlines()
    assert header == "%-8s %-5s %-16s %-7s %-7s %s" % (
        "TIME",
        "EVENT",
        "COMM",
        "PID",
        "PPID",
        "FILENAME/EXIT CODE",
    )
    rows = [fields(line) for line in lines if f" {pid} " in line]
    assert [r[1:5] for r in rows] == [
        ["EXEC", "lifetime", str(pid), str(os.getpid())],
        ["EXIT", "lifetime", str(pid), str(os.getpid())],
    ]
    assert rows[0][5] == lifetime
    code, ms = re.fullmatch(r"\[(\d+)\] \((\d+)ms\)", rows[1][5]).groups()
    assert code == "4" and int(ms) >= 300
    # every row, ours or not, has the format
    for line in lines:
        fields(line)


def test_cli_duration_filter(kernel, lifetime):
    with cli.spawn("bootstrap", "-d", "200") as c:
        c.wait_line("^TIME ")
        short = run(TRUE)
        long = run(lifetime, "300", "6")
        c.wait_line(f" {long} ")
        rc, out, err = c.finish(signal.SIGTERM)
    assert rc == 0 and err == ""
    lines = out.splitlines()[1:]  # after the header
    assert not any(f" {short} " in line for line in lines)
    assert all(fields(line)[1] == "EXIT" for line in lines)
    [mine] = [line for line in lines if f" {long} " in line]
    assert re.search(r" \[6\] \((\d+)ms\)$", mine)


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_cli_json_lines(kernel):
    with cli.spawn("bootstrap", "--json") as c:
        # no header in JSON: exec /bin/true until the tracer shows it is attached
        trues: set[int] = set()

        def attached():
            trues.add(run(TRUE))
            return any(json.loads(line)["pid"] in trues for line in list(c.out))

        wait_for(attached, every=0.5, seen=c.text)
        pid = run("sh", "-c", "exit 3")
        c.wait_line(rf'"pid": {pid}, .*"exit_code"')
        rc, out, err = c.finish(signal.SIGINT)
    assert rc == 0 and err == ""
    docs = [json.loads(line) for line in out.splitlines()]
    mine = [d for d in docs if d["pid"] == pid]
    assert [d["event"] for d in mine] == ["EXEC", "EXIT"]
    exec_, exit_ = mine
    assert set(exec_) == {"time", "event", "comm", "pid", "ppid", "filename"}
    assert exec_["filename"].endswith("sh") and exec_["ppid"] == os.getpid()
    assert set(exit_) == {"time", "event", "comm", "pid", "ppid", "exit_code", "duration_ns", "duration_ms"}
    assert exit_["exit_code"] == 3 and exit_["duration_ns"] > 0
    assert exit_["duration_ms"] == exit_["duration_ns"] // 10**6
    assert abs(exit_["time"] - time.time()) < 3600


USAGE = [
    (["-d", "-1"], "must be positive: '-1'"),
    (["-d", "0"], "must be positive: '0'"),
    (["-d", "abc"], "invalid integer: 'abc'"),
    (["-d", "1.5"], "invalid integer: '1.5'"),
    (["-d"], "expected one argument"),
    (["--duration", "x"], "invalid integer: 'x'"),
    (["100"], "unrecognized arguments: 100"),
    (["-p", "1"], "unrecognized arguments: -p 1"),
]


@pytest.mark.parametrize("args, message", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_cli_usage_errors(args, message):
    out = cli.run("bootstrap", *args)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.splitlines() == [out.stderr.rstrip("\n")], out.stderr
    assert out.stderr.startswith("pyrunq bootstrap: error: ") and message in out.stderr
