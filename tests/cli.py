"""pyrunq's command line as the tests run it: ``python -m pyrunq`` with the
interpreter running the tests, to its end (``run``), in the background with
its lines read as they come (``spawn``), or tracing a test object this
process fires (``run_and_fire``); the exporter, scraped (``Exporter``); and
as uid 65534 (``Unprivileged``).
Tests of the command line use these, not argvs of their own."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import urllib.request

import pytest

from testobjects import fire
from waiting import NO_WAIT, Command


def cmd(*args) -> list[str]:
    """The argv of ``pyrunq ARGS``."""
    return [sys.executable, "-m", "pyrunq", *args]


def run(*args, prefix=(), timeout: float = NO_WAIT, **kw) -> subprocess.CompletedProcess:
    """``pyrunq ARGS`` (after ``prefix``, e.g. unshare) to its end; output as text."""
    return subprocess.run([*prefix, *cmd(*args)], capture_output=True, text=True, timeout=timeout, **kw)


def spawn(*args, prefix=(), **kw) -> Command:
    """``pyrunq ARGS`` (after ``prefix``) started, its lines read as they come."""
    return Command([*prefix, *cmd(*args)], **kw)


def assert_usage_error(tool: str, args, message: str) -> None:
    """``pyrunq TOOL ARGS`` exits 2 with one error line naming ``message``, and no output."""
    out = run(tool, *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"pyrunq {tool}: error: ") and message in out.stderr, out.stderr
    assert out.stdout == ""


def inspect_json(path) -> dict:
    """What ``pyrunq inspect PATH --json`` says; it must succeed."""
    out = run("inspect", path, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def run_and_fire(obj, values, *args, tgid: bool = True, prefix=()) -> tuple[int, str, str]:
    """``pyrunq run OBJ ARGS`` (with ``--set target_tgid=<this process>``
    unless ``tgid`` is false): fire ``values`` once it traces, then Ctrl-C.
    (exit code, stdout, stderr)."""
    mine = ["--set", f"target_tgid={os.getpid()}"] if tgid else []
    with spawn("run", obj, *mine, *args, prefix=prefix) as p:
        p.wait_line("^Tracing with", stream="err")
        fire(*values)
        return p.finish(signal.SIGINT)


class Exporter(Command):
    """``pyrunq exporter --listen 127.0.0.1:0 ARGS`` (after ``wrapper``),
    serving until stopped."""

    def __init__(self, *args, wrapper=()):
        super().__init__([*wrapper, *cmd("exporter", "--listen", "127.0.0.1:0", *args)])
        [line] = self.wait_line(r"serving https?://\S+", stream="err")
        self.url = line[line.index("serving ") + len("serving ") :].split()[0]

    def stderr(self) -> str:
        return "".join(f"{line}\n" for line in list(self.err))

    def scrape(self, accept: str | None = None) -> tuple[str, str]:
        req = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.headers["Content-Type"], r.read().decode()

    def samples(self, name: str) -> dict:
        """{frozenset(labels.items()): value} of one sample name in a scrape."""
        from prometheus_client import parser

        return {
            frozenset(s.labels.items()): s.value
            for f in parser.text_string_to_metric_families(self.scrape()[1])
            for s in f.samples
            if s.name == name
        }

    def stop(self, signum=signal.SIGTERM) -> int:
        """Signal it and wait for its end: its exit code."""
        return self.finish(signum)[0]


def missing_pid() -> int:
    """A PID that no process has."""
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    return pid


# -- as uid 65534 ------------------------------------------------------------------

# setpriv's options: user and group nobody, no supplementary groups; then one of
# the capability sets
UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NO_CAPS = ["--inh-caps=-all", "--bounding-set=-all"]
BPF_CAPS = [
    "--inh-caps=-all,+bpf,+perfmon",
    "--ambient-caps=-all,+bpf,+perfmon",
    "--bounding-set=-all,+bpf,+perfmon",
]
# what pyrunq imports when it runs: the package (its cffi binding and BPF objects
# are in it) and its dependencies (pyproject.toml's, the exporter's too)
RUNTIME = ("pyrunq", "cffi", "_cffi_backend", "pycparser", "elftools", "prometheus_client")


class Unprivileged:
    """pyrunq run as uid 65534 (nobody), who need not be able to read this
    checkout or its .venv (a clone below a 0700 directory, as root's home is):
    RUNTIME is copied into ``directory`` (made where others can enter it) and
    run from there, by the interpreter the .venv was made from, with only the
    standard library and the copy on its path (no site-packages: -S; not the
    current directory: -P). Fails in one line when uid 65534 could not reach
    the copy or the interpreter. Nothing of the checkout changes mode."""

    def __init__(self, directory: str):
        self.python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        stdlib = os.path.dirname(os.__file__)
        closed = closed_to_others(stdlib, stat.S_IROTH | stat.S_IXOTH)
        if closed:
            pytest.fail(
                f"uid 65534 cannot run {self.python}: {closed} is mode {mode(closed)}; make .venv "
                "from an interpreter others can run (./dev setup makes it from /usr/bin/python3)",
                pytrace=False,
            )
        os.chmod(directory, 0o755)  # our own directory, made for this
        closed = closed_to_others(directory, stat.S_IROTH | stat.S_IXOTH)
        if closed:
            pytest.fail(
                f"uid 65534 cannot enter {directory}, where the tests copy pyrunq to run it as that "
                f"user: {closed} is mode {mode(closed)}; set TMPDIR to a directory others can "
                "enter (e.g. TMPDIR=/tmp)",
                pytrace=False,
            )
        self.path = os.path.join(directory, "lib")
        for name in RUNTIME:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                continue  # an optional dependency that is not installed (prometheus_client)
            if spec.submodule_search_locations:  # a package: its directory
                source = os.path.dirname(spec.origin)
                shutil.copytree(source, os.path.join(self.path, name))
            else:  # a module: its file
                os.makedirs(self.path, exist_ok=True)
                shutil.copy2(spec.origin, self.path)
        for top, dirs, files in os.walk(self.path):  # readable as the umask may not have left it
            for d in dirs:
                os.chmod(os.path.join(top, d), 0o755)
            for f in files:
                path = os.path.join(top, f)
                os.chmod(path, os.stat(path).st_mode & 0o777 | 0o444)

    def python_argv(self, *args, caps=NO_CAPS) -> list[str]:
        """The argv of ``python ARGS`` as uid 65534 with ``caps`` (setpriv's
        capability options), on the copy."""
        return ["env", f"PYTHONPATH={self.path}", *UNPRIVILEGED, *caps, self.python, "-S", "-P", *args]

    def cmd(self, *args, caps=NO_CAPS) -> list[str]:
        """The argv of ``pyrunq ARGS`` as uid 65534 with ``caps``."""
        return self.python_argv("-m", "pyrunq", *args, caps=caps)


def closed_to_others(path: str, need: int) -> str | None:
    """The first directory from / down to ``path`` that others (neither owner
    nor group) cannot enter, or ``path`` when they lack ``need`` on it."""
    parents, here = [], os.path.dirname(os.path.abspath(path))
    while True:
        parents.append(here)
        if here == os.path.dirname(here):
            break
        here = os.path.dirname(here)
    for d in reversed(parents):
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return d
    return None if os.stat(path).st_mode & need == need else path


def mode(path: str) -> str:
    return f"{stat.S_IMODE(os.stat(path).st_mode):04o}"
