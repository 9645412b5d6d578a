"""BlameDiffs: runqlat's culprit table one interval at a time, in C (the
extension's ``pyrunq_blames_*``): the entries that grew, and per victim the
containers' and the host's part and its largest culprit, with no Python
object per entry read. The Python version (``pyrunq.tools.blame.
Attributions``) is the reference the tests compare with."""

from __future__ import annotations

import collections
import errno
import struct

from ..libbpf import ffi, lib
from .batch import NativeTable
from .codecs import Layout

# struct blame_key's and struct blame_val's members, in native/blames.c's order
KEY_FIELDS = ("victim", "cgroup_id", "culprit", "kind")
VALUE_FIELDS = ("ns", "comm")


# (collections.namedtuples: typing costs every start 2 ms)
BlameChange = collections.namedtuple("BlameChange", "victim cgroup_id culprit kind ns comm")
BlameChange.__doc__ = """An entry of the culprit table that grew: its key's members, the
nanoseconds it grew by (``ns``) and the culprit's ``comm`` bytes."""
VictimBlame = collections.namedtuple("VictimBlame", "victim container_ns top")
VictimBlame.__doc__ = """One victim's interval: what container cgroups took from it
(``container_ns``), and its largest culprit (``top``, a BlameChange; None:
none grew)."""


def _struct(name: str) -> struct.Struct:
    members = {
        "struct pyrunq_blame_entry": "=2Q2IQ17s",
        "struct pyrunq_victim_blame": "=2Qq",
    }[name]
    return struct.Struct(f"{members}{ffi.sizeof(name) - struct.calcsize(members)}x")


_ENTRY, _VICTIM = _struct("struct pyrunq_blame_entry"), _struct("struct pyrunq_victim_blame")
_ROW = struct.Struct(f"=Qq{_ENTRY.size}s{ffi.sizeof('struct pyrunq_row_blame') - 16 - _ENTRY.size}x")


