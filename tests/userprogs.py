"""The C test programs under tests/progs/ and how tests drive them: each
prints "ready", then waits for a line on stdin before doing its work."""

from __future__ import annotations

import os
import subprocess

from waiting import NO_WAIT

PROGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs")


def build(tmp_path_factory, name: str) -> str:
    """tests/progs/NAME.c compiled with frame pointers (the kernel walks them)."""
    out = str(tmp_path_factory.mktemp("progs") / name)
    subprocess.run(
        ["gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", out, os.path.join(PROGS, f"{name}.c")],
        check=True,
    )
    return out


class Waiting:
    """A test program that has printed its first line and waits on stdin."""

    def __init__(self, *argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        assert self.proc.stdout.readline() == "ready\n"

    def go(self, reply: bool = True) -> str:
        """Send a line; return the next line it prints (with ``reply``)."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline() if reply else ""

    def finish(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(NO_WAIT) == 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
