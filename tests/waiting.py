"""Waiting for what a test needs (a value, a line, a banner), never for a fixed
time. Deadlines are generous: they only bound how long a broken test hangs,
and a timeout fails with what was seen meanwhile."""

from __future__ import annotations

import re
import subprocess
import threading
import time

DEADLINE = 30.0  # seconds
NO_WAIT = 60  # seconds: how long a command run to its end may take, if broken


def wait_for(predicate, timeout: float = DEADLINE, every: float = 0.05, seen=None):
    """Poll until ``predicate()`` is truthy and return that value. At the
    deadline fail, showing ``seen()`` (or the last value)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not seen within {timeout} s: {seen() if seen else value!r}")
        time.sleep(every)


def gather(snapshot, enough, timeout: float = DEADLINE):
    """Poll a tool's cumulative ``snapshot()`` until ``enough(value)``."""
    last = {}

    def ready():
        last["value"] = snapshot()
        return enough(last["value"])

    wait_for(ready, timeout, every=0.1, seen=lambda: last.get("value"))
    return last["value"]


def collect(tool, enough) -> list:
    """The events an event tool (``poll()``, ``events()``) delivers, once
    ``enough(events)`` holds."""
    events: list = []

    def more():
        tool.poll(0.1)
        events.extend(tool.events(timeout=0))
        return enough(events)

    wait_for(more, every=0, seen=lambda: events[-5:])
    return events


class Command:
    """A command whose stdout and stderr lines are read as they come, so a
    test can wait for a banner or a row and then act."""

    def __init__(self, argv, **kw):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        self.pid = self.proc.pid
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(f, lines), daemon=True)
            for f, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_line(
        self, pattern: str, stream: str = "out", count: int = 1, timeout: float = DEADLINE
    ) -> list[str]:
        """The first ``count`` lines of stdout (or "err") matching ``pattern``."""
        lines = self.out if stream == "out" else self.err

        def found():
            hits = [line for line in list(lines) if re.search(pattern, line)]
            if len(hits) < count and self.proc.poll() is not None:
                self._join()
                hits = [line for line in lines if re.search(pattern, line)]
                assert len(hits) >= count, f"exited {self.proc.returncode}: {self.text()}"
            return hits[:count] if len(hits) >= count else None

        return wait_for(found, timeout, seen=self.text)

    def finish(self, signum=None, timeout: float = DEADLINE) -> tuple[int, str, str]:
        """Signal (if asked), wait for the exit: (returncode, stdout, stderr)."""
        if signum is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        self._join()
        return (
            self.proc.returncode,
            "".join(f"{line}\n" for line in self.out),
            "".join(f"{line}\n" for line in self.err),
        )

    def _join(self) -> None:
        for t in self._readers:
            t.join(timeout=DEADLINE)

    def text(self) -> str:
        return f"stdout: {self.out[-20:]!r} stderr: {self.err[-20:]!r}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        self._join()
