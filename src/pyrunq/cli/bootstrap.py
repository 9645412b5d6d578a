"""pyrunq bootstrap: the output of libbpf-bootstrap's bootstrap example,
plus JSON and lost events reported."""

from __future__ import annotations

import sys
import time

EXAMPLES = """examples:
    pyrunq bootstrap           # every exec and process exit
    pyrunq bootstrap -d 100    # only exits of processes that lived >= 100 ms
    pyrunq bootstrap --json    # as JSON lines"""

HEADER = ("TIME", "EVENT", "COMM", "PID", "PPID", "FILENAME/EXIT CODE")
ROW = "%-8s %-5s %-16s %-7s %-7s %s"


def add_arguments(p) -> None:
    from . import positive_int

    p.add_argument(
        "-d",
        "--duration",
        metavar="MS",
        type=positive_int,
        default=0,
        help="only exits of processes that lived at least MS ms (no execs)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document per event per line")


class Rows:
    """Prints each event as bootstrap.c's handle_event does."""

    def __init__(self, out):
        from . import Clock

        self.write, self.clock = out.write, Clock()

    @staticmethod
    def header() -> str:
        return ROW % HEADER + "\n"

    def __call__(self, e) -> None:
        if e.exit_event:
            last = f"[{e.exit_code}]"
            if e.duration_ns:  # 0: exec'd before tracing started
                last += f" ({e.duration_ns // 1_000_000}ms)"
            self.write(ROW % (self.clock(), "EXIT", e.comm, e.pid, e.ppid, last) + "\n")
        else:
            self.write(ROW % (self.clock(), "EXEC", e.comm, e.pid, e.ppid, e.filename) + "\n")


def as_dict(e) -> dict:
    """An event as JSON-ready fields; an unknown lifetime is null."""
    doc = {
        "time": time.time(),
        "event": "EXIT" if e.exit_event else "EXEC",
        "comm": e.comm,
        "pid": e.pid,
        "ppid": e.ppid,
    }
    if e.exit_event:
        doc["exit_code"] = e.exit_code
        doc["duration_ns"] = e.duration_ns or None
        doc["duration_ms"] = e.duration_ns // 1_000_000 if e.duration_ns else None
    else:
        doc["filename"] = e.filename
    return doc


def json_writer(out):
    import json

    def on_event(e):
        out.write(json.dumps(as_dict(e)) + "\n")

    return on_event


def run(args, parser) -> int:
    from ..tools.bootstrap import Bootstrap
    from . import stream

    out = sys.stdout
    callback = json_writer(out) if args.json else Rows(out)
    with Bootstrap(min_duration_ms=args.duration, callback=callback) as bs:
        if not args.json:
            out.write(Rows.header())
            out.flush()
        stream(parser.prog, bs, out)
        unknown = bs.stats()["start_full"]
        if unknown:
            print(
                f"{parser.prog}: {unknown} lifetimes unknown (more than {bs.max_processes} "
                "processes tracked at once)",
                file=sys.stderr,
            )
    return 0
