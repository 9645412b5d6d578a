"""pyrunq funclatency: bcc's funclatency for user-space functions, with the
interval and count as positional arguments, and JSON."""

from __future__ import annotations

import sys
import time

EXAMPLES = """examples:
    pyrunq funclatency c:malloc              # time libc's malloc() in every process
    pyrunq funclatency -p 181 -u Foo 1 5     # Foo in process 181 (its binary or a library),
                                             # in microseconds, 1 second summaries, 5 times
    pyrunq funclatency -m /usr/bin/python3:PyEval_EvalCode
    pyrunq funclatency --json c:free 10      # 10 second summaries as JSON lines"""


def add_arguments(p) -> None:
    from . import positive_int

    p.add_argument("-p", "--pid", type=positive_int, help="trace this process only")
    unit = p.add_mutually_exclusive_group()
    unit.add_argument(
        "-m", "--milliseconds", dest="unit", action="store_const", const="msecs", help="millisecond histogram"
    )
    unit.add_argument(
        "-u", "--microseconds", dest="unit", action="store_const", const="usecs", help="microsecond histogram"
    )
    unit.add_argument(
        "-n",
        "--nanoseconds",
        dest="unit",
        action="store_const",
        const="nsecs",
        help="nanosecond histogram (the default)",
    )
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("--json", action="store_true", help="one JSON document per interval per line")
    p.add_argument(
        "function",
        metavar="BINARY:FUNCTION|FUNCTION",
        help="the function: BINARY a path or a library name (c for libc); a bare FUNCTION needs -p",
    )
    p.add_argument("interval", nargs="?", type=positive_int, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")


def text(latency, timestamp: bool) -> str:
    """One interval as bcc's funclatency prints it."""
    out = ["\n"]
    if timestamp:
        out.append("%-8s\n" % time.strftime("%H:%M:%S"))
    out.append(latency.render())
    if latency.count:
        from ..tools.funclatency import UNITS

        total = latency.sum_ns / UNITS[latency.unit]  # bcc divides floats, %ld truncates
        out.append(
            "\navg = %d %s, total: %d %s, count: %d\n\n"
            % (total / latency.count, latency.unit, total, latency.unit, latency.count)
        )
    return "".join(out)


def json_line(latency, fl) -> str:
    import json

    return (
        json.dumps(
            {
                "time": time.time(),
                "function": fl.target.function,
                "binary": fl.target.path,
                **latency.to_dict(),
            }
        )
        + "\n"
    )


def run(args, parser) -> int:
    from ..tools.funclatency import FuncLatency
    from . import wait

    out = sys.stdout
    with FuncLatency(args.function, pid=args.pid, unit=args.unit or "nsecs") as fl:
        print(
            f'Tracing 1 functions for "{args.function}"... Hit Ctrl-C to end.',
            file=sys.stderr if args.json else out,
            flush=True,
        )
        printed, stop = 0, False
        while not stop:
            stop = wait(args.interval)
            latency = fl.snapshot()
            out.write(json_line(latency, fl) if args.json else text(latency, args.timestamp))
            out.flush()
            if latency.missed:
                print(
                    f"{parser.prog}: {latency.missed} calls not timed (more than "
                    f"{fl.max_in_flight} in flight at once)",
                    file=sys.stderr,
                    flush=True,
                )
            printed += 1
            stop = stop or not args.interval or printed == args.count
        if not args.json:
            out.write("Detaching...\n")
    return 0
