"""Our own objects in the style of the public collections (tests/objects/*.bpf.c),
compiled with clang as any CO-RE object is, and the trigger they trace:
getpgid(value) from this test process (their tgid filter is set per test)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARCHES = {"x86_64": "x86", "aarch64": "arm64"}  # uname's machine -> vmlinux/<arch>


def compile_all(directory) -> dict[str, str]:
    """name -> path of each tests/objects/NAME.bpf.c compiled into ``directory``,
    its ebpf_exporter YAML (NAME.yaml), if it has one, beside it there too."""
    out = {}
    for source in sorted(glob.glob(os.path.join(HERE, "objects", "*.bpf.c"))):
        name = os.path.basename(source)[: -len(".bpf.c")]
        out[name] = compile_object(source, os.path.join(str(directory), f"{name}.bpf.o"))
        if os.path.exists(source[: -len(".bpf.c")] + ".yaml"):
            shutil.copy(source[: -len(".bpf.c")] + ".yaml", directory)
    return out


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
