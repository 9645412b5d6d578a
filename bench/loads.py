"""Workloads, each bounded in time and killed with its process group."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path("/var/tmp/pyrunq-bench")


class Load:
    """A load generator in its own session (so its workers die with it)."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, text=True
        )

    def wait(self, timeout: float):
        try:
            self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def ctxt() -> int:
    """Context switches so far, whole machine."""
    with open("/proc/stat") as f:
        return int(re.search(r"^ctxt (\d+)", f.read(), re.M).group(1))


def pipe_load(seconds: float) -> float:
    """The standard scheduler load: one stress-ng pipe worker pair pinned to
    CPU 0 (each write wakes the reader: wakeup + switch per message).
    Returns its throughput, bogo ops/s (real time)."""
    with tempfile.NamedTemporaryFile(suffix=".yaml") as y:
        with Load(
            [
                "taskset",
                "-c",
                "0",
                "stress-ng",
                "--pipe",
                "1",
                "-t",
                f"{seconds}s",
                "-q",
                "--metrics-brief",
                "--yaml",
                y.name,
            ]
        ) as load:
            load.wait(seconds + 30)
        m = re.search(r"bogo-ops-per-second-real-time:\s*([\d.]+)", Path(y.name).read_text())
    if not m:
        raise RuntimeError("stress-ng wrote no throughput")
    return float(m.group(1))


def switch_load(seconds: float, freq: int = 0) -> tuple[float, float]:
    """Heavy context switching: a stress-ng switch pair pinned to CPU 0,
    at most ``freq`` switches/s (0: as fast as it goes). Returns (seconds,
    context switches/s the machine made meanwhile)."""
    argv = ["taskset", "-c", "0", "stress-ng", "--switch", "1", "-t", f"{seconds}s", "-q"]
    if freq:
        argv += ["--switch-freq", str(freq)]
    c0, t0 = ctxt(), time.monotonic()
    with Load(argv) as load:
        load.wait(seconds + 30)
    dt = time.monotonic() - t0
    return dt, (ctxt() - c0) / dt


def threads_binary() -> str:
    """bench/threads.c, compiled once into the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "threads"
    src = HERE / "threads.c"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-Wall", "-pthread", "-o", str(out), str(src)], check=True)
    return str(out)


@contextlib.contextmanager
def live_threads(n: int, seconds: int, period_ms: int = 100):
    """n threads sleeping/waking every period_ms, for at most ``seconds``."""
    load = Load([threads_binary(), str(n), str(period_ms), str(seconds)])
    try:
        line = load.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"threads helper failed to start {n} threads")
        time.sleep(period_ms / 1000 * 3)  # every thread has woken a few times
        yield load.proc.pid
    finally:
        load.kill()
