"""Stacks an object keeps, shown as function names, top first, as the C
front ends print them:

- a stack id: an integer member named ``*stack_id`` / ``*stackid`` (profile's
  ``user_stack_id``, wakeuptime's ``w_k_stack_id``) of a map's key or value
  or of a record, in an object with a STACK_TRACE map; the addresses are
  that map's entry. A negative id is the error ``bpf_get_stackid`` returned:
  EFAULT (there was none, as a sample in user mode has no kernel stack) is
  an empty stack, others a ``[missed stack: EEXIST]`` frame, as bcc does;
  -1 is empty too: what offcputime stores for a kernel thread's user stack.
- an inline stack: an array of 64-bit integers named ``*stack*`` or
  ``*caller*`` (eunomia's and libbpf-bootstrap's ``kstack``/``ustack``,
  biostacks' ``kern_stack``, opensnoop's ``callers``), as ``bpf_get_stack``
  fills it: addresses up to the first 0.

Kernel addresses (the upper half) are named from ``/proc/kallsyms``; user
ones from the maps of the process in the struct's ``tgid`` member, else its
``pid``, else its ``pid_tgid``'s upper half (futexctn's key; a stack without
any stays as addresses: ``[unknown]``). The maps of a process are read the
first time one of its stacks is named, so a process that exited before that
reads ``[unknown]``.
"""

from __future__ import annotations

import errno
import re
from typing import NamedTuple

from ...bpf import btf as B
from ...symbols import Frame, KernelSymbols
from ..ustack import Symbolizer, stack_addresses
from . import gadget
from .measures import Apart, frozen, plus

STACK_TRACE = 7  # enum bpf_map_type
_STACK_ID = re.compile(r"stack_?id$", re.IGNORECASE)
_KERNEL_HALF = 1 << 63


class StackMembers(NamedTuple):
    """The members of one struct that hold stacks, and where their process is."""

    ids: list[str]  # stack ids
    inline: list[str]  # arrays of addresses
    pid: str | None  # the member that names the process (tgid, else pid, else pid_tgid)
    # Inspektor Gadget's (``gadget``): stack id member -> its map, and the
    # ``struct gadget_user_stack`` members (each holds its id and process)
    maps: dict[str, str] = {}
    user: list[str] = []


def stack_members(types, tid: int, has_stack_map: bool) -> StackMembers | None:
    """The stack members of struct ``tid`` (in BTF or DWARF types), None when it has none."""
    tid = types.resolve(tid) if tid else 0
    if not tid or types.kind(tid) != B.STRUCT:
        return None
    ids, inline, names, maps, user = [], [], [], {}, []
    for name, declared, _, bits in types.fields(tid):
        names.append(name)
        member = types.resolve(declared)
        kind = types.kind(member)
        ig = gadget.typedef(types, declared)
        if ig in (gadget.KERNEL_STACK, gadget.USER_STACK_STRUCT) and has_stack_map:
            if ig == gadget.KERNEL_STACK:
                ids.append(name)
                maps[name] = gadget.KERNEL_STACKS
            else:
                user.append(name)
        elif kind == B.INT and not bits and has_stack_map and _STACK_ID.search(name):
            ids.append(name)
        elif kind == B.ARRAY and ("stack" in name.lower() or "caller" in name.lower()):
            elem = types.resolve(types.array(member)[0])
            if types.kind(elem) == B.INT and types.int_info(elem)[0] == 8:
                inline.append(name)
    if not (ids or inline or user):
        return None
    pid = next((n for n in ("tgid", "pid", "pid_tgid") if n in names), None)
    return StackMembers(ids, inline, pid, maps, user)


def _signed32(v: int) -> int:
    """A stack id as bpf_get_stackid returned it: an id is small, so a u32 of
    2^31 or more is a negative errno (a 64-bit one is left as it is)."""
    return v - (1 << 32) if (1 << 31) <= v < (1 << 32) else v


def _side(name: str) -> str:
    """ "user" or "kernel" as a stack member's or map's name says (``user_``,
    ``u``stack, ``kern``, ``k``stack), else ""."""
    n = name.lower().removeprefix("ig_")  # Inspektor Gadget's ig_kstack, ig_ustack
    if n.startswith(("user", "ustack", "u_stack")) or "_user" in n:
        return "user"
    if n.startswith(("kern", "kstack", "k_stack")) or "_kern" in n:
        return "kernel"
    return ""


