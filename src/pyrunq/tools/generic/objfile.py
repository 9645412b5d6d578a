"""An object file that pyrunq did not write, read once: checks before libbpf
opens it (an ELF BPF object, with a license, owned and writable by no one
else), and what the generic loader asks of the file rather than of one load
of it (``ObjectFile``): its ELF facts and helper calls, its DWARF, the structs
its records may be, and what the running kernel's BTF holds of its names."""

from __future__ import annotations

import dataclasses
import os
import stat
import tempfile

from ...bpf import EVENT_TYPES, BPFObject, btfcheck, features
from ...bpf import btf as B
from ...bpf import dwarf as D
from ...bpf import events as E
from ...errors import MalformedObject, PyrunqError, UsageError
from . import gadget, origins
from .bytecode import Calls, helper_calls
from .targets import SOCKET_PREFIX

# The way out UsageErrors name (``UsageError.param``), in the Python API's
# words; a front end with a flag for it (the CLI's --allow-untrusted-object) says its flag.
ALLOW_UNTRUSTED = "allow_untrusted=True"


@dataclasses.dataclass
class ElfFacts:
    license: str | None
    sections: list[str]
    core: bool  # has .BTF.ext: CO-RE relocations and line info
    calls: list[Calls] = dataclasses.field(default_factory=list)  # each code section's helper calls


def check_object_file(path: str) -> ElfFacts:
    """What the ELF says, or a UsageError when it is not a BPF object with BTF,
    or a MalformedObject when it is a broken one (its sections past the end of
    the file, its BTF malformed: ``btfcheck``); libbpf reads it only after."""
    from elftools.common.exceptions import ELFError

    with open_regular(path) as f:
        if f.read(4) != b"\x7fELF":
            raise UsageError(f"{path} is not an ELF file (expected an object from clang -target bpf)")
        f.seek(0)
        try:
            return _facts(path, f)
        except ELFError as e:
            raise UsageError(f"{path} is not a valid ELF file: {e}") from None
        except PyrunqError:
            raise
        except Exception as e:  # pyelftools raises many kinds on malformed input
            raise MalformedObject(f"{path} is not a valid ELF file: {type(e).__name__}: {e}") from None


def open_regular(path: str):
    """``path`` opened for reading in binary when it is a regular file; a
    FIFO, device, directory or socket is refused (one could block forever).
    Asked before open and again of what was opened (with O_NONBLOCK: a FIFO
    put in its place meanwhile cannot block)."""
    try:
        _regular(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    f = os.fdopen(fd, "rb")
    try:
        _regular(path, os.fstat(fd).st_mode)
    except UsageError:
        f.close()
        raise
    os.set_blocking(fd, True)
    return f


def _regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path} is not a regular file (it is {_file_kind(mode)})")


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
    return next((what for test, what in kinds if test(mode)), "a device")


def _facts(path: str, f) -> ElfFacts:
    from elftools.elf.descriptions import describe_e_machine
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(f)
    machine = elf["e_machine"]
    if machine != "EM_BPF":
        raise UsageError(
            f"{path} is not a BPF object: it is an ELF for "
            f"{describe_e_machine(machine)} (build it with clang -target bpf)"
        )
    _check_sections(path, elf, os.fstat(f.fileno()).st_size)
    names = [s.name for s in elf.iter_sections() if s.name]
    btf = elf.get_section_by_name(".BTF")
    if btf is None:
        raise UsageError(f"{path} has no BTF: compile it with clang -g")
    checked = btfcheck.check_btf(btf.data(), f"{path}: section .BTF")
    ext = elf.get_section_by_name(".BTF.ext")
    if ext is not None:
        btfcheck.check_btf_ext(ext.data(), checked, f"{path}: section .BTF.ext")
    lic = elf.get_section_by_name("license")
    text = lic.data().split(b"\0", 1)[0].decode(errors="replace") if lic else None
    return ElfFacts(text, names, ext is not None, helper_calls(elf))


