"""Compile once, run everywhere: the packaged BPF objects on other kernels.

Opt-in (PYRUNQ_MATRIX=1, see conftest.py); needs root on the host. Each kernel
(amd64: Debian 11's 5.10, Debian 12's 6.1, 6.1 PREEMPT_RT and 6.12; arm64:
Debian 12's 6.1, under qemu-system-aarch64) boots once under qemu (run.py) and
runs, with this checkout (its code, its objects for the guest's architecture),
guest_checks.py (every object loads, attaches and fires; the CLI; raw_tp; no
BTF) and the object / map / ring buffer API tests. A kernel that cannot be
fetched skips, or fails under PYRUNQ_REQUIRE_BPF=1 like every kernel test.
"""

from __future__ import annotations

import os
import re

import pytest

import kernels
import run
from needs import skip_or_fail

pytestmark = [pytest.mark.slow, pytest.mark.external]
GUEST_TESTS = ["tests/kernels/guest_checks.py", "tests/test_bpf_api.py"]
BOOT_TIMEOUT = 900  # a guest run takes 1 to 3 minutes; the machine may be busy


def prepared(kernel: str) -> None:
    if os.geteuid() != 0:
        reason = "needs root (qemu's 9p export of / and apt)"
    else:
        try:
            run.prepare(kernel)
            return
        except kernels.KernelUnavailable as e:
            reason = f"kernel {kernel} unavailable: {e}"
    skip_or_fail(reason)


def guest(kernel: str, argv: list[str], timeout: float = BOOT_TIMEOUT) -> tuple[int, str]:
    prepared(kernel)
    return run.run(kernel, argv, timeout=timeout, cwd=str(run.REPO))


@pytest.mark.parametrize("name", list(kernels.KERNELS))
def test_kernel(name):
    status, output = guest(
        name,
        [
            "sh",
            "-c",
            'uname -r && exec "$@"',
            "sh",
            "env",
            "PYRUNQ_REQUIRE_BPF=1",
            "python",
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfEs",
            *GUEST_TESTS,
        ],
    )
    assert status == 0, f"on {name}: the guest's pytest exited {status} (output above)"


# The runner itself: its statuses are what CI relies on.
@pytest.mark.parametrize("name, machine", [("6.1", "x86_64"), ("6.1-arm64", "aarch64")])
def test_runner_passes_the_exit_status_and_output(name, machine):
    status, output = guest(name, ["sh", "-c", "echo hello from $(uname -r) $(uname -m); exit 7"])
    expected = rf"hello from 6\.1\.0-\d+-{kernels.arch(name)} {machine}\n"
    assert status == 7 and re.fullmatch(expected, output), output


def test_runner_reports_a_guest_panic():
    assert guest("6.1", ["sh", "-c", "echo c > /proc/sysrq-trigger; sleep 60"])[0] == run.PANIC


def test_runner_reports_a_time_out():
    assert guest("6.1", ["sleep", "600"], timeout=20)[0] == run.TIMEOUT


# The arm64 image on an arm64 kernel: what qemu-user cannot show (it has no
# bpf()), the exporter attached and answering its probes.
IMAGE_HEALTH = """if True:
    import subprocess, sys, urllib.request
    exporter = subprocess.Popen(["pyrunq", "exporter", "--by", "total", "--listen", "127.0.0.1:9864",
                                 "--refresh", "2"], stderr=subprocess.PIPE, text=True)
    for line in exporter.stderr:
        print(line, end="")
        if "serving" in line:
            break
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen("http://127.0.0.1:9864" + path, timeout=60) as r:
            print(path, r.status, r.read().decode().strip())
    exporter.terminate()
    print("exit", exporter.wait())
"""


def test_arm64_image_attaches_and_answers_health_on_an_arm64_kernel():
    import podman_images

    arm64 = podman_images.build() + "-arm64"
    with podman_images.mounted(arm64) as root:
        prepared("6.1-arm64")
        status, output = run.run(
            "6.1-arm64",
            # the guest's init leaves loopback down; the image has no ip(8): busybox's
            ["sh", "-c", 'busybox ip link set lo up && exec python3 -c "$0"', IMAGE_HEALTH],
            timeout=BOOT_TIMEOUT,
            cwd="/",
            image_root=root,
        )
    assert status == 0, output
    assert "pyrunq exporter: serving http://127.0.0.1:9864/metrics" in output
    assert "/healthz 200 ok\n/readyz 200 ready\nexit 0" in output, output
