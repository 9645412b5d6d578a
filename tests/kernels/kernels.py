"""Debian kernels to boot under qemu: fetch, unpack, and build a tiny initramfs.

Each kernel is cached under ~/.cache/pyrunq-kernels/<package>_<version>/ as
`vmlinux` (amd64: the ELF, booted directly through PVH: decompressing an XZ
bzImage under TCG is slow) or `Image` (arm64), and `modules.cpio` (the modules
needed to mount the host's root over virtio-9p with an overlayfs). The rest of
the initramfs (busybox and init.sh) is `base-<arch>-<hash>.cpio`, the same for
every kernel of an architecture; the kernel unpacks the two archives one after
the other. Nothing is installed into /boot. Packages come from Debian's mirror
through apt with sources of our own (SUITES), not the machine's.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("PYRUNQ_KERNEL_CACHE", Path.home() / ".cache/pyrunq-kernels"))

# name -> the Debian package, as a regular expression (for apt and Python alike)
# whose group is the number to take the newest of. The unsigned images are the
# same kernels as the signed ones, without the signing shim's dependencies.
KERNELS = {
    "5.10": r"linux-image-5\.10\.0-([0-9]+)-amd64-unsigned",  # Debian 11
    "6.1": r"linux-image-6\.1\.0-([0-9]+)-amd64-unsigned",
    "6.1-rt": r"linux-image-6\.1\.0-([0-9]+)-rt-amd64-unsigned",
    "6.12": r"linux-image-6\.12\.([0-9]+)\+deb12-amd64-unsigned",
    "6.1-arm64": r"linux-image-6\.1\.0-([0-9]+)-arm64-unsigned",  # under qemu-system-aarch64
}
# Our own apt sources, lists and cache (under CACHE/apt): Debian 11 and 12 for
# amd64 and arm64, whatever the machine's own sources name. Only `apt-get
# download` and `apt-cache` use them; nothing is installed from them.
SUITES = (
    ("debian", "bullseye"),
    ("debian-security", "bullseye-security"),
    ("debian", "bookworm"),
    ("debian", "bookworm-updates"),
    ("debian-security", "bookworm-security"),
)
ARCHITECTURES = ("amd64", "arm64")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE = 24 * 3600  # seconds; then the lists are updated: newer kernels come out
# What init.sh needs to reach the host's root; modprobe adds the dependencies.
# arm64's virt machine has one UART (the console): the command's output goes
# through a virtio console.
MODULES = {
    "amd64": ("virtio_pci", "9pnet_virtio", "9p", "overlay"),
    "arm64": ("virtio_pci", "9pnet_virtio", "9p", "overlay", "virtio_console"),
}
HOST_PACKAGES = {
    "busybox-static": "/bin/busybox",
    "kmod": "/usr/sbin/depmod",
    "xz-utils": "/usr/bin/xz",
    "zstd": "/usr/bin/zstd",
}
EMULATORS = {  # Debian's architecture -> qemu's package and binary
    "amd64": {"qemu-system-x86": "/usr/bin/qemu-system-x86_64"},
    "arm64": {"qemu-system-arm": "/usr/bin/qemu-system-aarch64"},
}
INIT = HERE / "init.sh"


class KernelUnavailable(Exception):
    """The kernel could not be fetched or prepared (no network, no such package)."""


def apt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    )


def our_apt(command: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """apt-get or apt-cache with our sources (SUITES), lists and cache."""
    d = CACHE / "apt"
    if not (d / "sources.list").exists():
        for sub in ("lists/partial", "cache/archives/partial", "parts"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "sources.list").write_text(
            "".join(
                f"deb [signed-by={KEYRING}] http://deb.debian.org/{archive} {suite} main\n"
                for archive, suite in SUITES
            )
        )
    options = [
        f"Dir::Etc::SourceList={d}/sources.list",
        f"Dir::Etc::SourceParts={d}/parts",
        f"Dir::State::Lists={d}/lists",
        f"Dir::Cache={d}/cache",
        "APT::Sandbox::User=root",  # the lists are root's, not _apt's
        *(f"APT::Architectures::={a}" for a in ARCHITECTURES),
    ]
    return apt(command, *(f"-o{o}" for o in options), *args, cwd=cwd)


def install_host_packages(packages: dict[str, str] = HOST_PACKAGES) -> None:
    missing = [p for p, path in packages.items() if not os.path.exists(path)]
    if missing:
        apt("apt-get", "update", "-qq")
        r = apt("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing)
        if r.returncode:
            raise KernelUnavailable(f"apt-get install {' '.join(missing)}: {r.stderr.strip()}")


def newest_package(name: str) -> tuple[str, str]:
    """(package, version) of the newest image apt offers for this kernel."""
    updated = CACHE / "apt/updated"
    if not updated.exists() or time.time() - updated.stat().st_mtime > LISTS_MAX_AGE:
        update_lists()
    out = our_apt("apt-cache", "search", "--names-only", "--full", f"^{KERNELS[name]}$").stdout
    found = [
        (int(re.match(KERNELS[name], p).group(1)), p, v)
        for p, v in re.findall(r"^Package: (\S+)\n(?:.+\n)*?Version: (\S+)", out, re.M)
    ]
    if not found:
        raise KernelUnavailable(f"apt offers no package matching {KERNELS[name]}")
    return max(found)[1:]


def update_lists() -> None:
    if our_apt("apt-get", "update", "-qq").returncode == 0:
        (CACHE / "apt/updated").touch()


def arch(name: str) -> str:
    """Debian's name for the kernel's architecture: amd64 unless the name says arm64."""
    return "arm64" if name.endswith("-arm64") else "amd64"


def boot_file(name: str) -> str:
    """What qemu boots, in the kernel's cache directory: the ELF vmlinux (amd64,
    PVH) or the arm64 Image."""
    return "Image" if arch(name) == "arm64" else "vmlinux"


def prepare(name: str) -> Path:
    """The cache directory holding boot_file(name) and `modules.cpio` for this kernel."""
    if name not in KERNELS:
        raise KernelUnavailable(f"unknown kernel {name!r}; known: {', '.join(KERNELS)}")
    install_host_packages({**HOST_PACKAGES, **EMULATORS[arch(name)]})
    CACHE.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(KERNELS[name] + "_")
    cached = {d: int(m.group(1)) for d in CACHE.iterdir() if (m := pattern.match(d.name))}
    try:
        package, version = newest_package(name)
    except KernelUnavailable:
        if not cached:
            raise
        return max(cached, key=cached.get)  # offline: the newest one already unpacked
    out = CACHE / f"{package}_{version}"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root, entry = Path(tmp) / "root", Path(tmp) / "entry"
        deb = download(f"{package}:{arch(name)}", version, Path(tmp))
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        release = next((root / "lib/modules").iterdir()).name
        entry.mkdir()
        vmlinuz = root / f"boot/vmlinuz-{release}"
        if arch(name) == "arm64":  # an uncompressed Image (its EFI stub's "MZ", then "ARM\x64")
            shutil.copy(vmlinuz, entry / "Image")
        else:
            extract_vmlinux(vmlinuz, entry / "vmlinux")
        shutil.copy(root / f"boot/config-{release}", entry / "config")
        modules_cpio(root, release, MODULES[arch(name)], entry / "modules.cpio")
        try:
            entry.rename(out)  # whole or not at all, even with two runs at once
        except OSError:
            pass  # the other run was first
    for old in cached:  # superseded by a newer package: ~70 MB each
        shutil.rmtree(old, ignore_errors=True)
    return out


def download(package: str, version: str, where: Path) -> Path:
    for attempt in range(2):
        r = our_apt("apt-get", "download", f"{package}={version}", cwd=where)
        debs = list(where.glob("*.deb"))
        if r.returncode == 0 and debs:
            return debs[0]
        if attempt == 0:
            update_lists()  # stale lists may name a file the mirror dropped
    raise KernelUnavailable(f"apt-get download {package}={version}: {r.stderr.strip()}")


def extract_vmlinux(bzimage: Path, dest: Path) -> None:
    """The ELF kernel inside a bzImage (6.1: XZ, 6.12: zstd): qemu boots it via PVH."""
    data = bzimage.read_bytes()
    for magic, tool in ((b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd")):
        start = data.find(magic)
        if start < 0:
            continue
        # the bzImage's trailer follows the stream and the tool complains about it:
        # judge by the result, an ELF whose section headers (at its end) are all there
        elf = subprocess.run([tool, "-dc"], input=data[start:], capture_output=True).stdout
        if elf[:4] == b"\x7fELF" and len(elf) > 64:
            shoff, shentsize, shnum = struct.unpack_from("<Q10xHH", elf, 0x28)
            if len(elf) >= shoff + shentsize * shnum:
                dest.write_bytes(elf)
                return
    raise KernelUnavailable(f"{bzimage}: no XZ or zstd-compressed ELF kernel inside")


def modules_cpio(root: Path, release: str, modules: tuple[str, ...], dest: Path) -> None:
    """`modules` and their dependencies, plus /modules/order to load them in."""
    subprocess.run(["depmod", "-b", root, release], check=True)
    order: list[Path] = []
    for module in modules:
        deps = subprocess.run(
            ["modprobe", "-d", root, "-S", release, "--show-depends", module],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in deps.splitlines():  # "insmod PATH" in load order, or "builtin NAME"
            if line.startswith("insmod ") and Path(line.split()[1]) not in order:
                order.append(Path(line.split()[1]))
    with tempfile.TemporaryDirectory() as stage:
        (Path(stage) / "modules").mkdir()
        names = []
        for ko in order:
            data = ko.read_bytes()
            if ko.name.endswith(".xz"):  # busybox insmod takes plain ELF only
                data = lzma.decompress(data)
            names.append(ko.name.split(".ko")[0] + ".ko")
            (Path(stage) / "modules" / names[-1]).write_bytes(data)
        (Path(stage) / "modules/order").write_text("".join(n + "\n" for n in names))
        cpio(Path(stage), dest)


def initrd(kernel_dir: Path, dest: Path, arch: str = "amd64", busybox: Path = Path("/bin/busybox")) -> None:
    """The initramfs for one boot: base (init.sh and `busybox`, built for `arch`)
    + this kernel's modules."""
    digest = hashlib.sha256(INIT.read_bytes() + busybox.read_bytes()).hexdigest()[:12]
    base = CACHE / f"base-{arch}-{digest}.cpio"
    if not base.exists():
        with tempfile.TemporaryDirectory() as stage:
            s = Path(stage)
            for d in ("bin", "dev", "proc", "lower", "rw", "newroot"):
                (s / d).mkdir()
            shutil.copy(busybox, s / "bin")
            for applet in ("sh", "mount", "umount", "mkdir", "insmod", "switch_root"):
                (s / "bin" / applet).symlink_to("busybox")
            shutil.copy(INIT, s / "init")
            (s / "init").chmod(0o755)
            for old in CACHE.glob(f"base-{arch}-*.cpio"):  # from an older init.sh or busybox
                old.unlink()
            cpio(s, base.with_suffix(".tmp"))
            base.with_suffix(".tmp").rename(base)
    with open(dest, "wb") as f:
        for part in (base, kernel_dir / "modules.cpio"):
            f.write(part.read_bytes())


def cpio(directory: Path, dest: Path) -> None:
    """A newc archive, uncompressed: unpacking is faster than inflating under TCG."""
    files = subprocess.run(["find", "."], cwd=directory, capture_output=True, check=True).stdout
    with open(dest, "wb") as out:
        subprocess.run(
            ["busybox", "cpio", "-o", "-H", "newc"],
            cwd=directory,
            input=files,
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=True,
        )
