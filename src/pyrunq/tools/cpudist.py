"""CpuDist: how long tasks run each time they are on a CPU, or with
``offcpu`` how long they stay off it (bpf/cpudist.bpf.c), as histograms.

Every run counts, whatever ends it (a preemption, a sleep, a wait for I/O):
libbpf-tools' cpudist counts only the runs that end in a preemption.
"""

from __future__ import annotations

from .keyedhists import PER_KINDS, Key, KeyedHists
from .tasktracer import TaskTracer

__all__ = ["PER_KINDS", "CpuDist", "Key"]


class CpuDist(KeyedHists, TaskTracer):
    """On-CPU (or off-CPU) time per run, traced from construction until
    ``close()``; read with ``snapshot()`` ({Key: Histogram}) or
    ``interval_text()``.

    ``offcpu``: time from a task's switch-out to its next switch-in instead.
    ``per``: None (one histogram), "pid", "tid", "pidns" or "cgroup".
    ``pids``: only these processes (``set_pids`` changes them live);
    ``tid``: only that thread; ``cgroup``: only tasks in this cgroup v2
    directory or below; ``cgroup_ids``: only tasks directly in these cgroups
    (``set_cgroup_ids``). The idle task is never measured.
    """

    object_name = "cpudist"
    programs = ("handle_switch",)

    def __init__(
        self,
        offcpu: bool = False,
        milliseconds: bool = False,
        per: str | None = None,
        pids=None,
        tid: int | None = None,
        cgroup: str | None = None,
        cgroup_ids=None,
        max_keys: int = 10240,
    ):
        self.offcpu = bool(offcpu)
        super().__init__(
            milliseconds=milliseconds,
            per=per,
            max_keys=max_keys,
            pids=pids,
            tid=tid,
            cgroup_path=cgroup,
            cgroup_ids=cgroup_ids,
        )

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["targ_offcpu"] = self.offcpu
