"""The kernel side every sched_switch tool shares (bpf/task_filter.bpf.h):
which tasks are measured, and the tp_btf / raw_tp choice."""

from __future__ import annotations

import os

from .. import cgroup
from ..bpf import BPFObject, features
from ..errors import UsageError
from .base import Tool, check_pid


def tp_btf_supported() -> bool:
    """tp_btf programs with task storage; ``PYRUNQ_RAW_TP=1`` forces raw_tp.

    Task storage (5.11) came after tp_btf (5.5), so probing the map type
    answers for both (libbpf cannot probe tp_btf without an attach target).
    """
    return os.environ.get("PYRUNQ_RAW_TP") != "1" and features.task_storage()


INITIAL_PIDNS_INODE = 0xEFFFFFFC  # PROC_PID_INIT_INO: the initial PID namespace's, on every kernel


def own_pidns() -> int:
    """The inode of this process's PID namespace when it is not the initial
    one (in a container), else 0: PIDs it is given, and shows, are numbers
    in that namespace."""
    inode = os.stat("/proc/self/ns/pid").st_ino
    return 0 if inode == INITIAL_PIDNS_INODE else inode


def parse_pids(pids) -> set[int]:
    return {check_pid(pid) for pid in pids or ()}


class TaskTracer(Tool):
    """The task filters and the program flavour, on top of the tool lifecycle.

    ``pids``: only these processes (live: ``set_pids``); ``tid``: only that
    thread; ``cgroup_path``: only tasks in that cgroup v2 directory or below;
    ``cgroup_ids``: only tasks directly in these cgroups (live:
    ``set_cgroup_ids``). PIDs and TIDs, given and shown, are as this process
    sees them: inside a container, numbers in its PID namespace, which the
    kernel side maps (tasks outside it are never wanted by a PID filter, and
    fall under PID 0 in per-process views). ``raw_tp`` says which flavour runs: each of the
    subclass's ``programs`` is NAME (tp_btf, stamps in task storage
    ``start``) or NAME_raw (raw_tp, stamps in the hash ``start_hash``).
    """

    programs: tuple[str, ...] = ()

    def __init__(
        self,
        pids=None,
        tid: int | None = None,
        cgroup_path: str | None = None,
        cgroup_ids=None,
        **kw,
    ):
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
        rodata["targ_pidns_inum"] = own_pidns()
        if self._target:
            _, rodata["targ_cgroup_id"], rodata["targ_cgroup_level"] = self._target
            rodata["filter_cgroup"] = True
        for name in self.programs:
            obj.programs[name].autoload = not self.raw_tp
            obj.programs[name + "_raw"].autoload = self.raw_tp
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


def _replace_keys(m, keys: set) -> None:
    """Make a set-like map (key -> 1) hold exactly ``keys``."""
    for key in set(m.keys()) - keys:
        try:
            del m[key]
        except KeyError:
            pass
    for key in keys:
        m[key] = 1
