"""pyrunq memleak: bcc's memleak for one user process: every interval, the
stacks with the most bytes allocated and not yet freed."""

from __future__ import annotations

import os
import sys
import time

EXAMPLES = """examples:
    pyrunq memleak -p $(pidof allocs)        # top 10 stacks every 5 seconds
    pyrunq memleak -p $(pidof allocs) 10 3   # every 10 seconds, 3 times
    pyrunq memleak -p 185 -T 5 -o 0          # top 5, allocations of any age
    pyrunq memleak -p 185 --json             # one JSON document per interval"""


def add_arguments(p) -> None:
    from . import non_negative_int, positive_int

    p.add_argument("-p", "--pid", type=positive_int, required=True, help="the PID to trace")
    p.add_argument(
        "-T",
        "--top",
        type=positive_int,
        default=10,
        help="display only this many top allocating stacks (by size)",
    )
    p.add_argument(
        "-o",
        "--older",
        type=non_negative_int,
        default=500,
        help="prune allocations younger than this age in milliseconds (default 500)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document per interval per line")
    p.add_argument(
        "interval",
        nargs="?",
        type=positive_int,
        default=5,
        help="interval in seconds to print outstanding allocations (default 5)",
    )
    p.add_argument(
        "count", nargs="?", type=positive_int, help="number of times to print the report before exiting"
    )


def frame_text(frame) -> str:
    """A frame as bcc's memleak prints it: address, then BPF.sym() with
    offset and module."""
    name = f"{frame.name}+{frame.offset:#x}" if frame.name is not None else "[unknown]"
    module = f" [{os.path.basename(frame.module)}]" if frame.module else ""
    return f"0x{frame.address:016x}\t{name}{module}"


def print_text(out, stacks, top: int) -> None:
    """bcc's print_outstanding: the most bytes last."""
    out.write(f"[{time.strftime('%H:%M:%S')}] Top {top} stacks with outstanding allocations:\n")
    for s in reversed(stacks):
        frames = "\n\t\t".join(frame_text(f) for f in s.frames)
        out.write(f"\t{s.bytes} bytes in {s.allocations} allocations from stack\n\t\t{frames}\n")


def print_json(out, pid: int, stacks, stats) -> None:
    import json

    out.write(
        json.dumps(
            {
                "time": time.time(),
                "pid": pid,
                "stacks": [
                    {
                        "bytes": s.bytes,
                        "allocations": s.allocations,
                        "frames": [
                            {"address": f.address, "symbol": f.name, "offset": f.offset, "module": f.module}
                            for f in s.frames
                        ],
                    }
                    for s in stacks
                ],
                "lost": stats,
            }
        )
        + "\n"
    )


def report_lost(prog: str, stats: dict, reported: int) -> int:
    """Say on stderr, when it grows, how many allocations were not tracked fully."""
    lost = sum(stats.values())
    if lost > reported:
        print(
            f"{prog}: {lost} allocations not tracked fully so far"
            f" ({stats['stack_collisions']} stack hash collisions,"
            f" {stats['stack_errors']} stacks not captured,"
            f" {stats['allocs_full']} with the allocs map full,"
            f" {stats['pending_full']} with the pending map full)",
            file=sys.stderr,
            flush=True,
        )
    return max(lost, reported)


def run(args, parser) -> int:
    from ..tools.memleak import MemLeak
    from . import wait

    out = sys.stdout
    with MemLeak(args.pid) as ml:
        print(
            f"Attaching to pid {args.pid}, Ctrl+C to quit.", file=sys.stderr if args.json else out, flush=True
        )
        printed, reported = 0, 0
        while args.count is None or printed < args.count:
            if wait(args.interval):
                break  # as bcc: Ctrl-C ends without a last report
            stacks = ml.outstanding(args.top, min_age_ns=args.older * 1_000_000)
            stats = ml.stats()
            if args.json:
                print_json(out, args.pid, stacks, stats)
            else:
                print_text(out, stacks, args.top)
            out.flush()
            reported = report_lost(parser.prog, stats, reported)
            printed += 1
    return 0
