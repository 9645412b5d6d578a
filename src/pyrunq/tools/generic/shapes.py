"""How maps and globals hold histograms, in which unit, and what their
slots hold (``Scale``).

- A map holds histograms when its value is a struct with an integer array
  member ``slots`` (libbpf-tools' ``struct hist``); or its name contains
  "hist" or "slots" and its value is an integer array; or it is an array map
  of integers named so, one element per slot. At most 63 slots.
- A global holds them when it is an integer array named "hist"/"slots" (one
  element per slot), an array of such arrays named so, or a struct with an
  integer array ``slots`` (or an array of them: one histogram per index).
- A map holds them too when its value is a struct with an array of
  Inspektor Gadget's ``gadget_histogram_slot__*`` (``gadget``), its name
  whatever it is.
- The unit comes from the name: ``_ns``/``_us``/``_ms``/``_bytes`` ->
  nsecs/usecs/msecs/bytes, else "value".
- What a slot holds comes from the programs that count into it
  (``bytecode.slot_writes``): linear when every write's slot index is a
  value the program read, as it is or divided by one constant step (a
  shift right by k: 2^k); log2 otherwise, also when nothing tells.
"""

from __future__ import annotations

import dataclasses
import re

from ...bpf import ARRAY_TYPES, BATCH_TYPES
from ...bpf import btf as B
from . import gadget
from .bytecode import Index, Write

MAX_HIST_SLOTS = 63  # what render_log2 can print
_UNITS = {
    "ns": "nsecs",
    "nsecs": "nsecs",
    "us": "usecs",
    "usecs": "usecs",
    "ms": "msecs",
    "msecs": "msecs",
    "bytes": "bytes",
    "kb": "kbytes",
    "kbytes": "kbytes",
}


def map_hist_shape(btf, m) -> str | None:
    """How map ``m`` holds log2 histograms: "index" (an array map, one element
    per slot), "value" (each value an integer array), "slots" (each value a
    struct with an integer array ``slots``), or None."""
    named = _named(m.name)
    if m.type not in BATCH_TYPES or not m.value_type_id:
        return None
    tid = btf.resolve(m.value_type_id)
    if m.type in ARRAY_TYPES and named and _is_int(btf, tid) and 1 < m.max_entries <= MAX_HIST_SLOTS:
        return "index"
    if named and _is_int_array(btf, tid):
        return "value"
    if btf.kind(tid) == B.STRUCT and slots_member(btf, tid):
        return "slots"
    return None


def global_hist_shape(btf, name: str, tid: int) -> str | None:
    """How a global holds log2 histograms: "index" (an integer array named
    "hist"/"slots", one element per slot), "value" (an array of integer arrays
    named so: one histogram per index), "slots" (an array of structs with an
    integer array ``slots``: one per index), "struct" (one such struct), or None."""
    tid = btf.resolve(tid)
    kind = btf.kind(tid)
    if kind == B.STRUCT:
        return "struct" if _has_slots(btf, tid) else None
    if kind != B.ARRAY:
        return None
    elem, n = btf.array(tid)
    elem = btf.resolve(elem)
    if _named(name) and _is_int(btf, elem) and 1 < n <= MAX_HIST_SLOTS:
        return "index"
    if _named(name) and _is_int_array(btf, elem):
        return "value"
    if btf.kind(elem) == B.STRUCT and _has_slots(btf, elem):
        return "slots"
    return None


def unit_of(name: str) -> str:
    """The unit a histogram's name suggests ("value" when it suggests none)."""
    return next((_UNITS[w] for w in re.split(r"[^a-z]+", name.lower()) if w in _UNITS), "value")


def _named(name: str) -> bool:
    return any(w in name.lower() for w in ("hist", "slots"))


def _is_int(btf, tid: int) -> bool:
    return btf.kind(tid) == B.INT and not btf.int_info(tid)[2] and not btf.int_info(tid)[3]


