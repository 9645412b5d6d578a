"""The exporter's scrape at many cgroups, in one process: the CPU time of
``RunqueueCollector.exposition()`` (what /metrics serves, before gzip) with
N cgroups of the bench's own alive, each with one thread waking every
--period-ms, traced `--by cgroup` with attribution, as `pyrunq exporter`
does. Optionally beside a baseline tree of pyrunq (another commit's built
src/), interleaved in one run, each variant in a fresh process.

    sudo .venv/bin/python bench/scrape.py [--cgroups 1000] [--scrapes 10] [--repeat 3]
                                          [--baseline OTHER/src] [--out FILE.json]

A baseline tree: ``git worktree add /tmp/base COMMIT && cd /tmp/base &&
./dev setup`` (or a copy of a built src/ taken before a change); pass its
src/. The cgroups are made under a parent of the bench's own in the cgroup2
hierarchy and removed at the end. Prints, per variant, the median CPU ms per
scrape (and the spread over repetitions); writes the JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = "--child"


def child(src: str, parent: str, blame: bool, scrapes: int, every: float) -> dict:
    """In a fresh process: open the exporter's RunqLat over ``parent``'s
    cgroups, refresh once, then time ``scrapes`` expositions ``every``
    seconds apart (each folds that much new data)."""
    sys.path.insert(0, src)
    from pyrunq.prometheus import RunqueueCollector
    from pyrunq.selection import Selection

    selection = Selection([f"{parent}/**"], [], [])
    with selection.open(per="cgroup", blame=blame) as rq:
        collector = RunqueueCollector(rq, 1100, selection)
        collector.refresh()
        time.sleep(every)
        collector.exposition()  # the first one prepares each series' lines
        cpu, wall, size = [], [], 0
        for _ in range(scrapes):
            time.sleep(every)
            c0, w0 = time.process_time(), time.perf_counter()
            body = collector.exposition()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            size = len(body)
        collector.close()
    return {
        "cpu_ms": [round(x * 1e3, 2) for x in cpu],
        "wall_ms": [round(x * 1e3, 2) for x in wall],
        "bytes": size,
        "series": body.count(b"pyrunq_runqueue_latency_seconds_count{"),
    }


def cgroups(n: int, period_ms: int, seconds: int):
    """Make ``n`` cgroups under a new parent, each with one waking thread."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from loads import threads_binary
    from pyrunq.cgroup import cgroup2_mount

    mount, parent = cgroup2_mount(), f"/pyrunq-scrape-{uuid.uuid4().hex[:8]}"
    os.mkdir(mount + parent)
    procs = []
    for i in range(n):
        path = f"{mount}{parent}/c{i}"
        os.mkdir(path)
        proc = subprocess.Popen(
            [threads_binary(), "1", str(period_ms), str(seconds)], stdout=subprocess.DEVNULL
        )
        with open(f"{path}/cgroup.procs", "w") as f:
            f.write(str(proc.pid))
        procs.append(proc)
    return mount, parent, procs


def remove(mount: str, parent: str, procs) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()
    for name in os.listdir(mount + parent):
        path = f"{mount}{parent}/{name}"
        if os.path.isdir(path):
            for _ in range(100):  # the last task leaves a moment after it is reaped
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.01)
    os.rmdir(mount + parent)


def main() -> int:
    if sys.argv[1:2] == [CHILD]:
        src, parent, blame, scrapes, every = sys.argv[2:7]
        print(json.dumps(child(src, parent, blame == "1", int(scrapes), float(every))))
        return 0
    sys.path.insert(0, str(HERE))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cgroups", type=int, default=1000)
    p.add_argument("--period-ms", type=int, default=100, help="each cgroup's thread wakes this often")
    p.add_argument("--scrapes", type=int, default=10, help="timed scrapes per run")
    p.add_argument("--every", type=float, default=1.0, help="seconds between scrapes")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline", help="another pyrunq tree's src/, measured beside this one")
    p.add_argument(
        "--out", default=str(HERE / "results" / f"{time.strftime('%Y-%m-%d')}-{platform.node()}-scrape.json")
    )
    a = p.parse_args()
    trees = {"this": str(HERE.parent / "src")}
    if a.baseline:
        trees = {"baseline": str(Path(a.baseline).resolve()), **trees}
    runs: dict[str, list] = {f"{t} {'blame' if b else 'no blame'}": [] for t in trees for b in (True, False)}
    mount, parent, procs = cgroups(a.cgroups, a.period_ms, 3600)
    try:
        time.sleep(1)
        for _ in range(a.repeat):  # interleaved: the machine's load falls on every variant alike
            for tree, src in trees.items():
                for blame in (True, False):
                    argv = [
                        sys.executable,
                        __file__,
                        CHILD,
                        src,
                        parent,
                        "1" if blame else "0",
                        str(a.scrapes),
                        str(a.every),
                    ]
                    out = subprocess.run(argv, capture_output=True, text=True, check=True)
                    runs[f"{tree} {'blame' if blame else 'no blame'}"].append(json.loads(out.stdout))
    finally:
        remove(mount, parent, procs)
    result = {
        "kernel": platform.release(),
        "cgroups": a.cgroups,
        "period_ms": a.period_ms,
        "every_s": a.every,
        "runs": runs,
    }
    for name, rs in runs.items():
        medians = [statistics.median(r["cpu_ms"]) for r in rs]
        walls = [statistics.median(r["wall_ms"]) for r in rs]
        result[name] = {
            "cpu_ms_median": statistics.median(medians),
            "cpu_ms_runs": medians,
            "wall_ms_median": statistics.median(walls),
            "series": rs[-1]["series"],
            "bytes": rs[-1]["bytes"],
        }
        print(
            f"{name:>20}: CPU {statistics.median(medians):6.1f} ms per scrape "
            f"(runs {min(medians):.1f}-{max(medians):.1f}), wall {statistics.median(walls):6.1f} ms, "
            f"{rs[-1]['series']} series, {rs[-1]['bytes'] / 2**20:.1f} MiB"
        )
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
