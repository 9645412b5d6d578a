"""pyrunq offwaketime: bcc's offwaketime from sched_switch and sched_waking
alone (libbpf-tools has none): off-CPU stacks joined with the waker's, a
wakeup from an interrupt named for it, not for the task it interrupted."""

from __future__ import annotations

import sys

from .offcputime import add_arguments, json_frames, show, trace

__all__ = ["EXAMPLES", "add_arguments", "run"]

EXAMPLES = """examples:
    pyrunq offwaketime             # trace off-CPU + waker stack time until Ctrl-C
    pyrunq offwaketime 5           # trace for 5 seconds only
    pyrunq offwaketime -f 5        # 5 seconds, and output in folded format
    pyrunq offwaketime -m 1000     # trace only events that last more than 1000 usec
    pyrunq offwaketime -M 9000     # trace only events that last less than 9000 usec
    pyrunq offwaketime -p 185      # only trace threads for PID 185
    pyrunq offwaketime -t 188      # only trace thread 188
    pyrunq offwaketime -u          # only trace user threads (no kernel)
    pyrunq offwaketime -k          # only trace kernel threads (no user)
    pyrunq offwaketime -U          # only show user space stacks (no kernel)
    pyrunq offwaketime -K          # only show kernel space stacks (no user)"""


def header(args) -> str:
    which = "user" if args.user_stacks_only else "kernel" if args.kernel_stacks_only else "user + kernel"
    end = f" for {args.duration} secs." if args.duration else "... Hit Ctrl-C to end."
    return f"Tracing blocked time (us) by {which} off-CPU and waker stack{end}\n"


def text(stacks, args) -> str:
    """As bcc prints them, the shortest first: the waker (its name, its user
    frames root first, its kernel frames down to the wakeup), "--", the
    target's kernel frames from where it blocked up, its user frames, its
    name, the microseconds."""
    depth = args.perf_max_stack_depth
    kernel, user = not args.user_stacks_only, not args.kernel_stacks_only
    both = args.delimited and kernel and user
    out = []
    for s in sorted(stacks, key=lambda s: s.total_ns):
        w, t = s.waker, s.target
        out.append("    %-16s %s %s" % ("waker:", w.comm, w.tid))
        if user:
            out += (
                ["    [Missed User Stack]"] if w.user is None else [f"    {f}" for f in w.user[:depth][::-1]]
            )
        if kernel:
            if both and w.user and w.kernel:
                out.append("    -")
            out += (
                ["    [Missed Kernel Stack]"]
                if w.kernel is None
                else [f"    {f}" for f in w.kernel[:depth][::-1]]
            )
        out.append("    %-16s %s" % ("--", "--"))
        if kernel:
            out += (
                ["    [Missed Kernel Stack]"] if t.kernel is None else [f"    {f}" for f in t.kernel[:depth]]
            )
        if user:
            if both and t.user and t.kernel:
                out.append("    -")
            out += ["    [Missed User Stack]"] if t.user is None else [f"    {f}" for f in t.user[:depth]]
        out.append("    %-16s %s %s" % ("target:", t.comm, t.tid))
        out.append("        %d\n" % s.total_us)
    return "".join(line + "\n" for line in out)


def json_lines(stacks) -> str:
    import json

    def side(x, **more):
        return {
            "pid": x.pid,
            "tid": x.tid,
            "comm": x.comm,
            **more,
            "kernel": json_frames(x.kernel),
            "user": json_frames(x.user),
        }

    return "".join(
        json.dumps(
            {
                "target": side(s.target, cgroup=s.target.cgroup),
                "waker": side(s.waker, context=s.waker.context),
                "total_us": s.total_us,
                "total_ns": s.total_ns,
                "count": s.target.count,
            }
        )
        + "\n"
        for s in stacks
    )


def run(args, parser) -> int:
    from ..tools.offwaketime import OffWakeTime

    with trace(OffWakeTime, args, parser, header(args)) as (tool, stacks):
        sys.stdout.write(show(tool, stacks, args, json_lines, text))
    return 0
