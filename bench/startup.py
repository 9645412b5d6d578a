#!/usr/bin/env python3
"""Where pyrunq's start-up goes: exec to the banner of the C tools and of
pyrunq, and of Python doing less and less of pyrunq's work, interleaved.

    sudo .venv/bin/python bench/startup.py [--repeat N]

Each case prints the banner line ("Tracing") when it gets there; the medians
show what each step adds (docs/performance.md, Findings).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import Tracer  # noqa: E402

VENV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv", "bin")
PY = os.path.join(VENV, "python")
IMPORTS = "import pyrunq.cli, pyrunq.cli.runqlat, pyrunq.tools.runqlat as m"
CASES = {
    "C runqlat": ["/usr/sbin/runqlat"],
    "pyrunq runqlat": [os.path.join(VENV, "pyrunq"), "runqlat"],
    "C runqslower": ["/usr/sbin/runqslower"],
    "pyrunq runqslower": [os.path.join(VENV, "pyrunq"), "runqslower"],
    "python, nothing": [PY, "-c", "print('Tracing')"],
    "python + argparse": [PY, "-c", "import argparse; print('Tracing')"],
    "+ pyrunq's imports": [PY, "-c", f"{IMPORTS}; print('Tracing')"],
    "+ RunqLat(), no CLI": [PY, "-c", f"{IMPORTS}; m.RunqLat().__enter__(); print('Tracing')"],
}
# bytecode cached, as a pip install leaves it (see docs/performance.md, Method)
ENV = {"PYTHONPYCACHEPREFIX": "/tmp/pyrunq-bench-pycache", "PYTHONDONTWRITEBYTECODE": ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=11, help="starts of each case (default 11)")
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeat + 1):  # the first round warms the caches, unrecorded
        for name, argv in CASES.items():
            with Tracer(argv, env=ENV) as t:
                ms = t.wait_banner() * 1e3
                t.stop()
            times[name].append(ms)
    for name, ms in times.items():
        print(f"{name:22}{statistics.median(ms[1:]):8.1f} ms (min {min(ms[1:]):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
