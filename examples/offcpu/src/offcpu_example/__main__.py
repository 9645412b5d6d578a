"""offcpu-example PID: trace PID's threads until it exits, then print each
thread's off-CPU time: TID, milliseconds, spells (switch-out to switch-in)."""

from __future__ import annotations

import argparse
import os
import select
import sys

from . import offcpu_skel


def trace(pid: int) -> list[tuple[int, int, int]]:
    """(tid, off-CPU ns, spells) of each thread of ``pid``, traced until it exits."""
    waiter = os.pidfd_open(pid)
    try:
        with offcpu_skel.open() as skel:
            skel.rodata.target_tgid = pid
            skel.load()
            skel.attach()
            print(f"Tracing off-CPU time of PID {pid} until it exits.", flush=True)
            select.select([waiter], [], [])
            skel.detach()
            if skel.bss.missed:
                print(f"missed {skel.bss.missed} spells: too many threads", file=sys.stderr)
            return sorted((tid, o.total_ns, o.spells) for tid, o in skel.maps.offcpu.items())
    finally:
        os.close(waiter)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="offcpu-example", description=__doc__)
    parser.add_argument("pid", type=int, help="the process to trace")
    args = parser.parse_args(argv)
    try:
        rows = trace(args.pid)
    except ProcessLookupError:
        parser.error(f"no process {args.pid}")
    print(f"{'TID':>8} {'OFFCPU_MS':>10} {'SPELLS':>8}")
    for tid, ns, spells in rows:
        print(f"{tid:>8} {ns // 1_000_000:>10} {spells:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
