#!/usr/bin/env python3
"""pyrunq side by side with libbpf-tools (C), bcc and bpftrace.

    sudo .venv/bin/python bench/run.py [--quick] [--repeat N] [--only map_read]

Installs what it needs (apt), runs every figure with the tools interleaved
(C, pyrunq, bcc, bpftrace, C, pyrunq, ...), writes bench/results/<date>-<host>.json
and regenerates the table in docs/performance.md. Fails if any BPF program
is left in the kernel afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loads  # noqa: E402
import report  # noqa: E402
import rivals  # noqa: E402
from measure import (
    LeakCheck,
    Tracer,
    bpf_stats_enabled,
    prog_stats,  # noqa: E402
    ratios,
    run_totals,
    summary,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    # load_s: each standard load; slower_s: each runqslower throughput run;
    # steps: switch-freq limits for the zero-loss search (0: unlimited)
    "full": dict(
        repeat=3,
        load_s=3,
        slower_s=4,
        steps=[10000, 20000, 30000, 40000, 60000, 80000, 0],
        step_s=3,
        threads=[1000, 10000],
        rivals=True,
    ),
    "quick": dict(repeat=1, load_s=1, slower_s=1, steps=[20000, 0], step_s=1, threads=[100], rivals=False),
}
RUNQLAT_BANNER_TIMEOUT = 120  # bcc compiles a 130k-line header first
# `runqlat -L 1 2` that has not ended by then is stopped and counted as
# unfinished: C runqlat's delete-after-read loop can chase keys that
# thousands of waking threads keep re-creating
MAP_READ_TIMEOUT = 60


class Bench:
    def __init__(self, cfg: dict, tools: dict, leaks: LeakCheck):
        self.cfg, self.tools, self.leaks = cfg, tools, leaks
        self.res: dict[str, dict[str, list]] = {}

    def add(self, figure: str, tool: str, rep: int, value):
        row = self.res.setdefault(figure, {}).setdefault(tool, [None] * self.cfg["repeat"])
        row[rep] = value

    def start(self, tool: str, name: str, args=(), stdout=None, pin=None) -> Tracer:
        spec = self.tools[tool]
        argv = (["taskset", "-c", str(pin)] if pin is not None else []) + spec[name] + list(args)
        return Tracer(argv, stdout=stdout, env=spec.get("env"))

    def each_tool(self, name: str, only=None):
        return [t for t in self.tools if name in self.tools[t] and (only is None or t in only)]

    def warm_up(self):
        """One unrecorded start of each tool: caches (page cache, bytecode) warm."""
        for name in ("runqlat", "runqslower"):
            for tool in self.each_tool(name):
                with self.start(tool, name) as t:
                    t.wait_banner(RUNQLAT_BANNER_TIMEOUT)
                    self.leaks.ours |= t.prog_ids()

    # 1, 2: start-up and peak RSS -------------------------------------------------
    def startup(self, rep: int):
        for name in ("runqlat", "runqslower"):
            for tool in self.each_tool(name):
                with self.start(tool, name) as t:
                    self.add(f"{name}.startup_ms", tool, rep, t.wait_banner(RUNQLAT_BANNER_TIMEOUT) * 1e3)
                    self.leaks.ours |= t.prog_ids()
                    t.stop()
                    if name == "runqslower" or tool == "bpftrace":  # no `1 1` run
                        self.add(f"{name}.rss_mb", tool, rep, t.maxrss_mb)
                if name == "runqlat" and tool != "bpftrace":
                    with self.start(tool, name, ["1", "1"]) as t:
                        self.add("runqlat.run_1_1_ms", tool, rep, t.wait(RUNQLAT_BANNER_TIMEOUT) * 1e3)
                        self.add("runqlat.rss_mb", tool, rep, t.maxrss_mb)

    # 3: in-kernel cost per program run, under the standard load -------------------
    def in_kernel(self, rep: int):
        for name in ("runqlat", "runqslower"):
            for tool in self.each_tool(name):
                with self.start(tool, name) as t:
                    t.wait_banner(RUNQLAT_BANNER_TIMEOUT)
                    ids = t.prog_ids()
                    self.leaks.ours |= ids
                    before = prog_stats(ids)
                    loads.pipe_load(self.cfg["load_s"])
                    after = prog_stats(ids)
                for key, (ns, cnt) in run_totals(before, after).items():
                    self.add(f"{name}.ns_per_run.{key}", tool, rep, ns / cnt if cnt else None)
                    if key == "switch":
                        self.add(f"{name}.switch_runs_per_s", tool, rep, cnt / self.cfg["load_s"])

    # 4: the load's own throughput with each tracer attached ------------------------
    def overhead(self, rep: int):
        none = [loads.pipe_load(self.cfg["load_s"])]
        got = {}
        for name in ("runqlat", "runqslower"):
            for tool in self.each_tool(name):
                with self.start(tool, name) as t:
                    t.wait_banner(RUNQLAT_BANNER_TIMEOUT)
                    self.leaks.ours |= t.prog_ids()
                    got[name, tool] = loads.pipe_load(self.cfg["load_s"])
        none.append(loads.pipe_load(self.cfg["load_s"]))  # before and after: drift
        base = statistics.mean(none)
        self.add("load.ops_per_s", "none", rep, base)
        for (name, tool), ops in got.items():
            self.add(f"{name}.load_pct", tool, rep, 100 * ops / base)

    # 5: runqslower throughput -------------------------------------------------------
    def slower_run(self, tool: str, seconds: float, freq: int) -> dict:
        """Tracer pinned to CPU 1, load pinned to CPU 0, events to a file."""
        threshold = "0" if tool == "pyrunq" else "1"  # the C tool refuses 0
        with tempfile.NamedTemporaryFile("w+", prefix="pyrunq-bench-", suffix=".out") as out:
            with self.start(tool, "runqslower", [threshold], stdout=out, pin=1) as t:
                t.wait_attached(3)
                self.leaks.ours |= t.prog_ids()
                time.sleep(0.2)
                n0, cpu0, t0 = _events(out.name), t.cpu_seconds(), time.monotonic()
                _, ctxt_rate = loads.switch_load(seconds, freq)
                time.sleep(0.3)  # let it drain what is queued
                t.stop()
                wall = time.monotonic() - t0
                events = _events(out.name) - n0
                text = Path(out.name).read_text() + t.stderr_text()
        lost = sum(int(n) for n in re.findall(r"lost (\d+) events on CPU", text, re.I))
        lost += max([int(n) for n in re.findall(r"lost (\d+) events (?:in all|so far)", text)] or [0])
        return {
            "events_per_s": events / wall,
            "lost": lost,
            "ctxt_per_s": ctxt_rate,
            "cpu_us_per_event": (t.cpu_total - cpu0) / events * 1e6 if events else None,
        }

    def slower_max(self, rep: int):
        for tool in self.each_tool("runqslower", only=("c", "pyrunq")):
            r = self.slower_run(tool, self.cfg["slower_s"], 0)
            for k, v in r.items():
                self.add(f"runqslower.max.{k}", tool, rep, v)

    def zero_loss(self) -> dict:
        """Step the switch rate up; per tool, the last step with nothing lost."""
        out = {"steps": {}, "best": {}}
        going = set(self.each_tool("runqslower", only=("c", "pyrunq")))
        for freq in self.cfg["steps"]:
            for tool in sorted(going):
                r = self.slower_run(tool, self.cfg["step_s"], freq)
                out["steps"].setdefault(str(freq), {})[tool] = r
                if r["lost"]:
                    going.discard(tool)
                else:
                    out["best"][tool] = r["events_per_s"]
        for tool in self.each_tool("runqslower", only=("c", "pyrunq")):
            out["best"].setdefault(tool, 0.0)
        return out

    # 6: runqlat -L with many live threads ----------------------------------------------
    def map_read(self, n: int, rep: int, idle: dict):
        for tool in ("c", "pyrunq"):
            with tempfile.NamedTemporaryFile("w+", prefix="pyrunq-bench-", suffix=".out") as out:
                with self.start(tool, "runqlat", ["-L", "1", "2"], stdout=out) as t:
                    try:
                        wall = t.wait(MAP_READ_TIMEOUT)
                    except RuntimeError:  # stopped by wait(): record that it never ended
                        self.add(f"runqlat_L.{n}.unfinished", tool, rep, 1)
                        continue
                    err = t.stderr_text()
                hists = sum(1 for line in open(out.name) if line.startswith("tid = "))
            self.add(f"runqlat_L.{n}.unfinished", tool, rep, 0)
            cpu = t.cpu_total
            if n == 0:
                idle.setdefault(tool, []).append((cpu, hists))
                continue
            base_cpu, base_hists = (statistics.median(x) for x in zip(*idle[tool]))
            key = f"runqlat_L.{n}"
            self.add(f"{key}.cpu_ms", tool, rep, cpu * 1e3)
            self.add(f"{key}.wall_ms", tool, rep, wall * 1e3)
            self.add(f"{key}.hists_per_interval", tool, rep, hists / 2)
            self.add(f"{key}.interval_ms", tool, rep, (cpu - base_cpu) / 2 * 1e3)
            self.add(f"{key}.per_thread_us", tool, rep, (cpu - base_cpu) / max(hists - base_hists, 1) * 1e6)
            m = re.search(r"hist_full=(\d+)", err)
            self.add(f"{key}.hist_full", tool, rep, int(m.group(1)) if m else 0)


def _events(path: str) -> int:
    """Event lines written so far (not the banner, header or Lost lines)."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line[:1].isdigit())


