#!/usr/bin/env python3
"""funclatency side by side with libbpf-tools' C funclatency: what each adds
to every call of a traced user-space function, and what the tracer costs.

    sudo .venv/bin/python bench/uprobes.py [--calls N] [--repeat N] [--out DIR]

A C program (bench/calls.c) calls work() N times in a loop and reports the
wall time per call; it runs untraced, under the C tool and under pyrunq,
interleaved, --repeat times. Both tracers put a uprobe and a uretprobe on
work() of that one process, so the difference is the BPF programs and the
reading side. Prints a table and writes bench/results/<date>-<host>-uprobes.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import LeakCheck, Tracer, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
C_TOOL = "/usr/sbin/funclatency"
PYRUNQ = [sys.executable, "-m", "pyrunq", "funclatency"]


def build(workdir: str) -> str:
    binary = os.path.join(workdir, "calls")
    subprocess.run(["gcc", "-O2", "-o", binary, str(ROOT / "bench" / "calls.c")], check=True)
    return binary


def one_run(binary: str, calls: int, tracer: str | None) -> dict:
    """ns per call of the workload, and the tracer's start-up, CPU and peak RSS."""
    work = subprocess.Popen([binary, str(calls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert work.stdout.readline() == "ready\n"
    # work() in the binary of -p PID, in each tool's syntax
    argv = {
        None: None,
        "C": [C_TOOL, "-p", str(work.pid), ":work"],
        "pyrunq": [*PYRUNQ, "-p", str(work.pid), "work"],
    }[tracer]
    result: dict = {}
    t = Tracer(argv) if argv else None
    try:
        if t:
            result["startup_s"] = t.wait_attached(2)  # uprobe and uretprobe
        work.stdin.write("go\n")
        work.stdin.flush()
        result["ns_per_call"] = float(work.stdout.readline())
        work.wait(60)
        if t:
            time.sleep(0.2)
            t.stop()
            result["cpu_s"], result["rss_mb"] = t.cpu_total, t.maxrss_mb
            result["calls_seen"] = seen("\n".join(t.lines))
    finally:
        if t:
            t.close()
        work.kill()
    return result


def seen(text: str) -> int:
    """Calls the histogram counted: the sum of its rows."""
    return sum(
        int(line.split(":")[1].split()[0]) for line in text.splitlines() if "->" in line and ":" in line
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="directory for the results file"
    )
    args = ap.parse_args(argv)
    if not os.path.exists(C_TOOL):
        subprocess.run(["apt-get", "install", "-y", "-qq", "libbpf-tools"], check=True)
    leaks = LeakCheck()
    runs: dict[str, list[dict]] = {"none": [], "C": [], "pyrunq": []}
    with tempfile.TemporaryDirectory() as d:
        binary = build(d)
        for _ in range(args.repeat):
            for name in runs:
                runs[name].append(one_run(binary, args.calls, None if name == "none" else name))
    leak_check = leaks.check()
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    base = med["none"]["ns_per_call"]
    for name in ("C", "pyrunq"):
        med[name]["added_ns_per_call"] = med[name]["ns_per_call"] - base
    ratio = {
        k: med["pyrunq"][k] / med["C"][k]
        for k in ("added_ns_per_call", "startup_s", "cpu_s", "rss_mb")
        if med["C"][k]
    }
    print(f"{'':28}{'untraced':>10}{'C':>10}{'pyrunq':>10}{'pyrunq/C':>10}")
    print(
        f"{'ns per call':28}{base:>10.1f}{med['C']['ns_per_call']:>10.1f}"
        f"{med['pyrunq']['ns_per_call']:>10.1f}"
    )
    for key, label in (
        ("added_ns_per_call", "ns added per call"),
        ("startup_s", "start-up (s)"),
        ("cpu_s", "tracer CPU (s)"),
        ("rss_mb", "tracer peak RSS (MB)"),
        ("calls_seen", "calls counted (median)"),
    ):
        r = f"{ratio[key]:>10.2f}" if key in ratio else ""
        print(f"{label:28}{'':>10}{med['C'][key]:>10.3g}{med['pyrunq'][key]:>10.3g}{r}")
    out = args.out / f"{time.strftime('%Y-%m-%d')}-{platform.node()}-uprobes.json"
    doc = {
        "calls": args.calls,
        "repeat": args.repeat,
        "runs": runs,
        "median": med,
        "ratio_pyrunq_to_c": ratio,
        "kernel": platform.release(),
        "leak_check": leak_check,
    }
    return write_result(out, doc)


if __name__ == "__main__":
    sys.exit(main())
