"""Targets and the Markdown table of docs/performance.md, from one run's JSON."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TOOLS = [("pyrunq", "pyrunq"), ("c", "libbpf-tools (C)"), ("bcc", "bcc"), ("bpftrace", "bpftrace")]

FIGURES = [
    ("runqlat.startup_ms", "runqlat: exec to attached (banner), ms"),
    ("runqlat.run_1_1_ms", "runqlat: whole `runqlat 1 1`, ms"),
    ("runqlat.rss_mb", "runqlat: peak RSS, MB"),
    ("runqlat.ns_per_run.switch", "runqlat: ns per sched_switch run"),
    ("runqlat.ns_per_run.wakeup", "runqlat: ns per sched_wakeup run"),
    ("runqlat.ns_per_run.all", "runqlat: ns per program run, all programs"),
    ("runqlat.load_pct", "runqlat: load throughput with tracer, % of none"),
    ("runqslower.startup_ms", "runqslower: exec to attached (banner), ms"),
    ("runqslower.rss_mb", "runqslower: peak RSS, MB"),
    ("runqslower.ns_per_run.switch", "runqslower (10 ms threshold): ns per sched_switch run"),
    ("runqslower.ns_per_run.wakeup", "runqslower (10 ms threshold): ns per sched_wakeup run"),
    ("runqslower.ns_per_run.all", "runqslower (10 ms threshold): ns per program run, all"),
    ("runqslower.load_pct", "runqslower: load throughput with tracer, % of none"),
    ("runqslower.max.ctxt_per_s", "runqslower full load: context switches/s (machine)"),
    ("runqslower.max.events_per_s", "runqslower full load: events/s delivered"),
    ("runqslower.max.lost", "runqslower full load: events lost"),
    ("runqslower.max.cpu_us_per_event", "runqslower full load: tracer CPU per event, us"),
    ("runqslower.zero_loss_events_per_s", "runqslower: highest zero-loss rate, events/s"),
]
L_FIGURES = [
    ("hists_per_interval", "histograms printed per interval"),
    ("interval_ms", "read+clear+print CPU per interval, ms"),
    ("per_thread_us", "read+clear+print CPU per histogram, us"),
    ("hist_full", "samples lost, map full (hist_full)"),
    ("unfinished", "runs not finished within 60 s (stopped)"),
]

# (label, figure, ratio key, op, target); ratio keys are pyrunq / C unless named
TARGETS = [
    ("runqlat start-up to attached, pyrunq / C", "runqlat.startup_ms", "ratio", "<=", 1.5),
    ("runqslower start-up to attached, pyrunq / C", "runqslower.startup_ms", "ratio", "<=", 1.5),
    ("runqlat peak RSS, pyrunq / C", "runqlat.rss_mb", "ratio", "<=", 3),
    ("runqslower peak RSS, pyrunq / C", "runqslower.rss_mb", "ratio", "<=", 3),
    ("runqlat peak RSS of pyrunq, MB", "runqlat.rss_mb", "pyrunq", "<", 40),
    ("runqslower peak RSS of pyrunq, MB", "runqslower.rss_mb", "pyrunq", "<", 40),
    ("runqlat in-kernel ns per program run, pyrunq / C", "runqlat.ns_per_run.all", "ratio", "<=", 1.0),
    ("runqslower in-kernel ns per program run, pyrunq / C", "runqslower.ns_per_run.all", "ratio", "<=", 1.0),
    ("runqslower user+sys CPU per event, pyrunq / C", "runqslower.max.cpu_us_per_event", "ratio", "<=", 1.0),
    ("runqslower zero-loss event rate, pyrunq / C", "runqslower.zero_loss_events_per_s", "ratio", ">=", 1.0),
    ("runqlat start-up, bcc / pyrunq", "runqlat.startup_ms", "ratio_bcc", ">=", 10),
    ("runqslower start-up, bcc / pyrunq", "runqslower.startup_ms", "ratio_bcc", ">=", 10),
    ("runqlat peak RSS, bcc / pyrunq", "runqlat.rss_mb", "ratio_bcc", ">=", 4),
    ("runqslower peak RSS, bcc / pyrunq", "runqslower.rss_mb", "ratio_bcc", ">=", 4),
]


def fmt(x) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100 or x == int(x):
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def cell(s: dict | None) -> str:
    if not s:
        return "-"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


def targets(results: dict) -> list[dict]:
    rows = list(TARGETS)
    loaded = {m.group(1) for k in results if (m := re.match(r"runqlat_L\.(\d+)\.", k)) and m.group(1) != "0"}
    for key in sorted(loaded, key=int):  # 0 threads: the idle baseline, no figure of its own
        rows.append(
            (
                f"runqlat -L, {int(key):,} threads: CPU per histogram read+print, pyrunq / C",
                f"runqlat_L.{key}.per_thread_us",
                "ratio",
                "<=",
                0.5,
            )
        )
        rows.append(
            (
                f"runqlat -L, {int(key):,} threads: CPU per interval of pyrunq, ms",
                f"runqlat_L.{key}.interval_ms",
                "pyrunq",
                "<=",
                200,
            )
        )
    out = []
    for label, fig, key, op, target in rows:
        s = results.get(fig, {}).get(key)
        if not s:
            out.append(
                {
                    "target": label,
                    "op": op,
                    "value": target,
                    "measured": None,
                    "met": None,
                    "verdict": "not measured",
                }
            )
            continue
        m = s["median"]
        met = m <= target if op == "<=" else m < target if op == "<" else m >= target
        unit = "" if key == "pyrunq" else "x"
        if met:
            verdict = "met"
        elif op.startswith("<"):
            verdict = f"missed by {100 * (m / target - 1):.0f}% ({fmt(m)}{unit} vs {op} {fmt(target)}{unit})"
        else:
            verdict = f"missed by {100 * (1 - m / target):.0f}% ({fmt(m)}{unit} vs >= {fmt(target)}{unit})"
        out.append(
            {"target": label, "op": op, "value": target, "measured": s, "met": met, "verdict": verdict}
        )
    return out


def table(doc: dict, json_path: Path, doc_path: Path) -> str:
    res, v, m = doc["results"], doc["versions"], doc["machine"]
    tools = [(t, name) for t, name in TOOLS if any(t in r for r in res.values())]
    lines = [
        f"Run of {time.strftime('%Y-%m-%d %H:%M')} ({doc['config']['mode']}, "
        f"{doc['config']['repeat']} repetitions, {doc['duration_s']:.0f} s), raw data: "
        f"[`{os.path.relpath(json_path, doc_path.parent)}`]({os.path.relpath(json_path, doc_path.parent)}).",
        "",
        f"- Machine: {m['cpu']}, {m['cpus']} CPUs, {m['mem_gb']} GB; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}",
        f"- Kernel {doc['kernel']}; libbpf {v['libbpf']}; libbpf-tools {v['libbpf-tools']}; "
        f"bcc {v['bcc']}; bpftrace {v['bpftrace']}; stress-ng {v['stress-ng']}",
        f"- pyrunq {v['pyrunq']} ({v['pyrunq_commit']}"
        f"{', uncommitted changes' if v['pyrunq_dirty'] else ''}), "
        f"Python {v['python']}",
    ]
    lines += [f"- {tool}: {status}" for tool, status in doc["rivals"].items()]
    lines += [
        "",
        "Each cell: median (min-max) over the repetitions. pyrunq / C: the ratio "
        "taken pair by pair in the same repetition, then its median (min-max).",
        "",
        "| Figure | " + " | ".join(name for _, name in tools) + " | pyrunq / C |",
        "|---|" + "---:|" * (len(tools) + 1),
    ]
    figures = list(FIGURES)
    for n in sorted({int(k.split(".")[1]) for k in res if k.startswith("runqlat_L.")}):
        figures += [
            (f"runqlat_L.{n}.{k}", f"`runqlat -L 1 2`, {n:,} live threads: {label}") for k, label in L_FIGURES
        ]
    for fig, label in figures:
        r = res.get(fig)
        if r:
            lines.append(
                f"| {label} | "
                + " | ".join(cell(r.get(t)) for t, _ in tools)
                + f" | {cell(r.get('ratio'))} |"
            )
    base = res.get("load.ops_per_s", {}).get("none")
    if base:
        lines += ["", f"Load without any tracer: {cell(base)} stress-ng pipe bogo ops/s (pinned to CPU 0)."]
    zl = doc.get("zero_loss", {}).get("steps", {})
    if zl:
        lines += [
            "",
            "Zero-loss search (runqslower; load limit -> machine context switches/s, "
            "events/s delivered, lost, tracer CPU per event):",
            "",
            "| stress-ng --switch-freq | " + " | ".join(t for t in ("c", "pyrunq")) + " |",
            "|---|---|---|",
        ]
        for freq, row in zl.items():
            lines.append(
                f"| {freq if freq != '0' else 'unlimited'} | "
                + " | ".join(
                    f"{fmt(r['ctxt_per_s'])} cs/s, {fmt(r['events_per_s'])} ev/s, lost {r['lost']}, "
                    f"{fmt(r['cpu_us_per_event'])} us/ev"
                    if (r := row.get(t))
                    else "(stopped: lost at a lower rate)"
                    for t in ("c", "pyrunq")
                )
                + " |"
            )
    lines += ["", "| Target | Measured (median, min-max) | Verdict |", "|---|---|---|"]
    for t in doc["targets"]:
        lines.append(
            f"| {t['target']} {t['op']} {fmt(t['value'])} | {cell(t['measured'])} | "
            f"{'**' + t['verdict'] + '**' if t['met'] is False else t['verdict']} |"
        )
    lc = doc["leak_check"]
    lines += [
        "",
        f"Leak check: {lc['ours_seen']} BPF programs loaded by the tools during the run, "
        f"{len(lc['leaked'])} left afterwards.",
    ]
    return "\n".join(lines)


def update_doc(path: Path, doc: dict, json_path: Path) -> None:
    """Replace what lies between the markers (or create the file)."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1] if END in rest else "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{BEGIN}\n{table(doc, json_path, path)}\n{END}{tail}")
