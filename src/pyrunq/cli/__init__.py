"""The ``pyrunq`` command: one subcommand per tool.

Conventions shared by every subcommand: usage errors print one line
``pyrunq <tool>: error: ...`` and exit 2; runtime errors print one line and
exit 1 (with the traceback only under ``-v``); SIGINT and SIGTERM end tracing
cleanly, even when SIGINT was ignored by the parent shell; output to a closed
pipe ends quietly.

SIGINT and SIGTERM only note the signal and wake ``wait()``: no exception
ever lands in the middle of a write, a load or a libbpf callback, and each
tool leaves its loop through its normal end (last output, detach, flush).
While a tool reads an object file (``reading()``), there is nothing yet to
end cleanly: a signal ends pyrunq there and then (exit 128 + the signal),
however long the file takes to read.

``inspect`` and ``run`` read files someone else made: what they write goes
through ``terminal.EscapingWriter``, and every error line is escaped, so no
name in a file reaches the terminal as a control character.
"""

from __future__ import annotations

import _signal  # built in, unlike `signal`: no import time before the handlers

_signals: list[int] = []
_reading: list[bool] = []  # non-empty while an object file is read


class Interrupted(BaseException):
    """SIGINT or SIGTERM while an object file was read."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _note(signum, frame):
    _signals.append(signum)
    if _reading:
        raise Interrupted(signum)


# From the first moment pyrunq's code runs, even if the shell ignored SIGINT.
_signal.signal(_signal.SIGINT, _note)
_signal.signal(_signal.SIGTERM, _note)

import argparse  # noqa: E402
import importlib  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from .. import __version__  # noqa: E402

_wakeup = -1  # read end of the pipe the C signal handler writes to

TOOLS = {
    "runqlat": "Summarize run queue (scheduler) latency as a histogram.",
    "runqslower": "Trace each wakeup-to-run delay above a threshold.",
    "cpudist": "Summarize on-CPU (or off-CPU) time per run as a histogram.",
    "runqlen": "Summarize run queue length (sampled per CPU) as a histogram.",
    "offcputime": "Summarize off-CPU time by kernel and user stack.",
    "offwaketime": "Summarize blocked time by off-CPU stack and waker stack.",
    "top": "Show who waits longest for a CPU, refreshed like top.",
    "exporter": "Serve run queue latency as Prometheus metrics.",
    "bootstrap": "Trace process execs and exits, with exit codes and lifetimes.",
    "funclatency": "Summarize a user-space function's latency as a histogram.",
    "stackcount": "Count the distinct user stacks that call a function.",
    "memleak": "Report a process's outstanding allocations by stack.",
    "inspect": "List what a BPF object holds: programs, maps, globals, types.",
    "run": "Load, configure and attach any CO-RE object; print its maps and events.",
    "skel": "Write a typed Python module (a skeleton) for a CO-RE object.",
}


class Parser(argparse.ArgumentParser):
    """argparse, with errors on one line."""

    def __init__(self, *args, formatter_class=argparse.HelpFormatter, **kw):
        super().__init__(*args, formatter_class=_width(formatter_class), **kw)

    def error(self, message):
        from .terminal import escape

        self.exit(2, f"{self.prog}: error: {escape(message, one_line=True)}\n")


def _width(formatter_class):
    """``formatter_class`` told the width argparse would ask shutil for:
    argparse does so at every add_argument, and importing shutil (zlib, bz2,
    lzma) costs every start 2 ms."""
    return lambda prog: formatter_class(prog, width=_columns() - 2)  # argparse's own margin


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, without shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def pid_list(text: str) -> list[int]:
    try:
        pids = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid PID list: {text!r}") from None
    if any(p <= 0 for p in pids):
        raise argparse.ArgumentTypeError(f"invalid PID list: {text!r}")
    return pids


def warn_missing(prog: str, pids) -> None:
    for pid in pids:
        if not os.path.exists(f"/proc/{pid}"):
            print(f"{prog}: warning: no process with PID {pid}", file=sys.stderr)


def report_lost(prog: str, lost: int, reported: int, final: bool = False) -> int:
    """Say on stderr how many events the full ring buffer dropped."""
    if lost > reported or (final and lost):
        what = "in all" if final else "so far"
        print(f"{prog}: lost {lost} events {what} (ring buffer full)", file=sys.stderr, flush=True)
    return lost


class Clock:
    """The "%H:%M:%S" of event rows, formatted once a second, not once an event."""

    def __init__(self):
        self.second, self.text = None, ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self.second:
            self.second, self.text = now, time.strftime("%H:%M:%S", time.localtime(now))
        return self.text


def stream(prog: str, tool, out, drain=lambda: None) -> None:
    """Hand over a ring buffer tool's events until SIGINT or SIGTERM, saying
    once a second how many a full ring buffer dropped; then detach and hand
    over what is left. ``drain()`` after each poll writes what the tool
    wrote in C, if it does."""
    reported, next_check = 0, time.monotonic() + 1
    while not stop_requested():
        if tool.poll(0, limit=4096) == 0:  # bounded: back here often, even when flooded
            wait(0.5, tool.fileno())
        drain()
        out.flush()
        if time.monotonic() >= next_check:
            reported = report_lost(prog, tool.lost, reported)
            next_check = time.monotonic() + 1
    tool.stop()
    drain()
    out.flush()
    report_lost(prog, tool.lost, reported, final=True)


class reading:
    """``with reading():`` an object file is read: SIGINT and SIGTERM end
    pyrunq at once (a malformed file must not keep it from ending)."""

    def __enter__(self):
        if _signals:
            raise Interrupted(_signals[0])
        _reading.append(True)

    def __exit__(self, *exc):
        _reading.pop()


def stop_requested() -> bool:
    return bool(_signals)


def wait(timeout: float | None, fd: int | None = None) -> bool:
    """Sleep ``timeout`` seconds (None: until a signal), or until ``fd`` is
    readable; return whether SIGINT or SIGTERM has come."""
    if not _signals:
        select.select([_wakeup] if fd is None else [_wakeup, fd], [], [], timeout)
        try:
            os.read(_wakeup, 64)
        except BlockingIOError:
            pass
    return bool(_signals)


def main(argv=None) -> int:
    global _wakeup
    _wakeup, w = os.pipe()
    os.set_blocking(_wakeup, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    return _main(sys.argv[1:] if argv is None else argv)


def _main(argv) -> int:
    if not argv or argv[0] not in TOOLS:
        _top_parser().parse_args(argv[:1] or argv)  # prints help, the version or the one-line error
        return 2
    tool = importlib.import_module(f"pyrunq.cli.{argv[0]}")
    parser = Parser(prog=f"pyrunq {argv[0]}", **_tool_settings(argv[0], tool))
    _add_tool_arguments(parser, tool)
    args = parser.parse_args(argv[1:])
    saved = sys.stdout, sys.stderr
    if getattr(tool, "FOREIGN_FILES", False):  # names in those files may hold control characters
        from .terminal import EscapingWriter

        sys.stdout, sys.stderr = EscapingWriter(sys.stdout), EscapingWriter(sys.stderr)
    try:
        if args.verbose:  # libbpf's log, through logging (imported only here: start-up time)
            import logging

            logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        return _run(tool, args, parser)
    finally:
        sys.stdout, sys.stderr = saved


def _tool_settings(name: str, tool) -> dict:
    return {
        "description": TOOLS[name],
        "formatter_class": argparse.RawDescriptionHelpFormatter,
        "epilog": getattr(tool, "EXAMPLES", None),
    }


def _add_tool_arguments(parser: Parser, tool) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="verbose debug output")
    tool.add_arguments(parser)


def full_parser() -> Parser:
    """``pyrunq`` with every tool's own parser as a subcommand: what the man
    pages and shell completion are made from (``cli.manual``), so they name
    every tool and flag there is. It imports every tool: not for a start."""
    top = _top_parser(with_tools=False)
    sub = top.add_subparsers(dest="tool", metavar="TOOL", required=True, parser_class=Parser)
    for name, help_text in TOOLS.items():
        tool = importlib.import_module(f"pyrunq.cli.{name}")
        _add_tool_arguments(sub.add_parser(name, help=help_text, **_tool_settings(name, tool)), tool)
    return top


def _run(tool, args, parser: Parser) -> int:
    """``tool.run``, its errors as one line (exit 1; usage errors exit 2)."""
    from ..errors import VERIFIER_LOG_HINT, PyrunqError, UsageError
    from .terminal import escape

    try:
        return tool.run(args, parser)
    except Interrupted as e:
        return 128 + e.signum
    except UsageError as e:
        parser.exit(2, f"{parser.prog}: error: {escape(str(e), one_line=True)}\n")
    except (PyrunqError, OSError) as e:
        if isinstance(e, BrokenPipeError):
            return _quiet_broken_pipe()
        if args.verbose:
            raise
        # the library says where a Python caller finds a verifier log; here, -v shows it
        text = str(e).replace(VERIFIER_LOG_HINT, "-v shows its log")
        parser.exit(1, f"{parser.prog}: error: {escape(text, one_line=True)}\n")


def _top_parser(with_tools: bool = True) -> Parser:
    """``pyrunq`` itself: made only when no tool is named (a parser a tool
    costs a start 4 ms)."""
    top = Parser(prog="pyrunq", description="Scheduler latency tracing with eBPF.")
    top.add_argument("--version", action="version", version=f"pyrunq {__version__}")
    if not with_tools:
        return top
    sub = top.add_subparsers(dest="tool", metavar="TOOL", required=True, parser_class=Parser)
    for name, help_text in TOOLS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return top


def _quiet_broken_pipe() -> int:
    """The reader went away (``| head``): stop without a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0
