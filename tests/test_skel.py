"""``pyrunq skel``: typed modules from compiled objects (every object under
tests/objects and bpf/), ruff- and mypy --strict-clean and deterministic;
values read through a skeleton equal those read through BPFObject on the
kernel; a changed object is refused with how to regenerate."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

import cli
from pyrunq.bpf import BPFObject
from pyrunq.errors import StaleSkeleton
from testobjects import HERE, compile_object, fire

BASE = 31_000_000  # above any pid_max: getpgid() fails, the tracepoint still fires
PACKAGED = os.path.join(os.path.dirname(HERE), "src", "pyrunq", "bpf")


def skel(obj_path, module, *extra):
    out = cli.run("skel", str(obj_path), "-o", str(module), *extra)
    assert out.returncode == 0, out.stderr
    return module


def load_module(path, name="own_skel"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def own_skel(objs, tmp_path):
    """gen_own's skeleton, with its object beside it."""
    shutil.copy(objs["gen_own"], tmp_path / "gen_own.bpf.o")
    return load_module(skel(tmp_path / "gen_own.bpf.o", tmp_path / "own_skel.py"))


def test_values_through_the_skeleton_equal_those_through_bpfobject(kernel, own_skel, objs):
    with own_skel.open() as s, BPFObject.open(objs["gen_own"]) as obj:
        s.rodata.target_tgid = os.getpid()
        s.rodata.mode = own_skel.own_mode.OWN_LOUD
        obj.rodata["target_tgid"] = os.getpid()
        obj.rodata["mode"] = "OWN_LOUD"
        s.load()
        s.attach()
        obj.load()
        obj.attach()
        rb = obj.ring_buffer("rb")
        fire(BASE + 1, BASE + 2, BASE + 4)
        s.events.rb.consume()
        rb.consume()
        through_skel, through_obj = list(s.events.rb.buffer.pending), list(rb.pending)
        assert [type(r) for r in through_skel] == [own_skel.own_event] * 3
        assert [tuple(r) for r in through_skel] == [tuple(r) for r in through_obj]
        assert [r.from_ for r in through_skel] == [(BASE + k) & 0xFF for k in (1, 2, 4)]
        assert sorted(s.maps.parity.items()) == sorted(obj.maps["parity"].items()) == [(0, 2), (1, 1)]
        assert s.maps.parity[0] == 2 and s.maps.parity.get(7) is None
        assert s.bss.seen == obj.bss["seen"] == 3
        assert s.rodata.mode == obj.rodata["mode"] == 2
        assert s.progs.on_enter is s.obj.programs["on_enter"]


def test_a_changed_object_is_refused_with_how_to_regenerate(kernel, own_skel, tmp_path):
    with open(os.path.join(HERE, "objects", "gen_own.bpf.c")) as f:
        source = f.read().replace("\t__u32 tgid;\n};", "\t__u32 tgid;\n\t__u32 extra;\n};", 1)
    assert "extra" in source
    (tmp_path / "changed.bpf.c").write_text(source)
    changed = compile_object(tmp_path / "changed.bpf.c", tmp_path / "changed.bpf.o")
    with pytest.raises(StaleSkeleton, match=r"own_skel.py was generated from another gen_own.bpf.o .*"):
        own_skel.open(changed)
    with pytest.raises(StaleSkeleton, match=r"regenerate with pyrunq skel .*changed.bpf.o -o .*own_skel.py"):
        own_skel.open(changed)
    with own_skel.open(tmp_path / "gen_own.bpf.o") as s:  # the object it was made from
        assert s.obj.name == "gen_own"


