"""How maps and globals hold log2 histograms, and in which unit.

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
"""

from __future__ import annotations

import re

from ...bpf import ARRAY_TYPES, BATCH_TYPES
from ...bpf import btf as B
from . import gadget

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
