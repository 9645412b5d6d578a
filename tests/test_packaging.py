"""The wheel carries the compiled BPF objects and the libbpf binding."""

import glob
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_wheel_contains_objects_and_binding(tmp_path):
    # run from elsewhere: in the checkout, `-m build` would find our build.py
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(tmp_path), ROOT],
                   check=True, capture_output=True, timeout=600, cwd=tmp_path)
    (wheel,) = glob.glob(str(tmp_path / "pyrunq-*.whl"))
    assert "linux" in os.path.basename(wheel), "a wheel with a compiled binding is not pure"
    names = zipfile.ZipFile(wheel).namelist()
    sources = [os.path.basename(p)[: -len(".c")] + ".o" for p in glob.glob(f"{ROOT}/bpf/*.bpf.c")]
    assert sources
    for obj in sources:
        assert f"pyrunq/bpf/{obj}" in names
    assert any(n.startswith("pyrunq/_libbpf_cffi") and n.endswith(".so") for n in names)
    assert "pyrunq/cli/__init__.py" in names
