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

import errno

from .. import libbpf
from ..libbpf import ffi, lib
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

# the read buffers are malloc'd, not zeroed: untouched pages of a large map's
# buffer stay out of the resident set
_alloc = ffi.new_allocator(should_clear_after_alloc=False)


class HistDiffs:
    """The baselines of a histogram map's keys, kept in C.

    ``key_size``: 4 or 8; ``value_layout``: the map's value type (from its
    BTF), a struct with ``buckets`` (100 u32 counters) and ``comm``
    (``char[]``). ``diff()`` compares a batch read's raw entries with the
    baselines (and, with ``clear``, moves the baselines to them);
    ``render()`` writes the text of the keys that changed. One thread at a
    time may use it.
    """

    def __init__(self, key_size: int, value_layout: Layout):
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
        self._t = ffi.gc(ptr, lib.pyrunq_hists_free)
        self.key_size, self.value_size = key_size, value_layout.size
        self._n = ffi.new("size_t *")
        self._text = ffi.new("char **")
        self._keys = self._values = ffi.NULL  # the read buffers, room for _cap entries
        self._cap = 0

    def close(self) -> None:
        """Free the C side now (otherwise when this object is collected)."""
        if self._t is not None:
            ffi.release(self._t)
            self._t = None

    def _table(self):
        if self._t is None:
            raise ValueError("HistDiffs is closed")
        return self._t

    def __len__(self) -> int:
        """How many keys have a baseline."""
        return lib.pyrunq_hists_len(self._table())

    # -- reading --------------------------------------------------------------

    def read(self, m) -> tuple[object, object, int]:
        """Every entry of map ``m`` (a ``Map`` of this layout), raw: (keys,
        values, count), keys and values as buffers (no copy) that the next
        read overwrites."""
        if (m.key_size, m.value_size) != (self.key_size, self.value_size) or m.percpu:
            raise ValueError(f"map {m.name!r} does not hold this histogram layout")
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

    # -- differences and text -------------------------------------------------

    def diff(self, keys, values, count: int, clear: bool = True) -> None:
        """Compare ``count`` raw entries (keys and values packed as a batch
        read returns them, in any buffers) with the baselines."""
        k, v = ffi.from_buffer(keys), ffi.from_buffer(values)
        ret = lib.pyrunq_hists_diff(self._table(), k, len(k), v, len(v), count, clear)
        if ret == -errno.EINVAL:
            raise ValueError(f"buffers too short for {count} entries")
        if ret < 0:
            raise MemoryError("out of memory for the histogram baselines")

    def changed(self) -> list[int]:
        """The keys with new samples in the last diff, in map order."""
        return self._keys_of(lib.pyrunq_hists_changed)

    def idle(self) -> list[int]:
        """The keys without new samples in the last diff."""
        return self._keys_of(lib.pyrunq_hists_idle)

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


__all__ = ["HEADINGS", "HistDiffs"]
