"""pyrunq top: who waits for a CPU, and how long, refreshed on a full screen
(curses), or as plain tables (-b) or JSON lines (--json) for scripts.

The rows, their order and their text are pyrunq.tools.top's; this module
only reads keys and draws lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time

from . import pid_list, positive_int, stop_requested, wait, warn_missing

EXAMPLES = """examples:
    pyrunq top                  # every process that waited, longest p99 first
    pyrunq top --by thread      # one row per thread (--by cgroup: per cgroup/container)
    pyrunq top -p 185,186       # these processes only
    pyrunq top -b -n 3 -d 2     # three plain tables, 2 seconds apart
    pyrunq top --json -n 10     # one JSON document per interval
    pyrunq top --heatmap top.svg    # at the end, a latency heatmap of the rows it showed

keys: p t c (process/thread/cgroup), < > (sort column), / (filter), space (pause),
h (help), q (quit). P50, P99 and MAX have the kernel buckets' resolution (within 25%)."""


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not 0.05 <= value <= 86400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 86400 seconds: {text!r}")
    return value


def add_arguments(p) -> None:
    from ..tools.top import BY, SORTS

    p.add_argument(
        "-p", "--pid", type=pid_list, action="extend", metavar="PID[,PID...]", help="these processes only"
    )
    p.add_argument("-c", "--cgroup", metavar="CGROUP", help="tasks in this cgroup v2 directory (and below)")
    p.add_argument("--by", choices=tuple(BY), default="process", help="one row per (default: process)")
    p.add_argument("-s", "--sort", choices=SORTS, default="p99", help="sort column (default: p99)")
    p.add_argument("-d", "--delay", type=seconds, default=1.0, metavar="SECONDS", help="refresh interval")
    p.add_argument("-b", "--batch", action="store_true", help="plain text tables, no screen")
    p.add_argument("-n", "--iterations", type=positive_int, metavar="N", help="stop after N intervals")
    p.add_argument("--json", action="store_true", help="one JSON document per interval per line")
    p.add_argument(
        "--blame", action="store_true", help="a victim -> culprit table: who took the CPU from whom (key b)"
    )
    from .pictures import add_heatmap_argument

    add_heatmap_argument(p)


def run(args, parser) -> int:
    from ..tools.top import Sampler, View

    if args.pid:
        warn_missing(parser.prog, args.pid)
    view = View(by=args.by, sort=args.sort, blame=args.blame)
    batch = args.batch or args.json or not (sys.stdout.isatty() and sys.stdin.isatty())
    recorder = Heatmap() if args.heatmap else None
    with Sampler(args.by, pids=args.pid, cgroup=args.cgroup) as sampler:
        if batch:
            rc = run_batch(sampler, view, args, recorder)
        else:
            import curses

            rc = curses.wrapper(lambda stdscr: Screen(stdscr, sampler, view, args, recorder).loop())
    if recorder is not None:
        recorder.write(args.heatmap, args)
    return rc


class Heatmap:
    """--heatmap: each frame's rows, as the view shows them (its filter)."""

    def __init__(self):
        from ..heatmap import Recorder

        self.recorder = Recorder("usecs")

    def add(self, frame, view) -> None:
        from ..tools.top import visible

        rows = visible(frame.rows, view)
        self.recorder.add(frame.time, {row_label(r): frame.hists[r.kind, r.id].buckets for r in rows})

    def write(self, path: str, args) -> None:
        self.recorder.write(
            path,
            title=f"pyrunq top: run queue latency by {args.by}",
            subtitle=f"one column per {args.delay:g} s refresh; the rows shown that waited most",
            interval=args.delay,
        )


def row_label(r) -> str:
    if r.kind == "cgroup":
        return f"cgroup {r.label}"
    return f"{'pid' if r.kind == 'pid' else 'tid'} {r.id} {r.label}"


def run_batch(sampler, view, args, recorder=None) -> int:
    from ..tools.top import batch_text, json_doc

    utf8 = (sys.stdout.encoding or "").lower().replace("-", "") == "utf8"
    remaining = args.iterations or float("inf")
    while remaining > 0:
        stopped = wait(args.delay)
        frame = sampler.sample(all_culprits=args.json or view.blame, hists=recorder is not None)
        if recorder is not None:
            recorder.add(frame, view)
        if args.json:
            sys.stdout.write(json.dumps(json_doc(frame, view)) + "\n")
        else:
            sys.stdout.write(batch_text(frame, view, utf8))
        sys.stdout.flush()
        remaining -= 1
        if stopped:
            break
    return 0


