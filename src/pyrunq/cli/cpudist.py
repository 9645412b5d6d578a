"""pyrunq cpudist: the arguments and the output of libbpf-tools' cpudist,
plus several PIDs, per-PID-namespace and per-cgroup histograms and JSON."""

from __future__ import annotations

import sys

from . import positive_int, wait, warn_missing
from .runqlat import add_histogram_arguments, fast_text, json_lines, report_drops, write_bytes

EXAMPLES = """examples:
    pyrunq cpudist              # summarize on-CPU time as a histogram
    pyrunq cpudist -O           # summarize off-CPU time as a histogram
    pyrunq cpudist 1 10         # print 1 second summaries, 10 times
    pyrunq cpudist -mT 1        # 1s summaries, milliseconds, and timestamps
    pyrunq cpudist -P           # show each PID separately
    pyrunq cpudist -p 185       # trace PID 185 only
    pyrunq cpudist -c CG        # trace tasks in cgroup v2 directory CG and below
    pyrunq cpudist --cgroups 5 --json   # per-cgroup histograms as JSON lines"""


def banner(offcpu: bool) -> str:
    return f"Tracing {'off' if offcpu else 'on'}-CPU time... Hit Ctrl-C to end.\n"


def add_arguments(p) -> None:
    p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
    add_histogram_arguments(p)  # runqlat's
    p.add_argument("interval", nargs="?", type=positive_int, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")


def run(args, parser) -> int:
    from ..tools.cpudist import CpuDist

    if args.pid:
        warn_missing(parser.prog, args.pid)
    out = sys.stdout
    with CpuDist(
        offcpu=args.offcpu, milliseconds=args.milliseconds, per=args.per, pids=args.pid, cgroup=args.cgroup
    ) as cd:
        print(banner(args.offcpu), end="", file=sys.stderr if args.json else out, flush=True)
        remaining = args.count or float("inf")
        while remaining > 0:
            stopped = wait(args.interval)  # no interval: until Ctrl-C
            if args.json:
                out.write(json_lines(cd.snapshot(), cd))
            else:  # the text in C: -L with thousands of threads takes milliseconds, never hangs
                write_bytes(out, fast_text(cd, args.timestamp))
            out.flush()
            remaining -= 1
            if stopped:
                break
        report_drops(parser.prog, cd.stats())
    return 0
