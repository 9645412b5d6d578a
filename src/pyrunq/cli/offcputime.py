"""pyrunq offcputime: the arguments and the output of bcc's offcputime
(libbpf-tools' flags), from sched_switch alone, with user symbols read in
each process's own mount namespace, plus several PIDs, a cgroup and JSON."""

from __future__ import annotations

import contextlib
import sys
import time

from . import non_negative_int, pid_list, pictures, positive_int, stop_requested, wait, warn_missing

EXAMPLES = """examples:
    pyrunq offcputime             # trace off-CPU stack time until Ctrl-C
    pyrunq offcputime 5           # trace for 5 seconds only
    pyrunq offcputime -f 5        # 5 seconds, and output in folded format
    pyrunq offcputime -m 1000     # trace only events that last more than 1000 usec
    pyrunq offcputime -M 10000    # trace only events that last less than 10000 usec
    pyrunq offcputime -p 185      # only trace threads for PID 185
    pyrunq offcputime -t 188      # only trace thread 188
    pyrunq offcputime -u          # only trace user threads (no kernel)
    pyrunq offcputime -k          # only trace kernel threads (no user)
    pyrunq offcputime -U          # only show user space stacks (no kernel)
    pyrunq offcputime -K          # only show kernel space stacks (no user)
    pyrunq offcputime -c CG       # only threads in cgroup v2 directory CG and below"""

SYMBOLIZE_EVERY = 0.25  # seconds: name the stacks of short-lived processes early


def add_arguments(p) -> None:
    who = p.add_mutually_exclusive_group()
    who.add_argument("-p", "--pid", type=pid_list, metavar="PID[,PID...]", help="trace these processes only")
    who.add_argument("-t", "--tid", type=positive_int, help="trace this thread only")
    who.add_argument(
        "-u", "--user-threads-only", action="store_true", help="user threads only (no kernel threads)"
    )
    who.add_argument(
        "-k", "--kernel-threads-only", action="store_true", help="kernel threads only (no user threads)"
    )
    stacks = p.add_mutually_exclusive_group()
    stacks.add_argument(
        "-U", "--user-stacks-only", action="store_true", help="show stacks from user space only"
    )
    stacks.add_argument(
        "-K", "--kernel-stacks-only", action="store_true", help="show stacks from kernel space only"
    )
    p.add_argument(
        "-d", "--delimited", action="store_true", help="insert delimiter between kernel/user stacks"
    )
    p.add_argument("-f", "--folded", action="store_true", help="output folded format")
    p.add_argument("--json", action="store_true", help="one JSON document per stack per line")
    p.add_argument(
        "-c", "--cgroup", metavar="CGROUP", help="trace threads in this cgroup v2 directory (and below)"
    )
    p.add_argument(
        "-m", "--min-block-time", type=non_negative_int, default=1, metavar="US",
        help="count only blocks of at least this many microseconds (default 1)",
    )  # fmt: skip
    p.add_argument(
        "-M", "--max-block-time", type=positive_int, metavar="US",
        help="count only blocks of at most this many microseconds",
    )  # fmt: skip
    p.add_argument(
        "--state", type=non_negative_int, help="only blocks begun in this task state (2: uninterruptible)"
    )
    p.add_argument(
        "--stack-storage-size",
        type=positive_int,
        default=16384,
        help="room for distinct stacks (default 16384)",
    )
    p.add_argument(
        "--perf-max-stack-depth", type=positive_int, default=127, help="frames shown per stack (default 127)"
    )
    p.add_argument("duration", nargs="?", type=positive_int, help="seconds to trace (default: until Ctrl-C)")
    pictures.add_stack_arguments(p, folded=False)  # -f/--folded is bcc's, above


def header(args) -> str:
    """bcc's: who is traced, which stacks, for how long."""
    if args.pid:
        who = "PID " + ", ".join(map(str, args.pid))
    elif args.tid:
        who = f"TID {args.tid}"
    elif args.user_threads_only:
        who = "user threads"
    elif args.kernel_threads_only:
        who = "kernel threads"
    else:
        who = "all threads"
    which = "user" if args.user_stacks_only else "kernel" if args.kernel_stacks_only else "user + kernel"
    end = f" for {args.duration} secs." if args.duration else "... Hit Ctrl-C to end."
    return f"Tracing off-CPU time (us) of {who} by {which} stack{end}\n"


