"""What a cgroup path says about the container in it: the engine that made
it, the container's id, and for Kubernetes the pod's uid and QoS class.

    >>> parse("/kubepods.slice/kubepods-besteffort.slice/"
    ...       "kubepods-besteffort-pod0b0e4a0c_9f5e_4a8d_a0a4_2f61c3d7e3a1.slice/"
    ...       "cri-containerd-" + "ab" * 32 + ".scope")["pod_uid"]
    '0b0e4a0c-9f5e-4a8d-a0a4-2f61c3d7e3a1'

Only the path is read, never the engines: the names are those of docker,
containerd (CRI and nerdctl), CRI-O and podman, with the systemd and the
cgroupfs cgroup drivers, rootless too. The labels describe the innermost
container and pod on the path: a cgroup below a container's (a systemd in
the container, runc's ``init``) belongs to it, and a container in a container
(kind, k3d, docker in docker) is the inner one. What the path does not say
is "".
"""

from __future__ import annotations

import re

FIELDS = ("container_id", "pod_uid", "qos_class", "runtime")

_ID = r"[0-9a-f]{64}"
# <engine>-<id>.scope (systemd), or without .scope (CRI-O's and podman's
# cgroupfs names, CRI-O's sandboxes). The engines' monitors, crio-conmon-<id>
# and libpod-conmon-<id>, do not match: they are not the container.
_SCOPE = re.compile(rf"(docker|cri-containerd|crio|libpod|nerdctl)-({_ID})(?:\.scope)?")
# The schemes of Kubernetes' containerID (containerd://<id>), and podman.
_RUNTIMES = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "nerdctl": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
}
_QOS = ("burstable", "besteffort")
# kubelet's systemd driver spells the nesting into each slice's name, the
# uid's dashes as "_": kubepods-burstable-pod<uid>.slice; kind prefixes kubelet-.
_KUBEPODS_SLICE = re.compile(r"(?:.+-)?kubepods\.slice")
_QOS_SLICE = re.compile(r"(?:.+-)?kubepods-(burstable|besteffort)\.slice")
_POD_SLICE = re.compile(r"(?:.+-)?kubepods(?:-(burstable|besteffort))?-pod([0-9a-f_]+)\.slice")
_POD_DIR = re.compile(r"pod([0-9a-f-]+)")  # cgroupfs: kubepods/[<qos>/]pod<uid>
_PODMAN_POD_SLICE = re.compile(rf"(?:.+-)?libpod_pod_({_ID})\.slice")
_BARE_ID = re.compile(_ID)


def parse(path: str) -> dict[str, str]:
    """``container_id``, ``pod_uid``, ``qos_class`` and ``runtime`` of a
    cgroup path relative to the cgroup2 mount ("" where it does not say)."""
    found = dict.fromkeys(FIELDS, "")
    grandparent = parent = ""
    for part in path.split("/"):
        if part:
            if not _kubernetes(found, part, parent, grandparent):
                _container(found, part, parent)
            grandparent, parent = parent, part
    return found


def _kubernetes(found: dict[str, str], part: str, parent: str, grandparent: str) -> bool:
    """kubelet's kubepods, QoS and pod cgroups; each starts afresh, as the
    kubepods of a node that is itself a container (kind, k3d) must."""
    qos = pod = None
    if part == "kubepods" or _KUBEPODS_SLICE.fullmatch(part):
        qos = ""
    elif m := _QOS_SLICE.fullmatch(part):
        qos = m[1]
    elif part in _QOS and parent == "kubepods":
        qos = part
    elif m := _POD_SLICE.fullmatch(part):
        qos, pod = m[1] or "guaranteed", m[2].replace("_", "-")
    elif (m := _POD_DIR.fullmatch(part)) and _in_kubepods(parent, grandparent):
        qos, pod = parent if parent in _QOS else "guaranteed", m[1]  # guaranteed: right in kubepods
    if qos is None:
        return False
    found.update(dict.fromkeys(FIELDS, ""), qos_class=qos, pod_uid=pod or "")
    return True


def _in_kubepods(parent: str, grandparent: str) -> bool:
    return parent == "kubepods" or (parent in _QOS and grandparent == "kubepods")


def _container(found: dict[str, str], part: str, parent: str) -> None:
    if m := _SCOPE.fullmatch(part):
        found.update(runtime=_RUNTIMES[m[1]], container_id=m[2])
    elif m := _PODMAN_POD_SLICE.fullmatch(part):
        found.update(dict.fromkeys(FIELDS, ""), pod_uid=m[1])
    elif _BARE_ID.fullmatch(part):
        if parent == "libpod_parent":  # podman's cgroupfs pods: libpod_parent/<pod id>/libpod-<id>
            found.update(dict.fromkeys(FIELDS, ""), pod_uid=part)
        else:  # docker/<id>; containerd's <namespace>/<id>; kubepods/.../pod<uid>/<id>, engine unsaid
            found.update(runtime="docker" if parent == "docker" else "", container_id=part)
