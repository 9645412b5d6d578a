"""pyrunq.symbols against what the dynamic linker really did in this process."""

from __future__ import annotations

import ctypes
import os

import pytest

from pyrunq import symbols
from pyrunq.errors import UsageError

# libc's own definitions: asked of the whole process (CDLL(None)), the dynamic
# linker answers with the executable's PLT stub for a function that a non-PIE
# executable calls (Debian's python3.11 calls malloc and free)
LIBC = ctypes.CDLL("libc.so.6")


def address_of(name: str) -> int:
    return ctypes.cast(getattr(LIBC, name), ctypes.c_void_p).value


@pytest.mark.parametrize("name", ["getppid", "malloc", "free"])
def test_addresses_in_this_process_resolve_to_their_libc_function(name):
    resolver = symbols.ProcessSymbols(os.getpid())
    frame = resolver.resolve(address_of(name))
    assert (frame.name, frame.offset) == (name, 0)
    assert os.path.basename(frame.module) == "libc.so.6"
    inside = resolver.resolve(address_of(name) + 3)
    assert (inside.name, inside.offset) == (name, 3) and str(inside) == name


def test_an_unmapped_address_is_unknown():
    frame = symbols.ProcessSymbols(os.getpid()).resolve(8)
    assert frame.name is None and str(frame) == "[unknown]"


def test_the_file_offset_is_where_the_function_is_mapped():
    # mapping start + (file offset - mapping offset) must be the function's address
    target = symbols.resolve_function("c:getppid")
    for m in symbols.process_maps(os.getpid()):
        if os.path.samefile(m.path, target.path) and m.offset <= target.offset < m.offset + m.end - m.start:
            assert m.start + target.offset - m.offset == address_of("getppid")
            return
    pytest.fail("libc's text is not mapped")


def test_a_bare_function_is_searched_in_the_process_libraries():
    target = symbols.resolve_function("getppid", pid=os.getpid())
    assert os.path.basename(target.path) == "libc.so.6"
    assert target == symbols.resolve_function(f"{target.path}:getppid")


def test_fast_symbol_reading_agrees_with_pyelftools():
    from elftools.elf.elffile import ELFFile

    libc = symbols.resolve_function("c:getppid").path
    with open(libc, "rb") as f:
        elf = ELFFile(f)
        table = elf.get_section_by_name(".dynsym")
        expected = {
            (s.name, s["st_value"], s["st_size"], s["st_info"]["type"] == "STT_LOOS")
            for s in table.iter_symbols()
            if s["st_info"]["type"] in ("STT_FUNC", "STT_LOOS") and s["st_value"]
        }
        got = set(symbols._functions(elf, table))
    assert got == expected and len(got) > 1000
    assert any(ifunc for *_, ifunc in got)  # glibc picks memcpy & co. at load time


@pytest.mark.parametrize(
    "spec, pid, message",
    [
        ("c:memcmp", None, "'memcmp' in .* is an indirect function"),
        ("c:no_such_function", None, "no function 'no_such_function' in"),
        ("no_such_function", "self", "no function 'no_such_function' in process"),
        ("getppid", None, "give BINARY:FUNCTION, or -p PID"),
        ("getppid", 999999999, "no process with PID 999999999"),
        ("/no/file:f", None, "/no/file: no such file"),
        (f"{__file__}:f", None, "not an ELF file"),
    ],
)
def test_bad_specs_are_usage_errors(spec, pid, message):
    with pytest.raises(UsageError, match=message):
        symbols.resolve_function(spec, os.getpid() if pid == "self" else pid)
