"""pyrunq runqslower: the arguments and output of libbpf-tools' runqslower,
plus a threshold of 0, JSON, and lost events always reported."""

from __future__ import annotations

import sys
import time

EXAMPLES = """examples:
    pyrunq runqslower          # trace latency higher than 10000 us (default)
    pyrunq runqslower 1000     # trace latency higher than 1000 us
    pyrunq runqslower -p 123   # trace pid 123
    pyrunq runqslower -t 123   # trace tid 123 (use for threads only)
    pyrunq runqslower -P       # also show previous task name and TID
    pyrunq runqslower 0 --json # every delay, as JSON lines"""


def add_arguments(p) -> None:
    from . import non_negative_int, positive_int

    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", "--pid", type=positive_int, help="process PID to trace")
    who.add_argument("-t", "--tid", type=positive_int, help="thread TID to trace")
    p.add_argument("-P", "--previous", action="store_true", help="also show previous task name and TID")
    p.add_argument("--json", action="store_true", help="one JSON document per event per line")
    p.add_argument(
        "min_us",
        nargs="?",
        type=non_negative_int,
        default=10000,
        help="minimum run queue delay to trace, in us (default 10000; 0: all)",
    )


HEADER = ("TIME", "COMM", "TID", "LAT(us)")
PREV_HEADER = HEADER + ("PREV COMM", "PREV TID")
ROW = "%-8s %-16s %-6s %14s"
PREV_ROW = ROW + " %-16s %-6s"


class Rows:
    """Prints each event as runqslower.c's handle_event does: the reference
    of the rows RunqSlower(text=True) writes in C, which the CLI uses."""

    def __init__(self, out, previous: bool):
        from . import Clock

        self.write, self.previous, self.clock = out.write, previous, Clock()

    @staticmethod
    def header(previous: bool) -> str:
        return (PREV_ROW % PREV_HEADER if previous else ROW % HEADER) + "\n"

    def __call__(self, e) -> None:
        if self.previous:
            self.write(
                PREV_ROW % (self.clock(), e.task, e.tid, e.delta_ns // 1000, e.prev_task, e.prev_tid) + "\n"
            )
        else:
            self.write(ROW % (self.clock(), e.task, e.tid, e.delta_ns // 1000) + "\n")


def json_writer(out):
    import json

    def on_event(e):
        out.write(
            json.dumps(
                {
                    "time": time.time(),
                    "comm": e.task,
                    "pid": e.pid,
                    "tid": e.tid,
                    "latency_us": e.delta_ns // 1000,
                    "latency_ns": e.delta_ns,
                    "cpu": e.cpu,
                    "prev_comm": e.prev_task,
                    "prev_pid": e.prev_pid,
                    "prev_tid": e.prev_tid,
                }
            )
            + "\n"
        )

    return on_event


def run(args, parser) -> int:
    from ..tools.runqslower import RunqSlower
    from . import stream, warn_missing

    if args.pid:
        warn_missing(parser.prog, [args.pid])
    out = sys.stdout
    with RunqSlower(
        min_us=args.min_us,
        pid=args.pid,
        tid=args.tid,
        callback=json_writer(out) if args.json else None,
        text=not args.json,
        previous=args.previous,
    ) as rs:
        print(
            f"Tracing run queue latency higher than {args.min_us} us",
            file=sys.stderr if args.json else out,
            flush=True,
        )
        if args.json:
            stream(parser.prog, rs, out)
        else:
            out.write(Rows.header(args.previous))
            out.flush()
            stream(parser.prog, rs, out, drain=lambda: out.buffer.write(rs.take_text()))
    return 0
