"""Symbols: where to put a uprobe, and which function a stack address is in.

User space, from ELF files (pyelftools): an address in a process becomes
(file, file offset) through ``/proc/PID/maps``, then an ELF virtual address
through the file's PT_LOAD segments, then a function through the file's
``.symtab`` or, for stripped libraries, ``.dynsym``. The kernel: from
``/proc/kallsyms`` (``KernelSymbols``).
"""

from __future__ import annotations

import bisect
import os
import struct
from typing import NamedTuple

from .errors import PyrunqError, UsageError

_STT_FUNC, _STT_GNU_IFUNC = 2, 10


class Frame(NamedTuple):
    """One resolved address: ``name`` is None when no symbol covers it."""

    address: int
    name: str | None
    offset: int
    module: str

    def __str__(self) -> str:
        return self.name or "[unknown]"


class ElfSymbols:
    """The functions of one ELF file, sorted by address."""

    def __init__(self, path: str):
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = path
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                self._segments = [
                    (s["p_vaddr"], s["p_offset"], s["p_filesz"])
                    for s in elf.iter_segments()
                    if s["p_type"] == "PT_LOAD"
                ]
                self._by_name, spans = self._read_functions(elf)
        except ELFError as e:
            raise UsageError(f"{path}: not an ELF file ({e})") from None
        except OSError as e:
            raise UsageError(f"{path}: {e.strerror}") from None
        spans.sort()
        self._starts = [s[0] for s in spans]
        self._spans = spans

    @staticmethod
    def _read_functions(elf):
        by_name: dict[str, tuple[int, int]] = {}
        for name in (".symtab", ".dynsym"):  # .symtab first: it has the static functions too
            table = elf.get_section_by_name(name)
            if table is None or not hasattr(table, "iter_symbols"):
                continue
            for sym_name, value, size, ifunc in _functions(elf, table):
                # "malloc@@GLIBC_2.2.5" in some tables: the bare name is what users type
                by_name.setdefault(sym_name.split("@", 1)[0], (value, size, ifunc))
        spans = sorted({(addr, size, name) for name, (addr, size, _) in by_name.items()})
        return by_name, spans

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def file_offset(self, name: str) -> int:
        """Where function ``name`` starts in the file: what a uprobe attaches to."""
        if name not in self._by_name:
            raise UsageError(f"no function {name!r} in {self.path}")
        vaddr, _, ifunc = self._by_name[name]
        if ifunc:  # a probe there would fire once, when the dynamic linker picks one
            raise UsageError(
                f"{name!r} in {self.path} is an indirect function (the "
                "implementation is chosen at load time): it cannot be probed"
            )
        for seg_vaddr, seg_offset, size in self._segments:
            if seg_vaddr <= vaddr < seg_vaddr + size:
                return vaddr - seg_vaddr + seg_offset
        raise UsageError(f"function {name!r} of {self.path} is in no loadable segment")

    def vaddr(self, file_offset: int) -> int | None:
        """The ELF virtual address loaded from ``file_offset``."""
        for seg_vaddr, seg_offset, size in self._segments:
            if seg_offset <= file_offset < seg_offset + size:
                return file_offset - seg_offset + seg_vaddr
        return None

    def function_at(self, vaddr: int) -> tuple[str, int] | None:
        """(name, offset into it) of the function that covers ``vaddr``."""
        i = bisect.bisect_right(self._starts, vaddr) - 1
        if i < 0:
            return None
        start, size, name = self._spans[i]
        if vaddr < start + max(size, 1):
            return name, vaddr - start
        return None


def _functions(elf, table):
    """(name, value, size, is it an IFUNC) of the named functions in a symbol table. 64-bit
    little-endian tables are unpacked whole: pyelftools' symbol objects take
    a quarter of a second for libc's."""
    if not (elf.elfclass == 64 and elf.little_endian):
        for sym in table.iter_symbols():
            kind = sym["st_info"]["type"]  # pyelftools calls IFUNC "STT_LOOS"
            if kind in ("STT_FUNC", "STT_LOOS") and sym["st_value"] and sym.name:
                yield sym.name, sym["st_value"], sym["st_size"], kind == "STT_LOOS"
        return
    strings = elf.get_section(table["sh_link"]).data()
    for name_off, info, _, _, value, size in struct.iter_unpack("<IBBHQQ", table.data()):
        if info & 0xF in (_STT_FUNC, _STT_GNU_IFUNC) and value and name_off:
            name = strings[name_off : strings.index(b"\0", name_off)].decode(errors="replace")
            yield name, value, size, info & 0xF == _STT_GNU_IFUNC


_cache: dict[tuple, ElfSymbols] = {}


def elf_symbols(path: str) -> ElfSymbols:
    """ElfSymbols for ``path``, read once per file version."""
    st = os.stat(path)
    key = (path, st.st_dev, st.st_ino, st.st_mtime_ns)
    if key not in _cache:
        _cache[key] = ElfSymbols(path)
    return _cache[key]


class Mapping(NamedTuple):
    start: int
    end: int
    offset: int
    path: str


