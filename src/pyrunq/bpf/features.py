"""What the running kernel supports, asked through libbpf's probes: each
probe loads a tiny map or program and frees it at once."""

from __future__ import annotations

import functools

from ..libbpf import ffi, lib

BPF_MAP_TYPE_TASK_STORAGE = 29  # enum bpf_map_type (uapi, stable)


@functools.lru_cache(maxsize=None)
def task_storage() -> bool:
    """Task storage maps (5.11+)."""
    return lib.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, ffi.NULL) == 1
