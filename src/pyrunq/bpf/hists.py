"""HistDiffs: per-key differences of a map of cumulative histograms, and
their runqlat text, computed in C (the extension's ``pyrunq_hists_*``).

runqlat's ``hists`` map holds a cumulative ``struct hist`` per key
(bpf/runq.h). Each interval the map is read raw with one batch call; C
subtracts each key's previous counts (kept on the C side), folds the fine
buckets into log2 slots and writes the sections exactly as libbpf-tools'
runqlat prints them. No value becomes a Python object on the way. The
Python version of the same work (``pyrunq.tools.runqlat``, ``pyrunq.hist``)
is the reference the tests compare with.
"""

from __future__ import annotations

import collections
import errno
import struct

from ..libbpf import ffi, lib
from .batch import NativeTable
from .codecs import Array, Layout

# how each section's heading is made: None (one histogram, no heading),
# "tid"/"pid" ("tid = %d <comm>"), "pidns" ("pidns = %u <comm>"), "cgroup"
# ("cgroup = <path>", the paths given to render())
HEADINGS = {
    None: lib.PYRUNQ_HEADING_NONE,
    "tid": lib.PYRUNQ_HEADING_TID,
    "pid": lib.PYRUNQ_HEADING_PID,
    "pidns": lib.PYRUNQ_HEADING_PIDNS,
    "cgroup": lib.PYRUNQ_HEADING_CGROUP,
}


# (a collections.namedtuple: typing costs every start 2 ms)
KeyStats = collections.namedtuple("KeyStats", "key waits sum_ns max p50 p99 blame_ns comm")
KeyStats.__doc__ = """One changed key's interval (``HistDiffs(stats=True)``): ``waits``,
their exact ``sum_ns``, ``p50``/``p99``/``max`` from the fine buckets (in
the histogram's unit, as ``pyrunq.hist.percentiles`` and ``highest_bound``
give them), ``blame_ns`` by enum blame_kind (zeros without them), and the
``comm`` bytes."""

_STATS_MEMBERS = "=4Q2d5Q17s"  # struct pyrunq_key_stats's, then its padding
_STATS = struct.Struct(
    f"{_STATS_MEMBERS}{ffi.sizeof('struct pyrunq_key_stats') - struct.calcsize(_STATS_MEMBERS)}x"
)


# what StatsRows.order() sorts by: pyrunq top's columns but the name
ORDERS = {
    "key": lib.PYRUNQ_ORDER_KEY,
    "waits": lib.PYRUNQ_ORDER_WAITS,
    "avg": lib.PYRUNQ_ORDER_AVG,
    "p50": lib.PYRUNQ_ORDER_P50,
    "p99": lib.PYRUNQ_ORDER_P99,
    "max": lib.PYRUNQ_ORDER_MAX,
    "sum": lib.PYRUNQ_ORDER_SUM,
}
# (key, waits, sum_ns, p99) of a struct pyrunq_key_stats: what every row needs
_COLUMNS = struct.Struct(f"=3Q16xd{_STATS.size - 48}x")
_KEY = struct.Struct("=Q")


class StatsRows:
    """One diff's ``KeyStats``, kept packed as C wrote them (a copy: the
    next diff does not change them): with 10,000 keys a refresh, an object
    is made only for the rows asked for. Row ``i`` is the diff's i-th
    changed key, in map order; a key made but not yet counted in has no
    waits (and no place in ``order()``)."""

    def __init__(self, raw: bytes):
        self.raw, self._n = raw, len(raw) // _STATS.size

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> KeyStats:
        if not 0 <= i < self._n:
            raise IndexError(i)
        k, w, s, m, p50, p99, *b, comm = _STATS.unpack_from(self.raw, i * _STATS.size)
        return KeyStats(k, w, s, m, p50, p99, tuple(b), comm.split(b"\0", 1)[0])

    def key(self, i: int) -> int:
        """Row i's key."""
        return _KEY.unpack_from(self.raw, i * _STATS.size)[0]

    def columns(self):
        """(key, waits, sum_ns, p99) of every row, in order."""
        return _COLUMNS.iter_unpack(self.raw)

    def order(self, column: str, seconds: float) -> list[int]:
        """The rows with waits, sorted in C: by ``column`` of ORDERS, the
        largest first ("key": the smallest), then the most waits, then the
        smallest key; the values compared are those pyrunq top's rows hold
        for an interval of ``seconds``."""
        if not self._n:
            return []
        out = ffi.new("size_t[]", self._n)
        rows = ffi.from_buffer("struct pyrunq_key_stats[]", self.raw)
        n = lib.pyrunq_stats_order(rows, self._n, ORDERS[column], seconds, out)
        if n == -errno.EINVAL:
            raise ValueError(f"cannot sort by {column!r} over {seconds} s")
        if n < 0:
            raise MemoryError("out of memory for the rows' order")
        return ffi.unpack(out, n)


