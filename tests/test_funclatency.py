"""funclatency on the real kernel: a test program's function, timed by uprobes."""

from __future__ import annotations

import json
import os

import pytest

import cli
from cli import assert_usage_error
from userprogs import Waiting


class Calls(Waiting):
    """foobar waiting to make ``calls`` calls of ``seconds`` each: ``go()``."""

    def __init__(self, binary: str, calls: int, seconds: float):
        super().__init__(binary, str(calls), str(seconds))

    def go(self) -> None:
        super().go(reply=False)
        self.finish()


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_one_second_calls_land_in_the_one_second_slot(kernel, foobar):
    from pyrunq.tools.funclatency import FuncLatency

    with Calls(foobar, 2, 1.0) as p, FuncLatency(f"{foobar}:Foo", pid=p.pid, unit="msecs") as fl:
        p.go()
        lat = fl.snapshot()
        assert lat.count == 2 and lat.missed == 0
        assert lat.slots[9] == 2 and sum(lat.slots) == 2  # 512 .. 1023 ms
        assert 2_000_000_000 <= lat.sum_ns < 2_500_000_000
        assert 1000 <= lat.average < 1250
        assert "512 -> 1023       : 2        |****************************************|" in lat.render()
        assert fl.snapshot().count == 0  # each snapshot is a difference


def test_units_and_a_bare_function_found_in_the_process(kernel, foobar):
    from pyrunq.tools.funclatency import FuncLatency

    with Calls(foobar, 3, 0.01) as p, FuncLatency("Bar", pid=p.pid, unit="usecs") as fl:
        assert fl.target.function == "Bar" and os.path.samefile(fl.target.path, foobar)
        p.go()
        lat = fl.snapshot()
    assert lat.count == 3 and lat.unit == "usecs"
    assert lat.slots[13] == 3  # 10 ms: 8192 .. 16383 us


def test_a_library_function_in_every_process(kernel):
    from pyrunq.tools.funclatency import FuncLatency

    with FuncLatency("c:getppid") as fl:
        assert fl.target.path.endswith("/libc.so.6")
        for _ in range(50):
            os.getppid()
        lat = fl.snapshot()
    assert lat.count >= 50 and sum(lat.slots) == lat.count


@pytest.mark.slow  # seconds of intervals: out of the quick loop
def test_command_prints_the_bcc_histogram_and_average(kernel, foobar):
    with Calls(foobar, 2, 1.0) as p, cli.spawn("funclatency", "-m", "-p", str(p.pid), "Foo", "4", "1") as cmd:
        cmd.wait_line("^Tracing ")
        assert cmd.out[0] == 'Tracing 1 functions for "Foo"... Hit Ctrl-C to end.'
        p.go()
        rc, out, err = cmd.finish()
    assert rc == 0, err
    lines = out.split("\n")[1:]  # after the banner
    assert lines[:2] == ["", "     msecs               : count     distribution"]
    assert lines[2] == "         0 -> 1          : 0        |                                        |"
    assert lines[11] == "       512 -> 1023       : 2        |****************************************|"
    assert lines[12] == ""
    assert lines[13].startswith("avg = 100") and lines[13].endswith(" msecs, count: 2")
    assert lines[14:] == ["", "Detaching...", ""]


@pytest.mark.slow  # seconds of intervals: out of the quick loop
def test_command_json(kernel, foobar):
    with (
        Calls(foobar, 1, 0.1) as p,
        cli.spawn("funclatency", "--json", "-u", "-p", str(p.pid), f"{foobar}:Foo", "3", "1") as cmd,
    ):
        cmd.wait_line("Tracing 1 functions", stream="err")  # JSON alone on stdout
        assert cmd.err[0].startswith("Tracing 1 functions"), cmd.err
        p.go()
        rc, out, err = cmd.finish()
    assert rc == 0, err
    doc = json.loads(out)
    assert (doc["function"], doc["unit"], doc["count"], doc["missed"]) == ("Foo", "usecs", 1, 0)
    assert doc["buckets"] == [{"low": 65536, "high": 131071, "count": 1}]  # 100 ms


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/binary:Foo"], "/no/such/binary: no such file"),
        (["FOOBAR:NoSuchFunction"], "no function 'NoSuchFunction' in"),
        (["-p", "999999999", "Foo"], "no process with PID 999999999"),
        (["Foo"], "give BINARY:FUNCTION, or -p PID"),
        (["/etc/passwd:Foo"], "/etc/passwd: not an ELF file"),
        (["nosuchlibrary:Foo"], "'nosuchlibrary': no such binary or library"),
        (["c:"], "no function name"),
        (["-m", "-u", "c:malloc"], "not allowed with argument"),
        (["c:malloc", "0"], "must be positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(foobar, args, message):
    assert_usage_error("funclatency", [a.replace("FOOBAR", foobar) for a in args], message)
