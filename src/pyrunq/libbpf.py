"""The cffi binding to the system's libbpf, and nothing else.

Exposes ``ffi`` and ``lib`` from the compiled ``pyrunq._libbpf_cffi``, turns
negative returns into ``pyrunq.errors`` exceptions, and routes libbpf's own
log into ``logging`` (logger ``pyrunq.libbpf``). The lines logged during an
operation are also attached to the exception it raises, so a verifier
rejection explains itself even when logging is not configured.
"""

from __future__ import annotations

import collections
import logging

from .errors import LibbpfUnavailable, from_errno

MIN_VERSION = (1, 0)

try:
    from ._libbpf_cffi import ffi, lib
except ImportError as e:  # the extension links libbpf.so.1
    if "libbpf" in str(e):
        raise LibbpfUnavailable(
            "pyrunq needs the system's libbpf.so.1 (>= 1.0): apt-get install libbpf1") from e
    raise LibbpfUnavailable(f"pyrunq's libbpf binding is not built ({e}): "
                            "reinstall pyrunq, or run: python build.py") from e

VERSION = (lib.libbpf_major_version(), lib.libbpf_minor_version())
if VERSION < MIN_VERSION:
    raise LibbpfUnavailable(f"libbpf {ffi.string(lib.libbpf_version_string()).decode()} is too old: "
                            f"pyrunq needs >= {MIN_VERSION[0]}.{MIN_VERSION[1]}")

log = logging.getLogger("pyrunq.libbpf")
_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
_recent: collections.deque[str] = collections.deque(maxlen=200)


@ffi.def_extern()
def pyrunq_log(level, msg):
    text = ffi.string(msg).decode(errors="replace").rstrip("\n")
    if level == 0:
        _recent.append(text)
    log.log(_LEVELS.get(level, logging.DEBUG), "%s", text)


lib.pyrunq_route_libbpf_log()


def strerror(err: int) -> str:
    buf = ffi.new("char[128]")
    lib.libbpf_strerror(err, buf, len(buf))
    return ffi.string(buf).decode()


def reset_warnings() -> None:
    """Forget earlier warnings, so the next failure carries only its own."""
    _recent.clear()


def warnings_since() -> tuple[str, ...]:
    return tuple(_recent)


def check(ret: int, op: str, name: str | None = None) -> int:
    """Raise for a negative libbpf return; pass anything else through."""
    if ret < 0:
        raise from_errno(ret, op, name, warnings_since())
    return ret


def check_ptr(ptr, op: str, name: str | None = None):
    """Raise for a NULL pointer return, using errno as libbpf sets it."""
    if ptr == ffi.NULL:
        raise from_errno(ffi.errno or 22, op, name, warnings_since())
    return ptr