def environment() -> dict:
    def pkg(name):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
        return r.stdout or None

    def out(*argv):
        r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        return r.stdout.strip() or None

    from importlib.metadata import version

    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {
        "machine": {
            "host": platform.node(),
            "cpu": cpu.group(1) if cpu else platform.machine(),
            "cpus": os.cpu_count(),
            "mem_gb": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
            "loadavg_at_start": os.getloadavg(),
        },
        "kernel": platform.release(),
        "versions": {
            "pyrunq": version("pyrunq"),
            "pyrunq_commit": out("git", "rev-parse", "--short", "HEAD"),
            "pyrunq_dirty": bool(out("git", "status", "--porcelain", "src", "bpf")),
            "python": platform.python_version(),
            "libbpf": pkg("libbpf1"),
            "libbpf-tools": pkg("libbpf-tools"),
            "bcc": pkg("bpfcc-tools"),
            "bpftrace": pkg("bpftrace"),
            "stress-ng": pkg("stress-ng"),
        },
    }


def probe_rivals(skip: str | None) -> tuple[dict, str | None, str | None]:
    """Whether bcc and bpftrace run here, and with what (``skip``: the option that skips them)."""
    status: dict[str, str] = {}
    if skip:
        return {"bcc": f"skipped ({skip})", "bpftrace": f"skipped ({skip})"}, None, None
    failed = rivals.ensure_packages()
    tree = script = None
    if {"bpfcc-tools", "python3-bpfcc"} & set(failed):
        status["bcc"] = f"could not install: {failed}"
    else:
        try:
            tree = rivals.bcc_tree()
            status["bcc"] = (
                "ran, with BCC_KERNEL_SOURCE set to a header tree made from "
                "the kernel's BTF (no kernel headers exist for this kernel)"
            )
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            status["bcc"] = f"could not run: {e}"
    if "bpftrace" in failed:
        status["bpftrace"] = f"could not install: {failed['bpftrace']}"
    else:
        script = rivals.bpftrace_script()
        status["bpftrace"] = (
            "ran /usr/sbin/runqlat.bt without its #include <linux/sched.h> "
            "(TASK_RUNNING written as 0; types come from BTF), tracefs mounted"
        )
    for tool, argv, env in (
        ("bcc", ["/usr/sbin/runqlat-bpfcc"], {"BCC_KERNEL_SOURCE": tree}),
        ("bpftrace", ["bpftrace", script], {}),
    ):
        if (tool == "bcc" and tree) or (tool == "bpftrace" and script):
            try:
                with Tracer(argv, env=env) as t:
                    t.wait_banner(RUNQLAT_BANNER_TIMEOUT)
            except RuntimeError as e:
                status[tool] = f"could not run: {e}"
                tree, script = (None, script) if tool == "bcc" else (tree, None)
    return status, tree, script


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny configuration (< 60 s), no rivals")
    ap.add_argument("--repeat", type=int, help="repetitions of each figure (default 3; quick 1)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="directory of the JSON")
    ap.add_argument(
        "--only",
        choices=["map_read"],
        help="run only this figure (runqlat -L with live threads); its own JSON, the doc untouched",
    )
    ap.add_argument(
        "--doc",
        default=str(ROOT / "docs" / "performance.md"),
        help="Markdown file whose table is regenerated ('' for none)",
    )
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.exit(2, "bench: needs root (BPF, sysctl, apt-get)\n")
    cfg = dict(CONFIGS["quick" if args.quick else "full"])
    if args.repeat:
        cfg["repeat"] = args.repeat
    if args.only:
        args.doc = ""  # a partial run must not replace the full table
    failed = rivals.ensure_packages(["stress-ng", "libbpf-tools", "bpftool", "gcc"])
    if failed:
        ap.exit(1, f"bench: cannot install {failed}\n")
    t_start = time.monotonic()
    leaks = LeakCheck()
    doc = {"config": {**cfg, "mode": "quick" if args.quick else "full"}, **environment()}
    with contextlib.ExitStack() as stack:
        if not args.quick:
            stack.enter_context(rivals.tracefs())
        doc["rivals"], tree, script = probe_rivals(
            "--quick" if args.quick else "--only" if args.only else None
        )
        b = Bench(cfg, rivals.commands(tree, script), leaks)
        log = lambda what: print(f"bench: {time.monotonic() - t_start:6.1f}s {what}", file=sys.stderr)  # noqa: E731
        b.warm_up()
        for rep in range(0 if args.only else cfg["repeat"]):
            log(f"repetition {rep + 1}/{cfg['repeat']}: start-up, RSS")
            b.startup(rep)
            log("in-kernel cost (bpf_stats)")
            with bpf_stats_enabled():
                b.in_kernel(rep)
            log("overhead on the load")
            b.overhead(rep)
            log("runqslower at full load")
            b.slower_max(rep)
        doc["zero_loss"] = {"steps": {}, "best": {}}
        if not args.only:
            log("runqslower zero-loss search")
            doc["zero_loss"] = b.zero_loss()
        idle: dict = {}
        for rep in range(cfg["repeat"]):
            b.map_read(0, rep, idle)
        for n in cfg["threads"]:
            log(f"runqlat -L with {n} live threads")
            with loads.live_threads(n, seconds=30 + 2 * (MAP_READ_TIMEOUT + 10) * cfg["repeat"]):
                for rep in range(cfg["repeat"]):
                    b.map_read(n, rep, idle)
        doc["idle_baseline"] = {t: [list(x) for x in v] for t, v in idle.items()}
    doc["leak_check"] = leaks.check()
    doc["results"] = {
        fig: {
            **{t: summary(v) for t, v in row.items()},
            **({"ratio": summary(ratios(row["pyrunq"], row["c"]))} if "pyrunq" in row and "c" in row else {}),
        }
        for fig, row in sorted(b.res.items())
    }
    for tool in b.tools:  # rivals' ratios, pair by pair, for the bcc targets
        for fig in ("runqlat.startup_ms", "runqlat.rss_mb", "runqslower.startup_ms", "runqslower.rss_mb"):
            row = b.res.get(fig, {})
            if tool not in ("pyrunq", "c") and tool in row:
                doc["results"][fig][f"ratio_{tool}"] = summary(ratios(row[tool], row["pyrunq"]))
    zl = doc["zero_loss"]["best"]
    doc["results"]["runqslower.zero_loss_events_per_s"] = {t: summary([v]) for t, v in zl.items()} | (
        {"ratio": summary([zl["pyrunq"] / zl["c"]])} if zl.get("c") else {}
    )
    doc["targets"] = report.targets(doc["results"])
    doc["duration_s"] = round(time.monotonic() - t_start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y-%m-%d')}-{platform.node()}{'-' + args.only if args.only else ''}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"bench: wrote {path}", file=sys.stderr)
    if args.doc:
        report.update_doc(Path(args.doc), doc, path)
        print(f"bench: regenerated the table in {args.doc}", file=sys.stderr)
    if doc["leak_check"]["leaked"]:
        print(
            f"bench: FAILED: BPF programs left in the kernel: {doc['leak_check']['leaked']}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