class HistDiffs(NativeTable):
    """The baselines of a histogram map's keys, kept in C.

    ``key_size``: 4 or 8; ``value_layout``: the map's value type (from its
    BTF), a struct with ``buckets`` (100 u32 counters) and ``comm``
    (``char[]``). ``diff()`` compares a batch read's raw entries with the
    baselines (and, with ``clear``, moves the baselines to them);
    ``render()`` writes the text of the keys that changed. One thread at a
    time may use it.
    """

    def __init__(self, key_size: int, value_layout: Layout, stats: bool = False):
        members = {
            name: (offset, codec) for name, offset, codec in getattr(value_layout.codec, "members", ())
        }
        try:
            (b_off, buckets), (c_off, comm) = members["buckets"], members["comm"]
        except KeyError:
            raise ValueError("not a histogram value: needs the members buckets and comm") from None
        if not isinstance(buckets, Array) or buckets.elem.size != 4:
            raise ValueError("not a histogram value: buckets must be u32 counters")
        ptr = lib.pyrunq_hists_new(key_size, value_layout.size, b_off, buckets.n, c_off, comm.size)
        if ptr == ffi.NULL:
            raise ValueError(
                f"not runqlat's histogram layout (or out of memory): key {key_size} bytes, "
                f"value {value_layout.size} bytes"
            )
        c_table = (lib.pyrunq_hists_free, lib.pyrunq_hists_len, lib.pyrunq_hists_diff)
        super().__init__(ptr, key_size, value_layout.size, *c_table, "histogram map")
        if stats:
            self._with_stats(members)
        self.key_size, self.value_size = key_size, value_layout.size
        self._n = ffi.new("size_t *")
        self._text = ffi.new("char **")

    def _with_stats(self, members: dict) -> None:
        """Stats from the u64 ``sum_ns`` and ``blame_ns[5]`` where the value has them."""
        none = lib.PYRUNQ_NO_MEMBER
        sum_off = members["sum_ns"][0] if "sum_ns" in members else none
        blame = members.get("blame_ns")
        blame_off = blame[0] if blame and isinstance(blame[1], Array) and blame[1].n == 5 else none
        if lib.pyrunq_hists_with_stats(self._t, sum_off, blame_off) < 0:
            raise ValueError("not runqlat's histogram layout: sum_ns or blame_ns out of the value")

    # -- differences and text -------------------------------------------------

    def changed(self) -> list[int]:
        """The keys with new samples in the last diff, in map order."""
        return self._keys_of(lib.pyrunq_hists_changed)

    def idle(self) -> list[int]:
        """The keys without new samples in the last diff."""
        return self._keys_of(lib.pyrunq_hists_idle)

    def stats(self) -> tuple[list[KeyStats], list[int]]:
        """The last diff's changed keys as ``KeyStats``, in map order, and
        their new counts together, bucket by bucket (``stats=True``)."""
        total = ffi.new("const uint64_t **")
        ptr = lib.pyrunq_hists_stats(self._table(), self._n, total)
        raw = ffi.buffer(ptr, self._n[0] * _STATS.size) if self._n[0] else b""
        rows = [
            KeyStats(k, w, s, m, p50, p99, tuple(b), comm.split(b"\0", 1)[0])
            for k, w, s, m, p50, p99, *b, comm in _STATS.iter_unpack(raw)
        ]
        return rows, ffi.unpack(total[0], lib.PYRUNQ_BUCKETS)

    def stats_rows(self) -> tuple[StatsRows, list[int]]:
        """What ``stats()`` gives, kept packed (``StatsRows``)."""
        total = ffi.new("const uint64_t **")
        ptr = lib.pyrunq_hists_stats(self._table(), self._n, total)
        raw = ffi.buffer(ptr, self._n[0] * _STATS.size)[:] if self._n[0] else b""
        return StatsRows(raw), ffi.unpack(total[0], lib.PYRUNQ_BUCKETS)

    def _keys_of(self, fn) -> list[int]:
        ptr = fn(self._table(), self._n)
        return ffi.unpack(ptr, self._n[0]) if self._n[0] else []

    def render(self, per: str | None, unit: str, names=None) -> bytes:
        """The sections of the last diff's changed keys as runqlat prints
        them: headings as ``per`` says (HEADINGS), for "cgroup" from
        ``names`` (one path per changed key, in their order), then the log2
        histogram in ``unit`` ("usecs" or "msecs")."""
        if per == "cgroup":
            held = [ffi.new("char[]", n.encode("utf-8", "surrogateescape")) for n in names or ()]
            c_names = ffi.new("char *[]", held)
        else:
            held, c_names = [], ffi.NULL
        n = lib.pyrunq_hists_render(
            self._table(), HEADINGS[per], unit.encode(), c_names, len(held), self._text
        )
        if n == -errno.EINVAL:
            raise ValueError("one name per changed key is needed for cgroup headings")
        if n < 0:
            raise MemoryError("out of memory for the histogram text")
        return ffi.buffer(self._text[0], n)[:]

    def forget(self, key: int) -> None:
        """Drop key's baseline: a key seen again later starts from zero."""
        lib.pyrunq_hists_forget(self._table(), key)


__all__ = ["HEADINGS", "ORDERS", "HistDiffs", "KeyStats", "StatsRows"]
