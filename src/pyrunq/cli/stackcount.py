"""pyrunq stackcount: bcc's stackcount for one user-space function and user
stacks, with the stacks symbolized from each process's own ELF files."""

from __future__ import annotations

import sys
import time

EXAMPLES = """examples:
    pyrunq stackcount ./foobar:Foo          # count stacks calling Foo, until Ctrl-C
    pyrunq stackcount c:malloc 10           # malloc stacks of every process, for 10 s
    pyrunq stackcount -p 185 c:malloc       # malloc stacks of PID 185 only
    pyrunq stackcount -p 185 Foo            # Foo, looked up in PID 185's files
    pyrunq stackcount -s ./foobar:Foo       # show symbol offsets
    pyrunq stackcount --json ./foobar:Foo   # one JSON document per stack
    pyrunq stackcount --folded c:malloc 5   # folded stacks, for flamegraph.pl or inferno
    pyrunq stackcount --flamegraph malloc.svg c:malloc 5   # and as a flame graph"""

SYMBOLIZE_EVERY = 0.25  # seconds: name the stacks of short-lived processes early


def add_arguments(p) -> None:
    from . import positive_int
    from .pictures import add_stack_arguments

    p.add_argument("-p", "--pid", type=positive_int, help="trace this PID only")
    p.add_argument("-s", "--offset", action="store_true", help="show address offsets")
    p.add_argument("--json", action="store_true", help="one JSON document per stack per line")
    p.add_argument(
        "spec", metavar="BINARY:FUNCTION", help="function to count stacks for (bare FUNCTION with -p)"
    )
    p.add_argument("duration", nargs="?", type=positive_int, help="seconds to trace (default: until Ctrl-C)")
    add_stack_arguments(p)


def frame_text(frame, offset: bool) -> str:
    """A frame as bcc's BPF.sym() names it."""
    if frame.name is None:
        return "[unknown]"
    return f"{frame.name}+{frame.offset:#x}" if offset else frame.name


def print_text(out, stacks, per_process: bool, offset: bool) -> None:
    """As bcc's stackcount: the least frequent first, each stack then its count."""
    for s in sorted(stacks, key=lambda s: s.count):
        for frame in s.frames:
            out.write(f"  {frame_text(frame, offset)}\n")
        if per_process:
            out.write(f"    {s.comm} [{s.pid}]\n")
        out.write(f"    {s.count}\n\n")


def print_json(out, stacks) -> None:
    import json

    for s in stacks:
        out.write(
            json.dumps(
                {
                    "pid": s.pid,
                    "comm": s.comm,
                    "count": s.count,
                    "frames": [
                        {"address": f.address, "symbol": f.name, "offset": f.offset, "module": f.module}
                        for f in s.frames
                    ],
                }
            )
            + "\n"
        )


def folded_pairs(stacks, per_process: bool, offset: bool) -> list:
    """(frames root first, count) of each stack; the process name is the
    root frame when every process is traced (as bcc's ``stackcount -f -P``)."""
    pairs = []
    for s in stacks:
        frames = [frame_text(f, offset) for f in reversed(s.frames)]
        pairs.append(([s.comm, *frames] if per_process else frames, s.count))
    return pairs


def report_lost(prog: str, stats: dict) -> None:
    lost = sum(stats.values())
    if lost:
        print(
            f"{prog}: {lost} calls not counted ({stats['stack_collisions']} stack hash"
            f" collisions, {stats['stack_errors']} stacks not captured,"
            f" {stats['counts_full']} with the counts map full)",
            file=sys.stderr,
            flush=True,
        )


def run(args, parser) -> int:
    from ..tools.stackcount import StackCount
    from . import stop_requested, wait
    from .pictures import check_stack_arguments, write_stacks

    check_stack_arguments(args, parser)
    out = sys.stdout
    with StackCount(args.spec, pid=args.pid) as sc:
        print(
            f'Tracing 1 functions for "{args.spec}"... Hit Ctrl-C to end.',
            file=sys.stderr if args.json or args.folded else out,
            flush=True,
        )
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop_requested():
            left = SYMBOLIZE_EVERY if deadline is None else deadline - time.monotonic()
            if left <= 0 or wait(min(left, SYMBOLIZE_EVERY)):
                break
            sc.counts()  # symbolizes new stacks while their processes live
        sc.stop()
        stacks = sc.counts()
        per_process = args.pid is None
        write_stacks(
            args,
            folded_pairs(stacks, per_process, args.offset),
            title=f"stackcount {args.spec}",
            unit="calls",
            subtitle="every process" if per_process else f"PID {args.pid}",
            folded_to=out if args.folded else None,
        )
        if args.json:
            print_json(out, stacks)
        elif not args.folded:
            out.write("\n")
            print_text(out, stacks, per_process=per_process, offset=args.offset)
            out.write("Detaching...\n")
        out.flush()
        report_lost(parser.prog, sc.stats())
    return 0
