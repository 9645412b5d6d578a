#!/usr/bin/env python3
"""Boot a Debian kernel under qemu and run one command inside it.

    python tests/kernels/run.py KERNEL [--timeout SECONDS] [--console] -- COMMAND...

KERNEL is one of kernels.KERNELS (5.10, 6.1, 6.1-rt, 6.12, 6.1-arm64): the
newest such image apt offers, fetched and cached on first use. An amd64 guest
sees the host's root read-only (9p) under a tmpfs overlay, so this checkout,
its .venv and the system's libbpf are there as they are; COMMAND runs with the
.venv's bin first on PATH. An arm64 guest (qemu-system-aarch64) boots into an
arm64 Debian root (userland.py) in which this checkout is shown at its own
path, with the binding built for arm64 laid over it; COMMAND runs with the
root's Python and the checkout's src/ on PYTHONPATH. COMMAND runs as root in
the current directory; its output is this program's stdout.

Exit status: the command's; or UNAVAILABLE (123) when the kernel could not be
fetched, TIMEOUT (124) when the guest did not finish in time, PANIC (125) when
the guest panicked or stopped without reporting a status. For the last two the
end of the guest's console goes to stderr.
"""

from __future__ import annotations

import argparse
import codecs
import fcntl
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kernels  # noqa: E402
import userland  # noqa: E402

UNAVAILABLE, TIMEOUT, PANIC = 123, 124, 125
REPO = kernels.HERE.parent.parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GUEST_ENV = {
    "PATH": f"{REPO}/.venv/bin:{SYSTEM_PATH}",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "PYTHONUNBUFFERED": "1",  # output streams out as it is made
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # plugin discovery is slow at 1/15 speed
}
# the arm64 root's own Python, with the checkout's code
ARM64_ENV = dict(GUEST_ENV, PATH=SYSTEM_PATH, PYTHONPATH=f"{REPO}/src")


# The guest's PID 1 after init.sh: run the command with its output on {out} (our
# stdout), report its status on {console} (the console log), power off.
JOB = """\
exec 3>{out}                                    # held open: hvc0 resets its settings on the last close
stty -F {out} raw -echo                         # bytes out as written: no \\r\\n
mkdir {job}/tmp                                 # the guest's alone: in the overlay
chmod 755 {job}                                 # in the overlay too: for uid 65534 to reach TMPDIR
(
{env}export TMPDIR={job}/tmp
cd {cwd} && exec {argv}
) </dev/null >{out} 2>&1 3>&-
echo "pyrunq-guest-exit: $?" >{console}
/bin/busybox poweroff -f
"""
# Debian's architecture -> the guest's console and output devices
DEVICES = {"amd64": ("/dev/ttyS0", "/dev/ttyS1"), "arm64": ("/dev/ttyAMA0", "/dev/hvc0")}


# /dev/kvm is unusable here; multi-threaded TCG races with the kernel's live
# code patching when a program attaches to sched_switch, and oopses
MACHINES = {
    # qemu64: TCG runs SSE2 code faster than the AVX2 glibc picks on "max"
    "amd64": ["qemu-system-x86_64", "-accel", "tcg,thread=single", "-M", "pc", "-cpu", "qemu64"],
    # cortex-a57: "max" adds pointer authentication, slow to emulate
    "arm64": ["qemu-system-aarch64", "-accel", "tcg,thread=single", "-M", "virt", "-cpu", "cortex-a57"],
}
OUTPUT = {  # the command's output: the second serial port, or a virtio console
    "amd64": ["-serial", "stdio"],
    "arm64": [
        "-chardev",
        "stdio,id=out",
        "-device",
        "virtio-serial-pci",
        "-device",
        "virtconsole,chardev=out",
    ],
}