def _check_sections(path: str, elf, size: int) -> None:
    """Every section inside the file: pyelftools reads a section's declared
    size at once (a huge one is a MemoryError), libbpf trusts it. Names and
    headers only: no section's data is read before this."""
    for section in elf.iter_sections():
        h = section.header
        if h["sh_type"] != "SHT_NOBITS" and h["sh_offset"] + h["sh_size"] > size:
            raise MalformedObject(
                f"{path}: section {section.name!r} ({h['sh_size']} bytes at offset {h['sh_offset']}) "
                f"runs past the end of the file ({size} bytes)"
            )


def check_trust(path: str) -> None:
    """An object is code for the kernel: refuse one that someone else could have written."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    _regular(path, st.st_mode)
    hint = "or pass {param}"
    writers = [who for bit, who in ((0o020, "its group"), (0o002, "others")) if st.st_mode & bit]
    if writers:
        raise UsageError(
            f"refusing {path}: it is writable by {' and '.join(writers)}, who could "
            f"change the code loaded into the kernel (chmod go-w it, {hint})",
            ALLOW_UNTRUSTED,
        )
    if st.st_uid not in (0, os.geteuid()):
        raise UsageError(
            f"refusing {path}: it is owned by uid {st.st_uid}, neither root nor you (chown it, {hint})",
            ALLOW_UNTRUSTED,
        )


_UNREAD = object()


class ObjectFile:
    """An object file, read once (its ELF checked, its helper calls scanned:
    ``facts``), and what every load of it shares: its DWARF (``dwarf()``,
    read when first needed), the structs its records may be
    (``candidates``), and the kernel's answers about its names
    (``kernel_has``, asked in one batch at the first ``open()``). The
    generic loader loads an object again without a program the kernel
    refused or a twin that failed to attach: none of this is read again."""

    def __init__(self, path: str):
        self.path = path
        self.facts = check_object_file(path)
        self._dwarf: object = _UNREAD
        self._kernel: dict[tuple[str, int], bool] = {}
        self._candidates: list[list[str]] | None = None
        self._origins: origins.Origins | None = None
        # the kernel's BTF with types the object's own loader adds (a file), once decided
        self._kernel_btf: tempfile._TemporaryFileWrapper | None = None
        self._decided = False
        self.supplied: list[str] = []  # those types

    @property
    def calls(self) -> list[Calls]:
        return self.facts.calls

    @property
    def host_order_ipv4(self) -> bool:
        """Whether the object's 32-bit IPv4 addresses may be in host order:
        its programs turn 32-bit values around (``bpf_ntohl``, as cilium/ebpf's
        tcprtt_sockops does to its addresses); a plain ``u32`` address is then
        read as such (``present``), one declared ``__be32`` never is. Not
        from a socket filter's turns: its packet loads (``load_word``, BPF_LD_ABS)
        give host order, which Inspektor Gadget's trace_dns turns back to the
        network order it keeps addresses in."""
        return any(32 in c.to_big_endian for c in self.calls if not c.name.startswith(SOCKET_PREFIX))

    def meanings(self, obj: BPFObject) -> dict[str, dict[str, dict[int, str]]]:
        """Map -> place (key, value, record) -> byte offset -> what the number
        there holds, as its programs' instructions tell (``origins``)."""
        return self.origins(obj).meanings

    def units(self, obj: BPFObject) -> dict[str, str]:
        """Histogram map -> the unit of the durations its programs count
        into its slots, as their instructions tell (``origins``)."""
        return self.origins(obj).units

    def origins(self, obj: BPFObject) -> origins.Origins:
        """What the programs' instructions tell (``origins.read``), read
        once (``obj``: a load of this file, for its BTF, its settings, which
        one Runner keeps across its loads, and the programs it loads: a
        program left out puts nothing anywhere; a later load leaves out
        more, never fewer)."""
        if self._origins is None:
            from elftools.elf.elffile import ELFFile

            with open_regular(self.path) as f:
                sizes = {
                    m.name: {origins.KEY: m.key_size, origins.VALUE: m.value_size} for m in obj.maps.values()
                }
                rodata = obj.rodata.data()
                loaded = {p.section for p in obj.programs.values() if p.autoload}
                left_out = {p.section for p in obj.programs.values()} - loaded
                self._origins = origins.read(ELFFile(f), obj.btf, sizes, rodata, left_out)
        return self._origins

    def open(self) -> BPFObject:
        """A new BPFObject of the file (libbpf's open), sharing this file's DWARF."""
        obj = BPFObject(self.path, btf_custom_path=self._kernel_btf_path())
        if not self._decided and self._added_types(obj):
            obj.close()  # again, with them
            obj = BPFObject(self.path, btf_custom_path=self._kernel_btf_path())
        D.share(obj, self.dwarf)
        if not self._kernel:
            self.kernel_has(*kernel_names(obj))
        return obj

    def _added_types(self, obj: BPFObject) -> bool:
        """Whether the object's own loader adds types to the kernel's BTF for
        its CO-RE relocations (Inspektor Gadget's socket enricher:
        ``gadget.socket_enricher_btf``): then they are, in a file libbpf
        reads instead of the kernel's. Decided at the first open."""
        self._decided = True
        data = gadget.socket_enricher_btf(obj.btf)
        if data is None:
            return False
        f = tempfile.NamedTemporaryFile(prefix="pyrunq-", suffix=".btf")
        f.write(data)
        f.flush()
        self._kernel_btf, self.supplied = f, [f"struct {gadget.SOCKET_VALUE}"]
        return True

    def _kernel_btf_path(self) -> str | None:
        return self._kernel_btf.name if self._kernel_btf is not None else None

    def close(self) -> None:
        """Remove what the loads needed beside the file (the kernel's BTF with added types)."""
        if self._kernel_btf is not None:
            self._kernel_btf.close()
            self._kernel_btf = None

    def dwarf(self) -> D.DwarfTypes | None:
        """The file's DWARF types, read at the first call; None without any."""
        if self._dwarf is _UNREAD:
            self._dwarf = D.read_dwarf(self.path)
        return self._dwarf  # type: ignore[return-value]

    def kernel_has(self, *wanted: tuple[str, int]) -> set[tuple[str, int]]:
        """``features.kernel_btf_has``, each (name, kind) asked of the kernel once."""
        unknown = [w for w in dict.fromkeys(wanted) if w not in self._kernel]
        if unknown:
            found = features.kernel_btf_has(*unknown)
            self._kernel.update((w, w in found) for w in unknown)
        return {w for w in wanted if self._kernel[w]}

    def candidates(self, obj: BPFObject) -> list[list[str]]:
        """The structs records may be, tier by tier (``events.candidate_tiers``),
        found once (``obj``: a load of this file)."""
        if self._candidates is None:
            self._candidates = E.candidate_tiers(obj, self.kernel_has)
        return self._candidates

    def nameable(self, obj: BPFObject) -> list[str]:
        """The structs a user would pick from to decode records."""
        return list(dict.fromkeys(name for tier in self.candidates(obj) for name in tier))


def kernel_names(obj: BPFObject) -> list[tuple[str, int]]:
    """Every (name, kind) the loader asks the kernel's BTF about, for one
    batch: the structs of the maps' keys and values and those event maps are
    named after (are they the kernel's own?), and the tracepoints of tp_btf
    programs."""
    btf = obj.btf
    tids = [btf.resolve(t) for m in obj.maps.values() for t in (m.key_type_id, m.value_type_id) if t]
    names = [btf.name(t) for t in tids if btf.kind(t) == B.STRUCT and btf.name(t)]
    names += [n for m in obj.maps.values() if m.type in EVENT_TYPES for n in E.named_after(m.name)]
    traces = [
        (f"btf_trace_{p.section.rsplit('/', 1)[-1]}", B.TYPEDEF)
        for p in obj.programs.values()
        if p.section.startswith("tp_btf/")
    ]
    return [(n, B.STRUCT) for n in dict.fromkeys(names)] + traces
