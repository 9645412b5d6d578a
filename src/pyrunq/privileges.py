"""Dropping root once the programs are attached.

What a tracer keeps after attach is file descriptors (links, maps, ring
buffers), and those stay usable by another user. Since Linux 6.5 bpf() on an
open map fd needs no capability; before, while unprivileged BPF is disabled,
every bpf() call needs CAP_BPF, so the process keeps CAP_BPF alone:
PR_SET_KEEPCAPS carries the capabilities across setuid(), and capset() then
trims them to CAP_BPF. Failures raise ``PrivilegeError``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import pwd
import re

from .errors import PrivilegeError

PR_SET_KEEPCAPS = 8
CAP_BPF = 39
CAPABILITY_VERSION_3 = 0x20080522
UNPRIVILEGED_BPF = "/proc/sys/kernel/unprivileged_bpf_disabled"
SWITCH_HINT = "needs root, or CAP_SETUID and CAP_SETGID"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def kernel_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def map_access_needs_cap_bpf() -> bool:
    """Before 6.5 every bpf() call, even on an open map fd, needs CAP_BPF while
    unprivileged BPF is disabled; since 6.5 only creating maps and programs does."""
    if kernel_version() >= (6, 5):
        return False
    try:
        with open(UNPRIVILEGED_BPF) as f:
            return f.read().strip() != "0"
    except OSError:
        return True


def drop_privileges(user: pwd.struct_passwd, keep_cap_bpf: bool | None = None) -> str:
    """Become ``user`` for good, keeping CAP_BPF alone where map access needs
    it (None: where this kernel needs it). Returns what was done, for the log."""
    if keep_cap_bpf is None:
        keep_cap_bpf = map_access_needs_cap_bpf()
    libc = ctypes.CDLL(None, use_errno=True)
    release = ".".join(map(str, kernel_version()))
    why = f"kernel {release} needs it for map access"
    if keep_cap_bpf:
        _check(
            libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0),
            f"cannot keep CAP_BPF across the switch to user {user.pw_name} ({why}): prctl(PR_SET_KEEPCAPS)",
            "keep running as root, or use kernel 6.5 or later",
        )
    _become(user)
    if keep_cap_bpf:
        _capset(libc, 1 << CAP_BPF, f"cannot keep CAP_BPF alone as user {user.pw_name} ({why}): capset")
    _refuse_way_back(user)
    who = f"running as {user.pw_name} (uid {user.pw_uid}, gid {user.pw_gid})"
    if keep_cap_bpf:
        return f"{who} with CAP_BPF alone: {why}"
    return f"{who} with no capabilities: kernel {release} allows map access through open fds"


def _become(user: pwd.struct_passwd) -> None:
    if user.pw_uid == 0:
        raise PrivilegeError(
            errno.EINVAL,
            f"user {user.pw_name} has uid 0: dropping root needs an unprivileged user (such as nobody)",
        )
    try:
        os.initgroups(user.pw_name, user.pw_gid)
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    except OSError as e:
        hint = f" ({SWITCH_HINT})" if isinstance(e, PermissionError) else ""
        raise PrivilegeError(e.errno, f"cannot switch to user {user.pw_name}: {e.strerror}{hint}") from None


def _refuse_way_back(user: pwd.struct_passwd) -> None:
    """A drop that root can undo is no drop: stop rather than run on."""
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise PrivilegeError(
        0,
        f"could become root again after switching to user {user.pw_name}: "
        "a capability or securebit survived the switch; please report this "
        "with `uname -r`",
    )


def _capset(libc, mask: int, what: str) -> None:
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = data[i].permitted = (mask >> (32 * i)) & 0xFFFFFFFF
    _check(
        libc.capset(ctypes.byref(header), data),
        what,
        "the process needs CAP_BPF before the switch: root, or CAP_BPF granted",
    )


def _check(ret: int, what: str, todo: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(err, f"{what}: {os.strerror(err)} ({todo})")
