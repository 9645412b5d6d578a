"""The public surface as ``mypy --strict`` sees it from a user's script: the
README's Python examples check clean, a tool in ``with`` is that tool, its
results and records are typed (a misspelt member is an error that names it),
and the records' protocols (pyrunq.tools.records) are the objects' BTF."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pyrunq.bpf import BPFObject
from pyrunq.tools import records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REVEAL = """\
import pyrunq
with pyrunq.RunqLat(per="pid") as rq:
    reveal_type(rq)
    reveal_type(rq.snapshot())
with pyrunq.RunqSlower(min_us=1000) as rs:
    for e in rs.events(timeout=1):
        reveal_type(e.delta_ns)
with pyrunq.Bootstrap() as bs:
    for b in bs.events(timeout=1):
        reveal_type(b.comm)
"""

TYPO = """\
import pyrunq
with pyrunq.RunqSlower(min_us=1000) as rs:
    for e in rs.events(timeout=1):
        print(e.dleta_ns)
"""


def readme_blocks() -> list[str]:
    with open(os.path.join(ROOT, "README.md")) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def mypy_strict(directory, files: dict[str, str]) -> dict[str, list[str]]:
    """file name -> mypy --strict's lines about it, all checked in one run."""
    for name, text in files.items():
        (directory / name).write_text(text)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(directory / ".cache"),
        ]
        + [str(directory / n) for n in files],
        capture_output=True,
        text=True,
        cwd=directory,
    )
    lines: dict[str, list[str]] = {n: [] for n in files}
    for line in out.stdout.splitlines():
        name = os.path.basename(line.split(":", 1)[0])
        if name in lines:
            lines[name].append(line.split(":", 2)[-1].strip())
    return lines


@pytest.mark.slow
def test_readme_examples_and_user_scripts_under_mypy_strict(tmp_path):
    blocks = readme_blocks()
    assert len(blocks) >= 4  # the README's Python: exporter, tools, more tools, BPFObject
    files = {f"readme_{i}.py": b for i, b in enumerate(blocks)}
    files |= {"reveal.py": REVEAL, "typo.py": TYPO}
    got = mypy_strict(tmp_path, files)
    for i in range(len(blocks)):
        assert got[f"readme_{i}.py"] == [], blocks[i]
    assert got["reveal.py"] == [
        'note: Revealed type is "pyrunq.tools.runqlat.RunqLat"',
        'note: Revealed type is "dict[tuple[str, int, str, '
        'fallback=pyrunq.tools.runqlat.Key] | None, pyrunq.hist.Histogram]"',
        'note: Revealed type is "int"',
        'note: Revealed type is "str"',
    ]
    assert got["typo.py"] == [
        'error: "RunqSlowerEvent" has no attribute "dleta_ns"; maybe "delta_ns"?  [attr-defined]'
    ]


@pytest.mark.parametrize(
    "protocol, name, struct, left_out",
    [
        (records.RunqSlowerEvent, "runqslower", "event", {"__pad"}),
        (records.BootstrapEvent, "bootstrap", "bootstrap_event", set()),
    ],
)
def test_record_protocols_are_the_btf_structs(protocol, name, struct, left_out):
    with BPFObject.open(name) as obj:
        layout = obj.btf.layout(obj.btf.find(struct))
        sample = layout.decode(bytes(layout.size))
    members = [f for f in layout.record._fields if f not in left_out]
    declared = [m for m in vars(protocol) if not m.startswith("_")]
    assert declared == members
    for m in members:
        assert type(getattr(sample, m)).__name__ == protocol.__dict__[m].fget.__annotations__["return"]
