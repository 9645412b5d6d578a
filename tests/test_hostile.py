"""Broken and hostile object files through ``pyrunq inspect`` and ``pyrunq run``:
one line that says what is wrong, never a crash, a hang, a traceback or a
control character on the terminal (issue 27). The quick tests make one kind
of hostile file each from our own test objects (tests/mutants.py); the slow
one runs a few hundred seeded mutants (bench/fuzz_objects.py runs more)."""

from __future__ import annotations

import json
import re
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import mutants
import cli
from hostile import mutate_all, run_all

CONST, PTR = 10, 2
TIMEOUT = 30  # a hang fails here, not in pytest's own timeout


def one_line_error(out, tool: str, code: int = 1) -> str:
    """The error line of a refused file, after checking it is one line, no traceback."""
    assert out.returncode == code, (out.returncode, out.stderr)
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"pyrunq {tool}: error: "), out.stderr
    assert not mutants.RAW_CONTROL.search(out.stderr + out.stdout)
    return out.stderr


@pytest.fixture
def hostile(objs, tmp_path):
    """``hostile(name, edit, *args)``: object ``name`` edited by ``edit(data, *args)``, as a file."""

    def make(name: str, edit, *args) -> str:
        with open(objs[name], "rb") as f:
            data = edit(f.read(), *args)
        path = tmp_path / f"{name}-{edit.__name__}.bpf.o"
        path.write_bytes(data)
        return str(path)

    return make


BTF_CASES = [  # (object, edit, its arguments, what the line says)
    ("gen_events", mutants.self_referencing, (CONST,), "(const) refers to itself without a pointer between"),
    ("gen_events", mutants.self_referencing, (PTR,), "(ptr) refers to itself without a named struct"),
    ("gen_events", mutants.struct_containing_itself, (b"event",), "refers to itself without a pointer"),
    ("gen_events", mutants.huge_section, ("license",), "section 'license' (1099511627776 bytes"),
    ("gen_events", mutants.huge_section, (".BTF",), "section '.BTF' (1099511627776 bytes"),
]


@pytest.mark.parametrize("tool", ["inspect", "run"])
@pytest.mark.parametrize("name, edit, args, message", BTF_CASES, ids=[c[3][:30] for c in BTF_CASES])
def test_malformed_btf_is_one_line(hostile, tool, name, edit, args, message):
    # before: a const of itself on a .rodata global hung at full CPU, a
    # pointer to itself crashed libbpf, a struct of itself was a RecursionError,
    # a huge section size a MemoryError
    path = hostile(name, edit, *args)
    line = one_line_error(
        cli.run(tool, path, "--duration", "1", timeout=TIMEOUT)
        if tool == "run"
        else cli.run(tool, path, timeout=TIMEOUT),
        tool,
    )
    assert message in line, line
    assert path in line


def test_dwarf_typedef_of_itself_is_one_line(hostile):
    # before: pyrunq copied the DWARF typedef into the BTF it builds, and
    # btf_dump recursed until the stack overflowed (SIGSEGV)
    path = hostile("gen_dwarf_ring", mutants.dwarf_typedef_to_itself, "tgid_t")
    line = one_line_error(cli.run("inspect", path, timeout=TIMEOUT), "inspect")
    assert "the BTF made from DWARF type 'ring_event'" in line
    assert "(typedef) refers to itself without a pointer between" in line, line


def test_a_variable_without_its_symbol_names_it_not_enoent(hostile):
    # libbpf fails with ENOENT: "No such file or directory", for a file that exists
    path = hostile("gen_events", mutants.replaced, b"target_tgid", b"tarcet_tgid")
    line = one_line_error(cli.run("inspect", path, timeout=TIMEOUT), "inspect")
    assert "failed to find ELF symbol for VAR 'tarcet_tgid'" in line
    assert "No such file" not in line


# (object, seed) of mutants that crashed pyrunq once: found by bench/fuzz_objects.py, or by
# the seeded test below when a new test object shifted which object each seed mutates
# (and whether pyrunq refuses the file, or shows it)
FOUND = [("gen_stacks", 2240, True), ("gen_tracepoint", 83, False)]


@pytest.mark.parametrize("name, seed, refused", FOUND)
def test_mutants_the_longer_fuzz_run_found(objs, tmp_path, name, seed, refused):
    # gen_stacks 2240: an anonymous struct that points to itself; btf_dump recursed until SIGSEGV
    # gen_tracepoint 83: a program's ELF symbol that is no UTF-8 (UnicodeDecodeError): shown escaped
    with open(objs[name], "rb") as f:
        how, data = mutants.mutant(f.read(), seed)
    path = tmp_path / f"{name}-{seed}.bpf.o"
    path.write_bytes(data)
    out = cli.run("inspect", str(path), timeout=TIMEOUT)
    if refused:
        one_line_error(out, "inspect")
    else:
        assert out.returncode == 0 and "programs (" in out.stdout, out.stderr
        assert not mutants.RAW_CONTROL.search(out.stderr + out.stdout)


