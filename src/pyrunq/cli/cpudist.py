"""pyrunq cpudist: the arguments and the output of libbpf-tools' cpudist,
plus several PIDs, per-PID-namespace and per-cgroup histograms and JSON."""

from __future__ import annotations

import sys

from . import positive_int, warn_missing
from .pictures import add_heatmap_argument
from .runqlat import add_histogram_arguments, intervals, report_drops

EXAMPLES = """examples:
    pyrunq cpudist              # summarize on-CPU time as a histogram
    pyrunq cpudist -O           # summarize off-CPU time as a histogram
    pyrunq cpudist 1 10         # print 1 second summaries, 10 times
    pyrunq cpudist -mT 1        # 1s summaries, milliseconds, and timestamps
    pyrunq cpudist -P           # show each PID separately
    pyrunq cpudist -p 185       # trace PID 185 only
    pyrunq cpudist -c CG        # trace tasks in cgroup v2 directory CG and below
    pyrunq cpudist --cgroups 5 --json   # per-cgroup histograms as JSON lines
    pyrunq cpudist --heatmap runs.svg 1 60   # a heatmap of 60 one-second intervals"""


def banner(offcpu: bool) -> str:
    return f"Tracing {'off' if offcpu else 'on'}-CPU time... Hit Ctrl-C to end.\n"


def add_arguments(p) -> None:
    p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
    add_histogram_arguments(p)  # runqlat's
    add_heatmap_argument(p)
    p.add_argument("interval", nargs="?", type=positive_int, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")


def run(args, parser) -> int:
    from ..tools.cpudist import CpuDist

    if args.pid:
        warn_missing(parser.prog, args.pid)
    with CpuDist(
        offcpu=args.offcpu, milliseconds=args.milliseconds, per=args.per, pids=args.pid, cgroup=args.cgroup
    ) as cd:
        print(banner(args.offcpu), end="", file=sys.stderr if args.json else sys.stdout, flush=True)
        title, what = ("Off-CPU time per sleep", "sleep") if args.offcpu else ("On-CPU time per run", "run")
        intervals(cd, args, title, "time", what)
        report_drops(parser.prog, cd.stats())
    return 0
