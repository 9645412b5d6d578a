"""Build step: BPF C -> CO-RE objects, and the cffi binding to libbpf.

Runs as hatchling's build hook (``pip install .``, ``pip install -e .``,
``python -m build``) and alone (``python build.py``). Compiles every
``bpf/*.bpf.c`` with clang once per architecture in ``ARCHES``, with that
architecture's ``vmlinux/<arch>/vmlinux.h``, into
``src/pyrunq/bpf/<arch>/<name>.bpf.o`` (every wheel carries them all: pyrunq
picks by the machine at run time), and ``pyrunq._libbpf_cffi`` with the C
compiler, for this machine. Each output is rebuilt only when
one of its inputs is newer. The wheel ships what users run: not the test-only
objects (``TEST_ONLY``, which the tests find in the source tree) nor
``_libbpf_build.py`` (excluded in pyproject.toml).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.abspath(__file__))
BPF_SRC = os.path.join(ROOT, "bpf")
PKG = os.path.join(ROOT, "src", "pyrunq")
OBJ_DIR = os.path.join(PKG, "bpf")
ARCHES = {"x86_64": "x86", "aarch64": "arm64"}  # uname's machine -> the kernel's (and our) name
PACKAGES = "clang llvm libbpf-dev"
TEST_ONLY = {"selftest.bpf.o"}  # built for the tests (tests/test_bpf_api.py), never shipped


class BuildError(Exception):
    pass


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
    """Compile bpf/*.bpf.c for every architecture; return the object paths."""
    return [out for arch in ARCHES.values() for out in _build_for(arch)]


def _build_for(arch: str) -> list[str]:
    vmlinux = os.path.join(ROOT, "vmlinux", arch)
    _require(os.path.join(vmlinux, "vmlinux.h"), f"vmlinux/{arch}/vmlinux.h")
    headers = glob.glob(os.path.join(BPF_SRC, "*.h")) + [os.path.join(vmlinux, "vmlinux.h")]
    os.makedirs(os.path.join(OBJ_DIR, arch), exist_ok=True)
    outputs = []
    for src in sorted(glob.glob(os.path.join(BPF_SRC, "*.bpf.c"))):
        out = os.path.join(OBJ_DIR, arch, os.path.basename(src)[: -len(".c")] + ".o")
        outputs.append(out)
        if _stale(out, [src, *headers]):
            _compile(src, out, arch, vmlinux)
    return outputs


def _compile(src: str, out: str, arch: str, vmlinux: str) -> None:
    _require("clang", "clang")
    _require("/usr/include/bpf/bpf_helpers.h", "libbpf's headers")
    cmd = [
        "clang",
        "-target",
        "bpf",
        "-O2",
        "-g",
        "-Wall",
        f"-D__TARGET_ARCH_{arch}",  # bpf_tracing.h: this architecture's pt_regs
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
        raise BuildError(f"clang failed on {os.path.relpath(src, ROOT)} for {arch}")
    # DWARF is dead weight at run time: libbpf needs only .BTF and .BTF.ext
    _require("llvm-strip", "llvm-strip")
    subprocess.run(["llvm-strip", "-g", out], check=True)


def binding_inputs() -> list[str]:
    """What pyrunq._libbpf_cffi is compiled from: its cffi spec and the C it includes
    (tests/kernels/userland.py builds it from these for arm64 guests too)."""
    return [os.path.join(PKG, "_libbpf_build.py"), *sorted(glob.glob(os.path.join(ROOT, "native", "*.c")))]


def build_binding() -> str:
    """Compile pyrunq._libbpf_cffi; return the extension's path."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    out = os.path.join(PKG, "_libbpf_cffi" + suffix)
    if not _stale(out, binding_inputs()):
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
            manual = build_manual()
        except BuildError as e:
            sys.exit(f"build.py: error: {e}")
        # artifacts override the wheel's `exclude`: leave the test-only objects out here
        build_data["artifacts"] += [
            os.path.relpath(p, ROOT) for p in outputs if os.path.basename(p) not in TEST_ONLY
        ]
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["shared_data"].update(manual)


def build_manual() -> dict[str, str]:
    """The man pages and shell completion, made from the command's own parsers
    (``pyrunq.cli.manual``, imported from src/ with the binding just built);
    file -> where the wheel installs it."""
    sys.path.insert(0, os.path.join(ROOT, "src"))
    try:
        from pyrunq.cli import manual

        return manual.write(os.path.join(ROOT, "build", "manual"))
    except Exception as e:  # noqa: BLE001 - one line for the build's log
        raise BuildError(f"making the man pages and completion failed: {type(e).__name__}: {e}") from e
    finally:
        sys.path.remove(os.path.join(ROOT, "src"))


if __name__ == "__main__":
    try:
        for path in build_all():
            print(os.path.relpath(path, ROOT))
    except BuildError as e:
        sys.exit(f"build.py: error: {e}")
