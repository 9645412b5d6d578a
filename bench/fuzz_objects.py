#!/usr/bin/env python3
"""Hostile objects through ``pyrunq inspect`` and ``pyrunq run``: a longer
run of the fuzz test (tests/test_hostile.py), not part of CI.

    sudo .venv/bin/python bench/fuzz_objects.py [--mutants 3000] [--runs 200] [--first-seed 0]

Mutants of our own test objects (tests/objects, compiled here), seeds
first-seed.. in order (tests/mutants.py says what each seed does), each
through ``pyrunq inspect`` with a 10 s limit; the first ``--runs`` of them
also through ``pyrunq run --duration 1`` (root) with a 20 s limit. Prints
the figures (runs, clean errors, crashes, hangs, tracebacks, raw control
characters) and every failure with the seed that reproduces it.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from hostile import mutate_all, run_all  # noqa: E402
from testobjects import compile_all  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=200, help="how many of them also through pyrunq run")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        objects = compile_all(Path(tmp))
        seeds = range(args.first_seed, args.first_seed + args.mutants)
        files = mutate_all(objects, seeds, Path(tmp))
        start = time.monotonic()
        jobs = [("inspect", files, [], 10.0)]
        if args.runs and os.geteuid() == 0:
            jobs.append(("run", files[: args.runs], ["--duration", "1"], 20.0))
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            results = list(pool.map(lambda j: (j[0], run_all(*j, workers=args.workers)), jobs))
        took = time.monotonic() - start
    for tool, outcomes in results:
        counts = collections.Counter(o.verdict or ("ran" if o.code == 0 else "clean error") for o in outcomes)
        print(f"{tool}: {len(outcomes)} runs: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        for o in outcomes:
            if o.verdict:
                print(f"  {o.verdict}: {o.label}: {o.last_line}")
    print(f"{took:.0f} s")
    return 1 if any(o.verdict for _, outcomes in results for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
