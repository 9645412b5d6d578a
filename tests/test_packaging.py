"""The wheel carries what users run (the compiled BPF objects, the libbpf
binding, py.typed, the licence) and nothing else; prometheus_client is needed
only by the exporter."""

import glob
import importlib.metadata
import os
import re
import subprocess
import sys
import zipfile

import pytest

import pyrunq
from pyrunq.cli import TOOLS
import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_ONLY = {"selftest.bpf.o"}
ARCHES = ("x86", "arm64")  # every wheel carries the objects of each (build.py)


@pytest.mark.slow
def test_wheel_contains_objects_and_binding(tmp_path):
    # run from elsewhere: in the checkout, `-m build` would find our build.py
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), ROOT],
        check=True,
        capture_output=True,
        timeout=600,
        cwd=tmp_path,
    )
    (wheel,) = glob.glob(str(tmp_path / "pyrunq-*.whl"))
    assert "linux" in os.path.basename(wheel), "a wheel with a compiled binding is not pure"
    dist_info = f"pyrunq-{pyrunq.__version__}.dist-info"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(f"{dist_info}/METADATA").decode()
    sources = [os.path.basename(p)[: -len(".c")] + ".o" for p in glob.glob(f"{ROOT}/bpf/*.bpf.c")]
    assert set(sources) > TEST_ONLY
    for arch in ARCHES:
        for obj in sources:
            assert (f"pyrunq/bpf/{arch}/{obj}" in names) == (obj not in TEST_ONLY), (arch, obj)
    assert any(n.startswith("pyrunq/_libbpf_cffi") and n.endswith(".so") for n in names)
    assert "pyrunq/cli/__init__.py" in names
    assert "pyrunq/_libbpf_build.py" not in names  # build time only
    assert "pyrunq/py.typed" in names
    # the manual, installed with the wheel's data files (man and completion find them there)
    data = f"pyrunq-{pyrunq.__version__}.data/data/share"
    for tool in ["", *(f"-{t}" for t in TOOLS)]:
        assert f"{data}/man/man1/pyrunq{tool}.1" in names, tool
    assert f"{data}/bash-completion/completions/pyrunq" in names
    assert f"{data}/zsh/site-functions/_pyrunq" in names
    # installed (in a venv of its own: pip --prefix would uninstall this
    # venv's pyrunq): man finds the page under the prefix whose bin is on PATH
    prefix = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    install = [sys.executable, "-m", "pip", "--python", f"{prefix}/bin/python", "install", "-q"]
    subprocess.run(install + ["--no-deps", "--no-index", wheel], check=True, capture_output=True, timeout=120)
    man = subprocess.run(
        ["man", "-w", "pyrunq-runqlat"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{prefix}/bin:/usr/bin:/bin", "MANPATH": ""},
        timeout=30,
    )
    assert man.stdout.strip() == f"{prefix}/share/man/man1/pyrunq-runqlat.1", man.stderr
    assert (prefix / "share/bash-completion/completions/pyrunq").is_file()
    assert f"{dist_info}/licenses/LICENSE" in names
    lines = metadata.splitlines()
    assert f"Version: {pyrunq.__version__}" in lines
    assert "License-Expression: GPL-2.0-only" in lines
    prometheus = [line for line in lines if re.match(r"Requires-Dist: prometheus[-_]client\b", line, re.I)]
    assert any(re.search(r"""; extra == ['"]exporter['"]$""", line) for line in prometheus), prometheus
    assert all("; extra == " in line for line in prometheus), "prometheus_client is an extra only"


def test_one_version():
    """pyproject.toml reads the version from pyrunq/__init__.py."""
    assert importlib.metadata.version("pyrunq") == pyrunq.__version__


# prometheus_client as if it were not installed: importing it raises ModuleNotFoundError
WITHOUT_PROMETHEUS = "import sys; sys.modules['prometheus_client'] = None\n"


def run_without_prometheus(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PROMETHEUS + code, *args], capture_output=True, text=True, timeout=60
    )


def test_exporter_without_prometheus_client_says_so_in_one_line():
    r = run_without_prometheus("import pyrunq.cli\nsys.exit(pyrunq.cli.main(['exporter']))")
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert r.stderr == (
        "pyrunq exporter: error: the exporter needs prometheus_client: pip install 'pyrunq[exporter]'\n"
    )


def test_everything_else_works_without_prometheus_client():
    from pyrunq.bpf import packaged_object

    selftest = packaged_object("selftest")
    r = run_without_prometheus(
        "import pyrunq, pyrunq.cli\n"
        "for name in pyrunq.__all__: getattr(pyrunq, name)\n"  # imports every module it names
        "print(pyrunq.__version__)\n"
        "assert pyrunq.cli.main(['inspect', sys.argv[1]]) == 0\n"
        "try:\n"
        "    pyrunq.cli.main(['exporter', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n",
        selftest,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(pyrunq.__version__ + "\n")
    assert "object:  selftest" in r.stdout
    assert "usage: pyrunq exporter" in r.stdout


def test_public_api_is_documented():
    """Every public class and function of `pyrunq` and `pyrunq.bpf` has a
    docstring of its own (a base class's says nothing of what the subclass
    adds), and every public method and property one, its own or what it
    overrides."""
    import inspect

    import pyrunq
    import pyrunq.bpf

    undocumented = []
    for module in (pyrunq, pyrunq.bpf):
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not (obj.__doc__ or "").strip():  # not inspect.getdoc: it inherits a class's
                undocumented.append(name)
            for attr in dir(obj) if inspect.isclass(obj) else ():
                static = inspect.getattr_static(obj, attr)
                if attr.startswith("_") or not (isinstance(static, property) or callable(static)):
                    continue
                doc = static.__doc__ if isinstance(static, property) else inspect.getdoc(getattr(obj, attr))
                if not doc:
                    undocumented.append(f"{name}.{attr}")
    assert undocumented == []


def test_version_and_start_imports_only_what_runqlat_needs():
    """`pyrunq --version` answers; a tool's start imports neither shutil
    (argparse would, for the terminal width) nor typing: 2 ms each."""
    version = cli.run("--version")
    assert version.stdout == f"pyrunq {pyrunq.__version__}\n"
    code = (
        "import sys\n"
        "from pyrunq.cli import _main\n"
        "try:\n    _main(['runqlat', '--help'])\nexcept SystemExit:\n    pass\n"
        "import pyrunq.tools.runqlat\n"
        "print(sorted({'shutil', 'typing'} & set(sys.modules)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.splitlines()[-1] == "[]", r.stderr
