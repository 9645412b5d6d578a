"""Tests for pyrunq.containers: what the cgroup paths that container engines
and the kubelet make say about the container in them. The ids and layouts are
those of real hosts, as bug reports and the engines' tests show them."""

from __future__ import annotations

import pytest

from pyrunq.containers import FIELDS, parse

DOCKER = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
CONTAINERD = "34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376"
CRIO = "805b902ed98fdc1409c76e9aa94964787a904c80f46fc3ee74283509108f5e73"
PODMAN = "3f2a9c1b04de7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed"
PODMAN_POD = "0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0"
NODE = "d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22"  # a kind/minikube node
UID = "35550f44-f691-427e-b57d-ab6127d2cb65"
SLICE_UID = UID.replace("-", "_")  # kubelet's systemd driver escapes "-" in slice names
STATIC_UID = "6fbb1da1f5a5b9ab33bb1e85a6b2b0a0"  # a static pod's uid: a hash, no dashes
BURSTABLE = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{SLICE_UID}.slice"
USER = "/user.slice/user-1000.slice/user@1000.service/user.slice"  # rootless engines


def labels(runtime="", container_id="", pod_uid="", qos_class="") -> dict[str, str]:
    return {"runtime": runtime, "container_id": container_id, "pod_uid": pod_uid, "qos_class": qos_class}