def process_maps(pid: int) -> list[Mapping]:
    """The file-backed executable mappings of a process, by start address."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):  # ESRCH: it exited while we read
        raise UsageError(f"no process with PID {pid}") from None
    except PermissionError:
        raise PyrunqError(
            f"cannot read /proc/{pid}/maps: permission denied (run as root, or as the process's user)"
        ) from None
    out = []
    for line in lines:
        fields = line.split(None, 5)
        if len(fields) < 6 or "x" not in fields[1] or not fields[5].startswith("/"):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        out.append(Mapping(start, end, int(fields[2], 16), fields[5].removesuffix(" (deleted)")))
    return out


def _in_root(pid: int | None, path: str) -> str:
    """The file as the process sees it, when its mount namespace is not ours."""
    try:
        if pid is None or os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
            return path
    except OSError:
        return path
    rooted = f"/proc/{pid}/root{path}"
    return rooted if os.path.exists(rooted) else path


class ProcessSymbols:
    """Resolves addresses of one process; reread with ``refresh()`` after it
    maps new libraries."""

    def __init__(self, pid: int):
        self.pid = pid
        self.refresh()

    def refresh(self) -> None:
        self._maps = process_maps(self.pid)
        self._starts = [m.start for m in self._maps]

    def resolve(self, address: int) -> Frame:
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0 or address >= self._maps[i].end:
            return Frame(address, None, 0, "")
        m = self._maps[i]
        try:
            elf = elf_symbols(_in_root(self.pid, m.path))
        except (OSError, UsageError):
            return Frame(address, None, 0, m.path)
        vaddr = elf.vaddr(address - m.start + m.offset)
        found = elf.function_at(vaddr) if vaddr is not None else None
        name, offset = found or (None, 0)
        return Frame(address, name, offset, m.path)


def find_library(pid: int | None, name: str) -> str | None:
    """``c`` or ``libc.so.6`` -> the library's path, as mapped by ``pid`` or
    known to the dynamic linker's cache."""
    wanted = (f"lib{name}.so", f"{name}.so")
    if pid is not None:
        for m in process_maps(pid):
            base = os.path.basename(m.path)
            # a bare prefix "c" would take /usr/bin/cat for libc: whole name only
            if base == name or base.startswith(wanted):
                return m.path
    import ctypes.util

    soname = ctypes.util.find_library(name.removeprefix("lib").split(".so", 1)[0])
    if soname:
        for d in (
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/lib",
            "/usr/lib",
        ):
            if os.path.exists(os.path.join(d, soname)):
                return os.path.join(d, soname)
    return None


class Target(NamedTuple):
    """Where a uprobe goes: the file (as this process opens it), the file
    offset of the function, and its name."""

    path: str
    offset: int
    function: str


def resolve_function(spec: str, pid: int | None = None) -> Target:
    """``BINARY:FUNCTION`` (BINARY a path, or a library name such as ``c``), or
    a bare ``FUNCTION`` with ``pid``: looked up in the process's executable,
    then in every file it has mapped."""
    if pid is not None and not os.path.exists(f"/proc/{pid}"):
        raise UsageError(f"no process with PID {pid}")
    binary, sep, function = spec.rpartition(":")
    if not function:
        raise UsageError(f"{spec!r}: no function name (BINARY:FUNCTION)")
    if not sep:
        if pid is None:
            raise UsageError(f"{spec!r}: give BINARY:FUNCTION, or -p PID to search the process")
        return _search_process(pid, function)
    path = binary if os.sep in binary else find_library(pid, binary)
    if path is None:
        raise UsageError(f"{binary!r}: no such binary or library")
    if not os.path.isfile(path):
        raise UsageError(f"{binary}: no such file")
    path = os.path.realpath(path)
    return Target(path, elf_symbols(path).file_offset(function), function)


def _search_process(pid: int, function: str) -> Target:
    exe = os.path.realpath(f"/proc/{pid}/exe")
    paths = [exe] + [m.path for m in process_maps(pid) if m.path != exe]
    for path in dict.fromkeys(paths):
        local = _in_root(pid, path)
        try:
            symbols = elf_symbols(local)
        except (OSError, UsageError):
            continue
        if function in symbols:
            return Target(local, symbols.file_offset(function), function)
    raise UsageError(f"no function {function!r} in process {pid} or its libraries")


_kernel: list[KernelSymbols] = []


def kernel_symbols() -> KernelSymbols:
    """KernelSymbols read once per process (kallsyms takes a second to read
    on a loaded machine, and only module loads change it)."""
    if not _kernel:
        _kernel.append(KernelSymbols())
    return _kernel[0]


class KernelSymbols:
    """The kernel's functions, from ``/proc/kallsyms``, read once. Without the
    right to see kernel addresses (kptr_restrict) they read as 0 and nothing
    resolves."""

    def __init__(self, path: str = "/proc/kallsyms"):
        spans = []
        with open(path) as f:
            for line in f:
                address, kind, rest = line.split(" ", 2)
                if kind in "tTwW" and address.strip("0"):
                    name, _, module = rest.rstrip("\n").partition("\t")
                    spans.append((int(address, 16), name, module.strip("[]") or "kernel"))
        spans.sort()
        self._starts = [s[0] for s in spans]
        self._spans = spans
        self._by_name: dict[str, int] | None = None

    def span(self, name: str) -> tuple[int, int] | None:
        """[start, end) of the function (or text marker) ``name``: from its
        address to the next symbol's; None if kallsyms does not have it."""
        if self._by_name is None:
            self._by_name = {}
            for n, (_, sym, _) in enumerate(self._spans):
                self._by_name.setdefault(sym, n)
        found = self._by_name.get(name)
        if found is None:
            return None
        start = self._spans[found][0]
        end = next((a for a, _, _ in self._spans[found + 1 :] if a > start), start + 1)
        return start, end

    def address(self, name: str) -> int | None:
        found = self.span(name)
        return found[0] if found else None

    def resolve(self, address: int) -> Frame:
        """The function ``address`` is in: the closest one at or below it
        (kallsyms gives no sizes)."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return Frame(address, None, 0, "")
        start, name, module = self._spans[i]
        return Frame(address, name, address - start, module)
