"""The hatchling build hook for a package of one's own BPF programs.

In the package's pyproject.toml::

    [build-system]
    requires = ["hatchling", "pyrunq", "pyrunq-vmlinux"]
    build-backend = "hatchling.build"

    [tool.hatch.build.hooks.pyrunq]

At a wheel's build the hook compiles each ``bpf/*.bpf.c`` with clang once
per architecture (x86_64 and aarch64), against the vmlinux.h of that
architecture from ``pyrunq-vmlinux`` (a data package: headers are needed to
build, never to run, so pyrunq's own wheel does not carry their 5 MB), into
``<package>/bpf/<arch>/<name>.bpf.o``, and writes the skeleton of each
(``pyrunq skel``) as ``<package>/<name>_skel.py``. Both are in the package
directory, so that an editor and mypy see the skeletons in the source tree
too, and both go into the wheel whatever the VCS ignores. The wheel is
tagged for Linux on those two architectures (it holds no native code of the
machine that built it, but its programs run on those kernels only).

Options (all optional): ``package`` (the package's directory, default the
project's name under ``src/`` or the root), ``sources`` (default ``bpf``),
``vmlinux`` (a directory of ``<arch>/vmlinux.h``; default: the
``PYRUNQ_VMLINUX`` environment variable, else ``pyrunq-vmlinux``'s),
``events`` (``{"name": {"map": "struct"}}``, for ``pyrunq skel --event``).

Registered with hatchling through the entry point ``pyrunq`` of group
``hatch`` (pyproject.toml of pyrunq); imported only by hatchling.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Callable
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.plugin import hookimpl

ARCHES = {"x86_64": "x86", "aarch64": "arm64"}  # uname's machine -> vmlinux.h's (and the objects') dir
# Linux on the two architectures, glibc or musl: the wheel has no native code
TAG = "py3-none-" + ".".join(
    f"{libc}_{machine}" for libc in ("manylinux2014", "musllinux_1_1") for machine in ARCHES
)


class BuildError(Exception):
    pass


class PyrunqBuildHook(BuildHookInterface):
    PLUGIN_NAME = "pyrunq"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        package = self._package_dir()
        sources = sorted(glob.glob(os.path.join(self.root, self.config.get("sources", "bpf"), "*.bpf.c")))
        if not sources:
            raise BuildError(
                f"pyrunq build hook: no {self.config.get('sources', 'bpf')}/*.bpf.c in {self.root}"
            )
        vmlinux = vmlinux_dir(self.config.get("vmlinux"), self.root)
        events = self.config.get("events", {})
        for source in sources:
            name = os.path.basename(source)[: -len(".bpf.c")]
            objects = [compile_object(source, package, arch, vmlinux) for arch in ARCHES.values()]
            module = os.path.join(package, f"{name}_skel.py")
            write_skeleton(objects, module, events.get(name, {}))
        relative = os.path.relpath(package, self.root)
        build_data["artifacts"] += [f"/{relative}/bpf/*/*.bpf.o", f"/{relative}/*_skel.py"]
        build_data["tag"] = TAG
        build_data["pure_python"] = False

    def _package_dir(self) -> str:
        name = self.config.get("package") or self.metadata.name.replace("-", "_")
        for candidate in (os.path.join(self.root, name), os.path.join(self.root, "src", name)):
            if os.path.isfile(os.path.join(candidate, "__init__.py")):
                return candidate
        raise BuildError(
            f"pyrunq build hook: no package {name!r} in {self.root} or its src/ (set package = ... "
            f"in [tool.hatch.build.hooks.pyrunq])"
        )


def vmlinux_dir(option: str | None, root: str) -> str:
    """Where ``<arch>/vmlinux.h`` are: the hook's option, PYRUNQ_VMLINUX, or
    the pyrunq-vmlinux package."""
    where = option or os.environ.get("PYRUNQ_VMLINUX")
    if where:
        return os.path.join(root, where)
    try:
        import pyrunq_vmlinux  # type: ignore[import-not-found]  # a build dependency
    except ImportError:
        raise BuildError(
            "pyrunq build hook: no vmlinux.h to build against: add pyrunq-vmlinux to "
            "[build-system] requires (or set vmlinux = DIR of <arch>/vmlinux.h)"
        ) from None
    directory: str = pyrunq_vmlinux.directory()
    return directory


def compile_object(source: str, package: str, arch: str, vmlinux: str) -> str:
    """``source`` compiled for ``arch`` into ``<package>/bpf/<arch>/``; with
    its DWARF, which the skeleton's check reads for structs only DWARF has."""
    header = os.path.join(vmlinux, arch, "vmlinux.h")
    if not os.path.isfile(header):
        raise BuildError(f"pyrunq build hook: no {header}")
    out_dir = os.path.join(package, "bpf", arch)
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, os.path.basename(source)[: -len(".c")] + ".o")
    cmd = ["clang", "-target", "bpf", "-O2", "-g", "-Wall", f"-D__TARGET_ARCH_{arch}"]
    cmd += ["-I", os.path.dirname(header), "-I", os.path.dirname(source), "-c", source, "-o", out]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BuildError("pyrunq build hook: clang not found (apt-get install clang libbpf-dev)") from None
    if done.returncode != 0:
        raise BuildError(f"pyrunq build hook: clang failed on {source} for {arch}:\n{done.stderr}")
    return out


def write_skeleton(objects: list[str], module: str, events: dict[str, str]) -> None:
    """The skeleton of the first object, checked to fit every other: one
    module serves every architecture's object."""
    from .bpf import BPFObject, skelgen

    explicit: dict[str, str | None] = dict(events)

    def digest(path: str) -> str:
        with BPFObject(path) as obj:
            return skelgen.model_digest(skelgen.model(obj, explicit))

    digests = {path: digest(path) for path in objects}
    for path in objects:
        strip_dwarf_if_unread(path, digests[path], digest)
    if len(set(digests.values())) != 1:
        raise BuildError(
            f"pyrunq build hook: {', '.join(objects)} differ in their types: one skeleton cannot serve them"
        )
    text = skelgen.generate(objects[0], module, explicit)
    with open(module, "w") as f:
        f.write(text)


def strip_dwarf_if_unread(path: str, digest: str, digest_of: Callable[[str], str]) -> None:
    """Drop the object's DWARF (most of its size: vmlinux.h's types) when its
    skeleton does not read it, i.e. when the stripped object's digest is the
    same; libbpf needs only .BTF and .BTF.ext."""
    stripped = path + ".stripped"
    try:
        if subprocess.run(["llvm-strip", "-g", path, "-o", stripped], capture_output=True).returncode != 0:
            return
    except FileNotFoundError:  # llvm-strip missing: the object keeps its DWARF
        return
    if digest_of(stripped) == digest:
        os.replace(stripped, path)
    else:
        os.remove(stripped)


@hookimpl
def hatch_register_build_hook() -> type[PyrunqBuildHook]:
    return PyrunqBuildHook
