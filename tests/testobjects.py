"""Our own objects in the style of the public collections (tests/objects/*.bpf.c),
compiled with clang as any CO-RE object is, and the trigger they trace:
getpgid(value) from this test process (their tgid filter is set per test)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Mapping

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARCHES = {"x86_64": "x86", "aarch64": "arm64"}  # uname's machine -> vmlinux/<arch>


class Objects(Mapping):
    """name -> path of each tests/objects/NAME.bpf.c, compiled into
    ``directory`` the first time it is asked for: a run compiles only what
    its tests use (the quick tier leaves out the objects only slow tests
    load); a walk over all of them (``sorted(objs)``, ``dict(objs)``) sees
    every name and compiles what it reads."""

    def __init__(self, directory):
        self._directory = str(directory)
        sources = glob.glob(os.path.join(HERE, "objects", "*.bpf.c"))
        self._names = sorted(os.path.basename(p)[: -len(".bpf.c")] for p in sources)
        self._paths: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name not in self._paths:
            if name not in self._names:
                raise KeyError(f"no test object {name!r} in tests/objects")
            source = os.path.join(HERE, "objects", f"{name}.bpf.c")
            self._paths[name] = compile_object(source, os.path.join(self._directory, f"{name}.bpf.o"))
            yaml = source[: -len(".bpf.c")] + ".yaml"  # its ebpf_exporter YAML goes beside it
            if os.path.exists(yaml):
                shutil.copy(yaml, self._directory)
        return self._paths[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def compile_all(directory) -> Objects:
    """name -> path of each tests/objects/NAME.bpf.c, compiled into ``directory``
    as tests ask for them, its ebpf_exporter YAML (NAME.yaml), if it has one,
    beside it there too."""
    return Objects(directory)


def compile_object(source, out, arch: str = ARCHES[os.uname().machine]) -> str:
    """``source`` compiled as any CO-RE object is, with our vmlinux.h for
    ``arch`` (default: this machine's), into ``out``."""
    include = os.path.join(ROOT, "vmlinux", arch)
    # <bpf/usdt.bpf.h> includes <linux/errno.h>, which wants the multiarch asm/
    # headers (libbpf-bootstrap's Makefile adds them so too)
    multiarch = f"/usr/include/{os.uname().machine}-linux-gnu"
    # the same bytes wherever the checkout is (CI's is a fresh temporary
    # directory): the DWARF names the files relative to it, so the seeded
    # mutants of test_hostile are the same mutants everywhere
    subprocess.run(
        ["clang", "-target", "bpf", "-O2", "-g", f"-D__TARGET_ARCH_{arch}", "-I", include]
        + [f"-ffile-prefix-map={ROOT}=.", "-fdebug-compilation-dir=."]
        + ["-idirafter", multiarch, "-c", str(source), "-o", str(out)],
        check=True,
    )
    return str(out)


def fire(*values) -> None:
    """getpgid(v) for each value, from this process: what the objects trace."""
    for v in values:
        try:
            os.getpgid(v)
        except ProcessLookupError:
            pass


def my_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def as_dict(record):
    """A pyrunq.bpf.Record as a dict of its members, nested records and lists too."""
    if hasattr(record, "_asdict"):
        return {k: as_dict(v) for k, v in record._asdict().items()}
    if isinstance(record, list):
        return [as_dict(v) for v in record]
    return record
