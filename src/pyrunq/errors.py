"""One exception hierarchy for everything pyrunq raises on purpose.

``BPFError`` is an ``OSError``: it carries ``errno``, the operation that failed
(``op``) and the object, map or program it failed on (``name``), and the
libbpf log lines captured while it ran (``log``). Subclasses also derive from
the matching built-in (``PermissionError``, ``FileNotFoundError``) so callers
can catch either.

This module is a leaf: it imports nothing of pyrunq. What only the binding
knows (libbpf's text for its own error codes, the captured log) is passed in
by whoever raises.
"""

from __future__ import annotations

import errno as _errno
import os
from collections import namedtuple

ENOTSUPP = 524  # kernel-internal "operation not supported", seen by bpf()
LIBBPF_ERRNO_BASE = 4000
PRIVILEGE_HINT = "needs root, or CAP_BPF and CAP_PERFMON"
UPROBE_PRIVILEGE_HINT = "uprobes need root, or CAP_SYS_ADMIN with CAP_BPF and CAP_PERFMON"
# Where a rejected program's log is, for a Python caller; a front end that has
# its own way to show it (the CLI's -v) says that instead.
VERIFIER_LOG_HINT = "its log is in the exception's .log and on logger pyrunq.libbpf"


class PyrunqError(Exception):
    """Root of pyrunq's exceptions."""


class UsageError(PyrunqError, ValueError):
    """An argument that cannot work (bad PID, path that is not a cgroup...).

    ``param``: the parameter it is about, as the Python API names it
    ("setting", "programs"...), when it is about one: the message starts
    with it, or names it where it says ``{param}``. A front end whose users
    know it by another name (the CLI's flags) says the message with that
    name: ``text(name)``."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message, self.param = message, param

    def __str__(self) -> str:
        return self.text(self.param)

    def text(self, name: str | None) -> str:
        """The message, the parameter called ``name``."""
        if self.param is None or name is None:
            return self.message
        if "{param}" in self.message:
            return self.message.replace("{param}", name)
        return f"{name} {self.message}"


class MalformedObject(PyrunqError, ValueError):
    """An object file that is broken or hostile: the message names the file,
    section, type, map or program that is wrong."""


class StateError(PyrunqError, RuntimeError):
    """An operation at the wrong point of the lifecycle (e.g. after close)."""


class StaleSkeleton(PyrunqError, ValueError):
    """A skeleton module (``pyrunq skel``) over an object whose types are no
    longer those it was generated from: the message says how to regenerate."""


class LibbpfUnavailable(PyrunqError, ImportError):
    """libbpf.so.1 is missing or older than pyrunq needs."""


class BPFError(PyrunqError, OSError):
    """A libbpf or bpf() call failed."""

    def __init__(
        self,
        err: int,
        op: str,
        name: str | None = None,
        hint: str | None = None,
        log: tuple[str, ...] = (),
        strerror: str | None = None,
        cause: str | None = None,
        program: str | None = None,
        map: str | None = None,
        refused_by: str | None = None,
        detail: str | None = None,
    ):
        OSError.__init__(self, err, strerror or describe_errno(err))
        self.op, self.name, self.hint, self.log = op, name, hint, tuple(log)
        self.cause = cause  # libbpf's own words for what is wrong, when it said
        # what failed, as libbpf's log of the call says: the program it could
        # not load and who refused it ("the verifier", "the kernel", or
        # "libbpf", which failed before asking the kernel), or the map it
        # could not create; ``detail``: their words (the verifier's reason)
        self.program, self.map, self.refused_by, self.detail = program, map, refused_by, detail

    def __str__(self) -> str:
        what = f"{self.op} {self.name!r}" if self.name else self.op
        text = f"{what}: {self.cause or self.strerror}"
        return f"{text} ({self.hint})" if self.hint else text


class BPFPermissionError(BPFError, PermissionError):
    """The kernel refused for lack of privileges."""


class BPFNotFoundError(BPFError, FileNotFoundError):
    """A file, or a kernel object, that does not exist."""


class VerifierError(BPFError):
    """The kernel's verifier rejected a program (its log is in ``log``)."""


class KernelNotSupported(BPFError):
    """The running kernel lacks a feature (BTF, a program or map type...)."""


