"""Soak: each long-running command for a while under load, its RSS and open fds
sampled every 10 s; a leak shows as an upward trend.

    sudo .venv/bin/python bench/soak.py [--minutes 10] [--out bench/results/soak.json]

Not part of the test suite (it takes minutes); run it after changes to the
polling, snapshot or ring buffer paths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time

COMMANDS = {
    "runqlat -L 1": ["runqlat", "-L", "1"],
    "runqlat --cgroups --json 1": ["runqlat", "--cgroups", "--json", "1"],
    "runqslower 1000": ["runqslower", "1000"],
    "runqslower --json 0": ["runqslower", "--json", "0"],
}


def sample(pid: int) -> tuple[int, int]:
    """(RSS in bytes, open fds) of a live process."""
    pages = int(open(f"/proc/{pid}/statm").read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE"), len(os.listdir(f"/proc/{pid}/fd"))


def slope(ys: list[float], dt: float) -> float:
    """Least-squares growth per minute."""
    n = len(ys)
    if n < 2:
        return 0.0
    xs = [i * dt / 60 for i in range(n)]
    mx, my = sum(xs) / n, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def soak(args: list[str], seconds: float, every: float) -> dict:
    load = subprocess.Popen(
        [
            shutil.which("stress-ng") or "stress-ng",
            "--switch",
            "1",
            "--cpu",
            "1",
            "--timeout",
            f"{int(seconds) + 30}s",
            "--quiet",
        ]
    )
    tracer = subprocess.Popen(
        [sys.executable, "-m", "pyrunq", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rss, fds = [], []
    try:
        time.sleep(every)  # past start-up
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, f = sample(tracer.pid)
            rss.append(r)
            fds.append(f)
            time.sleep(every)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=60)
    finally:
        for p in (tracer, load):
            p.kill()
            p.wait()
    return {
        "rss_bytes": rss,
        "open_fds": fds,
        "rss_growth_per_min": slope(rss, every),
        "fd_growth_per_min": slope(fds, every),
        "exit": tracer.returncode,
        "no_upward_trend": slope(rss, every) < 64 * 1024 and max(fds) == min(fds),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--every", type=float, default=10, help="seconds between samples")
    p.add_argument("--out", default=f"bench/results/soak-{time.strftime('%Y%m%d')}-{platform.node()}.json")
    a = p.parse_args()
    results = {"kernel": platform.release(), "minutes": a.minutes, "commands": {}}
    for name, args in COMMANDS.items():
        r = soak(args, a.minutes * 60, a.every)
        results["commands"][name] = r
        print(
            f"{name:30} rss {min(r['rss_bytes']) / 2**20:6.1f}-{max(r['rss_bytes']) / 2**20:6.1f} MB"
            f"  growth {r['rss_growth_per_min'] / 1024:7.1f} KB/min  fds {min(r['open_fds'])}"
            f"-{max(r['open_fds'])}  {'ok' if r['no_upward_trend'] else 'TREND'}"
        )
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    return 0 if all(r["no_upward_trend"] for r in results["commands"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