def text(stacks, args) -> str:
    """As bcc prints them: the shortest first, each kernel frames then user
    frames (leaf first), then '-' comm (tid), then microseconds."""
    depth = args.perf_max_stack_depth
    out = []
    for s in sorted(stacks, key=lambda s: s.total_ns):
        if not args.user_stacks_only:
            out += (
                ["    [Missed Kernel Stack]"] if s.kernel is None else [f"    {f}" for f in s.kernel[:depth]]
            )
        if args.delimited and not (args.user_stacks_only or args.kernel_stacks_only) and s.kernel and s.user:
            out.append("    --")
        if not args.kernel_stacks_only:
            out += ["    [Missed User Stack]"] if s.user is None else [f"    {f}" for f in s.user[:depth]]
        out.append("    %-16s %s (%d)" % ("-", s.comm, s.tid))
        out.append("        %d\n" % s.total_us)
    return "".join(line + "\n" for line in out)


def folded_pairs(tool, stacks, args) -> list:
    """(frames root first, microseconds) of each stack, as the flags choose its sides."""
    kw = {
        "kernel": not args.user_stacks_only,
        "user": not args.kernel_stacks_only,
        "delimiter": args.delimited,
    }
    return list(tool.folded(stacks, **kw))


def folded(tool, stacks, args) -> str:
    from ..folded import lines

    return "".join(line + "\n" for line in lines(folded_pairs(tool, stacks, args)))


def json_frames(frames):
    """Frames as JSON (null: the stack was not captured)."""
    if frames is None:
        return None
    return [{"address": f.address, "symbol": f.name, "module": f.module} for f in frames]


def json_lines(stacks) -> str:
    import json

    return "".join(
        json.dumps(
            {
                "pid": s.pid,
                "tid": s.tid,
                "comm": s.comm,
                "cgroup": s.cgroup,
                "total_us": s.total_us,
                "total_ns": s.total_ns,
                "count": s.count,
                "kernel": json_frames(s.kernel),
                "user": json_frames(s.user),
            }
        )
        + "\n"
        for s in stacks
    )


@contextlib.contextmanager
def trace(tool_class, args, parser, banner: str):
    """Trace with ``tool_class`` as the arguments say, until the duration
    ends or a signal, after the banner (to stderr with -f/--json); yields
    ``(tool, stacks)`` to print, then says what the kernel side lost."""
    pictures.check_stack_arguments(args, parser)
    if args.pid:
        warn_missing(parser.prog, args.pid)
    out = sys.stdout
    with tool_class(
        pids=args.pid,
        tid=args.tid,
        cgroup=args.cgroup,
        user_threads_only=args.user_threads_only,
        kernel_threads_only=args.kernel_threads_only,
        state=args.state,
        min_block_us=args.min_block_time,
        max_block_us=args.max_block_time,
        stack_entries=args.stack_storage_size,
    ) as tool:
        print(banner, end="", file=sys.stderr if args.folded or args.json else out, flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop_requested():
            left = SYMBOLIZE_EVERY if deadline is None else deadline - time.monotonic()
            if left <= 0 or wait(min(left, SYMBOLIZE_EVERY)):
                break
            tool.stacks()  # symbolizes new stacks while their processes live
        tool.stop()
        yield tool, tool.stacks()
        out.flush()
        report_lost(parser.prog, tool.stats())


def run(args, parser) -> int:
    from ..tools.offcputime import OffCpuTime

    with trace(OffCpuTime, args, parser, header(args)) as (tool, stacks):
        sys.stdout.write(show(tool, stacks, args, json_lines, text))
    return 0


def show(tool, stacks, args, as_json, as_text) -> str:
    """The stacks in the format the arguments ask for (and the flame graph
    with --flamegraph)."""
    if args.flamegraph:
        title = f"{type(tool).__name__}: off-CPU time" + (
            " and wakers" if "Wake" in type(tool).__name__ else ""
        )
        pictures.write_stacks(args, folded_pairs(tool, stacks, args), title=title, unit="us")
    if args.folded:
        return folded(tool, stacks, args)
    return as_json(stacks) if args.json else as_text(stacks, args)


def report_lost(prog: str, stats: dict) -> None:
    lost = {k: v for k, v in stats.items() if v and k != "clock_skew"}
    if lost:
        print(
            f"{prog}: warning: not all counted: " + ", ".join(f"{k}={v}" for k, v in lost.items()),
            file=sys.stderr,
        )
