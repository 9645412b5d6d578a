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
    """cgroup id -> path relative to the mount (``/system.slice/x.scope``).

    Bounded by the cgroups there are: a scan (at the first id not known)
    takes the tree as it is then, dropping those removed since; only the
    names asked for (``names(id)``) stay until ``forget()``, so that a
    removed cgroup's last samples still carry its path."""

    def __init__(self):
        self._mount = cgroup2_mount()
        self._names: dict[int, str] = {}
        self._asked: set[int] = set()

    def _scan(self) -> None:
        asked = {i: self._names[i] for i in self._asked}
        self._names = tree(self._mount)
        self._names.update(asked)

    def forget(self, cgroup_id: int) -> None:
        """Drop a removed cgroup's name: a long run sees many come and go."""
        self._names.pop(cgroup_id, None)
        self._asked.discard(cgroup_id)

    def __len__(self) -> int:
        return len(self._names)

    def exists(self, cgroup_id: int) -> bool:
        """Whether that cgroup is still there (its path, with the same id)."""
        if cgroup_id not in self._names:
            self._scan()
        path = self._names.get(cgroup_id)
        try:
            return path is not None and os.stat(self._mount + path).st_ino == cgroup_id
        except OSError:
            return False

    def __call__(self, cgroup_id: int) -> str:
        if cgroup_id not in self._names:
            self._scan()
        path = self._names.get(cgroup_id)
        if path is None:
            return f"<cgroup id {cgroup_id}, removed>"
        self._asked.add(cgroup_id)
        return path


def cpu_files(directory: str) -> dict[str, dict[str, int]]:
    """A cgroup v2 directory's CPU accounting: {"stat": cpu.stat's fields,
    "pressure": cpu.pressure's total microseconds by "some" / "full"}; a
    file that is missing or unreadable gives nothing. Read as bytes, whole:
    the exporter reads these of a thousand cgroups at every scrape."""
    out: dict[str, dict[str, int]] = {"stat": {}, "pressure": {}}
    stat = _read(directory + "/cpu.stat")
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