class PrivilegeError(PyrunqError, OSError):
    """Dropping privileges failed; the message says what, and what to do."""

    def __init__(self, err: int | None, message: str):
        OSError.__init__(self, err, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NoKernelBTF(KernelNotSupported):
    """No usable kernel BTF: CO-RE cannot relocate anything."""

    def __init__(self, path: str, problem: str = "has no BTF at"):
        super().__init__(2, "read kernel BTF", path)
        self.problem = problem

    def __str__(self) -> str:
        return f"this kernel {self.problem} {self.name}; pyrunq needs CONFIG_DEBUG_INFO_BTF=y"


class NotAttached(namedtuple("NotAttached", ["program", "section", "reason"])):
    """A program that does not run, and why: (program, section, reason).
    ``param``: the parameter that would give it what it lacks (a uprobe's
    target: "uprobe"), as ``UsageError.param`` names parameters; None when
    none would. (A namedtuple, not typing's: typing costs every start 2 ms.)"""

    param: str | None

    def __new__(cls, program: str, section: str, reason: str, param: str | None = None):
        self = super().__new__(cls, program, section, reason)
        self.param = param
        return self

    def __getnewargs__(self):
        return (*self, self.param)


class NothingAttached(PyrunqError):
    """No program of the object could attach: the run has nothing to do."""

    def __init__(self, obj: str, not_attached: list[NotAttached], extra: str | None = None):
        super().__init__(obj, not_attached, extra)
        self.obj, self.not_attached, self.extra = obj, not_attached, extra

    def __str__(self) -> str:
        if not self.not_attached:
            return f"{self.obj} has no program to attach"
        why = "; ".join(f"{n.program} ({n.section}): {n.reason}" for n in self.not_attached)
        extra = f". {self.extra[:1].upper()}{self.extra[1:]}" if self.extra else ""
        return f"no program of {self.obj} could attach: {why}{extra}"


def describe_errno(err: int) -> str:
    """The text of a kernel errno. libbpf's own codes (>= LIBBPF_ERRNO_BASE)
    have their text from libbpf, passed in as ``strerror`` by the binding."""
    if err == ENOTSUPP:
        return "Operation not supported by this kernel"
    return os.strerror(err)


def from_errno(
    err: int,
    op: str,
    name: str | None = None,
    log: tuple[str, ...] = (),
    strerror: str | None = None,
    cause: str | None = None,
    **failed: object,
) -> BPFError:
    """The exception for a failed call, with a hint where one helps;
    ``strerror``: the text for ``err`` when the caller knows better (libbpf's
    codes); ``cause``: what libbpf said is wrong, shown instead of errno's
    text (which says "No such file or directory" for a file that exists,
    when a BTF name matches no symbol); ``failed``: what failed (``program``,
    ``map``, ``refused_by``, ``detail``: see BPFError)."""
    err = abs(err)
    rejected = [line for line in log if "BEGIN PROG LOAD LOG" in line]
    cls, hint = _KINDS.get(err, (BPFError, None))
    if err == _errno.EACCES and rejected:
        # EACCES also means "rejected by the verifier": not a privilege matter
        # ("libbpf: prog 'NAME': -- BEGIN PROG LOAD LOG --")
        cls, hint = VerifierError, verifier_hint(log, report=True)
    return cls(err, op, name, hint, log, strerror, cause, **failed)  # type: ignore[arg-type]


def verifier_hint(log: tuple[str, ...], report: bool) -> str:
    """What a verifier rejection says: the verifier's reason and the source
    line it stopped at (``verifier_reason``), where the whole log is, and,
    for pyrunq's own objects (``report``), to report it: the kernel is one
    pyrunq does not know. An object of one's own is one's own to fix."""
    rejected = [line for line in log if "BEGIN PROG LOAD LOG" in line]
    prog = rejected[-1].split("prog '", 1)[-1].split("'", 1)[0] if rejected else "?"
    reason, source = verifier_reason(log)
    text = f"the verifier rejected program '{prog}'"
    if reason:
        text += f": {reason}"
    if source:
        text += f" at {source}"
    text += f"; {VERIFIER_LOG_HINT}"
    return text + ("; please report this with `uname -r`" if report else "")


def verifier_reason(log: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(the verifier's reason, "file.bpf.c:16 `the source line`") from a
    verifier log as libbpf logs it: the reason is the last line before
    "processed N insns" that is neither an instruction ("7: (79) r1 = ...")
    nor a source line ("; *count += 1; @ file.bpf.c:20"), which the kernel
    prints with line info (clang -g); the source is the last of those."""
    lines = [x for entry in log for x in entry.splitlines()]
    try:
        start = max(i for i, x in enumerate(lines) if "BEGIN PROG LOAD LOG" in x)
    except ValueError:
        return None, None
    body = lines[start + 1 :]
    end = next((i for i, x in enumerate(body) if x.startswith(("processed ", "-- END PROG"))), len(body))
    reason = source = None
    for line in body[:end]:
        text = line.strip()
        if text.startswith(";"):
            code, _, where = text[1:].rpartition(" @ ")
            if where and not where.endswith(":0"):
                source = f"{where} `{code.strip()}`" if code.strip() else where
        elif text and not (text.split(":", 1)[0].isdigit()):
            reason = text
    return reason, source


_KINDS = {  # errno -> (exception, hint)
    _errno.EPERM: (BPFPermissionError, PRIVILEGE_HINT),
    _errno.EACCES: (BPFPermissionError, PRIVILEGE_HINT),
    _errno.ENOENT: (BPFNotFoundError, None),
    _errno.EOPNOTSUPP: (KernelNotSupported, None),
    ENOTSUPP: (KernelNotSupported, None),
}
