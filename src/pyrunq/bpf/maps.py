"""Map: a BPF map as a Python mapping, keys and values typed by BTF."""

from __future__ import annotations

import errno
import os

from .. import libbpf
from ..errors import BPFError
from ..libbpf import ffi, lib
from .btf import ENUM, ENUM64, PTR, STRUCT, VAR

# enum bpf_map_type values used here
HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH = 1, 2, 5, 6, 9, 10
PERF_EVENT_ARRAY, RINGBUF = 4, 27
EVENT_TYPES = {PERF_EVENT_ARRAY, RINGBUF}  # maps whose records stream to user space
PERCPU_TYPES = {PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH}
ARRAY_TYPES = {ARRAY, PERCPU_ARRAY}
BATCH_TYPES = {HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH}
_MISSING = object()


class Map:
    """``m[k]``, ``m[k] = v``, ``del m[k]``, ``k in m``, ``keys()``, ``items()``...

    Keys and values are Python values converted through the map's BTF types
    (ints, str for ``char[]``, namedtuples for structs); ``bytes`` of the
    exact size are always accepted. A per-CPU map's value is a list with one
    entry per possible CPU. Walks take a snapshot of the keys first, so code
    that deletes entries while iterating neither skips nor repeats keys.
    """

    def __init__(self, ptr, obj):
        self._ptr, self._obj = ptr, obj
        self.name = libbpf.name(lib.bpf_map__name(ptr))
        self.type = lib.bpf_map__type(ptr)
        self.key_size = lib.bpf_map__key_size(ptr)
        self.percpu = self.type in PERCPU_TYPES
        self._ncpus = lib.libbpf_num_possible_cpus() if self.percpu else 1
        self.key_type_id = lib.bpf_map__btf_key_type_id(ptr)  # 0: no BTF type
        self.value_type_id = lib.bpf_map__btf_value_type_id(ptr)
        self.key_layout = obj.btf.layout(self.key_type_id, self.key_size)
        # an event map that names its record, __type(value, struct event), as
        # cilium/ebpf's examples do (bpf2go makes the Go type from it): that struct
        self.record_type_id = (
            self.value_type_id
            if self.type in EVENT_TYPES
            and self.value_type_id
            and obj.btf.kind(obj.btf.resolve(self.value_type_id)) == STRUCT
            else 0
        )
        self._set_value_size(lib.bpf_map__value_size(ptr))
        self._batch_ok = self.type in BATCH_TYPES
        self._counter_names: dict[int, str] | None = None

    def __repr__(self):
        return f"<Map {self.name!r} type={self.type} key={self.key_size}B value={self.value_size}B>"

    @property
    def cpus(self) -> int:
        """How many values a key holds: one per possible CPU in a per-CPU map, else 1."""
        return self._ncpus

    @property
    def type_name(self) -> str:
        """libbpf's name of the map type: "hash", "array", "ringbuf"..."""
        name = lib.libbpf_bpf_map_type_str(self.type)
        return ffi.string(name).decode() if name != ffi.NULL else str(self.type)

    @property
    def pin_path(self) -> str | None:
        """Where libbpf pins this map at load (``LIBBPF_PIN_BY_NAME``), or None."""
        path = lib.bpf_map__pin_path(self._ptr)
        return libbpf.name(path) if path != ffi.NULL else None

    @pin_path.setter
    def pin_path(self, path: str | None) -> None:
        self._obj._require("open", f"set the pin path of map {self.name!r}")
        libbpf.check(
            lib.bpf_map__set_pin_path(self._ptr, ffi.NULL if path is None else os.fsencode(path)),
            "set pin path of map",
            self.name,
        )

    @property
    def max_entries(self) -> int:
        """How many entries the map holds at most (settable before load)."""
        return lib.bpf_map__max_entries(self._ptr)

    @max_entries.setter
    def max_entries(self, n: int) -> None:
        self._obj._require("open", f"resize map {self.name!r}")
        libbpf.check(lib.bpf_map__set_max_entries(self._ptr, n), "resize map", self.name)

    def _set_value_size(self, size: int) -> None:
        self.value_size = size
        self._stride = (size + 7) & ~7 if self.percpu else size
        self.value_layout = self._obj.btf.layout(self.value_type_id, size)

    def resize_value(self, size: int) -> None:
        """Set the value size before load (maps whose user space sizes them,
        such as a stack trace map's depth)."""
        self._obj._require("open", f"resize the values of map {self.name!r}")
        libbpf.check(lib.bpf_map__set_value_size(self._ptr, size), "resize values of map", self.name)
        self._set_value_size(size)

    def drop_record_sizes(self) -> bool:
        """Before load: make an event map that names its record (``__type(value,
        struct event)``, cilium/ebpf's way) one the kernel creates. libbpf 1.1
        hands the record's sizes and type to the kernel, which takes a ring
        buffer only without key and value and a perf event array only with
        4-byte keys and values (CPU -> perf event fd): EINVAL. cilium/ebpf's
        loader drops them first; so does this (the ring buffer is created here
        without them, and libbpf takes its fd). The record's type stays in
        ``record_type_id``. Whether anything was dropped."""
        self._obj._require("open", f"drop the record sizes of map {self.name!r}")
        size = lib.bpf_map__value_size(self._ptr)
        key_size = lib.bpf_map__key_size(self._ptr)
        if self.type == RINGBUF and (size or key_size):
            # libbpf 1.1 cannot be told to leave the BTF types out: the map is made here
            fd = libbpf.check(
                lib.pyrunq_ringbuf_create(self.name.encode(), self.max_entries),
                "create ring buffer",
                self.name,
            )
            try:
                libbpf.check(lib.bpf_map__reuse_fd(self._ptr, fd), "create ring buffer", self.name)
            finally:
                os.close(fd)  # libbpf keeps its own copy
            return True
        if self.type == PERF_EVENT_ARRAY and (size, key_size) != (4, 4):
            # libbpf leaves a perf event array's BTF types out by itself
            libbpf.check(lib.bpf_map__set_key_size(self._ptr, 4), "resize keys of map", self.name)
            libbpf.check(lib.bpf_map__set_value_size(self._ptr, 4), "resize values of map", self.name)
            return True
        return False

    def skip_creation(self) -> None:
        """Do not create this map at load (its programs are not loaded either)."""
        self._obj._require("open", f"skip creating map {self.name!r}")
        libbpf.check(lib.bpf_map__set_autocreate(self._ptr, False), "skip creating map", self.name)

    def fileno(self) -> int:
        """The map's fd (once loaded)."""
        self._loaded("get the fd of")
        return lib.bpf_map__fd(self._ptr)

    def _loaded(self, action: str) -> None:
        self._obj._require("loaded", f"{action} map {self.name!r}")

    # -- conversion -------------------------------------------------------

    def _key(self, key) -> bytes:
        try:
            return self.key_layout.encode(key)
        except ValueError as e:
            raise TypeError(f"bad key for map {self.name!r}: {e}") from None

    def _value(self, value) -> bytes:
        try:
            if not self.percpu:
                return self.value_layout.encode(value)
            if len(value) != self._ncpus:
                raise ValueError(f"per-CPU map needs {self._ncpus} values, got {len(value)}")
            pad = bytes(self._stride - self.value_size)
            return b"".join(self.value_layout.encode(v) + pad for v in value)
        except ValueError as e:
            raise TypeError(f"bad value for map {self.name!r}: {e}") from None

    def _decode_value(self, buf, offset: int = 0):
        if not self.percpu:
            return self.value_layout.decode(buf, offset)
        return [self.value_layout.decode(buf, offset + cpu * self._stride) for cpu in range(self._ncpus)]

    # -- single elements --------------------------------------------------

    def lookup_bytes(self, key):
        """The raw value bytes for ``key``; KeyError if absent."""
        self._loaded("look up in")
        k = self._key(key)
        size = self._stride * self._ncpus
        buf = ffi.new("char[]", size)
        ret = lib.bpf_map__lookup_elem(self._ptr, k, len(k), buf, size, 0)
        if ret == -errno.ENOENT:
            raise KeyError(key)
        libbpf.check(ret, "lookup in map", self.name)
        return ffi.buffer(buf, size)[:]

    def __getitem__(self, key):
        return self._decode_value(self.lookup_bytes(key))

    def get(self, key, default=None):
        """The value at ``key``, or ``default`` when there is none."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __setitem__(self, key, value) -> None:
        self._loaded("update")
        k, v = self._key(key), self._value(value)
        libbpf.check(lib.bpf_map__update_elem(self._ptr, k, len(k), v, len(v), 0), "update map", self.name)

    def __delitem__(self, key) -> None:
        self._loaded("delete from")
        k = self._key(key)
        ret = lib.bpf_map__delete_elem(self._ptr, k, len(k), 0)
        if ret == -errno.ENOENT:
            raise KeyError(key)
        libbpf.check(ret, "delete from map", self.name)

    # -- walks ------------------------------------------------------------

    def _raw_keys(self) -> list[bytes]:
        """Every key, by get_next_key; at most max_entries steps, duplicates dropped."""
        self._loaded("walk")
        size = self.key_size
        bufs = (ffi.new("char[]", size), ffi.new("char[]", size))
        seen, keys, prev = set(), [], ffi.NULL
        for i in range(self.max_entries):
            nxt = bufs[i % 2]
            ret = lib.bpf_map__get_next_key(self._ptr, prev, nxt, size)
            if ret == -errno.ENOENT:
                break
            libbpf.check(ret, "walk map", self.name)
            k = ffi.buffer(nxt, size)[:]
            if k not in seen:
                seen.add(k)
                keys.append(k)
            prev = nxt
        return keys

    def keys(self) -> list:
        """Every key, as a list."""
        return [self.key_layout.decode(k) for k in self._raw_keys()]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._raw_keys())

    def _walk_items(self) -> list[tuple]:
        out = []
        for k in self._raw_keys():
            try:  # a key deleted since the walk saw it is skipped
                out.append((self.key_layout.decode(k), self._decode_value(self.lookup_bytes(k))))
            except KeyError:
                continue
        return out

    def items(self) -> list[tuple]:
        """All (key, value) pairs: one batch syscall per chunk where the kernel can."""
        if self._batch_ok:
            try:
                return self.lookup_batch()
            except BPFError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, 524):
                    raise
                self._batch_ok = False
        return self._walk_items()

    def counters(self, names=None) -> dict[str, int]:
        """An array of counters (per-CPU or not) as {name: total}, in index
        order: the kernel side's tallies of what it dropped, by reason. Index i
        is named ``names[i]``; without ``names``, as ``counter_names()`` says."""
        index = self.counter_names() if names is None else dict(enumerate(names))
        if not index:
            raise KeyError(
                f"map {self.name!r}: no enum names its elements (the global "
                f"{self.name}_keys points to one, see bpf/stats.bpf.h)"
            )
        totals = dict(self.items())
        return {name: sum(totals[i]) if self.percpu else totals[i] for i, name in index.items()}

    def counter_names(self) -> dict[int, str]:
        """Index -> name of this array's elements, from the object's BTF: the
        enum that the global ``<map>_keys`` points to (``const enum runq_stat
        *const stats_keys``, bpf/stats.bpf.h; an array's key cannot be an enum).
        Each enumerator below ``max_entries`` names its index, in lowercase and
        without the prefix every enumerator shares: RUNQ_STAT_CLOCK_SKEW ->
        "clock_skew"; the count (RUNQ_STAT_MAX) is past the end. Empty when
        the object has no such global. Read once, from the object's BTF only."""
        if self._counter_names is None:
            self._counter_names = self._read_counter_names()
        return self._counter_names

    def _read_counter_names(self) -> dict[int, str]:
        btf = self._obj.btf
        try:
            var = btf.find(f"{self.name}_keys", VAR)
        except KeyError:
            return {}
        tid = btf.resolve(btf.pointee(var))  # a VAR's type, through const
        if btf.kind(tid) == PTR:
            tid = btf.resolve(btf.pointee(tid))
        if btf.kind(tid) not in (ENUM, ENUM64):
            return {}
        values = btf.enum_values(tid)
        prefix = os.path.commonprefix(list(values))
        prefix = prefix[: prefix.rfind("_") + 1]  # whole words: RUNQ_STAT_, not RUNQ_STAT_S
        names: dict[int, str] = {}
        for name, value in sorted(values.items(), key=lambda item: item[1]):
            if 0 <= value < self.max_entries:
                names.setdefault(value, name[len(prefix) :].lower())
        return names

    def values(self) -> list:
        """Every value, as a list."""
        return [v for _, v in self.items()]

    def clear(self) -> None:
        """Delete every entry (arrays: zero every element)."""
        if self.type in ARRAY_TYPES:
            zero = bytes(self.value_size)
            for k in self._raw_keys():
                self[k] = [zero] * self._ncpus if self.percpu else zero
            return
        for k in self._raw_keys():
            try:
                del self[k]
            except KeyError:
                pass

    # -- batch operations (kernel 5.6+) --------------------------------------

    def lookup_batch(self, chunk: int = 256) -> list[tuple]:
        """Every (key, value) pair, read ``chunk`` at a time with the batch call."""
        return self._batch(lib.bpf_map_lookup_batch, "lookup batch", chunk)

    def lookup_and_delete_batch(self, chunk: int = 256) -> list[tuple]:
        """Read and remove every entry of a hash map, chunk by chunk."""
        return self._batch(lib.bpf_map_lookup_and_delete_batch, "lookup and delete batch", chunk)

    def _batch(self, fn, op: str, chunk: int) -> list[tuple]:
        self._loaded(op)
        fd = lib.bpf_map__fd(self._ptr)
        opts = ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_batch_opts")
        cursor = max(self.key_size, 8)
        in_batch, out_batch = ffi.new("char[]", cursor), ffi.new("char[]", cursor)
        count = ffi.new("__u32 *")
        chunk = max(1, min(chunk, self.max_entries))
        vsize = self._stride * self._ncpus
        out, start = [], ffi.NULL
        while True:
            keys, values = ffi.new("char[]", chunk * self.key_size), ffi.new("char[]", chunk * vsize)
            count[0] = chunk
            ret = fn(fd, start, out_batch, keys, values, count, opts)
            if ret == -errno.ENOSPC and chunk < self.max_entries:
                chunk *= 2  # a hash bucket larger than the chunk
                continue
            if ret < 0 and ret != -errno.ENOENT:
                libbpf.check(ret, op, self.name)
            kbuf, vbuf = ffi.buffer(keys), ffi.buffer(values)
            for i in range(count[0]):
                out.append(
                    (self.key_layout.decode(kbuf, i * self.key_size), self._decode_value(vbuf, i * vsize))
                )
            if ret == -errno.ENOENT:
                return out
            ffi.memmove(in_batch, out_batch, cursor)
            start = in_batch
