"""Real scheduling delay for kernel tests: busy processes and a waking victim
pinned to one CPU. The victim sleeps a few milliseconds and wakes, over and
over; each wakeup waits on the run queue behind the busy ones."""

from __future__ import annotations

import os
import subprocess
import sys

BUSY = "while True: pass"
VICTIM = "import time\nprint('ready', flush=True)\nwhile True: time.sleep({period})"


def spawn(code: str, cpu: int, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code],
                            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}), **kw)


class Contention:
    """``with Contention(busy=2) as w:`` ... ``w.victim.pid``."""

    def __init__(self, busy: int = 2, cpu: int = 0, period: float = 0.003):
        # the victim first, and in its loop before the load starts: an
        # interpreter starting behind busy loops takes long to get going
        self.victim = spawn(VICTIM.format(period=period), cpu, stdout=subprocess.PIPE)
        assert self.victim.stdout.readline() == b"ready\n"
        self.busy = [spawn(BUSY, cpu) for _ in range(busy)]

    def stop(self) -> None:
        for p in self.busy + [self.victim]:
            p.kill()
            p.wait()
        self.victim.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
