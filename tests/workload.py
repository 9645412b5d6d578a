"""Run queue delay that the kernel guarantees, for kernel tests.

Victims sleep a millisecond and wake, over and over, pinned to one CPU. A hog
on the same CPU runs at SCHED_FIFO priority in bursts of BURST_S seconds with
IDLE_S pauses: a normal task woken during a burst cannot run before the burst
ends, whatever the scheduler's heuristics or other tenants do, so about one
wakeup in four waits several milliseconds. A real-time victim with no hog
(``Quiet``) preempts every normal task at once and hardly ever waits.

Every process names itself (``/proc/self/comm``), so tests never depend on
how the interpreter was started, and exits when the test process dies.
"""

from __future__ import annotations

import os
import subprocess
import sys

VICTIM_COMM = "pyrunq-victim"
HOG_COMM = "pyrunq-hog"
BURST_S, IDLE_S = 0.008, 0.004
# a runqslower threshold for these workloads: a hog's burst is above it, the
# tracer's own wake-ups are well below it (see NOTES.md)
THRESHOLD_US = 1000

_PRELUDE = """import os, time
open('/proc/self/comm', 'w').write({comm!r})
parent = os.getppid()
print('ready', flush=True)
"""
VICTIM = (
    _PRELUDE
    + """while os.getppid() == parent:
    time.sleep({period})
"""
)
HOG = (
    _PRELUDE
    + """while os.getppid() == parent:
    end = time.monotonic() + {burst}
    while time.monotonic() < end:
        pass
    time.sleep({idle})
"""
)


def spawn(code: str, cpu: int, fifo: bool = False, nice: int = 0, batch: bool = False) -> subprocess.Popen:
    """A Python process running ``code`` on ``cpu``, once it printed 'ready'."""

    def setup():
        os.sched_setaffinity(0, {cpu})
        if fifo:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        if batch:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        if nice:
            os.nice(nice)

    p = subprocess.Popen([sys.executable, "-c", code], preexec_fn=setup, stdout=subprocess.PIPE)
    if p.stdout.readline() != b"ready\n":
        p.kill()
        raise AssertionError(f"{code!r} did not start: exit {p.wait()}")
    return p


def victim(
    cpu: int, comm: str = VICTIM_COMM, period: float = 0.001, fifo: bool = False, batch: bool = False
) -> subprocess.Popen:
    return spawn(VICTIM.format(comm=comm, period=period), cpu, fifo, batch=batch)


class Workload:
    """Processes that are killed together at the end of a ``with`` block."""

    def __init__(self, procs: list[subprocess.Popen]):
        self.procs = procs

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
            p.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Contention(Workload):
    """``with Contention() as w:`` ``w.victim`` (and ``w.victims``) wait on
    ``cpu``'s run queue behind ``w.hog``; ``hog=False``: victims alone.
    ``realtime``: the victims are SCHED_FIFO too, at the hog's priority, so
    they wait behind the hog alone (a woken one waits out the burst, then
    runs before every normal task): who held the CPU is known, whatever else
    the machine runs."""

    def __init__(self, cpu: int = 0, victims: int = 1, hog: bool = True, realtime: bool = False):
        # victims first: an interpreter starting behind a hog is slow to start
        self.victims = [victim(cpu, fifo=realtime) for _ in range(victims)]
        self.victim = self.victims[0]
        self.hog = (
            spawn(HOG.format(comm=HOG_COMM, burst=BURST_S, idle=IDLE_S), cpu, fifo=True) if hog else None
        )
        super().__init__(self.victims + ([self.hog] if hog else []))


class Quiet(Workload):
    """A real-time victim alone on ``cpu``: its waits are microseconds."""

    def __init__(self, cpu: int = 1):
        self.victim = victim(cpu, fifo=True)
        super().__init__([self.victim])


PINGPONG_COMM = "pyrunq-pingpong"
# Two real-time processes that hand a byte back and forth through pipes in
# bursts: each round trip is two switches, so a task that waits during a
# burst waits across far more run segments than the kernel keeps per CPU.
PINGPONG = """import os, time
open('/proc/self/comm', 'w').write({comm!r})
parent = os.getppid()
a, b = os.pipe(), os.pipe()
if os.fork() == 0:
    os.close(a[1])
    while os.read(a[0], 1):  # b'': the parent is gone
        os.write(b[1], b'x')
    os._exit(0)
os.close(a[0])
print('ready', flush=True)
while os.getppid() == parent:
    end = time.monotonic() + {burst}
    while time.monotonic() < end:
        os.write(a[1], b'x')
        os.read(b[0], 1)
    time.sleep({idle})
"""


BUSY = (
    _PRELUDE
    + """while os.getppid() == parent:
    pass
"""
)


def busy(cpu: int, comm: str, nice: int = 0) -> subprocess.Popen:
    """A normal task that never sleeps, on ``cpu``, at ``nice``."""
    return spawn(BUSY.format(comm=comm), cpu, nice=nice)


class PingPong(Workload):
    """``with PingPong() as w:`` ``w.victim`` waits on ``cpu`` behind bursts
    of ``w.pair``, two real-time processes switching every few microseconds.
    (The victim stays a normal task: a real-time one would run between two
    of their switches, as FIFO queues it, instead of waiting out the burst.)"""

    def __init__(self, cpu: int = 0):
        self.victim = victim(cpu)
        self.pair = spawn(PINGPONG.format(comm=PINGPONG_COMM, burst=BURST_S, idle=IDLE_S), cpu, fifo=True)
        super().__init__([self.victim, self.pair])


SLICER_COMM = "pyrunq-slicer"
# A real-time task that runs `run` seconds and sleeps `sleep` seconds, over
# and over: no normal task can cut a run short, so each time it is on the CPU
# it stays there `run` seconds (plus the few microseconds of a sleep call),
# and each time off it about `sleep` (an RT task has no timer slack).
SLICER = (
    _PRELUDE
    + """while os.getppid() == parent:
    end = time.monotonic() + {run}
    while time.monotonic() < end:
        pass
    time.sleep({sleep})
"""
)


def slicer(cpu: int, run: float, sleep: float, comm: str = SLICER_COMM) -> Workload:
    """``with slicer(...) as w:`` ``w.procs[0]`` runs ``run`` s slices on ``cpu``."""
    return Workload([spawn(SLICER.format(comm=comm, run=run, sleep=sleep), cpu, fifo=True)])


def busy_loops(cpu: int, n: int, comm: str = "pyrunq-busy") -> Workload:
    """``n`` normal tasks that never sleep, all on ``cpu``: each run ends when
    the scheduler takes the CPU for another, and ``n`` are runnable there."""
    return Workload([busy(cpu, comm) for _ in range(n)])
