"""EventRows: runqslower's text rows, written in C by the ring buffer's own
callback (the extension's ``pyrunq_rows_*``), no Python object per event.

The text is what libbpf-tools' runqslower prints for each event, and with
``EventRows.blamed`` pyrunq's column of culprits after it; the Python
version (``pyrunq.cli.runqslower.Rows``) is the reference the tests compare
with.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import libbpf
from ..libbpf import ffi, lib
from .codecs import Layout

# struct event's members the rows show, in the order of native/rows.c's PYRUNQ_ROW_*
FIELDS = ("task", "prev_task", "delta_ns", "tid", "prev_tid")
# struct blame_event's and struct culprit's, in the order of native/culprits.c's
BLAME_FIELDS = ("unattributed_ns", "why", "nculprits", "culprits")
CULPRIT_FIELDS = ("ns", "who.cgroup_id", "who.pid", "who.tid", "who.kind", "who.comm")
# what native/culprits.c calls the kinds of culprit (PYRUNQ_KIND_*)
KIND_CODES = {"self": 0, "other": 1, "kernel": 2, "idle": 3}


def _members(codec, prefix: str = "", base: int = 0) -> dict:
    """ "name" and "outer.inner" -> (offset, codec), for a struct's members
    and those of the structs in it."""
    out = {}
    for name, offset, member in getattr(codec, "members", ()):
        out[prefix + name] = (base + offset, member)
        out.update(_members(member, f"{prefix}{name}.", base + offset))
    return out


class EventRows:
    """Rows of runqslower events (``layout``: the object's ``struct event``,
    from its BTF), with the previous task's columns if ``previous``. Give it
    to ``RingBuffer.add(..., rows=)``; ``take()`` returns the text so far."""

    def __init__(self, layout: Layout, previous: bool = False, event: str = ""):
        members = _members(layout.codec)
        offsets = ffi.new("size_t[]", _offsets(members, [event + name for name in FIELDS], "event"))
        ptr = lib.pyrunq_rows_new(offsets, members[event + "task"][1].size, layout.size, previous)
        if ptr == ffi.NULL:
            raise ValueError(f"not runqslower's event layout ({layout.size} bytes), or out of memory")
        self.ptr = ffi.gc(ptr, lib.pyrunq_rows_free)
        self.sample = ffi.addressof(lib, "pyrunq_rows_sample")
        self._text = ffi.new("const char **")
        self._ids = ffi.new("const uint64_t **")
        self._name: Callable[[int], tuple[str, bool]] | None = None

    @classmethod
    def blamed(
        cls,
        layout: Layout,
        previous: bool,
        kinds: dict[int, str],
        whys: dict[int, str],
        name: Callable[[int], tuple[str, bool]],
    ) -> "EventRows":
        """Rows of ``struct blame_event`` (``layout``) with the column of
        culprits after them. ``kinds`` names enum blame_kind's values
        ("self", "other", "kernel", "idle"), ``whys`` enum blame_why's ("" for
        none); ``name(cgroup_id)`` -> (label, whether a container's) names a
        culprit's cgroup, asked once per cgroup."""
        rows = cls(layout, previous, event="e.")
        members = _members(layout.codec)
        offsets = _offsets(members, BLAME_FIELDS, "blame_event")
        elem = getattr(members["culprits"][1], "elem", None)
        if elem is None:
            raise ValueError("not runqslower's blame_event: its culprits are not an array")
        culprit = _members(elem)
        offsets += [elem.size, *_offsets(culprit, CULPRIT_FIELDS, "culprit")]
        codes = bytes(KIND_CODES.get(kinds.get(v, ""), len(KIND_CODES)) for v in range(max(kinds) + 1))
        reasons = [ffi.new("char[]", whys.get(v, str(v)).encode()) for v in range(max(whys) + 1)]
        ptr = lib.pyrunq_culprits_new(
            ffi.new("size_t[]", offsets),
            culprit["who.comm"][1].size,
            layout.size,
            codes,
            len(codes),
            ffi.new("char *[]", reasons),
            len(reasons),
        )
        if ptr == ffi.NULL or lib.pyrunq_rows_blame(rows.ptr, ptr) < 0:
            raise ValueError(f"not runqslower's blame_event layout ({layout.size} bytes), or out of memory")
        rows._name = name
        return rows

    def start(self, budget: int) -> None:
        """Before a poll: stop after ``budget`` records (0: no limit)."""
        lib.pyrunq_rows_start(self.ptr, budget)

    @property
    def handled(self) -> int:
        """Records handled by the last poll."""
        return lib.pyrunq_rows_handled(self.ptr)

    def settle(self) -> None:
        """After a poll: a record held for its culprits' cgroups is named
        and written (the poll stopped there, to ask)."""
        n = lib.pyrunq_rows_wanted(self.ptr, self._ids)
        if n and self._name is not None:
            culprits = lib.pyrunq_rows_culprits(self.ptr)
            for cgroup_id in [self._ids[0][i] for i in range(n)]:
                label, container = self._name(cgroup_id)
                libbpf.check(
                    lib.pyrunq_culprits_name(culprits, cgroup_id, label.encode(errors="replace"), container),
                    "name a culprit's cgroup",
                )
        lib.pyrunq_rows_release(self.ptr)

    def take(self) -> bytes:
        """The rows written since the last take."""
        self.settle()
        n = libbpf.check(lib.pyrunq_rows_take(self.ptr, self._text), "format runqslower rows")
        return ffi.buffer(self._text[0], n)[:]


def _offsets(members: dict, names, what: str) -> list[int]:
    try:
        return [members[name][0] for name in names]
    except KeyError as e:
        raise ValueError(f"not runqslower's {what}: no member {e.args[0]}") from None
