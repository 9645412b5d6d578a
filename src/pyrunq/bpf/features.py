"""What the running kernel supports, asked through libbpf's probes: each
probe loads a tiny map or program and frees it at once. Also what attach
points need: names in the kernel's BTF, fentry, kprobes, and tracefs (which
is mounted here when a tracepoint needs it, as perf does)."""

from __future__ import annotations

import contextlib
import functools
import os

from ..libbpf import ffi, lib
from .btf import FUNC

BPF_MAP_TYPE_TASK_STORAGE = 29  # enum bpf_map_type (uapi, stable)


@functools.lru_cache(maxsize=None)
def task_storage() -> bool:
    """Task storage maps (5.11+)."""
    return lib.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, ffi.NULL) == 1


# -- attach points ------------------------------------------------------------

_MODULE_BTF = "/sys/kernel/btf"


@contextlib.contextmanager
def _kernel_btf():
    """The kernel's BTF parsed by libbpf (NULL when it has none), freed after:
    about 15 ms, for name lookups only (nothing is decoded)."""
    btf = lib.btf__load_vmlinux_btf()
    try:
        yield btf
    finally:
        if btf != ffi.NULL:
            lib.btf__free(btf)


def _find(btf, name: str, kind: int) -> int:
    return lib.btf__find_by_name_kind(btf, name.encode(), kind) if btf != ffi.NULL else -1


def kernel_btf_has(*wanted: tuple[str, int]) -> set[tuple[str, int]]:
    """Which of these (name, BTF kind) the kernel's BTF holds, in vmlinux or
    in a loaded module's; the modules are read only for names vmlinux lacks."""
    with _kernel_btf() as vmlinux:
        found = {w for w in wanted if _find(vmlinux, *w) > 0}
        missing = [w for w in wanted if w not in found]
        if vmlinux == ffi.NULL or not missing or not os.path.isdir(_MODULE_BTF):
            return found
        for module in sorted(os.listdir(_MODULE_BTF)):
            if module == "vmlinux" or not missing:
                continue
            btf = lib.btf__load_module_btf(module.encode(), vmlinux)
            if btf == ffi.NULL:
                continue
            try:
                found |= {w for w in missing if _find(btf, *w) > 0}
            finally:
                lib.btf__free(btf)
            missing = [w for w in missing if w not in found]
        return found


# r0 = 0; exit: the smallest program there is
_RETURN_0 = b"\xb7\x00\x00\x00\x00\x00\x00\x00\x95\x00\x00\x00\x00\x00\x00\x00"


@functools.lru_cache(maxsize=None)
def fentry_can_attach(function: str) -> bool:
    """Whether an fentry program can attach to kernel function ``function``
    (in vmlinux): it is in the kernel's BTF, and a two-instruction fentry
    program on it loads and attaches (then both are freed). Kernels can have
    fentry in their BTF and still refuse it (no trampolines on this
    architecture or in this configuration)."""
    with _kernel_btf() as btf:
        func_id = _find(btf, function, FUNC)
    if func_id <= 0:
        return False
    insns = ffi.new("char[]", _RETURN_0)
    opts = ffi.new("struct bpf_prog_load_opts *")
    opts.sz = ffi.sizeof("struct bpf_prog_load_opts")
    opts.expected_attach_type = lib.BPF_TRACE_FENTRY
    opts.attach_btf_id = func_id
    prog_fd = lib.bpf_prog_load(
        lib.BPF_PROG_TYPE_TRACING, b"pyrunq_probe", b"GPL", ffi.cast("struct bpf_insn *", insns), 2, opts
    )
    if prog_fd < 0:
        return False
    try:
        link_fd = lib.bpf_raw_tracepoint_open(ffi.NULL, prog_fd)  # attaches a tracing program
        if link_fd < 0:
            return False
        os.close(link_fd)
        return True
    finally:
        os.close(prog_fd)


def kprobes() -> bool:
    """Kprobes through perf events (the kprobe PMU, 4.17+), as libbpf attaches them."""
    return os.path.exists("/sys/bus/event_source/devices/kprobe/type")


def bpf_lsm() -> bool | None:
    """BPF LSM programs run: "bpf" is among the active LSMs (lsm= at boot).
    None when securityfs, which says so, is not mounted."""
    try:
        with open("/sys/kernel/security/lsm") as f:
            return "bpf" in f.read().strip().split(",")
    except OSError:
        return None


# -- tracefs ----------------------------------------------------------------------

TRACEFS = "/sys/kernel/tracing"
_TRACING = (TRACEFS, "/sys/kernel/debug/tracing")  # where libbpf looks for tracepoint ids


def tracefs_mounted() -> bool:
    """Whether libbpf can find tracepoints' ids (``tracepoint/`` programs): a
    tracefs with ``events/`` at /sys/kernel/tracing or under debugfs."""
    return any(os.path.isdir(os.path.join(d, "events")) for d in _TRACING)


def mount_tracefs(target: str = TRACEFS) -> None:
    """``mount -t tracefs nodev TARGET``, as perf does when tracefs is missing.
    It stays mounted. Raises OSError (EPERM without CAP_SYS_ADMIN)."""
    err = lib.pyrunq_mount_tracefs(os.fsencode(target))
    if err < 0:
        raise OSError(-err, os.strerror(-err), target)
