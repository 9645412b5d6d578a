"""cgroup v2 paths and ids: the kernel knows a cgroup by the inode number of
its directory (kernfs id), people know it by its path."""

from __future__ import annotations

import os

from .errors import UsageError

CGROUP2_MAGIC = "cgroup2"


def cgroup2_mount() -> str:
    """Where cgroup v2 is mounted (``/sys/fs/cgroup``, or ``.../unified`` on hybrid hosts)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == CGROUP2_MAGIC:
                return fields[1]
    raise UsageError("no cgroup v2 hierarchy is mounted")


def resolve(path: str) -> tuple[str, int, int]:
    """A cgroup v2 directory, absolute or relative to the mount: (path, id, level)."""
    mount = cgroup2_mount()
    candidates = [path] if os.path.isabs(path) else []
    candidates.append(os.path.join(mount, path.lstrip("/")))
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.path.isdir(real) and (real == mount or real.startswith(mount + "/")):
            rel = os.path.relpath(real, mount)
            level = 0 if rel == "." else rel.count("/") + 1
            return real, os.stat(real).st_ino, level
    raise UsageError(f"{path}: not a cgroup v2 directory (cgroup v2 is mounted at {mount})")


def tree(mount: str | None = None) -> dict[int, str]:
    """Every cgroup there is now: id -> path relative to the mount ("/" for the root)."""
    mount = mount or cgroup2_mount()
    out = {}
    for root, _, _ in os.walk(mount):
        try:
            ino = os.stat(root).st_ino
        except OSError:  # removed while we walked
            continue
        rel = os.path.relpath(root, mount)
        out[ino] = "/" if rel == "." else "/" + rel
    return out


class Names:
    """cgroup id -> path relative to the mount (``/system.slice/x.scope``)."""

    def __init__(self):
        self._mount = cgroup2_mount()
        self._names: dict[int, str] = {}
        # ids a scan did not find: removed before it (the kernel gave each
        # id while its cgroup existed, and cgroup ids are not reused), so
        # never worth another walk of the tree (pyrunq top asks every refresh)
        self._missing: set[int] = set()

    def _scan(self) -> None:
        self._names.update(tree(self._mount))

    def _look_up(self, cgroup_id: int) -> str | None:
        """The id's path, walking the tree once for an id not seen yet."""
        name = self._names.get(cgroup_id)
        if name is None and cgroup_id not in self._missing:
            self._scan()
            name = self._names.get(cgroup_id)
            if name is None:
                if len(self._missing) >= 65536:  # bounded: at worst, a walk more
                    self._missing.clear()
                self._missing.add(cgroup_id)
        return name

    def forget(self, cgroup_id: int) -> None:
        """Drop a removed cgroup's name: a long run sees many come and go."""
        self._names.pop(cgroup_id, None)
        self._missing.discard(cgroup_id)

    def exists(self, cgroup_id: int) -> bool:
        """Whether that cgroup is still there (its path, with the same id)."""
        path = self._look_up(cgroup_id)
        try:
            return path is not None and os.stat(self._mount + path).st_ino == cgroup_id
        except OSError:
            return False

    def __call__(self, cgroup_id: int) -> str:
        name = self._look_up(cgroup_id)
        return f"<cgroup id {cgroup_id}, removed>" if name is None else name


def cpu_files(directory: str) -> dict[str, dict[str, int]]:
    """A cgroup v2 directory's CPU accounting: {"stat": cpu.stat's fields,
    "pressure": cpu.pressure's total microseconds by "some" / "full"}; a
    file that is missing or unreadable gives nothing."""
    out: dict[str, dict[str, int]] = {"stat": {}, "pressure": {}}
    try:
        with open(os.path.join(directory, "cpu.stat")) as f:
            out["stat"] = {k: int(v) for k, v in (line.split() for line in f)}
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(directory, "cpu.pressure")) as f:
            for line in f:
                kind, *fields = line.split()
                out["pressure"][kind] = int(dict(f.split("=") for f in fields)["total"])
    except (OSError, ValueError, KeyError):
        pass
    return out
