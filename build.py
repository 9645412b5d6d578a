"""Build step: BPF C -> CO-RE objects, and the cffi binding to libbpf.

Runs as hatchling's build hook (``pip install .``, ``pip install -e .``,
``python -m build``) and alone (``python build.py``). Compiles every
``bpf/*.bpf.c`` into ``src/pyrunq/bpf/<name>.bpf.o`` with clang, and
``pyrunq._libbpf_cffi`` with the C compiler. Each output is rebuilt only when
one of its inputs is newer. The wheel ships what users run: not the test-only
objects (``TEST_ONLY``, which the tests find in the source tree) nor
``_libbpf_build.py`` (excluded in pyproject.toml).
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.abspath(__file__))
BPF_SRC = os.path.join(ROOT, "bpf")
PKG = os.path.join(ROOT, "src", "pyrunq")
OBJ_DIR = os.path.join(PKG, "bpf")
ARCHES = {"x86_64": "x86", "aarch64": "arm64"}
PACKAGES = "clang llvm libbpf-dev"
TEST_ONLY = {"selftest.bpf.o"}  # built for the tests (tests/test_bpf_api.py), never shipped


class BuildError(Exception):
    pass


def _arch() -> str:
    machine = platform.machine()
    if machine not in ARCHES:
        raise BuildError(f"unsupported architecture {machine!r} (supported: {', '.join(ARCHES)})")
    return ARCHES[machine]


def _stale(output: str, inputs: list[str]) -> bool:
    if not os.path.exists(output):
        return True
    built = os.path.getmtime(output)
    return any(os.path.getmtime(i) > built for i in inputs)


def _require(path_or_cmd: str, what: str) -> None:
    found = os.path.exists(path_or_cmd) if os.sep in path_or_cmd else shutil.which(path_or_cmd)
    if not found:
        raise BuildError(f"{what} not found: install the Debian packages: apt-get install {PACKAGES}")


def build_bpf_objects() -> list[str]:
    """Compile bpf/*.bpf.c; return the object paths."""
    arch = _arch()
    vmlinux = os.path.join(ROOT, "vmlinux", arch)
    _require(os.path.join(vmlinux, "vmlinux.h"), f"vmlinux/{arch}/vmlinux.h")
    headers = glob.glob(os.path.join(BPF_SRC, "*.h")) + [os.path.join(vmlinux, "vmlinux.h")]
    outputs = []
    for src in sorted(glob.glob(os.path.join(BPF_SRC, "*.bpf.c"))):
        out = os.path.join(OBJ_DIR, os.path.basename(src)[: -len(".c")] + ".o")
        outputs.append(out)
        if not _stale(out, [src, *headers]):
            continue
        _require("clang", "clang")
        _require("/usr/include/bpf/bpf_helpers.h", "libbpf's headers")
        cmd = [
            "clang",
            "-target",
            "bpf",
            "-O2",
            "-g",
            "-Wall",
            f"-D__TARGET_ARCH_{arch}",
            "-I",
            vmlinux,
            "-I",
            BPF_SRC,
            "-c",
            src,
            "-o",
            out,
        ]
        print("build.py:", " ".join(cmd[5:]), file=sys.stderr)
        if subprocess.run(cmd).returncode != 0:
            raise BuildError(f"clang failed on {os.path.relpath(src, ROOT)}")
        # DWARF is dead weight at run time: libbpf needs only .BTF and .BTF.ext
        _require("llvm-strip", "llvm-strip")
        subprocess.run(["llvm-strip", "-g", out], check=True)
    return outputs


def build_binding() -> str:
    """Compile pyrunq._libbpf_cffi; return the extension's path."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    out = os.path.join(PKG, "_libbpf_cffi" + suffix)
    spec = os.path.join(PKG, "_libbpf_build.py")
    if not _stale(out, [spec, *glob.glob(os.path.join(ROOT, "native", "*.c"))]):
        return out
    _require("/usr/include/bpf/libbpf.h", "libbpf's headers")
    sys.path.insert(0, os.path.dirname(PKG))
    try:
        from pyrunq._libbpf_build import ffibuilder
    finally:
        sys.path.pop(0)
    tmp = os.path.join(ROOT, "build", "cffi")
    built = ffibuilder().compile(tmpdir=tmp, verbose=False)
    shutil.copyfile(built, out)
    return out


def build_all() -> list[str]:
    os.makedirs(OBJ_DIR, exist_ok=True)
    return build_bpf_objects() + [build_binding()]


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run alone, without hatchling installed
    BuildHookInterface = object


class CustomBuildHook(BuildHookInterface):
    """Hatchling hook: build, then ship the outputs in a platform wheel."""

    def initialize(self, version, build_data):
        try:
            outputs = build_all()
        except BuildError as e:
            sys.exit(f"build.py: error: {e}")
        # artifacts override the wheel's `exclude`: leave the test-only objects out here
        build_data["artifacts"] += [
            os.path.relpath(p, ROOT) for p in outputs if os.path.basename(p) not in TEST_ONLY
        ]
        build_data["pure_python"] = False
        build_data["infer_tag"] = True


if __name__ == "__main__":
    try:
        for path in build_all():
            print(os.path.relpath(path, ROOT))
    except BuildError as e:
        sys.exit(f"build.py: error: {e}")
