"""The cffi binding to the system's libbpf, and nothing else.

Exposes ``ffi`` and ``lib`` from the compiled ``pyrunq._libbpf_cffi``, turns
negative returns into ``pyrunq.errors`` exceptions, and routes libbpf's own
log into ``logging`` (logger ``pyrunq.libbpf``). The lines logged during an
operation are also attached to the exception it raises, so a verifier
rejection explains itself even when logging is not configured.
"""

from __future__ import annotations

import collections
import os
import sys

from .errors import LIBBPF_ERRNO_BASE, LibbpfUnavailable, from_errno, verifier_reason

MIN_VERSION = (1, 0)
NEEDED = "pyrunq needs libbpf.so.1 >= 1.0 (Debian: apt-get install libbpf1)"


def _preload(path: str) -> None:
    """Load libbpf from ``path`` first: the binding's dependency on
    libbpf.so.1 then binds to it (same soname) instead of the system's."""
    import ctypes

    try:
        ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
    except OSError as e:
        raise LibbpfUnavailable(f"cannot load libbpf from PYRUNQ_LIBBPF: {e}") from None


if os.environ.get("PYRUNQ_LIBBPF"):
    _preload(os.environ["PYRUNQ_LIBBPF"])
try:
    from ._libbpf_cffi import ffi, lib
except ImportError as e:  # the extension links libbpf.so.1
    if "undefined symbol" in str(e):  # a libbpf without the 1.0 API
        raise LibbpfUnavailable(
            f"libbpf is too old ({str(e).rsplit(': ', 1)[-1]} is missing): {NEEDED}"
        ) from None
    if "libbpf.so" in str(e):
        raise LibbpfUnavailable(f"cannot load libbpf.so.1: {NEEDED}") from None
    raise LibbpfUnavailable(
        f"pyrunq's libbpf binding is not built ({e}): reinstall pyrunq, or run: python build.py"
    ) from None

VERSION = (lib.libbpf_major_version(), lib.libbpf_minor_version())
if VERSION < MIN_VERSION:
    raise LibbpfUnavailable(f"libbpf {ffi.string(lib.libbpf_version_string()).decode()} is too old: {NEEDED}")

LOGGER = "pyrunq.libbpf"
_LEVELS = (30, 20, 10)  # LIBBPF_WARN, _INFO, _DEBUG as logging's WARNING, INFO, DEBUG
_recent: collections.deque[str] = collections.deque(maxlen=200)
_last_detail = [""]  # libbpf's last info or debug line: at open, its only word on a cause
# libbpf's last words that only repeat that the call failed
_GENERIC = ("failed to load object", "failed to open", "-- END PROG LOAD LOG --")
_interrupts: list[BaseException] = []


def keep_interrupt(exc_type, exc, tb):
    """cffi's onerror for callbacks: an exception a callback could not catch
    itself (a signal's KeyboardInterrupt at its first line) is kept, to be
    raised by the next ``check`` instead of being printed and lost."""
    _interrupts.append(exc)


def raise_interrupt() -> None:
    if _interrupts:
        raise _interrupts.pop()


@ffi.def_extern(onerror=keep_interrupt)
def pyrunq_log(level, msg):
    try:
        # Only a program that uses logging can show these; importing it here
        # would cost every start 10 ms.
        logging = sys.modules.get("logging")
        text = ffi.string(msg).decode(errors="replace").rstrip("\n")
        if level != 0:
            _last_detail[0] = text
            if logging is None:  # hundreds of debug lines per load
                return
        else:
            _recent.append(text)
        if logging is not None:
            logger = logging.getLogger(LOGGER)
            if not logger.handlers:  # no "lastResort" printing to stderr
                logger.addHandler(logging.NullHandler())
            logger.log(_LEVELS[min(level, 2)], "%s", text)
    except BaseException as e:  # noqa: BLE001 - raised again by check()
        _interrupts.append(e)


lib.pyrunq_route_libbpf_log()


def name(ptr) -> str:
    """A name libbpf gives (a program's, a map's, an object's: from the ELF
    file, whatever bytes it holds) as text: bytes that are not UTF-8 kept as
    surrogates, which the CLI prints escaped."""
    return ffi.string(ptr).decode("utf-8", "surrogateescape")


def strerror(err: int) -> str:
    buf = ffi.new("char[128]")
    lib.libbpf_strerror(err, buf, len(buf))
    return ffi.string(buf).decode()


def reset_warnings() -> None:
    """Forget earlier warnings, so the next failure carries only its own."""
    _recent.clear()
    _last_detail[0] = ""


