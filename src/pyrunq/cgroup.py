"""cgroup v2 paths and ids: the kernel knows a cgroup by the inode number of
its directory (kernfs id), people know it by its path."""

from __future__ import annotations

import ctypes
import errno
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


FILEID_KERNFS = 0xFE  # a kernfs file handle: the node's 64-bit id (include/linux/exportfs.h)
CANNOT_OPEN_BY_ID = (errno.EPERM, errno.EACCES, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.EBADF)


class _FileHandle(ctypes.Structure):
    _fields_ = [
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("cgroup_id", ctypes.c_uint64),
    ]


def paths_by_id(mount: str, cgroup_ids) -> dict[int, str | None] | None:
    """Each cgroup's path relative to the mount, found by opening it by its
    id (open_by_handle_at with a kernfs handle) and reading the path back:
    a few microseconds a cgroup, where a walk of the tree takes 70 ms per
    thousand. None for a removed one; None in all if this process cannot
    (it needs CAP_DAC_READ_SEARCH, and a kernel whose cgroup2 has handles)."""
    open_by_handle_at = ctypes.CDLL(None, use_errno=True).open_by_handle_at
    root = os.path.realpath(mount)  # as the kernel writes paths back
    out: dict[int, str | None] = {}
    mount_fd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for cgroup_id in cgroup_ids:
            handle = _FileHandle(8, FILEID_KERNFS, cgroup_id)
            fd = open_by_handle_at(mount_fd, ctypes.byref(handle), os.O_PATH | os.O_CLOEXEC)
            if fd < 0:
                if ctypes.get_errno() in CANNOT_OPEN_BY_ID:
                    return None
                out[cgroup_id] = None  # ESTALE: removed
                continue
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
            # " (deleted)": removed since it was opened; outside the mount: not ours to name
            there = (path == root or path.startswith(root + "/")) and not path.endswith(" (deleted)")
            out[cgroup_id] = (path[len(root) :] or "/") if there else None
    finally:
        os.close(mount_fd)
    return out


class Names:
    """cgroup id -> path relative to the mount (``/system.slice/x.scope``).

    Each cgroup not known yet is opened by its id (``paths_by_id``); where
    this process cannot do that, a scan of the tree (at the first id not
    known) names them all. Bounded by the cgroups there are: a scan takes
    the tree as it is then, dropping those removed since, and ``gone()``
    drops what it finds removed; only the names asked for (``names(id)``)
    stay until ``forget()``, so that a removed cgroup's last samples still
    carry its path."""

    def __init__(self):
        self._mount = cgroup2_mount()
        self._by_id = True  # until the kernel or our privileges say otherwise
        self._names: dict[int, str] = {}
        self._asked: set[int] = set()
        self._missing: set[int] = set()  # never found by a scan: removed
        self._dropped: dict[int, str] = {}  # known before the last scan, not found by it

    def _scan(self) -> None:
        old = self._names
        self._names = tree(self._mount)
        self._names.update((i, old[i]) for i in self._asked)
        # until the next scan: an id found by one scan is named even if the next one misses it
        self._dropped = {i: path for i, path in old.items() if i not in self._names}

    def load(self, cgroup_ids) -> None:
        """Know these cgroups' names, by their ids or with one scan at most
        (under churn, an interval brings dozens of new ones: a scan each
        took seconds). Those not found were removed: they are not looked
        for again (a cgroup id is never used twice) until forgotten."""
        unknown = [
            i
            for i in cgroup_ids
            if i not in self._names and i not in self._dropped and i not in self._missing
        ]
        if not unknown:
            return
        found = paths_by_id(self._mount, unknown) if self._by_id else None
        if found is None:
            self._by_id = False
            self._scan()
        else:
            self._names.update((i, path) for i, path in found.items() if path is not None)
        self._missing.update(i for i in unknown if i not in self._names)

    def forget(self, cgroup_id: int) -> None:
        """Drop a removed cgroup's name: a long run sees many come and go."""
        self._names.pop(cgroup_id, None)
        self._asked.discard(cgroup_id)
        self._missing.discard(cgroup_id)

    def __len__(self) -> int:
        """How many cgroups it knows of, there or removed."""
        return len(self._names) + len(self._missing)

    def exists(self, cgroup_id: int) -> bool:
        """Whether that cgroup is still there (its path, with the same id)."""
        return not self.gone([cgroup_id])

    def gone(self, cgroup_ids) -> list[int]:
        """Those of these cgroups that are not there any more: one scan at
        most, for those whose name is not known (under churn, most of them
        were removed: a scan each took seconds)."""
        ids = list(cgroup_ids)
        self.load(ids)
        gone = [i for i in ids if not self._there(i)]
        for i in gone:  # a removed cgroup's name is kept only if asked for
            if i not in self._asked:
                self._names.pop(i, None)
                self._missing.add(i)
        return gone

    def _there(self, cgroup_id: int) -> bool:
        path = self._names.get(cgroup_id)
        try:
            return path is not None and os.stat(self._mount + path).st_ino == cgroup_id
        except OSError:
            return False

    def __call__(self, cgroup_id: int) -> str:
        self.load([cgroup_id])
        path = self._names.get(cgroup_id) or self._dropped.get(cgroup_id)
        if path is None:
            return f"<cgroup id {cgroup_id}, removed>"
        self._names[cgroup_id] = path
        self._asked.add(cgroup_id)
        return path


def cpu_files(directory: str, parents: dict[str, bool] | None = None) -> dict[str, dict[str, int]]:
    """A cgroup v2 directory's CPU accounting: {"stat": cpu.stat's fields,
    "pressure": cpu.pressure's total microseconds by "some" / "full"}; a
    file that is missing or unreadable gives nothing. Read as bytes, whole:
    the exporter reads these of a thousand cgroups at every scrape. With
    ``parents`` (a cache, parent directory -> whether its subtree has the
    cpu controller), cpu.stat is read only where it can say more than the
    CPU time used: its throttling, with the cpu controller."""
    out: dict[str, dict[str, int]] = {"stat": {}, "pressure": {}}
    stat = _read(directory + "/cpu.stat") if parents is None or _cpu_controller(directory, parents) else b""
    try:
        fields = stat.split()
        out["stat"] = {k.decode(): int(v) for k, v in zip(fields[::2], fields[1::2])}
    except ValueError:
        pass
    try:  # "some avg10=0.00 avg60=0.00 avg300=0.00 total=1234"
        out["pressure"] = {
            line.split(None, 1)[0].decode(): int(line.rpartition(b" total=")[2])
            for line in _read(directory + "/cpu.pressure").splitlines()
        }
    except (ValueError, IndexError):
        pass
    return out


def _cpu_controller(directory: str, parents: dict[str, bool]) -> bool:
    """Whether the cpu controller is enabled for this cgroup: in its
    parent's cgroup.subtree_control (read once per parent)."""
    parent = os.path.dirname(directory.rstrip("/"))
    on = parents.get(parent)
    if on is None:
        on = parents[parent] = b"cpu" in _read(parent + "/cgroup.subtree_control").split()
    return on


def _read(path: str) -> bytes:
    """A small kernfs file's bytes (b"" if it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""
    finally:
        os.close(fd)
