#!/usr/bin/env python3
"""What attribution ("who held the CPU", bpf/blame.bpf.h) costs, side by side
in one run with the C runqlat and with pyrunq without it.

    sudo .venv/bin/python bench/blame.py [--repeat N] [--quick] [--baseline CHECKOUT]

Interleaved per repetition (C, pyrunq, pyrunq --blame, ...):
- in-kernel ns per program run (sched_switch, sched_wakeup, and with blame
  sched_migrate_task) under the standard load, a stress-ng pipe pair on
  CPU 0 (bench/loads.py); kernel.bpf_stats_enabled=1 only for that;
- that load's throughput with each tracer attached, as % of none;
- runqslower's user+sys CPU per event, ``runqslower 0`` against
  ``runqslower --blame 0``, pinned to CPU 1, a switch load on CPU 0.
Prints a table and writes bench/results/<date>-<host>-blame.json. For top's
cost per refresh (blame columns always on) run bench/top.py.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loads  # noqa: E402
import rivals  # noqa: E402
from measure import LeakCheck, Tracer, bpf_stats_enabled, prog_stats, run_totals, summary, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def tracers(baseline: Path | None = None) -> dict:
    """name -> (argv, env); every one prints a "Tracing ..." banner once
    attached. ``baseline``: another (built) checkout whose runqlat --blame
    runs too, "(baseline)": before and after in one run."""
    env = rivals.commands(None, None)["pyrunq"]["env"]
    pyrunq = rivals.pyrunq_cmd()
    out = {
        "C runqlat": (["/usr/sbin/runqlat"], {}),
        "pyrunq runqlat": ([*pyrunq, "runqlat"], env),
        "pyrunq runqlat --blame": ([*pyrunq, "runqlat", "--blame"], env),
        "pyrunq runqslower": ([*pyrunq, "runqslower"], env),
        "pyrunq runqslower --blame": ([*pyrunq, "runqslower", "--blame"], env),
    }
    if baseline is not None:  # its package first on the path, before this one's
        baseline_env = {**env, "PYTHONPATH": str(baseline.resolve() / "src")}
        out["pyrunq runqlat --blame (baseline)"] = (
            [sys.executable, "-m", "pyrunq", "runqlat", "--blame"],
            baseline_env,
        )
    return out


def in_kernel(argv, env, seconds: float, leaks: LeakCheck) -> dict:
    """ns per run of each kind of program, and the load's throughput."""
    with Tracer(argv, env=env) as t:
        t.wait_banner(60)
        ids = t.prog_ids()
        leaks.ours |= ids
        with bpf_stats_enabled():
            before = prog_stats(ids)
            loads.pipe_load(seconds)
            after = prog_stats(ids)
        ops = loads.pipe_load(seconds)
    out = {f"ns_per_run.{k}": ns / runs for k, (ns, runs) in run_totals(before, after).items() if runs}
    out["load_ops_per_s"] = ops
    return out


def cpu_per_event(argv, env, seconds: float, leaks: LeakCheck) -> float | None:
    """Tracer on CPU 1, every delay as an event, a switch load on CPU 0."""
    with tempfile.NamedTemporaryFile("w+", prefix="pyrunq-bench-", suffix=".out") as out:
        with Tracer(["taskset", "-c", "1", *argv, "0"], stdout=out, env=env) as t:
            t.wait_attached(3)
            leaks.ours |= t.prog_ids()
            time.sleep(0.2)
            n0, cpu0 = _lines(out.name), t.cpu_seconds()
            loads.switch_load(seconds, 20000)
            time.sleep(0.3)  # what is queued drains
            t.stop()
            events = _lines(out.name) - n0
    return (t.cpu_total - cpu0) / events * 1e6 if events else None


def _lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one repetition of 1 s loads")
    p.add_argument("--baseline", type=Path, help="also run runqlat --blame of this (built) checkout")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="directory of the JSON")
    args = p.parse_args(argv)
    repeat, seconds = (1, 1.0) if args.quick else (args.repeat, 3.0)
    rivals.ensure_packages(["stress-ng", "libbpf-tools", "bpftool"])
    leaks = LeakCheck()
    res: dict[str, dict[str, list]] = {}
    for _ in range(repeat):
        base = loads.pipe_load(seconds)
        res.setdefault("load_ops_per_s", {}).setdefault("none", []).append(base)
        for name, (cmd, env) in tracers(args.baseline).items():
            for k, v in in_kernel(cmd, env, seconds, leaks).items():
                v = 100 * v / base if k == "load_ops_per_s" else v
                res.setdefault(k.replace("load_ops_per_s", "load_pct"), {}).setdefault(name, []).append(v)
            if "runqslower" in name:
                us = cpu_per_event(cmd, env, seconds, leaks)
                res.setdefault("runqslower_cpu_us_per_event", {}).setdefault(name, []).append(us)
    table = {fig: {tool: summary(v) for tool, v in tools.items()} for fig, tools in res.items()}
    for fig, tools in table.items():
        print(fig)
        for tool, s in tools.items():
            if s:
                print(f"  {tool:36} {s['median']:12.1f}  ({s['min']:.1f}-{s['max']:.1f})")
    ratio = _blame_ratios(res)
    for k, v in ratio.items():
        print(f"{k}: {v}")
    doc = {
        "machine": platform.node(),
        "kernel": platform.release(),
        "repeat": repeat,
        "baseline": str(args.baseline) if args.baseline else None,
        "figures": table,
        "ratios": ratio,
        "leak_check": leaks.check(),
    }
    when = time.strftime("%Y-%m-%d")
    return write_result(args.out / f"{when}-{platform.node()}-blame.json", doc)


def _blame_ratios(res: dict) -> dict:
    """Pair by pair in one repetition: with blame over without, and over C."""
    out = {}
    for fig in ("ns_per_run.switch", "ns_per_run.wakeup", "runqslower_cpu_us_per_event"):
        row = res.get(fig, {})
        for tool in ("runqlat", "runqslower"):
            on, off = row.get(f"pyrunq {tool} --blame"), row.get(f"pyrunq {tool}")
            if on and off:
                out[f"{fig}: pyrunq {tool} --blame / without"] = _median_ratio(on, off)
        for tool in ("pyrunq runqlat --blame", "pyrunq runqlat --blame (baseline)"):
            if "C runqlat" in row and tool in row:
                out[f"{fig}: {tool} / C runqlat"] = _median_ratio(row[tool], row["C runqlat"])
    return out


def _median_ratio(a, b) -> float | None:
    pairs = [x / y for x, y in zip(a, b) if x is not None and y]
    return round(statistics.median(pairs), 3) if pairs else None


if __name__ == "__main__":
    sys.exit(main())