def test_runtime_skeleton_for_the_repl(kernel, objs):
    with BPFObject.open(objs["gen_own"]) as obj:
        s = obj.skel
        s.rodata.target_tgid = os.getpid()
        assert obj.rodata["target_tgid"] == os.getpid()
        s.load()
        s.attach()
        fire(BASE + 7)
        s.events.rb.consume()
        (record,) = s.events.rb.buffer.pending
        assert (record.seq, record.class_, s.bss.seen) == (BASE + 7, ((BASE + 7) >> 8) & 0xFFFF, 1)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--event", "rb"], "--event rb: expected MAP=STRUCT"),
        (["-o", "x.txt"], "-o x.txt: a module's file name ends in .py"),
        (["--event", "rb=nope"], "no struct 'nope' in the object's BTF or DWARF (structs: own_event)"),
        (["--event", "rbx=own_event"], "event rbx: no such ring buffer or perf event array (has: rb)"),
    ],
)
def test_bad_arguments_one_line_exit_2(objs, tmp_path, extra, message):
    args = ["skel", objs["gen_own"], "-o", str(tmp_path / "m.py"), *extra]
    if "-o" in extra:
        args[2:4] = []
    out = cli.run(*args)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


def test_names_that_could_end_the_modules_strings_are_refused(objs, tmp_path):
    evil = tmp_path / 'x"""; import os #.bpf.o'
    shutil.copy(objs["gen_own"], evil)
    out = cli.run("skel", str(evil), "-o", str(tmp_path / "m.py"))
    assert out.returncode == 2 and "the module's text holds it: letters, digits, _ . + - only" in out.stderr
    out = cli.run("skel", objs["gen_own"], "-o", str(tmp_path / "m.py"), "--event", 'rb=own_event"""')
    assert out.returncode == 2 and "a map and a struct are C names" in out.stderr
    assert not (tmp_path / "m.py").exists()


def test_not_an_object_one_line_exit_2(tmp_path):
    (tmp_path / "x.bpf.o").write_text("not an ELF")
    out = cli.run("skel", str(tmp_path / "x.bpf.o"), "-o", str(tmp_path / "m.py"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "is not an ELF file" in out.stderr
    assert not (tmp_path / "m.py").exists()


TYPO = """\
import own_skel

with own_skel.open() as s:
    s.rodata.target_tgid = 1
    s.load()
    for k, v in s.maps.parity.items():
        print(k + v)
    for e in s.events.rb.events(timeout=1):
        print(e.clas_)
    s.rodata.doubled = 2.5
"""


# test objects libbpf refuses to open, on purpose: an extern it cannot find
UNOPENABLE = {"gen_extern"}


@pytest.mark.slow
def test_every_object_gives_a_clean_deterministic_module(objs, tmp_path):
    arch = {"x86_64": "x86", "aarch64": "arm64"}[os.uname().machine]
    paths = dict(objs) | {
        os.path.basename(p)[: -len(".bpf.o")]: p for p in glob.glob(os.path.join(PACKAGED, arch, "*.bpf.o"))
    }
    for name, path in sorted(paths.items()):
        if name in UNOPENABLE:
            continue
        module = skel(path, tmp_path / f"{name}_skel.py")
        first = module.read_bytes()
        skel(path, module)
        assert module.read_bytes() == first, f"{name}: regenerating gave other bytes"
        assert first.startswith(b'"""Generated by pyrunq skel from ')
    shutil.copy(objs["gen_own"], tmp_path / "gen_own.bpf.o")
    skel(tmp_path / "gen_own.bpf.o", tmp_path / "own_skel.py")
    (tmp_path / "typo.py").write_text(TYPO)
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout
    fmt = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "--no-cache",
            "--isolated",
            "--exclude",
            "typo.py",
            ".",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout
    mypy = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / ".cache"),
            ".",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    errors = mypy.stdout.splitlines()
    assert [e for e in errors if not e.startswith("typo.py")] == []
    assert [e.split(": ", 1)[1] for e in errors if e.startswith("typo.py")] == [
        'error: "own_event" has no attribute "clas_"; maybe "class_"?  [attr-defined]',
        'error: Incompatible types in assignment (expression has type "float", '
        'variable has type "bool")  [assignment]',
    ]