class Stacks:
    """Names the stacks of one loaded object's maps and records."""

    def __init__(self, obj):
        self.obj = obj
        self.maps = [m for m in obj.maps.values() if m.type == STACK_TRACE]
        self._kernel: KernelSymbols | None = None
        self._user = Symbolizer()
        self.kernel_members: set[str] = set()  # members seen holding kernel stacks

    def members(self, types, tid: int) -> StackMembers | None:
        return stack_members(types, tid, bool(self.maps))

    def name(self, value: dict, members: StackMembers) -> dict:
        """``value`` (a presented struct) with its stacks as lists of function names."""
        pid = value.get(members.pid) if members.pid else None
        if isinstance(pid, dict):  # a pid_tgid, presented as {pid, tid}: the process is its upper half
            pid = pid["pid"]
        out = dict(value)
        for member in members.ids:
            # an id kept in a u32 (Inspektor Gadget's): bpf_get_stackid's error, unsigned
            stack_id = _signed32(value[member])
            if stack_id in (-errno.EFAULT, -1):  # none: the helper's EFAULT, or the tools' own -1
                out[member] = []
            elif stack_id < 0:  # lost: its hash bucket was taken (EEXIST), the map was full...
                out[member] = [f"[missed stack: {errno.errorcode.get(-stack_id, -stack_id)}]"]
            elif (stack_map := self._map_for(member, members.maps.get(member))) is None:
                out[member] = [f"[stack {stack_id}: which stack map holds it is not known]"]
            else:
                out[member] = self._names(stack_addresses(stack_map, stack_id), pid, member)
        for member in members.user:  # a struct gadget_user_stack: empty when not collected
            ustack = value[member]
            stack_map = self._map_for(member, gadget.USER_STACKS)
            stack_id = _signed32(ustack.get("stack_id", -1))
            if not ustack.get("tgid_level0") or stack_map is None or stack_id < 0:
                out[member] = []
            else:
                addresses = stack_addresses(stack_map, stack_id)
                out[member] = self._names(addresses, ustack["tgid_level0"], member)
        for member in members.inline:
            addresses = value[member]
            end = addresses.index(0) if 0 in addresses else len(addresses)
            out[member] = self._names(addresses[:end], pid, member)
        return out

    def name_entries(
        self, entries: list, key: StackMembers | None, value: StackMembers | None
    ) -> tuple[list, int]:
        """(key, value) entries with their stacks named; entries whose stacks
        name the same functions (samples at other instructions of them) are
        one entry, their measures added (``measures``), unless their
        identities (a pid, an inode...) differ. Returns the entries and how
        many were merged into others."""
        groups: dict = {}  # named key -> [its entries, as merged so far]
        merged = 0
        for k, v in entries:
            k = self.name(k, key) if key and isinstance(k, dict) else k
            v = self.name(v, value) if value and isinstance(v, dict) else v
            same = groups.setdefault(frozen(k) if key else object(), [])  # values' stacks alone merge nothing
            for i, (_, w) in enumerate(same):
                try:
                    same[i] = (k, plus(w, v))
                    merged += 1
                    break
                except Apart:
                    continue
            else:
                same.append((k, v))
        return [e for same in groups.values() for e in same], merged

    def _map_for(self, member: str, named: str | None = None):
        """The stack map of a stack id member: the only one; else the one
        named for the same side (user or kernel: ``user_stack_id`` ->
        ``ustacks``, ``kern_stack_id`` -> ``kstacks``), or sharing the
        member's first word. None when that does not pick one: an id is
        never looked up in the other side's map."""
        if named is not None:  # by the object's own convention (Inspektor Gadget's)
            return next((m for m in self.maps if m.name == named), None)
        if len(self.maps) == 1:
            return self.maps[0]
        word = member.lower().split("_")[0]
        side = _side(member)
        picked = [m for m in self.maps if side and _side(m.name) == side] or [
            m for m in self.maps if word in m.name.lower()
        ]
        return picked[0] if len(picked) == 1 else None

    def _names(self, addresses: list[int], pid: int | None, member: str) -> list[str]:
        if addresses and addresses[0] >= _KERNEL_HALF:
            self.kernel_members.add(member)
        return [str(f) for f in self.frames(addresses, pid)]

    def frames(self, addresses: list[int], pid: int | None) -> list[Frame]:
        user = [a for a in addresses if a < _KERNEL_HALF]
        named = iter(self._user.frames(pid, user) if pid and user else [Frame(a, None, 0, "") for a in user])
        if len(user) == len(addresses):
            return list(named)
        if self._kernel is None:
            self._kernel = KernelSymbols()
        kernel = self._kernel
        return [next(named) if a < _KERNEL_HALF else kernel.resolve(a) for a in addresses]