def warnings_since() -> tuple[str, ...]:
    return tuple(_recent)


def check(ret: int, op: str, name: str | None = None, explain: bool = False) -> int:
    """Raise for a negative libbpf return; pass anything else through.
    ``explain``: the warnings since ``reset_warnings()`` are this call's, and
    the error says what the last of them names (``errors.from_errno``)."""
    raise_interrupt()
    if ret < 0:
        raise _error(ret, op, name, explain)
    return ret


def check_ptr(ptr, op: str, name: str | None = None, explain: bool = False):
    """Raise for a NULL pointer return, using errno as libbpf sets it."""
    raise_interrupt()
    if ptr == ffi.NULL:
        raise _error(ffi.errno or 22, op, name, explain)
    return ptr


def _error(err: int, op: str, name: str | None, explain: bool):
    """The exception for ``err``, with the log lines of this operation; only
    libbpf can name its own codes, and ``errors`` imports nothing of pyrunq."""
    err = abs(err)
    text = strerror(err) if err >= LIBBPF_ERRNO_BASE else None
    log = warnings_since()
    if not explain:
        return from_errno(err, op, name, log, text)
    failed = load_failure(log)
    cause = failed.pop("cause", None) or _cause(log)
    return from_errno(err, op, name, log, text, cause, **failed)


def _subject(entry: str) -> tuple[str, str, str] | None:
    """("prog" or "map", its name, the rest) of a libbpf line about one
    program or map (``prog 'NAME': ...``, ``map 'NAME': ...``)."""
    line = entry.strip().removeprefix("libbpf: ").split("\n", 1)[0]
    for kind in ("prog", "map"):
        head = f"{kind} '"
        if line.startswith(head) and "': " in line:
            what, _, rest = line[len(head) :].partition("': ")
            return kind, what, rest.strip()
    return None


def _without_code(text: str) -> str:
    """libbpf's words without the error number it appends ("Invalid argument(-22)", ": -3")."""
    head, sep, tail = text.rpartition("(-")
    if sep and tail.endswith(")") and tail[:-1].isdigit():
        return head.rstrip()
    head, sep, tail = text.rpartition(": -")
    return head if sep and tail.isdigit() else text


# libbpf's lines that only say that a program failed, not why
_PROG_GENERIC = ("failed to load", "failed to prepare load attributes", "-- BEGIN PROG LOAD LOG --")
_KERNEL_ASKED = "BPF program load failed"


def load_failure(log: tuple[str, ...]) -> dict:
    """What libbpf's log of a failed open or load says failed, as the
    keywords of ``errors.from_errno``: the ``program`` it failed to load and
    who refused it (``refused_by``: "the verifier", "the kernel", or
    "libbpf", which failed before asking the kernel: finding an attach
    target...), or the ``map`` it failed to create; ``detail``: their words
    for that program (the verifier's reason); ``cause``: the error's line."""
    found = [s for s in map(_subject, log) if s is not None]
    maps = [(w, rest) for kind, w, rest in found if kind == "map" and rest.startswith("failed to create")]
    if maps:
        what, rest = maps[-1]
        return {"map": what, "cause": f"map '{what}': {_without_code(rest)}"}
    progs = [what for kind, what, rest in found if kind == "prog" and rest.startswith("failed to load")]
    if not progs:
        return {}
    program = progs[-1]
    said = [rest for kind, what, rest in found if kind == "prog" and what == program]
    asked = [rest for rest in said if rest.startswith(_KERNEL_ASKED)]
    reason, _ = verifier_reason(log)
    if asked and reason:
        who, detail = "the verifier", reason
    elif asked:
        who, detail = "the kernel", _without_code(asked[-1].partition(": ")[2]) or asked[-1]
    else:
        who = "libbpf"
        detail = next((_without_code(r) for r in said if not r.startswith(_PROG_GENERIC)), "")
    cause = None if reason else f"prog '{program}': {detail}" if detail else None
    return {"program": program, "refused_by": who, "detail": detail or None, "cause": cause}


def _cause(log: tuple[str, ...]) -> str | None:
    """What libbpf said is wrong: the last warning that says more than that
    the call failed ("failed to find BTF for extern 'x'"), else its last
    line of detail (it names a variable with no symbol only at debug level)."""
    for entry in reversed(log):
        lines = [x.strip() for x in entry.splitlines() if x.strip()]
        text = lines[-1].removeprefix("libbpf: ") if lines else ""
        if text and not text.startswith(_GENERIC):
            return _without_code(text)
    return _without_code(_last_detail[0].strip().removeprefix("libbpf: ")) or None
