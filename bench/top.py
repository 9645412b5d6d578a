#!/usr/bin/env python3
"""pyrunq top's cost per refresh, beside `runqlat -L` (C and pyrunq), with
many live threads: one row (or histogram) per thread each interval.

    sudo .venv/bin/python bench/top.py [--threads N] [--repeat N] [--out DIR] [--baseline CHECKOUT]

bench/threads.c keeps N threads waking every 100 ms. Each tool runs twice
per repetition, for 1 and for 3 one-second intervals, its output to a file;
the difference of the two runs' CPU time, halved, is the cost of one
interval (reading the map, computing, printing) without the start-up.
Interleaved: C, pyrunq runqlat, pyrunq top, C, ... With --baseline, the
top of another checkout too (say git archive of main, built with build.py):
before and after in one run. Prints a table and writes
bench/results/<date>-<host>-top.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loads  # noqa: E402
import rivals  # noqa: E402
from measure import LeakCheck, Tracer, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# A run that has not ended by then is stopped, and its tool reported as
# unfinished and not run again: C runqlat's delete-after-read loop chases the
# keys that 10,000 waking threads keep re-creating (docs/performance.md).
RUN_TIMEOUT = 30


def tools(baseline: Path | None = None) -> dict:
    """name -> (argv before the interval count, env, what counts as one row:
    a line's start, None for top's rows, "" for a screen's, not counted).
    ``baseline``: another checkout (built: python build.py there) whose
    pyrunq top runs too, "(baseline)" rows: before and after in one run."""
    env = rivals.commands(None, None)["pyrunq"]["env"]
    out = {
        "runqlat -L (C)": (["/usr/sbin/runqlat", "-L", "1"], {}, "tid = "),
        "pyrunq runqlat -L": ([*rivals.pyrunq_cmd(), "runqlat", "-L", "1"], env, "tid = "),
        **top_tools(rivals.pyrunq_cmd(), env, ""),
    }
    if baseline is not None:  # its package first on the path, before this one's
        baseline_env = {**env, "PYTHONPATH": str(baseline.resolve() / "src")}
        out.update(top_tools([sys.executable, "-m", "pyrunq"], baseline_env, " (baseline)"))
    return out


def top_tools(pyrunq: list[str], env: dict, suffix: str) -> dict:
    # the screen as a person sees it: curses in a pseudo-terminal of 200x50
    # (script(1) gives it one; its own CPU is a rounding error)
    screen = " ".join(shlex.quote(a) for a in [*pyrunq, "top", "--by", "thread", "-d", "1", "-n"])
    return {
        f"pyrunq top -b --by thread{suffix}": (
            [*pyrunq, "top", "-b", "--by", "thread", "-d", "1", "-n"],
            env,
            None,
        ),
        f"pyrunq top --by thread (screen){suffix}": (
            ["script", "-qec", screen + " {n}", "/dev/null"],
            {**env, "TERM": "xterm-256color", "LINES": "50", "COLUMNS": "200"},
            "",
        ),
    }


def one_run(argv, env, count: int, row_prefix) -> dict | None:
    """CPU, wall time, rows printed and peak RSS of one run; None if it did not end."""
    if any("{n}" in a for a in argv):
        argv = [a.replace("{n}", str(count)) for a in argv]
    else:
        argv = [*argv, str(count)]
    with tempfile.NamedTemporaryFile("w+", prefix="pyrunq-bench-", suffix=".out") as out:
        with Tracer(argv, stdout=out, env=env) as t:
            try:
                wall = t.wait(RUN_TIMEOUT)
            except RuntimeError:  # stopped by wait()
                return None
        text = Path(out.name).read_text()
    if row_prefix:
        rows = sum(1 for line in text.splitlines() if line.startswith(row_prefix))
    elif row_prefix == "":  # a screen: rows are drawn, not printed
        rows = 0
    else:  # top's rows: lines that start with an id
        rows = sum(1 for line in text.splitlines() if line[:9].strip().isdigit())
    return {"cpu_s": t.cpu_total, "wall_s": wall, "rows": rows, "rss_mb": t.maxrss_mb}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="directory of the JSON")
    ap.add_argument("--baseline", type=Path, help="also run pyrunq top of this (built) checkout")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.exit(2, "bench: needs root (BPF)\n")
    failed = rivals.ensure_packages(["libbpf-tools", "gcc", "bpftool"])  # bpftool: the leak check
    if failed:
        ap.exit(1, f"bench: cannot install {failed}\n")
    leaks, runs = LeakCheck(), {name: [] for name in tools(args.baseline)}
    unfinished: set[str] = set()
    per_rep = sum(2 * (RUN_TIMEOUT + 5) for _ in runs)
    with loads.live_threads(args.threads, seconds=30 + per_rep * args.repeat):
        for _ in range(args.repeat):
            for name, (base, env, prefix) in tools(args.baseline).items():
                one = None if name in unfinished else one_run(base, env, 1, prefix)
                three = one and one_run(base, env, 3, prefix)
                if not (one and three):
                    unfinished.add(name)
                    continue
                runs[name].append(
                    {
                        "interval_ms": (three["cpu_s"] - one["cpu_s"]) / 2 * 1e3,
                        "rows_per_interval": (three["rows"] - one["rows"]) / 2,
                        "runs": [one, three],
                    }
                )
    leak_check = leaks.check()
    median = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("interval_ms", "rows_per_interval")}
        for name, rs in runs.items()
        if rs
    }
    spread = {
        name: [min(r["interval_ms"] for r in rs), max(r["interval_ms"] for r in rs)]
        for name, rs in runs.items()
        if rs
    }
    print(f"{args.threads} live threads; CPU per one-second interval (median of {args.repeat}, min-max)")
    print(f"{'':44}{'CPU ms/interval':>16}{'min-max':>14}{'rows/interval':>15}{'us per row':>12}")
    for name, m in median.items():
        per_row = m["interval_ms"] * 1e3 / m["rows_per_interval"] if m["rows_per_interval"] else float("nan")
        low, high = spread[name]
        print(
            f"{name:44}{m['interval_ms']:>16.1f}{f'{low:.0f}-{high:.0f}':>14}"
            f"{m['rows_per_interval']:>15.0f}{per_row:>12.1f}"
        )
    for name in sorted(unfinished):
        print(f"{name:44}{f'did not end within {RUN_TIMEOUT} s':>57}")
    path = args.out / f"{time.strftime('%Y-%m-%d')}-{platform.node()}-top.json"
    doc = {"threads": args.threads, "repeat": args.repeat, "kernel": platform.release()}
    if args.baseline is not None:
        doc["baseline"] = str(args.baseline)
    doc.update(
        {
            "median": median,
            "spread_ms": spread,
            "unfinished": sorted(unfinished),
            "runs": runs,
            "leak_check": leak_check,
        }
    )
    return write_result(path, doc)


if __name__ == "__main__":
    sys.exit(main())
