"""The arm64 guests' userland: the host's root is amd64, so an arm64 guest
boots into a Debian 12 root of arm64 packages, made once by mmdebstrap, and
runs the checkout's Python code and BPF objects with the binding
(pyrunq._libbpf_cffi) compiled for arm64 inside that root. Both are cached
under kernels.CACHE; the binding is rebuilt when what it is made from changes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import kernels

# What guest_checks.py runs (Python, pytest, libbpf; clang and libbpf's headers
# for the object it compiles), busybox for the initramfs, what builds the binding
# (gcc, Python's headers, cffi).
PACKAGES = (
    "python3,python-is-python3,python3-pytest,python3-cffi-backend,python3-pyelftools,libbpf1,"
    "clang,libbpf-dev,busybox-static,gcc,libc6-dev,python3-dev,python3-cffi"
)
OPTIONS = (
    "--variant=minbase",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
# The console script pip would write: guest_checks.py runs `pyrunq` from
# beside the interpreter, and the guest takes pyrunq from the checkout (PYTHONPATH).
CONSOLE_SCRIPT = "#!/usr/bin/python3\nimport sys\nfrom pyrunq.cli import main\nsys.exit(main())\n"
# mmdebstrap and the binding's build run arm64 programs on this amd64 machine
# through qemu-user: installing qemu-user-static with binfmt-support registers
# binfmt_misc handlers for foreign ELF binaries on this machine.
PACKAGES_HERE = {
    "qemu-user-static": "/usr/bin/qemu-aarch64-static",
    "binfmt-support": "/usr/sbin/update-binfmts",
    "mmdebstrap": "/usr/bin/mmdebstrap",
}
QEMU_USER = {"arm64": "qemu-aarch64"}  # binfmt-support's name for the handler
BUILD = (  # run by the root's python3; argv[1]: the directory holding _libbpf_build.py
    "import os, sys; os.chdir(sys.argv[1]); sys.path.insert(0, '.'); "
    "from _libbpf_build import ffibuilder; print(ffibuilder().compile(tmpdir='.'))"
)


def root(arch: str) -> Path:
    """A Debian 12 root for `arch` (a directory), made once by mmdebstrap (3 to 10 minutes)."""
    kernels.install_host_packages(PACKAGES_HERE)
    run_foreign_binaries(arch)
    out = kernels.CACHE / f"root-{arch}-{digest(PACKAGES, *OPTIONS, CONSOLE_SCRIPT)}"
    if out.exists():
        return out
    kernels.CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kernels.CACHE) as tmp:
        new = Path(tmp) / "root"
        r = subprocess.run(
            ["mmdebstrap", "--quiet", f"--arch={arch}", *OPTIONS, f"--include={PACKAGES}", "bookworm", new],
            capture_output=True,
            text=True,
        )
        if r.returncode:
            raise kernels.KernelUnavailable(f"mmdebstrap --arch={arch}: {r.stderr.strip()[-2000:]}")
        (new / "usr/bin/pyrunq").write_text(CONSOLE_SCRIPT)
        (new / "usr/bin/pyrunq").chmod(0o755)
        publish(new, out)
    for old in kernels.CACHE.glob(f"root-{arch}-*"):  # from an older recipe: ~700 MB
        if old != out:
            shutil.rmtree(old, ignore_errors=True)
    return out


def binding(root: Path, repo: Path) -> Path:
    """A directory holding src/pyrunq/_libbpf_cffi.*.so built in `root` from
    what the checkout `repo` makes it from: a layer over the checkout."""
    inputs = binding_inputs(repo)
    out = kernels.CACHE / f"binding-{root.name}-{digest(*(Path(p).read_text() for p in inputs))}"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(dir=root / "tmp") as tmp:  # inside: the chroot sees it
        for path in inputs:  # where they are in the checkout: the spec finds the C beside it
            (Path(tmp) / os.path.relpath(path, repo)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(tmp) / os.path.relpath(path, repo))
        spec_dir = "/" + str((Path(tmp) / "src/pyrunq").relative_to(root))
        r = subprocess.run(["chroot", root, "python3", "-c", BUILD, spec_dir], capture_output=True, text=True)
        if r.returncode:
            errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
            raise kernels.KernelUnavailable(f"building the binding in {root}: " + "\n".join(errors[-10:]))
        built = root / r.stdout.strip().splitlines()[-1].lstrip("/")  # a path inside the root
        with tempfile.TemporaryDirectory(dir=kernels.CACHE) as stage:
            layer = Path(stage) / "layer"
            (layer / "src/pyrunq").mkdir(parents=True)
            shutil.copy(built, layer / "src/pyrunq")
            publish(layer, out)
    for old in kernels.CACHE.glob(f"binding-{root.name}-*"):  # from older sources
        if old != out:
            shutil.rmtree(old, ignore_errors=True)
    return out


def binding_inputs(repo: Path) -> list[str]:
    """build.py's binding_inputs(), loaded by path (`import build` is pypa's build)."""
    spec = importlib.util.spec_from_file_location("pyrunq_build_py", repo / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.binding_inputs()


def publish(new: Path, out: Path) -> None:
    """`new` becomes `out` whole or not at all, even with two runs at once."""
    try:
        new.rename(out)
    except OSError:
        pass  # the other run was first


def run_foreign_binaries(arch: str) -> None:
    """binfmt_misc runs `arch`'s programs through qemu-user."""
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():  # registered, but the filesystem is not mounted
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", binfmt], check=True)
    if not (binfmt / QEMU_USER[arch]).exists():
        subprocess.run(["update-binfmts", "--enable", QEMU_USER[arch]], check=True)


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
