#!/usr/bin/env python3
"""What the rest of the scheduler kit (cpudist, runqlen, offcputime, offwaketime) costs in
the kernel, side by side in one run with libbpf-tools' C tools where they load
(offwaketime has no C twin).

    sudo .venv/bin/python bench/sched_kit.py [--repeat N] [--quick]

Interleaved per repetition (C, pyrunq, for each tool): nanoseconds per run of
the tool's programs, all together, under the standard load (a stress-ng pipe
pair on CPU 0, bench/loads.py), with kernel.bpf_stats_enabled=1 only for
that; and the load's throughput with the tool attached, as % of none. A C
tool that does not load on this kernel (runqlen on 6.13+) is named as such.
Prints a table and writes bench/results/<date>-<host>-sched-kit.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loads  # noqa: E402
import rivals  # noqa: E402
from measure import LeakCheck, Tracer, bpf_stats_enabled, prog_stats, run_totals, summary, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# tool -> (the C tool's argv, pyrunq's arguments); each prints "Tracing ..."
# or "Sampling ..." once attached, but for the C tools in SILENT
TOOLS = {
    "cpudist": (["/usr/sbin/cpudist"], ["cpudist"]),
    "cpudist -O": (["/usr/sbin/cpudist", "-O"], ["cpudist", "-O"]),
    "runqlen": (["/usr/sbin/runqlen"], ["runqlen"]),
    "offcputime": (["/usr/sbin/offcputime"], ["offcputime"]),
    "offwaketime": (None, ["offwaketime"]),  # libbpf-tools has none (bcc #4041)
}
SILENT = {"/usr/sbin/offcputime"}  # Debian's prints no banner: wait for its one program instead


def load_failure(argv) -> str | None:
    """Why the C tool does not run here (one interval of it), or None."""
    once = ["1"] if argv[0] == "/usr/sbin/offcputime" else ["1", "1"]  # a duration, or interval and count
    done = subprocess.run([*argv, *once], capture_output=True, text=True, timeout=60)
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:200]


def in_kernel(argv, env, seconds: float, leaks: LeakCheck) -> dict:
    """ns per program run (all of the tool's programs), and the load's throughput."""
    with Tracer(argv, env=env) as t:
        if argv[0] in SILENT:
            t.wait_attached(1)
        else:
            t.wait_banner(60)
        ids = t.prog_ids()
        leaks.ours |= ids
        with bpf_stats_enabled():
            before = prog_stats(ids)
            loads.pipe_load(seconds)
            after = prog_stats(ids)
        ops = loads.pipe_load(seconds)
    ns, runs = run_totals(before, after).get("all", (0, 0))
    return {"ns_per_run": ns / runs if runs else None, "load_ops_per_s": ops}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one repetition of 1 s loads")
    args = p.parse_args(argv)
    repeat, seconds = (1, 1.0) if args.quick else (args.repeat, 3.0)
    rivals.ensure_packages(["stress-ng", "libbpf-tools", "bpftool"])
    env = rivals.commands(None, None)["pyrunq"]["env"]
    leaks = LeakCheck()
    res: dict[str, dict[str, list]] = {}
    failed = {f"C {tool}": "no such C tool" for tool, (c, _) in TOOLS.items() if c is None}
    failed |= {f"C {tool}": why for tool, (c, _) in TOOLS.items() if c and (why := load_failure(c))}
    for _ in range(repeat):
        base = loads.pipe_load(seconds)
        res.setdefault("load_pct", {}).setdefault("none", []).append(100.0)
        for tool, (c_argv, ours) in TOOLS.items():
            for name, cmd, e in (
                (f"C {tool}", c_argv, {}),
                (f"pyrunq {tool}", rivals.pyrunq_cmd() + ours, env),
            ):
                if name in failed:  # e.g. the C runqlen on 6.13+
                    continue
                got = in_kernel(cmd, e, seconds, leaks)
                res.setdefault("ns_per_run", {}).setdefault(name, []).append(got["ns_per_run"])
                res["load_pct"].setdefault(name, []).append(100 * got["load_ops_per_s"] / base)
    table = {fig: {tool: summary(v) for tool, v in tools.items()} for fig, tools in res.items()}
    for fig, tools in table.items():
        print(fig)
        for tool, s in tools.items():
            if s:
                print(f"  {tool:28} {s['median']:12.1f}  ({s['min']:.1f}-{s['max']:.1f})")
    ratios = {
        f"ns_per_run: pyrunq {tool} / C {tool}": _median_ratio(
            res["ns_per_run"].get(f"pyrunq {tool}"), res["ns_per_run"].get(f"C {tool}")
        )
        for tool in TOOLS
    }
    for k, v in ratios.items():
        print(f"{k}: {v}")
    for name, why in failed.items():
        print(f"{name}: does not run here: {why}")
    doc = {
        "machine": platform.node(),
        "kernel": platform.release(),
        "repeat": repeat,
        "figures": table,
        "ratios": ratios,
        "not_loaded": failed,
        "leak_check": leaks.check(),
    }
    when = time.strftime("%Y-%m-%d")
    return write_result(ROOT / "bench" / "results" / f"{when}-{platform.node()}-sched-kit.json", doc)


def _median_ratio(a, b) -> float | None:
    pairs = [x / y for x, y in zip(a or [], b or []) if x is not None and y]
    return round(statistics.median(pairs), 3) if pairs else None


if __name__ == "__main__":
    sys.exit(main())
