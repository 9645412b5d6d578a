"""ebpf_exporter's ``cgroup_id_map``: a map of the object's that holds the
cgroups whose path matches the YAML's regexps, kept in step with the
cgroup v2 hierarchy while the programs run, as the exporter keeps it.

Its programs look the current cgroup up there and count only those it
holds (the rest, in the examples, in a ``..._not_match_total`` counter).
The exporter fills it after attach from a walk of ``/sys/fs/cgroup``, then
follows fanotify's create and delete events (Linux 6.6+). Here: before
attach, then at every ``sync()`` (``Runner.loop`` calls it every
``SYNC_EVERY`` seconds) from a walk of the cgroup v2 mount: a cgroup made
since the last walk is added when its path matches, one removed is taken
out. Paths are matched as the exporter matches them: absolute, the mount
included (``/sys/fs/cgroup/system.slice/cron.service``, or
``/sys/fs/cgroup/unified/...`` where cgroup v2 is mounted there).

- ``hash``: the key is the cgroup's id (its directory's inode number, what
  ``bpf_get_current_cgroup_id()`` gives), the value 1; a removed cgroup's
  key is deleted.
- ``cgrp_storage``: the key is a file descriptor of the cgroup's open
  directory (the kernel's way for user space to name a cgroup to cgroup
  storage, 6.2+), the value 1; the kernel frees it with the cgroup.
"""

from __future__ import annotations

import errno
import os
import struct

from ... import cgroup
from ...errors import BPFError
from .exporter_config import CgroupIdMap

SYNC_EVERY = 1.0  # seconds between two walks of the hierarchy (1,000 cgroups: about 20 ms)
_ONE = struct.pack("=Q", 1)


class CgroupIds:
    """The cgroups ``spec`` (the YAML's ``cgroup_id_map``) selects, written
    to ``bpf_map`` (the loaded object's map of that name) by ``sync()``:
    ``matched`` (id -> absolute path) is what the map holds now; ``refused``
    (path -> why) the matching cgroups the kernel did not take (a full hash
    map, say), tried again at the next walk."""

    def __init__(self, spec: CgroupIdMap, bpf_map, mount: str | None = None):
        self.spec, self.map = spec, bpf_map
        self.mount = mount or cgroup.cgroup2_mount()
        self.matched: dict[int, str] = {}
        self.refused: dict[str, str] = {}
        self._known: set[int] = set()  # every cgroup of the last walk, written or not matching

    def sync(self) -> None:
        """Walk the hierarchy once: add the matching cgroups made since the
        last walk, take out those removed."""
        now = cgroup.tree(self.mount)
        known = set(now)
        for cgroup_id, rel in now.items():
            if cgroup_id in self._known:
                continue
            path = self.mount + ("" if rel == "/" else rel)
            if not self.spec.matches(path):
                continue
            why = self._add(cgroup_id, path)
            if why is None:
                self.matched[cgroup_id] = path
                self.refused.pop(path, None)
            else:  # gone already, or refused: looked at again next time
                known.discard(cgroup_id)
                if why:
                    self.refused[path] = why
        for cgroup_id in self._known - set(now):
            if cgroup_id in self.matched:  # out of the map first: ``matched`` never says less than it holds
                self._remove(cgroup_id)
                del self.matched[cgroup_id]
        self._known = known

    def _add(self, cgroup_id: int, path: str) -> str | None:
        """None when written; "" when the cgroup is gone; else why the kernel refused it."""
        try:
            if self.spec.type == "hash":
                self.map[struct.pack("=Q", cgroup_id)] = _ONE
                return None
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                self.map[struct.pack("=i", fd)] = _ONE
            finally:
                os.close(fd)
            return None
        except BPFError as e:
            return os.strerror(e.errno) if e.errno else str(e)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return ""
            return e.strerror or str(e)

    def _remove(self, cgroup_id: int) -> None:
        if self.spec.type != "hash":
            return  # the kernel frees a cgroup's storage with it
        try:
            del self.map[struct.pack("=Q", cgroup_id)]
        except KeyError:  # an LRU map let it go already
            pass

    def note(self) -> str:
        """One line: what the map holds and how it is kept."""
        exprs = ", ".join(r.pattern for r in self.spec.regexps)
        held = len(self.matched)
        line = (
            f"cgroup_id_map {self.spec.name}: filled with the {held} cgroup(s) whose path matches "
            f"{exprs} (under {self.mount}), as the exporter fills it; kept in step every "
            f"{SYNC_EVERY:g} s as cgroups come and go"
        )
        if self.refused:
            path, why = next(iter(self.refused.items()))
            line += f"; {len(self.refused)} matching not written ({path}: {why})"
        return line
