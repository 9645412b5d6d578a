"""Shared fixtures. Kernel tests need root and BTF; without them they skip with
the reason, unless PYRUNQ_REQUIRE_BPF=1 (CI), where a skip is a failure."""

from __future__ import annotations

import os
import time

import pytest

REQUIRE_BPF = os.environ.get("PYRUNQ_REQUIRE_BPF") == "1"


def missing_kernel_support() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "kernel has no BTF"
    return None


def skip_or_fail(reason: str) -> None:
    if REQUIRE_BPF:
        pytest.fail(f"PYRUNQ_REQUIRE_BPF=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def kernel():
    """Use in every test that loads BPF: it must leave the kernel as it found it."""
    reason = missing_kernel_support()
    if reason:
        skip_or_fail(reason)
    from pyrunq.bpf import kernel_ids

    before = kernel_ids()
    yield
    for _ in range(50):  # ids are released as the last fd closes; allow a moment
        after = kernel_ids()
        if all(after[k] <= before[k] for k in before):
            break
        time.sleep(0.02)
    held = held_by_others()
    leaked = {k: sorted(after[k] - before[k] - held[k]) for k in before
              if after[k] - before[k] - held[k]}
    assert not leaked, f"BPF objects left in the kernel: {leaked}"


def held_by_others() -> dict[str, set[int]]:
    """Ids of BPF objects whose fds other processes hold (not ours, not our
    children): a developer's other tools must not fail this suite."""
    ours = {os.getpid()}
    ours |= {int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) in ours}
    ids: dict[str, set[int]] = {"prog": set(), "map": set(), "link": set()}
    for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) not in ours):
        try:
            for fd in os.listdir(f"/proc/{pid}/fdinfo"):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    for line in f:
                        kind = line.split(":")[0][:-3]
                        if line.split(":")[0].endswith("_id") and kind in ids:
                            ids[kind].add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def _ppid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
