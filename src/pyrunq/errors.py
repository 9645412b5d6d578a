"""One exception hierarchy for everything pyrunq raises on purpose.

``BPFError`` is an ``OSError``: it carries ``errno``, the operation that failed
(``op``) and the object, map or program it failed on (``name``), and the
libbpf log lines captured while it ran (``log``). Subclasses also derive from
the matching built-in (``PermissionError``, ``FileNotFoundError``) so callers
can catch either.
"""

from __future__ import annotations

import errno as _errno
import os

ENOTSUPP = 524  # kernel-internal "operation not supported", seen by bpf()
LIBBPF_ERRNO_BASE = 4000
PRIVILEGE_HINT = "needs root, or CAP_BPF and CAP_PERFMON"
UPROBE_PRIVILEGE_HINT = "uprobes need root, or CAP_SYS_ADMIN with CAP_BPF and CAP_PERFMON"


class PyrunqError(Exception):
    """Root of pyrunq's exceptions."""


class UsageError(PyrunqError, ValueError):
    """An argument that cannot work (bad PID, path that is not a cgroup...)."""


class StateError(PyrunqError, RuntimeError):
    """An operation at the wrong point of the lifecycle (e.g. after close)."""


class LibbpfUnavailable(PyrunqError, ImportError):
    """libbpf.so.1 is missing or older than pyrunq needs."""


class BPFError(PyrunqError, OSError):
    """A libbpf or bpf() call failed."""

    def __init__(self, err: int, op: str, name: str | None = None,
                 hint: str | None = None, log: tuple[str, ...] = ()):
        OSError.__init__(self, err, describe_errno(err))
        self.op, self.name, self.hint, self.log = op, name, hint, tuple(log)

    def __str__(self) -> str:
        what = f"{self.op} {self.name!r}" if self.name else self.op
        text = f"{what}: {self.strerror}"
        return f"{text} ({self.hint})" if self.hint else text


class BPFPermissionError(BPFError, PermissionError):
    """The kernel refused for lack of privileges."""


class BPFNotFoundError(BPFError, FileNotFoundError):
    """A file, or a kernel object, that does not exist."""


class VerifierError(BPFError):
    """The kernel's verifier rejected a program (its log is in ``log``)."""


class KernelNotSupported(BPFError):
    """The running kernel lacks a feature (BTF, a program or map type...)."""


class NoKernelBTF(KernelNotSupported):
    """No usable kernel BTF: CO-RE cannot relocate anything."""

    def __init__(self, path: str, problem: str = "has no BTF at"):
        super().__init__(2, "read kernel BTF", path)
        self.problem = problem

    def __str__(self) -> str:
        return f"this kernel {self.problem} {self.name}; pyrunq needs CONFIG_DEBUG_INFO_BTF=y"


def describe_errno(err: int) -> str:
    if err >= LIBBPF_ERRNO_BASE:
        from . import libbpf  # late: errors must import without the binding

        return libbpf.strerror(err)
    if err == ENOTSUPP:
        return "Operation not supported by this kernel"
    return os.strerror(err)


def from_errno(err: int, op: str, name: str | None = None,
               log: tuple[str, ...] = ()) -> BPFError:
    """The exception for a failed call, with a hint where one helps."""
    err = abs(err)
    rejected = [line for line in log if "BEGIN PROG LOAD LOG" in line]
    if err == _errno.EACCES and rejected:
        # EACCES also means "rejected by the verifier": not a privilege matter
        # ("libbpf: prog 'NAME': -- BEGIN PROG LOAD LOG --")
        prog = rejected[0].split("prog '", 1)[-1].split("'", 1)[0]
        return VerifierError(err, op, name, f"the verifier rejected program '{prog}': "
                             "-v shows its log; please report this with `uname -r`", log)
    if err in (_errno.EPERM, _errno.EACCES):
        return BPFPermissionError(err, op, name, PRIVILEGE_HINT, log)
    if err == _errno.ENOENT:
        return BPFNotFoundError(err, op, name, None, log)
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return KernelNotSupported(err, op, name, None, log)
    return BPFError(err, op, name, None, log)
