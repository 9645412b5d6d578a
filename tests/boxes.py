"""A real podman container around a command of this machine: the host's root
as an overlay (``--rootfs /:O``, nothing written through), so the test's own
interpreter and checkout run inside, with the container's own PID and mount
namespaces. ``--privileged``: pyrunq inside loads BPF."""

from __future__ import annotations

import os
import subprocess

from needs import need
from waiting import NO_WAIT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# podman with this project's settings for hosts like CI's (runc, ulimits)
ENV = {**os.environ, "CONTAINERS_CONF": os.path.join(ROOT, "deploy", "podman", "containers.conf")}


def run_boxed(script: str, timeout: float = NO_WAIT) -> subprocess.CompletedProcess:
    """``sh -c SCRIPT`` in a new container, to its end; output as text."""
    argv = [need("podman"), "run", "--rm", "--privileged", "--rootfs", "/:O", "sh", "-c", script]
    return subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout)
