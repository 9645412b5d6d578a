"""The images `./dev image` builds, for the tests that run them: built (or
found in podman's cache) once per test session, and their files mounted."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# podman with this project's settings for hosts like CI's (runc, ulimits)
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}


def podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout.strip()


@functools.lru_cache(maxsize=None)
def build() -> str:
    """`./dev image`: the manifest list's name (its images: NAME-amd64, NAME-arm64)."""
    done = subprocess.run([str(ROOT / "dev"), "image"], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@contextlib.contextmanager
def mounted(image: str):
    """The image's files, as a directory (podman image mount), while in use."""
    path = Path(podman("image", "mount", image))
    try:
        yield path
    finally:
        podman("image", "unmount", image)
