"""Shared fixtures. Kernel tests need root and BTF; without them they skip with
the reason, unless PYRUNQ_REQUIRE_BPF=1 (CI), where a skip is a failure."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from pyrunq.cgroup import cgroup2_mount
from userprogs import build

REQUIRE_BPF = os.environ.get("PYRUNQ_REQUIRE_BPF") == "1"


def missing_kernel_support() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "kernel has no BTF"
    return None


def skip_or_fail(reason: str) -> None:
    if REQUIRE_BPF:
        pytest.fail(f"PYRUNQ_REQUIRE_BPF=1 but {reason}")
    pytest.skip(reason)


def pytest_collection_modifyitems(items):
    for item in items:  # the tier of every test that loads BPF
        if "kernel" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture
def kernel():
    """Use in every test that loads BPF: it must leave the kernel as it found it."""
    reason = missing_kernel_support()
    if reason:
        skip_or_fail(reason)
    from pyrunq.bpf import kernel_ids

    before = kernel_ids()
    yield
    for _ in range(50):  # ids are released as the last fd closes; allow a moment
        after = kernel_ids()
        if all(after[k] <= before[k] for k in before):
            break
        time.sleep(0.02)
    held = held_by_others()
    now = kernel_ids()  # what another process made and freed meanwhile is no leak
    leaked = {k: sorted((after[k] & now[k]) - before[k] - held[k]) for k in before
              if (after[k] & now[k]) - before[k] - held[k]}
    assert not leaked, f"BPF objects left in the kernel: {leaked}"


@pytest.fixture
def cgroup_tree():
    """``make("a/b", *processes)``: cgroups under a parent of this test's own
    (path relative to the cgroup2 mount in ``make.parent``), removed after."""
    mount = cgroup2_mount()
    parent = f"pyrunq-test-{uuid.uuid4().hex[:8]}"
    made = []

    def make(name: str = "", *processes) -> str:
        path = os.path.join(mount, parent, name)
        os.makedirs(path)
        made.append(path)
        for p in processes:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(p.pid))
        return "/" + os.path.relpath(path, mount)

    make.parent = "/" + parent
    yield make
    for path in sorted(made, key=len, reverse=True):  # children first
        with open(os.path.join(path, "cgroup.procs")) as f:
            for pid in f.read().split():
                with open(os.path.join(mount, "cgroup.procs"), "w") as root:
                    root.write(pid)
        os.rmdir(path)


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


@pytest.fixture(scope="session")
def foobar(tmp_path_factory):
    """tests/progs/foobar.c: main -> Bar -> Foo, N calls of S seconds."""
    return build(tmp_path_factory, "foobar")


@pytest.fixture(scope="session")
def leaker(tmp_path_factory):
    """tests/progs/leaker.c: allocates from known stacks, waits, frees."""
    return build(tmp_path_factory, "leaker")
