"""Shared fixtures. Kernel tests need root and BTF; without them they skip with
the reason, unless PYRUNQ_REQUIRE_BPF=1 (CI), where a skip is a failure."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest

from pyrunq.cgroup import cgroup2_mount
from browser import Browser, missing as browser_missing
from cli import Unprivileged
from leaks import left_since
from needs import need, skip_or_fail
from testobjects import compile_all
from userprogs import build
from waiting import wait_for


def missing_kernel_support() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "kernel has no BTF"
    return None


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
    # ids are released as the last fd closes, and another process's objects
    # may be in flight: wait until nothing new of ours is left
    wait_for(
        lambda: not left_since(before),
        timeout=10,
        every=0.02,
        seen=lambda: f"BPF objects left in the kernel: {left_since(before)}",
    )


@pytest.fixture
def cgroup_tree():
    """``make("a/b", *processes)``: cgroups under a parent of this test's own
    (path relative to the cgroup2 mount in ``make.parent``), removed after."""
    mount = cgroup2_mount()
    parent = f"pyrunq-test-{uuid.uuid4().hex[:8]}"
    os.mkdir(os.path.join(mount, parent))
    made = [os.path.join(mount, parent)]  # removed last: the longest paths go first

    def make(name: str = "", *processes) -> str:
        path = os.path.join(mount, parent, name)
        if name:
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


@pytest.fixture(scope="session")
def objs(tmp_path_factory):
    """name -> path of each compiled tests/objects/NAME.bpf.c."""
    need("clang")
    return compile_all(tmp_path_factory.mktemp("objects"))


@pytest.fixture(scope="session")
def foobar(tmp_path_factory):
    """tests/progs/foobar.c: main -> Bar -> Foo, N calls of S seconds."""
    return build(tmp_path_factory, "foobar")


@pytest.fixture(scope="session")
def usdt_prog(tmp_path_factory):
    """tests/progs/usdt.c: fires the USDT probe pyrunq:tick(i) N times."""
    return build(tmp_path_factory, "usdt")


@pytest.fixture(scope="session")
def blocker(tmp_path_factory):
    """tests/progs/blocker.c: blocks reading stdin in main -> waits_for_a_byte
    -> blocked_in_read."""
    return build(tmp_path_factory, "blocker")


@pytest.fixture(scope="session")
def leaker(tmp_path_factory):
    """tests/progs/leaker.c: allocates from known stacks, waits, frees."""
    return build(tmp_path_factory, "leaker")


@pytest.fixture(scope="session")
def unprivileged():
    """pyrunq as uid 65534 (cli.Unprivileged), from a copy made once."""
    need("setpriv")
    with tempfile.TemporaryDirectory(prefix="pyrunq-unprivileged-") as d:
        yield Unprivileged(d)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by selenium (tests/browser.py)."""
    reason = browser_missing()
    if reason:
        skip_or_fail(reason)
    b = Browser()
    yield b
    b.close()