class RowBlames:
    """Per row of a ``StatsRows``: its victim's ``(container_ns, top)``
    (``top``: its largest culprit, a BlameChange, or None), packed as C
    wrote them; decoded only for the rows asked for."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def __getitem__(self, i: int) -> tuple[int, BlameChange | None]:
        container_ns, has_top, top = _ROW.unpack_from(self.raw, i * _ROW.size)
        return container_ns, _entry(_ENTRY.unpack(top)) if has_top else None


def _offsets(layout: Layout, names) -> list[int]:
    members = {name: offset for name, offset, _ in getattr(layout.codec, "members", ())}
    try:
        return [members[n] for n in names]
    except KeyError as e:
        raise ValueError(f"not runqlat's culprit table: no member {e.args[0]}") from None


class BlameDiffs(NativeTable):
    """The baselines of the culprit table's entries, kept in C. ``other``:
    enum blame_kind's BLAME_OTHER. Each interval: ``diff()`` a ``read()``,
    name the cgroups ``unnamed()`` lists (``name()``), then ``victims()``
    and ``changes()``. One thread at a time may use it."""

    def __init__(self, key_layout: Layout, value_layout: Layout, other: int):
        offsets = _offsets(key_layout, KEY_FIELDS) + _offsets(value_layout, VALUE_FIELDS)
        comm = {n: c for n, _, c in getattr(value_layout.codec, "members", ())}["comm"]  # _offsets found it
        ptr = lib.pyrunq_blames_new(
            key_layout.size, value_layout.size, ffi.new("size_t[]", offsets), comm.size, other
        )
        if ptr == ffi.NULL:
            raise ValueError("not runqlat's culprit table layout, or out of memory")
        c_table = (lib.pyrunq_blames_free, lib.pyrunq_blames_len, lib.pyrunq_blames_diff)
        super().__init__(ptr, key_layout.size, value_layout.size, *c_table, "culprit table")
        self._n = ffi.new("size_t *")

    def changes(self) -> list[BlameChange]:
        """The last diff's entries that grew, in map order."""
        ptr = lib.pyrunq_blames_changes(self._table(), self._n)
        return _entries(ptr, self._n[0])

    def unnamed(self) -> list[int]:
        """Cgroups of the last diff's other-cgroup culprits not named yet."""
        ptr = lib.pyrunq_blames_unnamed(self._table(), self._n)
        return ffi.unpack(ptr, self._n[0]) if self._n[0] else []

    def name(self, cgroup_id: int, container: bool) -> None:
        """Say whether a cgroup is a container's (asked once per cgroup)."""
        if lib.pyrunq_blames_name(self._table(), cgroup_id, container) < 0:
            raise MemoryError("out of memory for the cgroups' names")

    def victims(self) -> list[VictimBlame]:
        """Per victim of the last diff, in the order first seen: the part of
        container cgroups (a cgroup not named is not one), and the largest
        culprit (the first of equals)."""
        if lib.pyrunq_blames_sum(self._table()) < 0:
            raise MemoryError("out of memory for the victims' sums")
        ptr = lib.pyrunq_blames_victims(self._table(), self._n)
        n = self._n[0]
        if not n:
            return []
        changes = ffi.buffer(lib.pyrunq_blames_changes(self._table(), self._n), self._n[0] * _ENTRY.size)
        return [
            VictimBlame(v, c, _entry(_ENTRY.unpack_from(changes, top * _ENTRY.size)) if top >= 0 else None)
            for v, c, top in _VICTIM.iter_unpack(ffi.buffer(ptr, n * _VICTIM.size))
        ]

    def join(self, rows, carry: bool = False, clear: bool = True) -> RowBlames:
        """Per row of a ``StatsRows`` (its key a victim), what ``victims()``
        says of it, computed in C and kept packed (``RowBlames``). With
        ``carry``, each row's containers' part is at most its histogram's
        other cgroups' (the histogram read before the table), the rest
        carried to the victim's next interval (kept with ``clear``), as
        ``Attributions.attribution(raw=key)`` does; a victim without a row
        carries all of its part."""
        if lib.pyrunq_blames_sum(self._table()) < 0:
            raise MemoryError("out of memory for the victims' sums")
        n = len(rows)
        out = ffi.new("struct pyrunq_row_blame[]", max(n, 1))
        stats = ffi.from_buffer("struct pyrunq_key_stats[]", rows.raw)
        err = lib.pyrunq_blames_join(self._table(), stats, n, out, carry, clear)
        if err == -errno.ENOMEM:
            raise MemoryError("out of memory for the carried parts")
        if err < 0:
            raise RuntimeError("the victims' sums are not the last diff's")
        return RowBlames(ffi.buffer(out, n * _ROW.size)[:])

    def forget(self, victims=(), cgroups=()) -> list[tuple[int, int, int, int]]:
        """Forget the entries of these victims, and of culprits in these
        cgroups; return their keys (victim, cgroup_id, culprit, kind), for
        the caller to delete from the map."""
        v, c = list(victims), list(cgroups)
        n = lib.pyrunq_blames_forget(
            self._table(), ffi.new("uint64_t[]", v), len(v), ffi.new("uint64_t[]", c), len(c)
        )
        if n < 0:
            raise MemoryError("out of memory for the forgotten entries")
        ptr = lib.pyrunq_blames_forgotten(self._table(), self._n)
        return [e[:4] for e in _entries(ptr, self._n[0])]

    def cgroups(self) -> list[int]:
        """The distinct cgroups of the culprits with a baseline."""
        ids = ffi.new("uint64_t[]", max(1, len(self)))
        return ffi.unpack(ids, lib.pyrunq_blames_cgroups(self._table(), ids))


def _entries(ptr, n: int) -> list[BlameChange]:
    return [_entry(e) for e in _ENTRY.iter_unpack(ffi.buffer(ptr, n * _ENTRY.size))] if n else []


def _entry(fields) -> BlameChange:
    victim, cgroup_id, culprit, kind, ns, comm = fields
    return BlameChange(victim, cgroup_id, culprit, kind, ns, comm.split(b"\0", 1)[0])


__all__ = ["BlameChange", "BlameDiffs", "RowBlames", "VictimBlame"]
