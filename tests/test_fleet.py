"""The exporter as a fleet runs it: the image `./dev image` builds, the
DaemonSet's pod run by a real container engine (podman kube play), ordinary
containers beside it, and a real Prometheus reading their latency by
container id."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

import pytest
import yaml

import podman_images
from needs import need
from promserver import Prometheus
from waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.external]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PODMAN = os.path.join(ROOT, "deploy", "podman")
DAEMONSET = os.path.join(ROOT, "deploy", "kubernetes", "daemonset.yaml")
# podman with this project's settings for hosts like CI's (runc, ulimits)
ENV = {**os.environ, "CONTAINERS_CONF": os.path.join(PODMAN, "containers.conf")}
MAX_IMAGE_BYTES = 150e6
# Four busy processes in a quota of a fifth of a CPU: throttled most of each
# 100 ms period, so a good share of their waits last tens of milliseconds.
STARVED = "import os\nfor _ in range(2): os.fork()\nwhile True: pass"
IDLE = "import time\nwhile True: time.sleep(0.01)"  # wakes, runs at once, sleeps
P99 = (
    "histogram_quantile(0.99, sum by (container_id, le)"
    ' (rate(pyrunq_runqueue_latency_seconds_bucket{{container_id=~"{}"}}[10s])))'
)


def podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    need("podman")
    need("prometheus")
    return podman_images.build()


def test_image_is_small_and_has_no_compiler(image):
    import pyrunq

    assert image == f"localhost/pyrunq:{pyrunq.__version__}"
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image))
    assert size <= MAX_IMAGE_BYTES, f"{image} weighs {size / 1e6:.0f} MB"
    found = podman("run", "--rm", "--entrypoint", "sh", image, "-c", "command -v cc gcc clang || true")
    assert found == ""
    version = podman("run", "--rm", "--entrypoint", "pyrunq", image, "--version")
    assert version == f"pyrunq {pyrunq.__version__}"


def test_the_name_is_a_manifest_list_over_amd64_and_arm64(image):
    listed = json.loads(podman("manifest", "inspect", image))["manifests"]
    assert sorted(m["platform"]["architecture"] for m in listed) == ["amd64", "arm64"]
    for arch in ("amd64", "arm64"):
        assert podman("image", "inspect", "--format", "{{.Architecture}}", f"{image}-{arch}") == arch


# In the arm64 image, under qemu-user: the version, `pyrunq inspect` of each
# packaged object (ELF, BTF, programs, maps: no kernel needed), their digests.
ARM64_CHECK = """set -e
uname -m
pyrunq --version
cd "$(python3 -c 'import os, pyrunq.bpf; print(os.path.dirname(pyrunq.bpf.__file__))')/arm64"
for o in *.bpf.o; do pyrunq inspect --json "$o" >/dev/null; echo "inspected $o"; done
sha256sum *.bpf.o
"""


def test_arm64_image_runs_under_emulation_with_the_objects_the_arm64_kernel_loads(image):
    import pyrunq

    out = podman("run", "--rm", "--arch", "arm64", "--entrypoint", "sh", f"{image}-arm64", "-c", ARM64_CHECK)
    lines = out.splitlines()
    assert lines[:2] == ["aarch64", f"pyrunq {pyrunq.__version__}"], out
    # the checkout's arm64 objects, which the kernel matrix's arm64 guest loads (less the tests' own)
    objects = sorted(
        p for p in glob.glob(os.path.join(ROOT, "src/pyrunq/bpf/arm64/*.bpf.o")) if "selftest" not in p
    )
    assert [line for line in lines if line.startswith("inspected ")] == [
        f"inspected {os.path.basename(p)}" for p in objects
    ]
    digests = dict(reversed(line.split()) for line in lines if re.fullmatch(r"[0-9a-f]{64}  \S+", line))
    assert digests == {os.path.basename(p): sha256(p) for p in objects}


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pod_manifest(tmp: str, name: str, image: str) -> str:
    """The DaemonSet's pod template as a Pod for podman 4.3 (Debian 12), with
    only what this engine needs changed:
    - ``--cgroup``: podman's containers (cgroupfs manager) live under
      /libpod_parent, not the kubelet's /kubepods;
    - ``--refresh=1``: new containers traced within a second, not ten;
    - seccomp: containers-common's RuntimeDefault allows bpf() only with
      CAP_SYS_ADMIN; the profile of deploy/podman/seccomp-bpf.py allows it to
      CAP_BPF, as containerd's and Docker's defaults do. podman 4.3 takes a
      profile by annotation, from --seccomp-profile-root.
    hostPID is ignored by podman before 4.5; --by cgroup does not need it."""
    with open(DAEMONSET) as f:
        template = yaml.safe_load(f)["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert container["image"] == image, "the DaemonSet runs another image than ./dev image builds"
    replace = {"--cgroup": "--cgroup=/libpod_parent/**", "--refresh": "--refresh=1"}
    container["args"] = [replace.get(a.split("=")[0], a) for a in container["args"]]
    profile = subprocess.run(
        [sys.executable, os.path.join(PODMAN, "seccomp-bpf.py")], capture_output=True, text=True, check=True
    ).stdout
    with open(os.path.join(tmp, "seccomp-bpf.json"), "w") as f:
        f.write(profile)
    metadata = {
        "name": name,
        "labels": template["metadata"]["labels"],
        "annotations": {"seccomp.security.alpha.kubernetes.io/pod": "localhost/seccomp-bpf.json"},
    }
    path = os.path.join(tmp, "pod.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}, f)
    return path


def uids(pid: int) -> list[str]:
    """Real, effective, saved and filesystem uid of a process."""
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1:] for line in f if line.startswith("Uid:"))


class Fleet:
    """The exporter's pod and two workload containers, all removed on exit."""

    def __init__(self, tmp: str, image: str):
        self.name = f"pyrunq-test-{uuid.uuid4().hex[:8]}"
        self.image = image
        self.manifest = pod_manifest(tmp, self.name, image)
        self.containers: list[str] = []

    def __enter__(self):
        root = os.path.dirname(self.manifest)
        podman("kube", "play", "--seccomp-profile-root", root, self.manifest)
        return self

    def run(self, role: str, code: str, *options: str) -> str:
        """A container running ``python3 -c code``; its full id."""
        name = f"{self.name}-{role}"
        self.containers.append(name)
        return podman("run", "-d", "--name", name, *options, "--entrypoint=python3", self.image, "-c", code)

    def exporter(self) -> str:
        return f"{self.name}-exporter"

    def exporter_pid(self) -> int:
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.exporter()))

    def pod_ip(self) -> str:
        infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", self.name)
        ips = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return podman("inspect", "--format", ips, infra)

    def logs(self) -> str:
        done = subprocess.run(["podman", "logs", self.exporter()], env=ENV, capture_output=True, text=True)
        return done.stdout + done.stderr

    def __exit__(self, *exc):
        for name in self.containers:
            podman("rm", "--force", "--time", "0", name)
        podman("kube", "play", "--down", self.manifest)
        assert podman("ps", "--all", "--quiet", "--filter", f"name={self.name}") == ""


def test_daemonset_pod_shows_the_starved_container_higher_in_prometheus(kernel, image):
    with tempfile.TemporaryDirectory(prefix="pyrunq-fleet-") as tmp, Fleet(tmp, image) as fleet:
        wait_for(lambda: "serving http" in fleet.logs(), seen=fleet.logs)
        assert uids(fleet.exporter_pid()) == ["65534"] * 4, "the exporter serves as nobody"
        starved = fleet.run("starved", STARVED, "--cpus=0.2")
        idle = fleet.run("idle", IDLE)
        server = Prometheus(tmp)
        try:
            server.scrape([f"http://{fleet.pod_ip()}:9864"])
            p99 = {}

            def both_seen():
                rows = server.query(P99.format(f"{starved}|{idle}"))
                p99.update({r["metric"]["container_id"]: float(r["value"][1]) for r in rows})
                return len(p99) == 2 and all(v == v for v in p99.values())  # NaN until samples come

            wait_for(both_seen, timeout=60, every=1, seen=lambda: p99)
        finally:
            server.stop()
    assert p99[starved] > p99[idle], p99
    assert p99[starved] >= 0.05, p99  # throttled for most of a 100 ms period