# fmt: off
LAYOUTS = [
    # docker: systemd and cgroupfs drivers, rootless, a systemd inside the container
    (f"/system.slice/docker-{DOCKER}.scope", labels("docker", DOCKER)),
    (f"/docker/{DOCKER}", labels("docker", DOCKER)),
    (f"{USER}/docker-{DOCKER}.scope", labels("docker", DOCKER)),
    (f"/system.slice/docker-{DOCKER}.scope/system.slice/ssh.service", labels("docker", DOCKER)),
    (f"/docker/{DOCKER}/init.scope", labels("docker", DOCKER)),
    # containerd (CRI), kubelet's systemd driver: the three QoS classes
    (f"{BURSTABLE}/cri-containerd-{CONTAINERD}.scope", labels("containerd", CONTAINERD, UID, "burstable")),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{SLICE_UID}.slice"
     f"/cri-containerd-{CONTAINERD}.scope", labels("containerd", CONTAINERD, UID, "besteffort")),
    (f"/kubepods.slice/kubepods-pod{SLICE_UID}.slice/cri-containerd-{CONTAINERD}.scope",
     labels("containerd", CONTAINERD, UID, "guaranteed")),
    (f"{BURSTABLE}/cri-containerd-{CONTAINERD}.scope/init",
     labels("containerd", CONTAINERD, UID, "burstable")),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC_UID}.slice"
     f"/cri-containerd-{CONTAINERD}.scope", labels("containerd", CONTAINERD, STATIC_UID, "burstable")),
    # kubelet's cgroupfs driver (containerd, k3s, RKE): the path does not name the engine
    (f"/kubepods/burstable/pod{UID}/{CONTAINERD}", labels("", CONTAINERD, UID, "burstable")),
    (f"/kubepods/besteffort/pod{UID}/{CONTAINERD}", labels("", CONTAINERD, UID, "besteffort")),
    (f"/kubepods/pod{UID}/{CONTAINERD}", labels("", CONTAINERD, UID, "guaranteed")),
    (f"/kubepods/pod{UID}", labels("", "", UID, "guaranteed")),
    # kind: kubelet.slice as the cgroup root, in a node that is a docker container
    (f"/system.slice/docker-{NODE}.scope/kubelet.slice/kubelet-kubepods.slice/"
     f"kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{SLICE_UID}.slice/"
     f"cri-containerd-{CONTAINERD}.scope", labels("containerd", CONTAINERD, UID, "besteffort")),
    (f"/system.slice/docker-{NODE}.scope/kubelet.slice", labels("docker", NODE)),
    # minikube's CRI-O in a docker (cgroupfs) node; k3d's containerd likewise
    (f"/docker/{NODE}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{SLICE_UID}.slice"
     f"/crio-{CRIO}.scope", labels("cri-o", CRIO, UID, "besteffort")),
    (f"/docker/{NODE}/kubepods/pod{UID}/{CONTAINERD}", labels("", CONTAINERD, UID, "guaranteed")),
    # cri-dockerd: docker under kubelet's systemd driver
    (f"{BURSTABLE}/docker-{DOCKER}.scope", labels("docker", DOCKER, UID, "burstable")),
    # CRI-O: systemd scopes, sandboxes without .scope, cgroupfs; conmon is the pod's, not a container
    (f"{BURSTABLE}/crio-{CRIO}.scope", labels("cri-o", CRIO, UID, "burstable")),
    (f"{BURSTABLE}/crio-{CRIO}", labels("cri-o", CRIO, UID, "burstable")),
    (f"/kubepods/burstable/pod{UID}/crio-{CRIO}", labels("cri-o", CRIO, UID, "burstable")),
    (f"{BURSTABLE}/crio-conmon-{CRIO}.scope", labels("", "", UID, "burstable")),
    (f"/kubepods/burstable/pod{UID}/crio-conmon-{CRIO}", labels("", "", UID, "burstable")),
    (f"/system.slice/crio-conmon-{CRIO}.scope", labels()),
    # podman: systemd, cgroupfs, pods, rootless; its conmon is not the container either
    (f"/machine.slice/libpod-{PODMAN}.scope", labels("podman", PODMAN)),
    (f"/machine.slice/libpod-{PODMAN}.scope/container", labels("podman", PODMAN)),
    (f"/libpod_parent/libpod-{PODMAN}", labels("podman", PODMAN)),
    (f"/machine.slice/machine-libpod_pod_{PODMAN_POD}.slice/libpod-{PODMAN}.scope",
     labels("podman", PODMAN, PODMAN_POD)),
    (f"/libpod_parent/{PODMAN_POD}/libpod-{PODMAN}", labels("podman", PODMAN, PODMAN_POD)),
    (f"{USER}/libpod-{PODMAN}.scope", labels("podman", PODMAN)),
    (f"{USER}/user-libpod_pod_{PODMAN_POD}.slice/libpod-{PODMAN}.scope",
     labels("podman", PODMAN, PODMAN_POD)),
    (f"/machine.slice/libpod-conmon-{PODMAN}.scope", labels()),
    (f"{USER}/libpod-conmon-{PODMAN}.scope", labels()),
    ("/libpod_parent/conmon", labels()),
    # nerdctl (containerd without Kubernetes): systemd, and cgroupfs under its namespace
    (f"/system.slice/nerdctl-{CONTAINERD}.scope", labels("containerd", CONTAINERD)),
    (f"/default/{CONTAINERD}", labels("", CONTAINERD)),
    # no container: systemd's own units and slices, kubelet's slices, near misses
    ("/", labels()),
    ("/init.scope", labels()),
    ("/system.slice/ssh.service", labels()),
    ("/system.slice/docker.service", labels()),
    ("/system.slice/containerd.service", labels()),
    ("/user.slice/user-1000.slice/session-3.scope", labels()),
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-4242.scope", labels()),
    ("/kubepods.slice", labels()),
    ("/kubepods.slice/kubepods-burstable.slice", labels(qos_class="burstable")),
    ("/kubepods/besteffort", labels(qos_class="besteffort")),
    ("/system.slice/docker-9ec39b91f3d7.scope", labels()),  # a short id is no container id
    (f"/system.slice/docker-{DOCKER.upper()}.scope", labels()),
    (f"/podcasts/pod{UID}", labels()),  # pod<uid> only where kubelet puts it
    (f"/kubepods/guaranteed/pod{UID}", labels()),  # cgroupfs has no guaranteed directory
]
# fmt: on


@pytest.mark.parametrize("path, expected", LAYOUTS, ids=[p for p, _ in LAYOUTS])
def test_layouts(path, expected):
    assert parse(path) == expected


def test_every_field_always_there():
    assert all(tuple(parse(path)) == FIELDS for path, _ in LAYOUTS)


@pytest.mark.parametrize("sep", ["//", "/"])
def test_slashes_and_trailing_slash_do_not_matter(sep):
    path = f"{BURSTABLE}/cri-containerd-{CONTAINERD}.scope".replace("/", sep)
    assert parse(path + "/") == parse(path) == labels("containerd", CONTAINERD, UID, "burstable")
