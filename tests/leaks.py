"""What a kernel test leaves behind: BPF objects that appeared and that no
other process holds."""

from __future__ import annotations

import os


def left_since(before: dict[str, set[int]]) -> dict[str, list[int]]:
    """Objects that appeared since ``before`` and that no other process
    holds (what another process made and freed meanwhile is no leak)."""
    from pyrunq.bpf import kernel_ids

    after = kernel_ids()
    held = held_by_others()
    now = kernel_ids()
    return {
        k: sorted((after[k] & now[k]) - before[k] - held[k])
        for k in before
        if (after[k] & now[k]) - before[k] - held[k]
    }


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
