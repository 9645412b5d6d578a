"""The kernel side runqlat and runqslower share (bpf/runq_common.bpf.h):
filters on the measured task, the tp_btf / raw_tp choice, and the counters."""

from __future__ import annotations

import os

from .. import cgroup
from ..bpf import BPFObject, features
from ..errors import UsageError
from .base import Tool, check_pid

PROGRAMS = ("handle_wakeup", "handle_wakeup_new", "handle_switch")


def tp_btf_supported() -> bool:
    """tp_btf programs with task storage; ``PYRUNQ_RAW_TP=1`` forces raw_tp.

    Task storage (5.11) came after tp_btf (5.5), so probing the map type
    answers for both (libbpf cannot probe tp_btf without an attach target).
    """
    return os.environ.get("PYRUNQ_RAW_TP") != "1" and features.task_storage()


def parse_pids(pids) -> set[int]:
    return {check_pid(pid) for pid in pids or ()}


class RunqTracer(Tool):
    """The runq filters and program flavour, on top of the tool lifecycle.

    ``pids``: only these processes (live: ``set_pids``); ``tid``: only that
    thread; ``cgroup_path``: only tasks in that cgroup v2 directory or below;
    ``cgroup_ids``: only tasks directly in these cgroups (live:
    ``set_cgroup_ids``). ``blame``: also split each wait among what ran on
    the CPU meanwhile (bpf/blame.bpf.h). ``raw_tp`` says which flavour runs.
    """

    def __init__(
        self,
        pids=None,
        tid: int | None = None,
        cgroup_path: str | None = None,
        cgroup_ids=None,
        blame: bool = False,
        **kw,
    ):
        self.blame = bool(blame)
        self.pids = parse_pids(pids) if pids is not None else None
        self.cgroup_ids = set(cgroup_ids) if cgroup_ids is not None else None
        self._tid = 0 if tid is None else check_pid(tid, "TID")
        self._target = cgroup.resolve(cgroup_path) if cgroup_path else None
        self.raw_tp = not tp_btf_supported()
        super().__init__(**kw)

    def configure(self, obj: BPFObject) -> None:
        super().configure(obj)
        rodata = obj.rodata
        rodata["filter_pids"] = self.pids is not None
        rodata["filter_cgroup_set"] = self.cgroup_ids is not None
        rodata["targ_tid"] = self._tid
        rodata["targ_blame"] = self.blame
        if self._target:
            _, rodata["targ_cgroup_id"], rodata["targ_cgroup_level"] = self._target
            rodata["filter_cgroup"] = True
        for name in PROGRAMS + ("handle_migrate",):
            wanted = self.blame or name != "handle_migrate"
            obj.programs[name].autoload = wanted and not self.raw_tp
            obj.programs[name + "_raw"].autoload = wanted and self.raw_tp
        (obj.maps["start"] if self.raw_tp else obj.maps["start_hash"]).skip_creation()

    def loaded(self, obj: BPFObject) -> None:
        super().loaded(obj)
        if self.pids:
            _replace_keys(obj.maps["pids"], self.pids)
        if self.cgroup_ids:
            _replace_keys(obj.maps["cgroup_set"], self.cgroup_ids)

    def set_pids(self, pids) -> None:
        """Trace only these processes from now on, without reloading."""
        if self.pids is None:
            raise UsageError("set_pids() needs a PID filter from the start (pids=...)")
        self.pids = parse_pids(pids)
        _replace_keys(self.obj.maps["pids"], self.pids)

    def set_cgroup_ids(self, ids) -> None:
        """Trace only tasks in these cgroups from now on, without reloading."""
        if self.cgroup_ids is None:
            raise UsageError("set_cgroup_ids() needs a cgroup filter from the start (cgroup_ids=...)")
        self.cgroup_ids = set(ids)
        _replace_keys(self.obj.maps["cgroup_set"], self.cgroup_ids)

    def unattributed(self) -> dict[str, int]:
        """With ``blame``: how many waits had a part no culprit explains, by
        reason ("migrated": queued on one CPU, ran on another; "history": began
        before the oldest run segment the kernel keeps for the CPU; "full": the
        culprit table had no room)."""
        counts = self.obj.maps["unattributed"].counters()
        counts.pop("none", None)
        return counts


def _replace_keys(m, keys: set) -> None:
    """Make a set-like map (key -> 1) hold exactly ``keys``."""
    for key in set(m.keys()) - keys:
        try:
            del m[key]
        except KeyError:
            pass
    for key in keys:
        m[key] = 1