class Screen:
    """The curses screen: keys in, lines out, a frame every ``args.delay``."""

    def __init__(self, stdscr, sampler, view, args, recorder=None):
        import curses
        import locale

        self.curses, self.stdscr, self.sampler, self.view, self.args = curses, stdscr, sampler, view, args
        self.recorder = recorder
        self.utf8 = locale.getpreferredencoding(False).lower().replace("-", "") == "utf8"
        self.frame = None
        stdscr.nodelay(True)
        try:
            curses.curs_set(0)
        except curses.error:  # a terminal that cannot hide the cursor
            pass

    def loop(self) -> int:
        # Our handler replaces ncurses' SIGWINCH one: the signal then wakes
        # wait() at once, and fit_terminal() tells curses the new size.
        previous = signal.signal(signal.SIGWINCH, lambda signum, frame: None)
        try:
            return self._loop()
        finally:
            signal.signal(signal.SIGWINCH, previous)

    def _loop(self) -> int:
        due = time.monotonic() + self.args.delay
        remaining = self.args.iterations or float("inf")
        self.draw()
        while remaining > 0 and not wait(max(0.0, due - time.monotonic()), sys.stdin.fileno()):
            self.fit_terminal()
            if not self.keys():
                return 0
            if time.monotonic() >= due:
                due = max(due + self.args.delay, time.monotonic())
                if not self.view.paused:
                    self.frame = self.sampler.sample(
                        all_culprits=self.view.blame, hists=self.recorder is not None
                    )
                    if self.recorder is not None:
                        self.recorder.add(self.frame, self.view)
                    remaining -= 1
            self.draw()
        return 0

    def keys(self) -> bool:
        """Apply the keys pressed; False on quit."""
        from ..tools.top import apply_key

        while (code := self.stdscr.getch()) != -1:
            if not 0 < code < 256:
                continue  # arrows, function keys
            key = chr(code)
            if key == "/":
                self.view = dataclasses.replace(self.view, filter=self.prompt("filter: "))
                continue
            view = apply_key(self.view, key)
            if view is None:
                return False
            if view.by != self.view.by:
                self.switch(view.by)
            self.view = view
        return True

    def switch(self, by: str) -> None:
        self.frame = None
        self.draw_status(f"switching to one row per {by}...")
        self.sampler.switch(by)

    def prompt(self, text: str) -> str:
        """Read a line on the last row: Enter ends it, Escape cancels it."""
        typed = ""
        while not stop_requested():
            self.draw_status(text + typed)
            wait(None, sys.stdin.fileno())
            while (code := self.stdscr.getch()) != -1:
                if code in (10, 13, self.curses.KEY_ENTER):
                    return typed
                if code == 27:
                    return self.view.filter
                if code in (8, 127, self.curses.KEY_BACKSPACE):
                    typed = typed[:-1]
                elif 32 <= code < 127:
                    typed += chr(code)
        return self.view.filter

    def fit_terminal(self) -> None:
        size = os.get_terminal_size(sys.stdout.fileno())
        # a terminal that does not know its size says 0x0 (a bare pty, a
        # serial line): curses' own size (LINES, COLUMNS, terminfo) stays
        if size.lines and size.columns and (size.lines, size.columns) != self.stdscr.getmaxyx():
            self.curses.resizeterm(size.lines, size.columns)
            self.stdscr.clear()

    def draw(self) -> None:
        from ..tools.top import screen_lines

        height, width = self.stdscr.getmaxyx()
        styles = {"title": self.curses.A_BOLD, "columns": self.curses.A_REVERSE, "": self.curses.A_NORMAL}
        self.stdscr.erase()
        for y, (text, style) in enumerate(screen_lines(self.frame, self.view, width, height, self.utf8)):
            self._put(y, text, styles[style])
        self.stdscr.refresh()

    def draw_status(self, text: str) -> None:
        height, width = self.stdscr.getmaxyx()
        self.stdscr.move(height - 1, 0)
        self.stdscr.clrtoeol()
        self._put(height - 1, text[: width - 1], self.curses.A_BOLD)
        self.stdscr.refresh()

    def _put(self, y: int, text: str, attr: int) -> None:
        try:
            self.stdscr.addstr(y, 0, text, attr)
        except self.curses.error:  # the bottom-right cell: curses cannot move past it
            pass
