"""The kernel side runqlat and runqslower share (bpf/runq_common.bpf.h): the
run queue programs and, with blame, who ran while a task waited."""

from __future__ import annotations

from ..bpf import BPFObject
from .tasktracer import TaskTracer, parse_pids, tp_btf_supported

__all__ = ["PROGRAMS", "RunqTracer", "parse_pids", "tp_btf_supported"]

PROGRAMS = ("handle_wakeup", "handle_wakeup_new", "handle_switch")


class RunqTracer(TaskTracer):
    """The run queue programs, on the task filters (``TaskTracer``).

    ``blame``: also split each wait among what ran on the CPU meanwhile
    (bpf/blame.bpf.h), which needs ``handle_migrate`` too.
    """

    def __init__(self, pids=None, tid=None, cgroup_path=None, cgroup_ids=None, blame: bool = False, **kw):
        self.blame = bool(blame)
        self.programs = PROGRAMS + (("handle_migrate",) if self.blame else ())
        super().__init__(pids=pids, tid=tid, cgroup_path=cgroup_path, cgroup_ids=cgroup_ids, **kw)

    def configure(self, obj: BPFObject) -> None:
        super().configure(obj)
        obj.rodata["targ_blame"] = self.blame
        if not self.blame:
            obj.programs["handle_migrate"].autoload = False
            obj.programs["handle_migrate_raw"].autoload = False

    def unattributed(self) -> dict[str, int]:
        """With ``blame``: how many waits had a part no culprit explains, by
        reason ("migrated": queued on one CPU, ran on another; "history": began
        before the oldest run segment the kernel keeps for the CPU; "full": the
        culprit table had no room)."""
        counts = self.obj.maps["unattributed"].counters()
        counts.pop("none", None)
        return counts
