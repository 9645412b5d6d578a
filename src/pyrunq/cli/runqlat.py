"""pyrunq runqlat: the arguments and the output of libbpf-tools' runqlat, plus
several PIDs, per-cgroup histograms and JSON."""

from __future__ import annotations

import sys
import time

from ..hist import BANNER, Histogram, interval_header, key_heading, render_interval
from . import pid_list, positive_int, wait, warn_missing

EXAMPLES = """examples:
    pyrunq runqlat            # summarize run queue latency as a histogram
    pyrunq runqlat 1 10       # print 1 second summaries, 10 times
    pyrunq runqlat -mT 1      # 1s summaries, milliseconds, and timestamps
    pyrunq runqlat -P         # show each PID separately
    pyrunq runqlat -p 185,186 # trace these PIDs only
    pyrunq runqlat -c CG      # trace tasks in cgroup v2 directory CG and below
    pyrunq runqlat --cgroups 5 --json   # per-cgroup histograms as JSON lines
    pyrunq runqlat --blame 1 1          # and who held the CPU while tasks waited
    pyrunq runqlat --heatmap lat.svg 1 60   # a latency heatmap of 60 one-second intervals
    pyrunq runqlat -P --heatmap lat.svg 1 60    # and one small heatmap per busiest process"""


def add_histogram_arguments(p) -> None:
    """The flags of runqlat that every keyed histogram tool shares (cpudist):
    -T, -m, a histogram per process, thread, PID namespace or cgroup, the
    task filters and --json."""
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    per = p.add_mutually_exclusive_group()
    per.add_argument(
        "-P", "--pids", dest="per", action="store_const", const="pid", help="print a histogram per process ID"
    )
    per.add_argument(
        "-L", "--tids", dest="per", action="store_const", const="tid", help="print a histogram per thread ID"
    )
    per.add_argument(
        "--pidnss",
        dest="per",
        action="store_const",
        const="pidns",
        help="print a histogram per PID namespace",
    )
    per.add_argument(
        "--cgroups",
        dest="per",
        action="store_const",
        const="cgroup",
        help="print a histogram per cgroup v2 cgroup",
    )
    p.add_argument("-p", "--pid", type=pid_list, metavar="PID[,PID...]", help="trace these processes only")
    p.add_argument(
        "-c", "--cgroup", metavar="CGROUP", help="trace tasks in this cgroup v2 directory (and below)"
    )
    p.add_argument("--json", action="store_true", help="one JSON document per histogram per line")


