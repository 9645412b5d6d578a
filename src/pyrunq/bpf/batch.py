"""RawBatch: every entry of a map, read raw with batch lookups into buffers
that C reads in place; NativeTable: what ``HistDiffs`` and ``BlameDiffs``
share, a C table of one map's baselines with one Python owner. No Python
object per entry."""

from __future__ import annotations

import errno

from .. import libbpf
from ..libbpf import ffi, lib

# the read buffers are malloc'd, not zeroed: untouched pages of a large map's
# buffer stay out of the resident set
_alloc = ffi.new_allocator(should_clear_after_alloc=False)


class RawBatch:
    """Read buffers for maps of ``key_size`` and ``value_size`` bytes,
    growing as needed and reused from one read to the next."""

    def __init__(self, key_size: int, value_size: int):
        self.key_size, self.value_size = key_size, value_size
        self._keys = self._values = ffi.NULL  # room for _cap entries
        self._cap = 0

    def read(self, m) -> tuple[object, object, int]:
        """Every entry of map ``m``, raw: (keys, values, count), keys and
        values as buffers (no copy) that the next read overwrites."""
        if (m.key_size, m.value_size) != (self.key_size, self.value_size) or m.percpu:
            raise ValueError(f"map {m.name!r} does not hold this layout")
        fd = m.fileno()
        opts = ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_batch_opts")
        cursor = max(self.key_size, 8)
        in_batch, out_batch = ffi.new("char[]", cursor), ffi.new("char[]", cursor)
        count = ffi.new("__u32 *")
        self._reserve(m.max_entries)
        total, start = 0, ffi.NULL
        while True:
            if total == self._cap:
                self._reserve(2 * self._cap)
            count[0] = self._cap - total
            ret = lib.bpf_map_lookup_batch(
                fd,
                start,
                out_batch,
                self._keys + total * self.key_size,
                self._values + total * self.value_size,
                count,
                opts,
            )
            if ret == -errno.ENOSPC:  # a hash bucket larger than the room left
                self._reserve(2 * self._cap)
                continue
            if ret < 0 and ret != -errno.ENOENT:
                libbpf.check(ret, "lookup batch", m.name)
            total += count[0]
            if ret == -errno.ENOENT:
                return (
                    ffi.buffer(self._keys, total * self.key_size),
                    ffi.buffer(self._values, total * self.value_size),
                    total,
                )
            ffi.memmove(in_batch, out_batch, cursor)
            start = in_batch

    def _reserve(self, n: int) -> None:
        """Read buffers for n entries, keeping what they hold."""
        if n <= self._cap:
            return
        keys, values = _alloc("char[]", n * self.key_size), _alloc("char[]", n * self.value_size)
        if self._cap:
            ffi.memmove(keys, self._keys, self._cap * self.key_size)
            ffi.memmove(values, self._values, self._cap * self.value_size)
        self._keys, self._values, self._cap = keys, values, n


class NativeTable:
    """A table kept in C (``ptr``) of the baselines of one map's entries,
    and the buffers its map is read into. ``free``, ``length`` and ``diff``:
    the C table's functions; ``what``: its name in errors."""

    def __init__(self, ptr, key_size: int, value_size: int, free, length, diff, what: str) -> None:
        if ptr == ffi.NULL:
            raise ValueError(f"not the layout of a {type(self).__name__} (or out of memory)")
        self._t = ffi.gc(ptr, free)
        self._batch = RawBatch(key_size, value_size)
        self._length, self._diff, self._what = length, diff, what  # the C table's functions, its name

    def close(self) -> None:
        """Free the C side now (otherwise when this object is collected)."""
        if self._t is not None:
            ffi.release(self._t)
            self._t = None

    def _table(self):
        if self._t is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._t

    def __len__(self) -> int:
        """How many entries have a baseline."""
        return self._length(self._table())

    def read(self, m) -> tuple[object, object, int]:
        """Every entry of map ``m``, raw: (keys, values, count), as buffers
        (no copy) that the next read overwrites."""
        return self._batch.read(m)

    def diff(self, keys, values, count: int, clear: bool = True) -> None:
        """Compare ``count`` raw entries (keys and values packed as a batch
        read returns them, in any buffers) with the baselines; with
        ``clear``, the baselines move to them."""
        k, v = ffi.from_buffer(keys), ffi.from_buffer(values)
        ret = self._diff(self._table(), k, len(k), v, len(v), count, clear)
        if ret == -errno.EINVAL:
            raise ValueError(f"buffers too short for {count} entries")
        if ret < 0:
            raise MemoryError(f"out of memory for the {self._what}'s baselines")
