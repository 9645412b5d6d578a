"""An object file that pyrunq did not write: checks before libbpf opens it
(an ELF BPF object, with a license, owned and writable by no one else)."""

from __future__ import annotations

import dataclasses
import os

from ...bpf import BPFObject
from ...errors import UsageError

# How messages name the way out, in the Python API's words; a front end with a
# flag for it (the CLI's --allow-untrusted-object) puts its flag in its place.
ALLOW_UNTRUSTED = "allow_untrusted=True"


@dataclasses.dataclass
class ElfFacts:
    license: str | None
    sections: list[str]
    core: bool  # has .BTF.ext: CO-RE relocations and line info


def check_object_file(path: str) -> ElfFacts:
    """What the ELF says, or a UsageError when it is not a BPF object with BTF."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.descriptions import describe_e_machine
    from elftools.elf.elffile import ELFFile

    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    with f:
        if f.read(4) != b"\x7fELF":
            raise UsageError(f"{path} is not an ELF file (expected an object from clang -target bpf)")
        f.seek(0)
        try:
            elf = ELFFile(f)
            machine = elf["e_machine"]
            if machine != "EM_BPF":
                raise UsageError(
                    f"{path} is not a BPF object: it is an ELF for "
                    f"{describe_e_machine(machine)} (build it with clang -target bpf)"
                )
            names = [s.name for s in elf.iter_sections() if s.name]
            if ".BTF" not in names:
                raise UsageError(f"{path} has no BTF: compile it with clang -g")
            lic = elf.get_section_by_name("license")
            text = lic.data().split(b"\0", 1)[0].decode(errors="replace") if lic else None
        except ELFError as e:
            raise UsageError(f"{path} is not a valid ELF file: {e}") from None
    return ElfFacts(text, names, ".BTF.ext" in names)


def check_trust(path: str) -> None:
    """An object is code for the kernel: refuse one that someone else could have written."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    hint = f"or pass {ALLOW_UNTRUSTED}"
    writers = [who for bit, who in ((0o020, "its group"), (0o002, "others")) if st.st_mode & bit]
    if writers:
        raise UsageError(
            f"refusing {path}: it is writable by {' and '.join(writers)}, who could "
            f"change the code loaded into the kernel (chmod go-w it, {hint})"
        )
    if st.st_uid not in (0, os.geteuid()):
        raise UsageError(
            f"refusing {path}: it is owned by uid {st.st_uid}, neither root nor you (chown it, {hint})"
        )


def open_object(path: str) -> tuple[BPFObject, ElfFacts]:
    facts = check_object_file(path)
    return BPFObject(path), facts
