"""Measuring one process: start it, see it attach, read its BPF programs'
kernel statistics, stop it, and collect its rusage. Plus the guards that keep
the machine as the suite found it (bpf_stats sysctl, BPF programs loaded)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"
TICK = os.sysconf("SC_CLK_TCK")


def _child_setup():
    # A shell that started us with `&` leaves SIGINT ignored, and exec keeps
    # that: every tool must stop on SIGINT as at a terminal (bcc's above all).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Tracer:
    """One tool run in its own process group.

    stdout: None (a pseudo-terminal: C stdio line-buffers as at a terminal,
    so the banner shows when printed; lines kept in ``lines``) or an open
    file. ``t0`` is taken just before exec, so start-up includes it.
    """

    def __init__(self, argv, stdout=None, env=None):
        self.argv = argv
        self.lines: list[str] = []
        self.stderr = open(f"/tmp/pyrunq-bench-{os.getpid()}-{id(self)}.err", "w+")
        master = slave = None
        if stdout is None:
            master, slave = pty.openpty()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdout=slave if stdout is None else stdout,
            stderr=self.stderr,
            env={**os.environ, **(env or {})},
            preexec_fn=_child_setup,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.rusage = None
        self.hwm_kb = 0
        self._banner = threading.Event()
        self._reader = None
        if stdout is None:
            os.close(slave)
            self._reader = threading.Thread(target=self._read, args=(master,), daemon=True)
            self._reader.start()

    def _read(self, fd: int):
        with open(fd, "rb", buffering=0) as f:
            buf = b""
            while True:  # keeps draining: the child never blocks on us
                try:
                    data = f.read(65536)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    return
                buf += data
                *done, buf = buf.split(b"\n")
                for line in done:
                    line = line.decode(errors="replace").rstrip("\r")
                    if self.lines or line.startswith(("Tracing", "Sampling")):
                        self.lines.append(line)
                        self._banner.set()

    def wait_banner(self, timeout: float = 60) -> float:
        """Seconds from exec to the banner line (printed once attached)."""
        if not self._banner.wait(timeout):
            raise RuntimeError(f"{self.argv[0]}: no banner within {timeout}s: {self.error_tail()}")
        return time.monotonic() - self.t0

    def wait_attached(self, nprogs: int, timeout: float = 60) -> float:
        """Seconds until the process holds ``nprogs`` attached links/programs
        (for output redirected to a file, where stdio buffers the banner)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited early: {self.error_tail()}")
            if len(self.links()) >= nprogs:
                return time.monotonic() - self.t0
            time.sleep(0.01)
        raise RuntimeError(f"{self.argv[0]}: not attached within {timeout}s")

    def _fdinfo(self):
        base = f"/proc/{self.pid}/fdinfo"
        try:
            fds = os.listdir(base)
        except OSError:
            return
        for fd in fds:
            try:
                with open(f"{base}/{fd}") as f:
                    yield f.read()
            except OSError:
                continue

    def prog_ids(self) -> set[int]:
        """The BPF programs this process holds (program and link fds): only
        these are counted, whatever else runs on the machine."""
        return {int(m) for info in self._fdinfo() for m in re.findall(r"^prog_id:\s*(\d+)", info, re.M)}

    def links(self) -> set[int]:
        """Programs attached through a BPF link this process holds."""
        return {
            int(m)
            for info in self._fdinfo()
            if "link_id:" in info
            for m in re.findall(r"^prog_id:\s*(\d+)", info, re.M)
        }

    def cpu_seconds(self) -> float:
        """user + sys CPU so far, from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def sample_hwm(self) -> None:
        """Peak RSS of the tool's own image: VmHWM belongs to the mm made at
        exec. (ru_maxrss would not do: exec records the forking parent's
        peak RSS into it, so a tool started from a 30 MB Python looks 30 MB.)"""
        with contextlib.suppress(OSError, AttributeError):
            with open(f"/proc/{self.pid}/status") as f:
                kb = int(re.search(r"^VmHWM:\s*(\d+)", f.read(), re.M).group(1))
            self.hwm_kb = max(self.hwm_kb, kb)

    def wait(self, timeout: float) -> float:
        """Wait for a run that ends by itself; returns its wall time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sample_hwm()  # the last sample is within 5 ms of the exit
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                return self._reaped(status, ru)
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.argv[0]}: still running after {timeout}s")

    def _reaped(self, status, ru) -> float:
        wall = time.monotonic() - self.t0
        self.rusage, self.proc.returncode = ru, os.waitstatus_to_exitcode(status)
        if self._reader:
            self._reader.join(5)
        return wall

    def stop(self, timeout: float = 15) -> float:
        """SIGINT the group (the tools' own clean exit), then SIGTERM, SIGKILL."""
        if self.rusage is not None:
            return 0.0
        self.sample_hwm()
        for sig, grace in ((signal.SIGINT, timeout), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                pid, status, ru = os.wait4(self.pid, os.WNOHANG)
                if pid:
                    return self._reaped(status, ru)
                time.sleep(0.01)
        raise RuntimeError(f"{self.argv[0]} (pid {self.pid}) would not die")

    @property
    def maxrss_mb(self) -> float:
        return self.hwm_kb / 1024

    @property
    def cpu_total(self) -> float:
        return self.rusage.ru_utime + self.rusage.ru_stime

    def error_tail(self, n: int = 5) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return " | ".join(self.stderr.read().strip().splitlines()[-n:])

    def stderr_text(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def close(self):
        try:
            self.stop()
        finally:
            self.stderr.close()
            with contextlib.suppress(OSError):
                os.unlink(self.stderr.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- BPF programs in the kernel ---------------------------------------------


def bpftool_progs() -> dict[int, dict]:
    out = subprocess.run(
        ["bpftool", "prog", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return {p["id"]: p for p in json.loads(out or "[]")}


def prog_stats(ids) -> dict[int, tuple[str, int, int]]:
    """id -> (name, run_time_ns, run_cnt), read from the kernel."""
    progs = bpftool_progs()
    return {
        i: (progs[i].get("name", "?"), progs[i].get("run_time_ns", 0), progs[i].get("run_cnt", 0))
        for i in ids
        if i in progs
    }


def classify(name: str) -> str:
    """sched_switch / sched_wakeup / sched_wakeup_new / sched_migrate_task
    handler, by program name."""
    if "switch" in name:
        return "switch"
    if "migrate" in name:
        return "migrate"
    return "wakeup_new" if "wakeup_new" in name or name.endswith("_ne") else "wakeup"


def run_totals(before: dict, after: dict) -> dict[str, tuple[int, int]]:
    """(ns, runs) between two prog_stats() per kind of handler, and "all"."""
    sums: dict[str, list[int]] = {}
    for i, (name, ns, runs) in after.items():
        for key in (classify(name), "all"):
            s = sums.setdefault(key, [0, 0])
            s[0] += ns - before[i][1]
            s[1] += runs - before[i][2]
    return {key: (ns, runs) for key, (ns, runs) in sums.items()}


@contextlib.contextmanager
def bpf_stats_enabled():
    """kernel.bpf_stats_enabled=1 for the block, then the old value again."""
    with open(BPF_STATS) as f:
        old = f.read().strip()
    with open(BPF_STATS, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(BPF_STATS, "w") as f:
            f.write(old)


def held_by_others(exclude: set[int]) -> set[int]:
    """Program ids whose fds live processes other than ``exclude`` hold."""
    ids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in exclude:
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fdinfo"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    ids |= {int(m) for m in re.findall(r"^prog_id:\s*(\d+)", f.read(), re.M)}
    return ids


class LeakCheck:
    """Programs loaded before the suite vs after. Other engineers' tools may
    come and go meanwhile: a new program still held by some other live
    process is theirs; one held by nobody, or one our tools held, leaked."""

    def __init__(self):
        self.before = set(bpftool_progs())
        self.ours: set[int] = set()

    def check(self, timeout: float = 5) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            now = set(bpftool_progs())
            leaked = sorted((now & self.ours) | ((now - self.before) - held_by_others({os.getpid()})))
            if not leaked or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return {"before": len(self.before), "after": len(now), "ours_seen": len(self.ours), "leaked": leaked}


# -- numbers ------------------------------------------------------------------


def summary(samples) -> dict | None:
    xs = [x for x in samples if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs), "samples": xs}


def ratios(a, b) -> list:
    """Pair by pair, same repetition: a[i] / b[i]."""
    return [x / y for x, y in zip(a, b) if x is not None and y]


def write_result(path, doc: dict) -> int:
    """Write a bench's results (``doc``, with its ``leak_check``) as JSON at
    ``path``; the exit status: 1 if BPF programs were left in the kernel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
    if doc["leak_check"]["leaked"]:
        print(f"BPF programs left in the kernel: {doc['leak_check']['leaked']}", file=sys.stderr)
        return 1
    return 0
