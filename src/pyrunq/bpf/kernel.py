"""The running kernel's side of things: where its BTF is and whether it is
usable, and the ids of every BPF object it holds."""

from __future__ import annotations

import os

from ..errors import NoKernelBTF
from ..libbpf import ffi, lib

BTF_MAGIC = b"\x9f\xeb"  # 0xeB9F, little-endian


def kernel_btf_path() -> str:
    """Where the kernel's BTF is read from (``PYRUNQ_BTF`` overrides)."""
    return os.environ.get("PYRUNQ_BTF", "/sys/kernel/btf/vmlinux")


def check_kernel_btf(path: str) -> None:
    """CO-RE needs the kernel's types: say so plainly when they are missing."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except FileNotFoundError:
        raise NoKernelBTF(path) from None
    except OSError as e:
        raise NoKernelBTF(path, f"has no readable BTF ({e.strerror}) at") from None
    if magic != BTF_MAGIC:
        raise NoKernelBTF(path, "has no valid BTF (bad magic) at")


def kernel_ids() -> dict[str, set[int]]:
    """Ids of every BPF program, map and link in the kernel (needs privileges)."""
    out = {}
    for kind, fn in (
        ("prog", lib.bpf_prog_get_next_id),
        ("map", lib.bpf_map_get_next_id),
        ("link", lib.bpf_link_get_next_id),
    ):
        ids, cur = set(), ffi.new("__u32 *")
        while fn(cur[0], cur) == 0:
            ids.add(cur[0])
        out[kind] = ids
    return out