@pytest.fixture
def special_files(tmp_path):
    fifo = tmp_path / "fifo.bpf.o"
    os.mkfifo(fifo)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "socket.bpf.o"))
    yield {
        "a FIFO": fifo,
        "a socket": tmp_path / "socket.bpf.o",
        "a directory": tmp_path,
        "a device": "/dev/zero",
    }
    server.close()


@pytest.mark.parametrize("tool", ["inspect", "run"])
@pytest.mark.parametrize("kind", ["a FIFO", "a socket", "a directory", "a device"])
def test_only_regular_files_are_read(special_files, tool, kind):
    # before: a FIFO blocked open() forever, and Ctrl-C did not end it
    line = one_line_error(cli.run(tool, str(special_files[kind]), timeout=TIMEOUT), tool, code=2)
    assert f"is not a regular file (it is {kind})" in line


def test_control_characters_in_names_are_escaped(hostile):
    # a section (program) name with ESC and BEL: shown as \x1b, \x07; JSON keeps the name exact
    path = hostile("gen_events", mutants.replaced, b"raw_tp/sys_enter", b"raw_tp/\x1b[2J\x07nter", ".strtab")
    text = cli.run("inspect", path, timeout=TIMEOUT)
    assert text.returncode == 0, text.stderr
    assert "raw_tp/\\x1b[2J\\x07nter" in text.stdout
    assert not mutants.RAW_CONTROL.search(text.stdout + text.stderr)
    as_json = cli.run("inspect", path, "--json", timeout=TIMEOUT)
    assert not mutants.RAW_CONTROL.search(as_json.stdout)
    sections = [p["section"] for p in json.loads(as_json.stdout)["programs"]]
    assert "raw_tp/\x1b[2J\x07nter" in sections


def test_names_that_are_not_utf8_are_shown_escaped(hostile):
    # a program's ELF symbol with bytes that are no UTF-8 (0x9b: CSI to an 8-bit terminal)
    path = hostile(
        "gen_tracepoint", mutants.replaced, b"on_missing_raw_tp", b"on_missing_raw\x80\x9b_", ".strtab"
    )
    text = subprocess.run([*cli.cmd(), "inspect", path], capture_output=True, timeout=TIMEOUT)
    assert text.returncode == 0, text.stderr
    assert b"on_missing_raw\\x80\\x9b_" in text.stdout
    assert not re.search(rb"[\x80-\xff]", text.stdout + text.stderr)  # no raw byte of the name


def test_control_characters_in_file_names_are_escaped(tmp_path):
    path = tmp_path / "\x1b]0;owned\x07.bpf.o"
    path.write_text("not an object\n")
    line = one_line_error(cli.run("inspect", str(path), timeout=TIMEOUT), "inspect", code=2)
    assert "\\x1b]0;owned\\x07.bpf.o is not an ELF file" in line


def test_a_signal_ends_pyrunq_while_it_reads_an_object(objs):
    # reading is made endless here; SIGINT and SIGTERM must still end it at once
    script = (
        "import sys, time, pyrunq.tools.generic as g\n"
        "g.describe = lambda path: [time.sleep(0.01) for _ in iter(int, 1)]\n"
        "print('reading', flush=True)\n"
        "from pyrunq.cli import main\n"
        "sys.exit(main(['inspect', sys.argv[1]]))\n"
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        p = subprocess.Popen(
            [sys.executable, "-c", script, objs["gen_events"]], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout.readline() == "reading\n"
        time.sleep(0.5)
        p.send_signal(signum)
        assert p.wait(timeout=5) == 128 + signum


# -- the fuzz test -------------------------------------------------------------------

SEEDS = range(400)  # each seed: one mutation of one test object (mutants.mutant)
RUN_SAMPLE = 40  # of them, also through pyrunq run (loads into the kernel)


@pytest.mark.slow
def test_seeded_mutants_never_crash_hang_or_print_tracebacks(objs, tmp_path, kernel):
    files = mutate_all(objs, SEEDS, tmp_path)
    outcomes = run_all("inspect", files, [], timeout=10.0)
    outcomes += run_all("run", files[:RUN_SAMPLE], ["--duration", "1"], timeout=20.0)
    failures = [f"{o.verdict}: {o.label}: {o.last_line}" for o in outcomes if o.verdict]
    assert not failures, "\n".join(failures)
    assert len(outcomes) == len(SEEDS) + RUN_SAMPLE