def _is_int_array(btf, tid: int) -> bool:
    if btf.kind(tid) != B.ARRAY:
        return False
    elem, n = btf.array(tid)
    return _is_int(btf, btf.resolve(elem)) and 0 < n <= MAX_HIST_SLOTS


def _has_slots(btf, tid: int) -> bool:
    """A struct with an integer array member ``slots`` and a byte layout."""
    return btf.layout(tid).record is not None and any(
        name == "slots" and _is_int_array(btf, btf.resolve(t)) for name, t, _, _ in btf.members(tid)
    )


def slots_member(btf, tid: int) -> str | None:
    """The member of struct ``tid`` that holds a log2 histogram: an integer
    array ``slots`` (libbpf-tools'), or an array of Inspektor Gadget's
    ``gadget_histogram_slot__*`` under any name (its ``latency[27]``)."""
    if btf.kind(tid) != B.STRUCT or btf.layout(tid).record is None:
        return None
    if _has_slots(btf, tid):
        return "slots"
    member = gadget.hist_slots_member(btf, tid)
    types = {name: t for name, t, _, _ in btf.members(tid)}
    return member if member and _is_int_array(btf, btf.resolve(types[member])) else None


@dataclasses.dataclass(frozen=True)
class Scale:
    """What a histogram's slots hold: "log2" (slot i holds 2^i to
    2^(i+1) - 1, as bcc's ``log2l`` fills them), or "linear" (slot i holds
    ``step * i`` to ``step * (i + 1) - 1``; ``open_last``: the programs clamp
    larger values into the last slot, which holds all from its low end)."""

    kind: str = "log2"
    step: int = 1
    open_last: bool = False

    def label(self, slot: int, slots: int) -> str:
        """A linear slot's label: ``3`` (step 1), ``200-399``, ``>= 5000`` (the clamped last)."""
        low = slot * self.step
        if self.open_last and slot == slots - 1:
            return f">= {low}"
        return str(low) if self.step == 1 else f"{low}-{low + self.step - 1}"


LOG2 = Scale()


def scale_of(writes: list[Write], size: int, slots: int, keyed: bool) -> Scale:
    """What the slots of one histogram hold, from the programs' ``writes``
    into it: ``size`` bytes a slot, ``slots`` of them; ``keyed``: an array map
    looked up by slot (the index is the key) rather than an index into an
    array. Linear when every write into the slots has an index that is a
    value read, divided by the same step; else (log2 code, a BPF function's
    result, anything not followed, no write seen) ``LOG2``."""
    steps, clamps = set(), set()
    for w in writes:
        found = [w.key] if keyed else [t for t in w.indexes if not isinstance(t, Index) or t.scale == size]
        if not found:  # another member, or an index of another dimension only
            continue
        index = found[0]
        if len(found) > 1 or not isinstance(index, Index) or (keyed and index.scale != 1):
            return LOG2
        steps.add(index.step)
        clamps.add(index.clamp)
    if len(steps) != 1:
        return LOG2
    return Scale("linear", steps.pop(), clamps == {slots - 1})


def slot_array(btf, tid: int, shape: str, member: str = "slots") -> tuple[int, int]:
    """(bytes a slot, slots) of a histogram of this shape, held in values
    (or a global) of type ``tid``; an "index" map's: of one element."""
    tid = btf.resolve(tid)
    if shape in ("value", "slots") and btf.kind(tid) == B.ARRAY:
        elem = btf.resolve(btf.array(tid)[0])
        if btf.kind(elem) != B.INT:  # a global's array of histograms: one of them
            tid = elem
    if btf.kind(tid) == B.STRUCT:
        tid = btf.resolve(next(t for name, t, _, _ in btf.members(tid) if name == member))
    if btf.kind(tid) == B.INT:
        return btf.size(tid), 1
    elem, n = btf.array(tid)
    return btf.size(btf.resolve(elem)), n
