"""Where uprobe and USDT programs whose section names no target go: the
caller's ``BINARY:FUNCTION`` and ``BINARY:PROVIDER:NAME``, checked and
resolved before load; and those whose section names a library without a
path, as Inspektor Gadget's loader reads them."""

from __future__ import annotations

import os
from typing import NamedTuple

from ...bpf import BPFObject, Program
from ...errors import UsageError
from ...symbols import Target, find_library, resolve_function

# The parameters UsageErrors name (``UsageError.param``), in the Python API's
# words; the CLI says its flags (--uprobe, --usdt) instead.
UPROBE = "uprobe"
USDT = "usdt"


def uprobe_targets(obj: BPFObject, specs: dict) -> dict[str, list[Target]]:
    """Program name -> where its uprobes go (one program may go to several
    functions, as gethostlatency's to getaddrinfo, gethostbyname and
    gethostbyname2), from ``specs``: program -> "BINARY:FUNCTION" or a list
    of them; checked before load."""
    return _targets(obj, specs, UPROBE, is_uprobe, resolve_function)


def library_targets(obj: BPFObject, given: dict) -> tuple[dict[str, list[Target]], dict[str, str]]:
    """The uprobes whose section names a library without a path
    (``SEC("uprobe/libssl:SSL_read")``, Inspektor Gadget's spelling) and
    that ``given`` does not place: program -> [its target], and program ->
    why it has none (no such library, or no such function in it)."""
    targets, problems = {}, {}
    for prog in obj.programs.values():
        library = _library_spec(prog)
        if library and prog.name not in given and prog.autoload:
            try:
                targets[prog.name] = [resolve_function(library)]
            except UsageError as e:
                problems[prog.name] = f"{e}; give it a target with --uprobe {prog.name}=BINARY:FUNCTION"
    return targets, problems


def _library_spec(prog: Program) -> str | None:
    """``libssl:SSL_read`` of ``SEC("uprobe/libssl:SSL_read")``: a library
    named without a path, as Inspektor Gadget's loader takes it (libbpf
    looks a name without ".so" up on PATH)."""
    if not is_uprobe(prog) or "/" not in prog.section:
        return None
    binary, sep, function = prog.section.split("/", 1)[1].rpartition(":")
    if not sep or not binary or not function or os.sep in binary or ".so" in binary:
        return None
    return f"{binary}:{function}"


def _targets(obj: BPFObject, specs: dict, kind: str, is_kind, resolve) -> dict[str, list]:
    """Program name -> its targets, each spec made one by ``resolve``; the
    programs must exist and be of ``kind`` (``is_kind``)."""
    targets: dict[str, list] = {}
    for name, given in specs.items():
        for spec in [given] if isinstance(given, str) else given:
            what = f"{name}={spec}"
            if name not in obj.programs:
                known = ", ".join(p.name for p in obj.programs.values() if is_kind(p)) or "none"
                message = f"{what}: no program {name!r} in {obj.name} ({kind} programs: {known})"
                raise UsageError(message, kind)
            if not is_kind(obj.programs[name]):
                section = obj.programs[name].section
                raise UsageError(f'{what}: program {name} (SEC("{section}")) is no {kind}', kind)
            try:
                targets.setdefault(name, []).append(resolve(spec))
            except UsageError as e:
                raise UsageError(f"{what}: {e}", kind) from None
    return targets


def is_uprobe(prog: Program) -> bool:
    return prog.section.split("/", 1)[0] in ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s")


def is_usdt(prog: Program) -> bool:
    return prog.section.split("/", 1)[0] in ("usdt", "usdt.s")


class UsdtTarget(NamedTuple):
    """A USDT probe: the file (a path) and the probe's provider and name."""

    path: str
    provider: str
    name: str


def usdt_targets(obj: BPFObject, specs: dict) -> dict[str, list[UsdtTarget]]:
    """Program name -> the USDT probes it goes to, from ``specs``: program ->
    "BINARY:PROVIDER:NAME" (BINARY a path, or a library name) or a list of
    them; checked before load."""
    return _targets(obj, specs, USDT, is_usdt, _usdt_target)


def _usdt_target(spec: str) -> UsdtTarget:
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise UsageError("expected BINARY:PROVIDER:NAME")
    binary, provider, name = parts
    path = binary if os.sep in binary else find_library(None, binary)
    if path is None or not os.path.isfile(path):
        raise UsageError(f"{binary}: no such binary or library")
    problem = not_elf(path, "usdt")
    if problem:
        raise UsageError(problem)
    return UsdtTarget(os.path.realpath(path), provider, name)


def not_elf(path: str, kind: str) -> str | None:
    """Why ``path`` cannot hold a ``kind`` probe ("usdt", "uprobe") when it is
    not an ELF file (a shell script shim on PATH, as some distributions'
    python3 is), else None; libbpf would only say "unrecognized ELF kind"
    (Bad file descriptor)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None  # libbpf says what is wrong with it
    if head == b"\x7fELF":
        return None
    return f"{kind}: {path} is not an ELF file" + (" (a script?)" if head.startswith(b"#!") else "")


def libbpf_path(binary: str) -> str | None:
    """The file libbpf attaches a uprobe or USDT section's BINARY to: a path
    as it is; a library name (``libc.so.6``) in LD_LIBRARY_PATH, /usr/lib64
    or /usr/lib; any other name on PATH (as libbpf's resolve_full_path)."""
    if "/" in binary:
        return binary
    where = (
        os.environ.get("LD_LIBRARY_PATH", "") + ":/usr/lib64:/usr/lib"
        if ".so" in binary
        else os.environ.get("PATH", "")
    )
    for directory in filter(None, where.split(":")):
        path = os.path.join(directory, binary)
        if os.access(path, os.R_OK):
            return path
    return None
