"""pyrunq runqlen: the arguments and the output of libbpf-tools' runqlen,
plus JSON; the CPU's run queue on every kernel (libbpf-tools' reads a task
group's, and no longer loads on 6.13+)."""

from __future__ import annotations

import sys
import time

from ..hist import interval_header, render_linear
from . import positive_int, wait

BANNER = "Sampling run queue length... Hit Ctrl-C to end.\n"

EXAMPLES = """examples:
    pyrunq runqlen            # summarize run queue length as a histogram
    pyrunq runqlen 1 10       # print 1 second summaries, 10 times
    pyrunq runqlen -T 1       # 1s summaries and timestamps
    pyrunq runqlen -O         # report run queue occupancy
    pyrunq runqlen -C         # show each CPU separately
    pyrunq runqlen -f 199     # sample at 199 Hz
    pyrunq runqlen -C --json 1 1   # per-CPU lengths as JSON lines"""


def add_arguments(p) -> None:
    p.add_argument("-C", "--cpus", action="store_true", help="print output for each CPU separately")
    p.add_argument(
        "-f",
        "-F",
        "--frequency",
        type=positive_int,
        default=99,
        help="sample with this frequency (Hz, default 99)",
    )
    p.add_argument("-O", "--runqocc", action="store_true", help="report run queue occupancy")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("--json", action="store_true", help="one JSON document per CPU (or in all) per line")
    p.add_argument("interval", nargs="?", type=positive_int, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")


def text(snapshot: dict, per_cpu: bool, occupancy: bool, timestamp: bool) -> str:
    """One interval as runqlen.c prints it."""
    from ..tools.runqlen import combined

    out = [interval_header(time.time() if timestamp else None)]
    views = snapshot.items() if per_cpu else [(None, combined(snapshot))]
    for cpu, q in views:
        if occupancy:
            pct = 100 * q.occupancy
            out.append(
                "runqocc: %0.2f%%\n" % pct if cpu is None else "runqocc, CPU %-3d %6.2f%%\n" % (cpu, pct)
            )
        else:
            out.append(("" if cpu is None else f"cpu = {cpu}\n") + render_linear(q.counts, "runqlen"))
    return "".join(out)


def json_lines(snapshot: dict, per_cpu: bool) -> str:
    import json

    from ..tools.runqlen import combined

    now = time.time()
    views = snapshot.items() if per_cpu else [(None, combined(snapshot))]
    return "".join(json.dumps({"time": now, "cpu": cpu, **q.to_dict()}) + "\n" for cpu, q in views)


def run(args, parser) -> int:
    from ..tools.runqlen import RunqLen

    out = sys.stdout
    with RunqLen(frequency=args.frequency) as rl:
        print(BANNER, end="", file=sys.stderr if args.json else out, flush=True)
        remaining = args.count or float("inf")
        while remaining > 0:
            stopped = wait(args.interval)  # no interval: until Ctrl-C
            snapshot = rl.snapshot()
            if args.json:
                out.write(json_lines(snapshot, args.cpus))
            else:
                out.write(text(snapshot, args.cpus, args.runqocc, args.timestamp))
            out.flush()
            remaining -= 1
            if stopped:
                break
    return 0
