"""Exporter soak: `pyrunq exporter` for a while under the contention workload,
scraped every second as a busy Prometheus would, with processes coming and
going; its RSS and CPU sampled, and their trend. Then the time to serve one
scrape of 500 latency series.

    sudo .venv/bin/python bench/exporter_soak.py [--minutes 10] [--every 10]
                                                 [--out bench/results/exporter-soak.json]

Not part of the test suite (it takes minutes): run it after changes to the
snapshot, refresh or exposition paths. Exit status 1 when RSS still grows in
the second half of the soak; runs shorter than a few minutes are all warm-up
and say TREND.
"""

from __future__ import annotations

import argparse
import gzip
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
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from soak import sample, slope  # noqa: E402
from workload import Contention  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
SCRAPE_TIMEOUT = 120  # a slow scrape is a result to report, not a reason to stop
CHILD = "soak-child"


class Exporter:
    """The exporter in a subprocess, on a free loopback port."""

    def __init__(self, *args):
        self.err = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyrunq", "exporter", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL,
            stderr=self.err,
            text=True,
        )
        self.url = self._serving()

    def _serving(self) -> str:
        for _ in range(600):
            self.err.seek(0)
            m = re.search(r"serving (http://\S+)", self.err.read())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.err.seek(0)
        raise SystemExit(f"exporter did not start: {self.err.read()}")

    def scrape(self) -> bytes:
        """One scrape as Prometheus makes it: OpenMetrics preferred, gzip accepted."""
        request = urllib.request.Request(
            self.url, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
        )
        with urllib.request.urlopen(request, timeout=SCRAPE_TIMEOUT) as r:
            body = r.read()
            return gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.err.close()
        return code


# what Prometheus 2.x asks for by default
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def series_count(body: bytes) -> int:
    m = re.search(rb"^pyrunq_series (\S+)$", body, re.M)
    return int(float(m.group(1))) if m else 0


def soak(seconds: float, every: float) -> dict:
    """RSS and CPU share sampled every `every` s; a short-lived process
    starts every 0.5 s, so series appear and are pruned all along."""
    rss, cpu, series, scrape_s = [], [], [], []
    with Contention():
        e = Exporter("--by", "process", "--refresh", "1")
        churn: list[subprocess.Popen] = []
        try:
            time.sleep(2)  # past start-up
            last_cpu, last_t = e.cpu_seconds(), time.monotonic()
            end, next_sample = last_t + seconds, last_t + every
            while time.monotonic() < end:
                churn = [p for p in churn if p.poll() is None]
                churn.append(subprocess.Popen(["sleep", "2"]))
                t0 = time.monotonic()
                body = e.scrape()
                scrape_s.append(time.monotonic() - t0)
                if time.monotonic() >= next_sample:
                    now, used = time.monotonic(), e.cpu_seconds()
                    rss.append(sample(e.proc.pid)[0])
                    cpu.append((used - last_cpu) / (now - last_t))
                    series.append(series_count(body))
                    last_cpu, last_t, next_sample = used, now, next_sample + every
                time.sleep(0.5)
            code = e.stop()
        finally:
            for p in churn:
                p.kill()
                p.wait()
            if e.proc.poll() is None:
                e.proc.kill()
    settled = rss[len(rss) // 2 :]  # the first half includes warming up (arenas, caches)
    return {
        "rss_bytes": rss,
        "cpu_share": cpu,
        "series": series,
        "exit": code,
        "rss_growth_per_min": slope(rss, every),
        "rss_growth_per_min_2nd_half": slope(settled, every),
        "cpu_growth_per_min": slope(cpu, every),
        "scrapes": len(scrape_s),
        "scrape_median_s": statistics.median(scrape_s),
        "no_upward_trend": slope(settled, every) < 64 * 1024,
    }


def fork_children(n: int) -> list[int]:
    """n processes named CHILD waking every 0.2 s (forked: they share memory)."""
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                with open("/proc/self/comm", "w") as f:
                    f.write(CHILD)
                while True:
                    time.sleep(0.2)
            finally:
                os._exit(0)
        pids.append(pid)
    return pids


def scrape_time(n_series: int = 500, scrapes: int = 20) -> dict:
    """Time to serve a whole scrape with n_series latency series."""
    pids = fork_children(n_series)
    try:
        e = Exporter("--by", "process", "--comm", f"^{CHILD}$", "--refresh", "1")
        try:
            deadline = time.monotonic() + 60
            while series_count(e.scrape()) < n_series and time.monotonic() < deadline:
                time.sleep(0.5)
            times, size = [], 0
            for _ in range(scrapes):
                t0 = time.monotonic()
                size = len(e.scrape())
                times.append(time.monotonic() - t0)
            found = series_count(e.scrape())
            rss = sample(e.proc.pid)[0]
        finally:
            e.stop()
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return {
        "series": found,
        "scrapes": scrapes,
        "median_s": statistics.median(times),
        "max_s": max(times),
        "bytes": size,
        "rss_bytes": rss,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10, help="soak length (default 10)")
    p.add_argument("--every", type=float, default=10, help="seconds between samples")
    p.add_argument(
        "--out",
        default=str(HERE / "results" / (f"exporter-soak-{time.strftime('%Y%m%d')}-{platform.node()}.json")),
    )
    a = p.parse_args()
    s = soak(a.minutes * 60, a.every)
    rss_mb = [r / 2**20 for r in s["rss_bytes"]]
    print(
        f"soak {a.minutes:g} min: rss {min(rss_mb):.1f}-{max(rss_mb):.1f} MB"
        f" (growth {s['rss_growth_per_min'] / 1024:.1f} KB/min,"
        f" second half {s['rss_growth_per_min_2nd_half'] / 1024:.1f}),"
        f" cpu {statistics.mean(s['cpu_share']):.1%} mean ({s['cpu_growth_per_min']:+.2%}/min),"
        f" series {min(s['series'])}-{max(s['series'])}, {s['scrapes']} scrapes,"
        f" median {s['scrape_median_s'] * 1e3:.1f} ms, {'ok' if s['no_upward_trend'] else 'TREND'}"
    )
    t = scrape_time()
    print(
        f"scrape of {t['series']} series: median {t['median_s'] * 1e3:.1f} ms,"
        f" max {t['max_s'] * 1e3:.1f} ms, {t['bytes'] / 1024:.0f} KiB, exporter rss"
        f" {t['rss_bytes'] / 2**20:.1f} MB"
    )
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(
            {"kernel": platform.release(), "minutes": a.minutes, "soak": s, "scrape_500": t}, f, indent=1
        )
    return 0 if s["no_upward_trend"] and s["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
