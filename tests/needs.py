"""What a test needs from the machine, and what happens without it: the test
skips, saying what is missing; with PYRUNQ_REQUIRE_BPF=1 (set by .ci/run),
where everything must run, it fails.

Test modules import these from here: conftest.py is not importable by name
(pytest keeps the last conftest.py it loaded as ``conftest``: with
tests/kernels/ collected, that one)."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_BPF = os.environ.get("PYRUNQ_REQUIRE_BPF") == "1"


def skip_or_fail(reason: str) -> None:
    if REQUIRE_BPF:
        pytest.fail(f"PYRUNQ_REQUIRE_BPF=1 but {reason}")
    pytest.skip(reason)


def need(*programs: str) -> str:
    """The path of the first of ``programs`` found (a name on PATH, or a
    path); if none is, skip_or_fail saying which."""
    for program in programs:
        path = shutil.which(program)
        if path:
            return path
    skip_or_fail(f"needs {' or '.join(programs)} (./dev setup installs it)")
    raise AssertionError("not reached")
