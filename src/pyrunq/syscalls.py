"""System call names by number, for this machine's architecture, from
libseccomp (the table systemd and container runtimes use; Debian's apt
depends on it, so it is there wherever apt is). Without it, numbers stay
numbers: ``name()`` returns None."""

from __future__ import annotations

import functools

_SCMP_ARCH_NATIVE = 0


@functools.lru_cache(maxsize=1)
def _library():
    """libseccomp's resolver and libc's free (ctypes: the image has cffi's
    backend only, not its ABI mode), or None when libseccomp cannot be loaded."""
    import ctypes

    try:
        seccomp, libc = ctypes.CDLL("libseccomp.so.2"), ctypes.CDLL(None)
    except OSError:
        return None
    resolve = seccomp.seccomp_syscall_resolve_num_arch
    resolve.argtypes, resolve.restype = [ctypes.c_uint32, ctypes.c_int], ctypes.c_void_p
    free = libc.free
    free.argtypes, free.restype = [ctypes.c_void_p], None
    return resolve, free


@functools.lru_cache(maxsize=1024)
def name(number: int) -> str | None:
    """The name of system call ``number`` (``121`` -> ``"getpgid"`` on
    x86_64), or None when it has none or libseccomp is missing."""
    import ctypes

    lib = _library()
    if lib is None or not 0 <= number < 1 << 31:
        return None
    resolve, free = lib
    text = resolve(_SCMP_ARCH_NATIVE, number)
    if not text:
        return None
    try:
        return ctypes.string_at(text).decode()
    finally:
        free(text)
