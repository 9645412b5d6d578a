"""The kernel side runqlat and runqslower share (bpf/runq_common.bpf.h):
filters on the measured task, the tp_btf / raw_tp choice, and the counters."""

from __future__ import annotations

import os

from .. import cgroup
from ..bpf import BPFObject
from ..errors import UsageError
from ..libbpf import ffi, lib
from .base import Tool

BPF_MAP_TYPE_TASK_STORAGE = 29
PROGRAMS = ("handle_wakeup", "handle_wakeup_new", "handle_switch")


def tp_btf_supported() -> bool:
    """tp_btf programs with task storage; ``PYRUNQ_RAW_TP=1`` forces raw_tp.

    Task storage (5.11) came after tp_btf (5.5), so probing the map type
    answers for both (libbpf cannot probe tp_btf without an attach target).
    """
    if os.environ.get("PYRUNQ_RAW_TP") == "1":
        return False
    return lib.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, ffi.NULL) == 1


def parse_pids(pids) -> set[int]:
    out = set()
    for pid in pids or ():
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise UsageError(f"invalid PID {pid!r}")
        out.add(pid)
    return out


class RunqTracer(Tool):
    """Owns one runq BPF object, configured, loaded and attached.

    Subclasses name the object and set their own globals in ``configure``.
    If anything fails before the programs are attached, the object is closed:
    nothing is left half-attached in the kernel.
    """

    object_name = ""
    STATS = ("clock_skew", "hist_full", "start_full", "lost")  # enum runq_stat

    def __init__(self, pids=None, tid: int | None = None, cgroup_path: str | None = None,
                 cgroup_ids=None):
        self.pids = parse_pids(pids) if pids is not None else None
        self.cgroup_ids = set(cgroup_ids) if cgroup_ids is not None else None
        if tid is not None and (not isinstance(tid, int) or tid <= 0):
            raise UsageError(f"invalid TID {tid!r}")
        target = cgroup.resolve(cgroup_path) if cgroup_path else None
        self.obj = BPFObject.open(self.object_name)
        try:
            rodata = self.obj.rodata
            rodata["filter_pids"] = self.pids is not None
            rodata["filter_cgroup_set"] = self.cgroup_ids is not None
            rodata["targ_tid"] = tid or 0
            if target:
                _, rodata["targ_cgroup_id"], rodata["targ_cgroup_level"] = target
                rodata["filter_cgroup"] = True
            self.configure(self.obj)
            self.raw_tp = not tp_btf_supported()
            for name in PROGRAMS:
                self.obj.programs[name].autoload = not self.raw_tp
                self.obj.programs[name + "_raw"].autoload = self.raw_tp
            (self.obj.maps["start"] if self.raw_tp else self.obj.maps["start_hash"]).skip_creation()
            self.obj.load()
            if self.pids:
                self.set_pids(self.pids)
            if self.cgroup_ids:
                self.set_cgroup_ids(self.cgroup_ids)
            self.obj.attach()
        except BaseException:
            self.obj.close()
            raise

    def configure(self, obj: BPFObject) -> None:
        """Set the tool's own globals and map sizes before load."""

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