def add_arguments(p) -> None:
    add_histogram_arguments(p)
    p.add_argument(
        "--blame",
        action="store_true",
        help="after each histogram, who held the CPU while its tasks waited: shares by kind, top culprits",
    )
    from .pictures import add_heatmap_argument

    add_heatmap_argument(p)
    p.add_argument("interval", nargs="?", type=positive_int, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")


def heading(key) -> str | None:
    """The line above a key's histogram: the C tool's, and ours for cgroups."""
    if key is None:
        return None
    if key.kind == "cgroup":
        return f"cgroup = {key.name}"
    return key_heading(key.kind, key.id, key.name)


def text(snapshot: dict, timestamp: bool) -> str:
    """One interval exactly as runqlat.c prints it (the reference of fast_text)."""
    return render_interval(
        [(heading(key), hist) for key, hist in snapshot.items()], time.time() if timestamp else None
    )


def fast_text(rq, timestamp: bool) -> bytes:
    """text(rq.snapshot(), timestamp), the per-key work done in C: with
    thousands of threads (-L) most of the CPU went there."""
    sections = rq.interval_text()
    return interval_header(time.time() if timestamp else None).encode() + sections


def write_bytes(out, data: bytes) -> None:
    """Bytes to a text stream: to its binary buffer when it has one."""
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(data.decode("utf-8", "surrogateescape"))
        return
    out.flush()
    buffer.write(data)


BLAME_SHOWN = 3  # culprits per key in the text


def blame_lines(snapshot: dict, blame: dict) -> str:
    """Per key that waited, in the snapshot's order: its waiting split by
    culprit kind, and its largest culprits, as shares of its waiting."""
    lines = []
    for key in snapshot:
        a = blame.get(key)
        if a is None or not a.total_ns:
            continue
        share = {k: f"{v * 100:.1f}%" for k, v in a.shares().items()}
        top = ", ".join(f"{c.label()} {c.ns / a.total_ns * 100:.1f}%" for c in a.culprits[:BLAME_SHOWN])
        head = heading(key) or "all"
        lines.append(f"{head}: held by " + " ".join(f"{k} {v}" for k, v in share.items()))
        if top:
            lines.append(f"  top culprits: {top}")
    return "".join(line + "\n" for line in lines) + ("\n" if lines else "")


def json_lines(snapshot: dict, rq, blame: dict | None = None) -> str:
    import dataclasses
    import json

    now = time.time()
    if rq.per is None and not snapshot:
        snapshot = {None: Histogram.empty(rq.unit)}
    lines = []
    for key, hist in snapshot.items():
        doc = {
            "time": now,
            "key": None
            if key is None
            else {"kind": key.kind, "id": key.id, ("path" if key.kind == "cgroup" else "comm"): key.name},
        }
        doc.update(hist.to_dict())
        if blame is not None and key in blame:
            a = blame[key]
            doc["blame"] = {"kinds_ns": a.kinds, "culprits": [dataclasses.asdict(c) for c in a.culprits]}
        lines.append(json.dumps(doc) + "\n")
    return "".join(lines)


def run(args, parser) -> int:
    from ..tools.runqlat import RunqLat

    if args.pid:
        warn_missing(parser.prog, args.pid)
    with RunqLat(
        milliseconds=args.milliseconds, per=args.per, pids=args.pid, cgroup=args.cgroup, blame=args.blame
    ) as rq:
        print(BANNER, end="", file=sys.stderr if args.json else sys.stdout, flush=True)
        intervals(rq, args, "Run queue latency", "latency")
        report_drops(parser.prog, rq.stats())
    return 0


def intervals(tool, args, title: str, measure: str, what: str = "wait") -> None:
    """Each interval's histograms of a keyed histogram tool (runqlat,
    cpudist) as the arguments ask: text (in C, unless a heatmap or --blame
    needs the Python snapshot), JSON, --blame's lines; and the --heatmap
    of them all at the end (``title``; the y axis is the ``measure`` of
    each ``what``)."""
    out, blame = sys.stdout, getattr(args, "blame", False)
    recorder = None
    if args.heatmap:
        from ..heatmap import Recorder

        recorder = Recorder(tool.unit, what)
    remaining = args.count or float("inf")
    while remaining > 0:
        stopped = wait(args.interval)  # no interval: until Ctrl-C
        snapshot = None
        if blame:  # the histograms of the Python reference, beside their attribution
            snapshot, attribution = tool.interval()
            if args.json:
                out.write(json_lines(snapshot, tool, attribution))
            else:
                out.write(text(snapshot, args.timestamp) + blame_lines(snapshot, attribution))
        elif args.json:
            snapshot = tool.snapshot()
            out.write(json_lines(snapshot, tool))
        elif recorder is not None:  # the same text, from the snapshot the heatmap needs
            snapshot = tool.snapshot()
            out.write(text(snapshot, args.timestamp))
        else:  # the text in C: -L with thousands of threads takes milliseconds, never hangs
            write_bytes(out, fast_text(tool, args.timestamp))
        out.flush()
        if recorder is not None and snapshot is not None:
            recorder.add(time.time(), {heading(key) or "": hist.buckets for key, hist in snapshot.items()})
        remaining -= 1
        if stopped:
            break
    if recorder is not None:
        recorder.write(args.heatmap, **heatmap_titles(args, tool.unit, title, measure))


def heatmap_titles(args, unit: str, title: str, measure: str) -> dict:
    what = {"pid": "per process", "tid": "per thread", "pidns": "per PID namespace", "cgroup": "per cgroup"}
    title += f", {what[args.per]}" if args.per else ""
    every = f"one column per {args.interval} s interval" if args.interval else "one column: the whole run"
    return {"title": title, "subtitle": f"{every}; {measure} in {unit}", "interval": args.interval}


def report_drops(prog: str, stats: dict) -> None:
    lost = {k: v for k, v in stats.items() if v and k != "clock_skew"}
    if lost:
        print(
            f"{prog}: warning: samples lost: " + ", ".join(f"{k}={v}" for k, v in lost.items()),
            file=sys.stderr,
        )
