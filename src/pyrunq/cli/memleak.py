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
    pyrunq memleak -p 185 --json             # one JSON document per interval
    pyrunq memleak -p 185 --flamegraph m.svg # and a flame graph of the bytes, every interval
    pyrunq memleak -p 185 --folded 5 1       # the bytes by stack, folded, after 5 s"""


def add_arguments(p) -> None:
    from . import non_negative_int, positive_int
    from .pictures import add_stack_arguments

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
    add_stack_arguments(p)


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


def folded_pairs(stacks) -> list:
    """(frames root first, outstanding bytes) of each stack."""
    return [([frame_text_short(f) for f in reversed(s.frames)], s.bytes) for s in stacks]


def frame_text_short(frame) -> str:
    """A frame in a flame graph: the function, or ``[unknown]`` and its module."""
    if frame.name is not None:
        return frame.name
    return f"[unknown] [{os.path.basename(frame.module)}]" if frame.module else "[unknown]"


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
    from .pictures import check_stack_arguments, write_stacks

    check_stack_arguments(args, parser)
    out = sys.stdout
    with MemLeak(args.pid) as ml:
        banner = sys.stderr if args.json or args.folded else out
        print(f"Attaching to pid {args.pid}, Ctrl+C to quit.", file=banner, flush=True)
        printed, reported = 0, 0
        while args.count is None or printed < args.count:
            stopped = wait(args.interval)
            if stopped and not (args.folded or args.flamegraph):
                break  # as bcc: Ctrl-C ends without a last report
            min_age_ns = args.older * 1_000_000
            stacks = ml.outstanding(args.top, min_age_ns=min_age_ns)
            stats = ml.stats()
            last = stopped or (args.count is not None and printed + 1 == args.count)
            if args.flamegraph or (args.folded and last):  # --folded: once, the state at the end
                write_stacks(
                    args,
                    folded_pairs(ml.outstanding(None, min_age_ns=min_age_ns)),  # every stack, not the top
                    title=f"memleak: outstanding allocations of PID {args.pid}",
                    unit="bytes",
                    subtitle=f"at {time.strftime('%H:%M:%S')}, allocations at least {args.older} ms old",
                    folded_to=out if args.folded and last else None,
                )
            if args.json:
                print_json(out, args.pid, stacks, stats)
            elif not args.folded:
                print_text(out, stacks, args.top)
            out.flush()
            reported = report_lost(parser.prog, stats, reported)
            printed += 1
            if stopped:
                break
    return 0
