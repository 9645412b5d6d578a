"""bench/run.py --quick and bench/uprobes.py run end to end and write well-formed results.
Behaviour only: the numbers are the benchmark's business, not the tests'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def positive(x) -> bool:
    return isinstance(x, (int, float)) and x > 0


@pytest.mark.slow
@pytest.mark.external
def test_bench_quick(kernel, tmp_path):
    doc = tmp_path / "performance.md"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--out",
            str(tmp_path),
            "--doc",
            str(doc),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    for key in (
        "config",
        "machine",
        "kernel",
        "versions",
        "rivals",
        "results",
        "targets",
        "zero_loss",
        "leak_check",
    ):
        assert key in data, key
    assert data["leak_check"]["leaked"] == []
    res = data["results"]
    for fig in (
        "runqlat.startup_ms",
        "runqlat.run_1_1_ms",
        "runqlat.rss_mb",
        "runqlat.ns_per_run.switch",
        "runqlat.ns_per_run.wakeup",
        "runqlat.load_pct",
        "runqslower.startup_ms",
        "runqslower.rss_mb",
        "runqslower.ns_per_run.all",
        "runqslower.max.events_per_s",
        "runqslower.max.cpu_us_per_event",
        "runqlat_L.100.hists_per_interval",
    ):
        for tool in ("pyrunq", "c"):
            s = res[fig][tool]
            assert positive(s["median"]) and s["min"] <= s["median"] <= s["max"], (fig, tool, s)
        assert positive(res[fig]["ratio"]["median"]), fig
    assert res["load.ops_per_s"]["none"]["median"] > 0
    assert {t["target"] for t in data["targets"]} and all("verdict" in t for t in data["targets"])
    text = doc.read_text()
    assert "<!-- bench:begin -->" in text and "| Figure |" in text and "| Target |" in text


@pytest.mark.slow
@pytest.mark.external
def test_bench_uprobes_small(kernel, tmp_path):
    calls = 20000
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "uprobes.py"),
            "--calls",
            str(calls),
            "--repeat",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (path,) = tmp_path.glob("*-uprobes.json")
    data = json.loads(path.read_text())
    assert data["leak_check"]["leaked"] == []
    for tool in ("C", "pyrunq"):  # both tracers saw every call of the workload
        assert data["median"][tool]["calls_seen"] == calls, (tool, data["median"][tool])
        assert positive(data["median"][tool]["added_ns_per_call"])
    assert positive(data["ratio_pyrunq_to_c"]["added_ns_per_call"])
    assert "ns added per call" in r.stdout