def qemu_command(name: str, kernel_dir: Path, job: Path, overlays: list[str]) -> list[str]:
    """qemu for kernel `name`; `overlays` (MOUNTPOINT=LOWERDIRS) go to init.sh."""
    arch = kernels.arch(name)
    return [
        *MACHINES[arch],
        *("-m", "2G", "-smp", "2", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"),
        *("-kernel", str(kernel_dir / kernels.boot_file(name)), "-initrd", str(job / "initrd")),
        # panic=-1 + -no-reboot: a panic (or an oops, made one) ends qemu at once;
        # mitigations=off: retpolines and RSB filling cost dearly when emulated
        "-append",
        f"console={Path(DEVICES[arch][0]).name} quiet panic=-1 oops=panic mitigations=off rdinit=/init "
        + " ".join(["--", str(job), *overlays]),
        *("-serial", f"file:{job}/console"),  # the first serial port: the kernel's console
        *OUTPUT[arch],
        # multidevs=remap: inode numbers from several host filesystems cannot collide
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
    ]


def prepare(kernel: str) -> tuple[Path, Path, Path | None]:
    """The kernel's cache directory, the guest's root on the host and, for an
    arm64 guest, the binding's layer over the checkout; fetched or made once.
    One run prepares at a time (the matrix runs guests side by side, -n 2):
    apt's lists and the cache are shared, and a second run then finds it done."""
    kernels.CACHE.mkdir(parents=True, exist_ok=True)
    with open(kernels.CACHE / "prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kernel_dir = kernels.prepare(kernel)
        if kernels.arch(kernel) == "amd64":
            return kernel_dir, Path("/"), None
        root = userland.root(kernels.arch(kernel))
        return kernel_dir, root, userland.binding(root, REPO)


def run(
    kernel: str,
    argv: list[str],
    timeout: float = 600,
    cwd: str | None = None,
    out=None,
    console: bool = False,
    image_root: Path | None = None,
) -> tuple[int, str]:
    """Run argv in the guest: (exit status, its output). Output also goes to `out`.
    `image_root` (an arm64 guest's): boot into this directory (a container
    image's files) instead, with nothing of the checkout and only the
    userland root's busybox added (for init and poweroff)."""
    out = out or sys.stdout
    arch = kernels.arch(kernel)
    try:
        kernel_dir, root, binding = prepare(kernel)
    except kernels.KernelUnavailable as e:
        print(f"run.py: kernel {kernel} unavailable: {e}", file=sys.stderr)
        return UNAVAILABLE, ""
    with tempfile.TemporaryDirectory(prefix="pyrunq-guest-") as tmp:
        job = Path(tmp)
        kernels.initrd(kernel_dir, job / "initrd", arch, root / "bin/busybox")
        overlays = ["/=/lower" if root == Path("/") else f"/=/lower{root}"]
        env = GUEST_ENV
        if image_root:  # busybox below the image's files (usr/bin: /bin may be a link)
            (job / "busybox/usr/bin").mkdir(parents=True)
            shutil.copy(root / "bin/busybox", job / "busybox/usr/bin")
            overlays = [f"/=/lower{image_root}:/lower{job}/busybox", f"{job}=/lower{job}"]
            env = dict(GUEST_ENV, PATH=SYSTEM_PATH)
        elif binding:  # the checkout and the job in the arm64 root, at their own paths
            overlays += [f"{REPO}=/lower{binding}:/lower{REPO}", f"{job}=/lower{job}"]
            env = ARM64_ENV
        (job / "job.sh").write_text(
            JOB.format(
                env="".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()),
                job=job,
                cwd=shlex.quote(cwd or str(Path.cwd())),
                argv=shlex.join(argv),
                console=DEVICES[arch][0],
                out=DEVICES[arch][1],
            )
        )
        qemu = subprocess.Popen(
            qemu_command(kernel, kernel_dir, job, overlays), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        output = []
        reader = threading.Thread(target=copy, args=(qemu.stdout, out, output), daemon=True)
        reader.start()
        try:
            qemu.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also on Ctrl-C: no emulator left behind
            timed_out = qemu.poll() is None
            if timed_out:
                qemu.kill()
                qemu.wait()
        reader.join(5)
        log = (job / "console").read_text(errors="replace") if (job / "console").exists() else ""
    reported = re.search(r"^pyrunq-guest-exit: (\d+)", log, re.M)
    status = TIMEOUT if timed_out else int(reported.group(1)) if reported else PANIC
    if console or status in (TIMEOUT, PANIC):
        why = {TIMEOUT: f"timed out after {timeout:g} s", PANIC: "panicked or died"}
        print(
            f"run.py: guest {kernel} {why.get(status, 'console')}:",
            *log.splitlines()[0 if console else -60 :],
            sep="\n",
            file=sys.stderr,
        )
    return status, "".join(output)


def copy(pipe, out, output: list[str]) -> None:
    """Pass the guest's output on as it comes (pytest's dots too, not just lines)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in iter(lambda: pipe.read1(65536), b""):
        text = decoder.decode(chunk)
        output.append(text)
        out.write(text)
        out.flush()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kernel", choices=sorted(kernels.KERNELS))
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--console", action="store_true", help="print the guest's console log")
    p.add_argument("command", nargs="+", help="after --: the command to run in the guest")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # run() cleans up
    return run(args.kernel, args.command, args.timeout, console=args.console)[0]


if __name__ == "__main__":
    sys.exit(main())
