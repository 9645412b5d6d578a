"""A compressed day of container churn: `pyrunq exporter --by cgroup` while
cgroups of our own are created, each given a waking process, and removed,
N of them over M minutes with about L alive at a time, and a real Prometheus
scraping every 5 s. Sampled every 30 s: the exporter's RSS and open fds, its
series, the kernel maps' entries (bpftool), and whether a removed cgroup's
series outlived the next refresh. Then, with L cgroups alive and still, the
time to serve a scrape.

    sudo .venv/bin/python bench/day.py [--cgroups 20000] [--minutes 60] [--live 1000]
                                       [--out bench/results/exporter-day-<date>-<host>.json]

The cgroups are made under a parent of its own in the cgroup2 hierarchy
(/sys/fs/cgroup/unified on this machine, found from /proc/self/mounts) and
removed at the end; nothing else is touched. Not part of the test suite (it
takes an hour): run it after changes to the refresh, prune or exposition
paths. Exit status 1 when RSS or fds grow in the second half, a removed
cgroup's series outlives a refresh, the series pass --max-series, or a map
keeps entries of removed cgroups.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from exporter_soak import Exporter  # noqa: E402
from loads import threads_binary  # noqa: E402
from promserver import Prometheus  # noqa: E402
from rivals import ensure_packages  # noqa: E402
from soak import sample, slope  # noqa: E402

from pyrunq.cgroup import cgroup2_mount  # noqa: E402

REFRESH = 10  # the exporter's --refresh (its default)
SCRAPE_EVERY = 5  # Prometheus' scrape interval
SAMPLE_EVERY = 30
MAPS = ("hists", "blames", "cgroup_set")  # the exporter's maps that grow with cgroups
PARTIAL = HERE / "results" / "exporter-day.tmp"
REFRESHED = re.compile(rb"^pyrunq_refresh_timestamp_seconds (\S+)$", re.M)
SERIES = re.compile(rb'^pyrunq_runqueue_latency_seconds_count\{cgroup="([^"]+)"', re.M)


class Churn:
    """Cgroups under ``parent`` (relative to the cgroup2 mount), each with
    one process whose thread wakes every ``period_ms``, made and removed in order."""

    def __init__(self, parent: str, period_ms: int):
        self.period_ms = period_ms
        self.mount = cgroup2_mount()
        self.parent = parent
        os.mkdir(self.mount + parent)
        self.binary = threads_binary()
        self.alive: dict[str, subprocess.Popen] = {}  # path -> its process, oldest first
        self.removed: dict[str, float] = {}  # path -> when (time.time(), as the exporter's refresh timestamp)
        self.made = 0

    def add(self, lifetime: float) -> None:
        path = f"{self.parent}/c{self.made}"
        self.made += 1
        os.mkdir(self.mount + path)
        argv = [self.binary, "1", str(self.period_ms), str(int(lifetime) + 600)]  # one waking thread
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        with open(f"{self.mount}{path}/cgroup.procs", "w") as f:
            f.write(str(proc.pid))
        self.alive[path] = proc

    def remove_oldest(self) -> None:
        path, proc = next(iter(self.alive.items()))
        del self.alive[path]
        proc.kill()
        proc.wait()
        for _ in range(100):  # the last task leaves the cgroup a moment after it is reaped
            try:
                os.rmdir(self.mount + path)
                break
            except OSError:
                time.sleep(0.01)
        self.removed[path] = time.time()

    def close(self) -> None:
        while self.alive:
            self.remove_oldest()
        os.rmdir(self.mount + self.parent)


def map_entries(pid: int) -> dict[str, int]:
    """Entries of the exporter's maps named in MAPS, and their max_entries
    ("<name>_max"): its map fds (their fdinfo names the map id), dumped by bpftool."""
    out = {}
    for map_id in map_ids(pid):
        show = subprocess.run(["bpftool", "-j", "map", "show", "id", str(map_id)], capture_output=True)
        info = json.loads(show.stdout or b"{}")
        if info.get("name") in MAPS:
            dump = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)], capture_output=True)
            out[info["name"]] = len(json.loads(dump.stdout or b"[]"))
            out[info["name"] + "_max"] = info["max_entries"]
    return out


def map_ids(pid: int) -> set[int]:
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-map":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids |= {int(line.split()[1]) for line in f if line.startswith("map_id:")}
        except OSError:
            pass  # closed meanwhile
    return ids


def lost(body: bytes) -> dict[str, float]:
    return {
        r.decode(): float(v)
        for r, v in re.findall(rb'^pyrunq_lost_samples_total\{reason="([^"]+)"\} (\S+)$', body, re.M)
    }


def day(cgroups: int, seconds: float, live: int, max_series: int, period_ms: int, scrape_at: int) -> dict:
    rate = cgroups / seconds
    lifetime = live / rate
    parent = f"/pyrunq-day-{uuid.uuid4().hex[:8]}"
    churn = Churn(parent, period_ms)
    tmp = tempfile.TemporaryDirectory(prefix="pyrunq-day-")
    job = f"  scrape_interval: {SCRAPE_EVERY}s\n  scrape_timeout: {SCRAPE_EVERY}s\n"
    prometheus = Prometheus(tmp.name, job)
    e = Exporter(
        *("--by", "cgroup", "--cgroup", f"{parent}/**"),
        *("--refresh", str(REFRESH), "--max-series", str(max_series)),
    )
    samples: list[dict] = []
    stale: list[str] = []
    try:
        prometheus.scrape([e.url])
        start = time.monotonic()
        next_sample = start + SAMPLE_EVERY
        while churn.made < cgroups:
            now = time.monotonic()
            due = min(cgroups, int((now - start) * rate) + 1)
            while churn.made < due:
                churn.add(lifetime)
                if len(churn.alive) > live:
                    churn.remove_oldest()
            if now >= next_sample:
                samples.append(take_sample(e, churn, stale, now - start))
                next_sample += SAMPLE_EVERY
                with open(PARTIAL, "w") as f:  # what an interrupted run had seen
                    json.dump(samples, f)
            time.sleep(max(0.0, min(next_sample, start + churn.made / rate) - time.monotonic()))
        steady = scrape_time(e, churn, scrape_at)
        prometheus_view = {
            "up_min": query(prometheus, "min_over_time(up[2h])"),
            "scrape_duration_s_max": query(prometheus, "max_over_time(scrape_duration_seconds[2h])"),
            "scrape_duration_s_avg": query(prometheus, "avg_over_time(scrape_duration_seconds[2h])"),
            "samples_scraped_max": query(prometheus, "max_over_time(scrape_samples_scraped[2h])"),
            # the share of the waiting time whose culprit was not named (the table full, history...)
            "unattributed_share": query(
                prometheus,
                'sum(increase(pyrunq_runqueue_wait_attributed_seconds_total{culprit_kind="unattributed"}[2h]))'
                " / sum(increase(pyrunq_runqueue_latency_seconds_sum[2h]))",
            ),
        }
        code = e.stop()
    finally:
        if e.proc.poll() is None:
            e.proc.kill()
        prometheus.stop()
        tmp.cleanup()
        churn.close()
    config = {"cgroups": cgroups, "minutes": seconds / 60, "live": live, "max_series": max_series}
    return summary(samples, stale, steady, prometheus_view, code, {**config, "period_ms": period_ms})


def take_sample(e: Exporter, churn: Churn, stale: list[str], t: float) -> dict:
    t0 = time.monotonic()
    body = e.scrape()
    scrape_s = time.monotonic() - t0
    rss, fds = sample(e.proc.pid)
    exposed = {m.decode() for m in SERIES.findall(body)}
    # removed before the last refresh began (the exporter's own clock of it:
    # on a loaded machine a refresh comes late), and still there
    refreshed = float(REFRESHED.search(body).group(1))
    stale += [p for p in exposed if churn.removed.get(p, refreshed) < refreshed]
    return {
        "t": round(t, 1),
        "rss": rss,
        "fds": fds,
        "series": len(exposed),
        "alive": len(churn.alive),
        "made": churn.made,
        "maps": map_entries(e.proc.pid),
        "lost": lost(body),
        "unattributed_share": unattributed_share(body),
        "bytes": len(body),
        "scrape_s": round(scrape_s, 3),
    }


def unattributed_share(body: bytes) -> float | None:
    """Of the waiting time of the series exposed now, the share whose culprit was not named."""
    kind = rb'culprit_kind="unattributed"'
    unattributed = re.findall(
        rb"^pyrunq_runqueue_wait_attributed_seconds_total\{[^}]*" + kind + rb"[^}]*\} (\S+)$", body, re.M
    )
    waited = re.findall(rb"^pyrunq_runqueue_latency_seconds_sum\{[^}]*\} (\S+)$", body, re.M)
    total = sum(float(v) for v in waited)
    return sum(float(v) for v in unattributed) / total if total else None


def scrape_time(e: Exporter, churn: Churn, live: int, scrapes: int = 20) -> dict:
    """With ``live`` cgroups alive (the oldest go on living) and none coming
    or going, past a refresh."""
    while len(churn.alive) < live:
        churn.add(3600)
    time.sleep(REFRESH + 2)
    times, series, size = [], 0, 0
    for _ in range(scrapes):
        t0 = time.monotonic()
        body = e.scrape()
        times.append(time.monotonic() - t0)
        series, size = len(SERIES.findall(body)), len(body)
    return {"series": series, "median_s": statistics.median(times), "max_s": max(times), "bytes": size}


def query(prometheus: Prometheus, promql: str) -> float | None:
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if result else None


def summary(samples, stale, steady, prometheus_view, code, config: dict) -> dict:
    half = samples[len(samples) // 2 :]
    last_maps = samples[-1]["maps"] if samples else {}
    return {
        **config,
        "refresh_s": REFRESH,
        "samples": samples,
        "rss_growth_per_min_2nd_half": slope([s["rss"] for s in half], SAMPLE_EVERY),
        "fds_2nd_half": [min(s["fds"] for s in half), max(s["fds"] for s in half)] if half else [],
        "series_max": max((s["series"] for s in samples), default=0),
        "map_entries_max": {m: max(s["maps"].get(m, 0) for s in samples) for m in last_maps},
        "map_entries_last": last_maps,
        "stale_series": sorted(set(stale)),
        "lost_last": samples[-1]["lost"] if samples else {},
        "scrape_at_live": steady,
        "prometheus": prometheus_view,
        "exit": code,
    }


def verdict(s: dict) -> list[str]:
    problems = []
    if s["rss_growth_per_min_2nd_half"] > 64 * 1024:
        problems.append(f"RSS grows {s['rss_growth_per_min_2nd_half'] / 1024:.0f} KB/min in the second half")
    if s["fds_2nd_half"] and s["fds_2nd_half"][1] > s["fds_2nd_half"][0] + 2:
        problems.append(f"open fds {s['fds_2nd_half']} in the second half")
    if s["stale_series"]:
        problems.append(f"{len(s['stale_series'])} removed cgroups' series outlived a refresh")
    if s["series_max"] > s["max_series"]:
        problems.append(f"{s['series_max']} series, past --max-series {s['max_series']}")
    # the cgroups alive, and those removed since the last refresh (sampled up to SAMPLE_EVERY later)
    bound = s["live"] + s["cgroups"] / (s["minutes"] * 60) * (s["refresh_s"] + SAMPLE_EVERY) + 10
    for name in ("hists", "cgroup_set"):  # blames holds culprit pairs, bounded by its size alone
        if s["map_entries_max"].get(name, 0) > bound:
            problems.append(f"map {name} held {s['map_entries_max'][name]} entries, more than ~{bound:.0f}")
    if s["exit"] != 0:
        problems.append(f"exporter exit {s['exit']}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cgroups", type=int, default=20000, help="cgroups made and removed (default 20000)")
    p.add_argument("--minutes", type=float, default=60, help="over this long (default 60)")
    p.add_argument("--live", type=int, default=1000, help="alive at a time (default 1000)")
    p.add_argument("--max-series", type=int, default=1100, help="the exporter's --max-series (default 1100)")
    # 1,000 threads waking 10 times a second would crowd a small shared machine's other work
    p.add_argument("--scrape-at", type=int, default=1000, help="time scrapes with this many cgroups alive")
    p.add_argument("--period-ms", type=int, default=1000, help="each cgroup's thread wakes this often")
    p.add_argument(
        "--out",
        default=str(HERE / "results" / f"exporter-day-{time.strftime('%Y%m%d')}-{platform.node()}.json"),
    )
    a = p.parse_args()
    failed = ensure_packages(["bpftool", "gcc", "prometheus"])
    if failed:
        sys.exit(f"bench: cannot install {failed}")
    for signum in (signal.SIGINT, signal.SIGTERM):  # cleaned up as after Ctrl-C, even started with &
        signal.signal(signum, signal.default_int_handler)
    s = day(a.cgroups, a.minutes * 60, a.live, a.max_series, a.period_ms, a.scrape_at)
    half = s["samples"][len(s["samples"]) // 2 :]
    rss = [x["rss"] / 2**20 for x in half] or [0.0]
    t = s["scrape_at_live"]
    print(
        f"day: {s['cgroups']} cgroups in {a.minutes:g} min, ~{a.live} alive; second half: rss"
        f" {min(rss):.1f}-{max(rss):.1f} MB ({s['rss_growth_per_min_2nd_half'] / 1024:+.1f} KB/min),"
        f" fds {s['fds_2nd_half']}; series max {s['series_max']} (cap {a.max_series});"
        f" map entries max {s['map_entries_max']}; stale series {len(s['stale_series'])};"
        f" lost {s['lost_last']}"
    )
    print(
        f"scrape of {t['series']} series: median {t['median_s'] * 1e3:.1f} ms, max {t['max_s'] * 1e3:.1f} ms,"
        f" {t['bytes'] / 2**20:.1f} MiB; Prometheus: {s['prometheus']}"
    )
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"kernel": platform.release(), **s}, f, indent=1)
    problems = verdict(s)
    for problem in problems:
        print(f"day: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
