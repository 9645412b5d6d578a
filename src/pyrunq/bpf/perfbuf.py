"""PerfBuffer: records from a BPF perf event array, the twin of RingBuffer.

Most published CO-RE tools stream their events through a
``BPF_MAP_TYPE_PERF_EVENT_ARRAY``: one buffer of ``pages`` pages per CPU,
which the kernel fills with ``bpf_perf_event_output()``. The map has either a
callback, called with every record, or none, in which case records queue up
for ``events()``. Records are decoded by a BTF layout (``event="event"``) or
handed over as bytes. An exception raised by a callback is re-raised from
``poll()``/``consume()``; the records read after it are kept for the next call.

Two differences from a ring buffer. A perf buffer says what it lost: when a
CPU's buffer is full the kernel drops the sample, counts it, and reports the
count with the next sample that fits; ``lost`` is the sum of those counts,
``lost_per_cpu`` the same by CPU. And records keep their order within one CPU
only: each CPU has its own buffer.
"""

from __future__ import annotations

import collections
import errno

from .. import libbpf
from ..errors import StateError, UsageError
from ..libbpf import ffi, lib
from .ringbuf import Records

PERF_EVENT_ARRAY = 4  # enum bpf_map_type
DEFAULT_PAGES = 64  # per CPU: 256 KiB with 4 KiB pages, as libbpf-tools mostly use


@ffi.def_extern(onerror=libbpf.keep_interrupt)
def pyrunq_perfbuf_sample(ctx, cpu, data, size):
    pb = ffi.from_handle(ctx)
    try:
        buf = ffi.buffer(data, size)
        record = pb.decode(buf) if pb.decode else buf[:]
    except BaseException as e:  # noqa: BLE001 - re-raised by poll()
        if pb.error is None:
            pb.error = e
        return
    if pb.closing:  # a callback closed the buffer: nobody reads any more
        return
    # libbpf reads every record waiting and cannot be stopped (the callback
    # returns nothing): what this call may not hand over waits, in order
    if pb.error is None and pb.room():
        pb.deliver(record)
    else:
        pb.backlog.append(record)


@ffi.def_extern(onerror=libbpf.keep_interrupt)
def pyrunq_perfbuf_lost(ctx, cpu, cnt):
    pb = ffi.from_handle(ctx)
    pb.lost += cnt
    pb.lost_per_cpu[cpu] += cnt


def check_pages(pages) -> int:
    """The per-CPU buffer size in pages: a power of two, as perf's mmap needs."""
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1 or pages & (pages - 1):
        raise UsageError(f"perf buffer size must be a power of two of pages (1, 2, 4...), got {pages!r}")
    return pages


class PerfBuffer(Records):
    """The records of one perf event array ``map_``, ``pages`` pages per CPU.

    ``lost`` counts the samples the kernel dropped because a CPU's buffer was
    full, exactly (``lost_per_cpu``: by CPU); the kernel reports a count with
    that CPU's next sample that fits, so ``lost`` lags until then. A record handed over as bytes is
    the raw sample as the kernel stores it, padded with zeros so that with its
    4-byte size it fills whole 8-byte words (a 32-byte struct arrives as 36
    bytes); a layout decodes its first bytes.
    """

    def __init__(self, map_, callback=None, layout=None, pages: int = DEFAULT_PAGES):
        self._ptr = None
        self.name = map_.name
        check_pages(pages)
        if map_.type != PERF_EVENT_ARRAY:
            raise UsageError(f"map {map_.name!r} is a {map_.type_name} map, not a perf event array")
        self.callback = callback
        self.decode = layout.decode if layout is not None else None
        self.pages = pages
        self.pending: collections.deque = collections.deque()
        self.backlog: collections.deque = collections.deque()  # read, not yet handed over
        self.error: BaseException | None = None
        self.handled, self.budget = 0, 0  # records in this call, and its limit
        self.lost = 0
        self.lost_per_cpu: collections.Counter = collections.Counter()
        self._handle = ffi.new_handle(self)  # the callbacks' context, kept alive
        self._reading = self.closing = False  # inside libbpf; close() asked meanwhile
        libbpf.reset_warnings()
        self._ptr = libbpf.check_ptr(
            lib.perf_buffer__new(
                map_.fileno(),
                pages,
                lib.pyrunq_perfbuf_sample,
                lib.pyrunq_perfbuf_lost,
                self._handle,
                ffi.NULL,
            ),
            "open perf buffer",
            map_.name,
        )

    def __repr__(self):
        state = "closed" if self._ptr is None else f"{self.pages} pages per CPU"
        return f"<PerfBuffer {self.name!r} {state}, lost {self.lost}>"

    def room(self) -> bool:
        """Whether this call may hand over one more record."""
        return not self.budget or self.handled < self.budget

    def deliver(self, record) -> None:
        """Hand one record to the callback, or queue it for ``events()``."""
        try:
            if self.callback is None:
                self.pending.append(record)
            else:
                self.callback(record)
        except BaseException as e:  # noqa: BLE001 - re-raised by poll()
            self.error = e
        self.handled += 1

    def _live(self):
        if self._ptr is None:
            raise StateError(f"perf buffer {self.name!r} is closed")
        return self._ptr

    def _start(self, limit: int) -> None:
        """Begin a call: hand over what earlier calls read but kept back."""
        self.handled, self.budget = 0, limit
        while self.backlog and self.error is None and self.room():
            self.deliver(self.backlog.popleft())

    def _result(self, ret: int, op: str) -> int:
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        libbpf.raise_interrupt()
        if ret != -errno.EINTR:  # a signal: its Python handler runs next
            libbpf.check(ret, op, self.name)
        return self.handled

    def poll(self, timeout: float | None = None, limit: int = 0) -> int:
        """Wait up to ``timeout`` seconds (None: forever) and handle what came
        in; return how many records were handed over.

        ``limit`` bounds the records handed over by this call. libbpf reads
        every record waiting in the buffers that are ready (its sample callback
        returns nothing, so it cannot be stopped), so the records beyond the
        limit are kept, in order, and handed over first by the next call. That
        next call reads nothing new from the kernel while it still has
        ``limit`` kept records to hand over: a producer faster than the
        callbacks fills the kernel's buffers and shows in ``lost``, instead of
        growing memory here.
        """
        ptr = self._live()
        self._start(limit)
        if self.error is not None or not self.room():
            return self._result(0, "poll perf buffer")
        # records kept from an earlier call are there: do not wait for more
        ms = 0 if self.handled else -1 if timeout is None else max(0, int(timeout * 1000))
        if ms == 0:
            # Not an epoll_wait: a perf event's readiness is taken by whoever
            # polls it first, and a caller that select()ed our fileno() already
            # did (then epoll_wait finds nothing, and records wait until the
            # next wakeup). Read every CPU's buffer instead.
            return self._result(self._read(lib.perf_buffer__consume, ptr), "poll perf buffer")
        return self._result(self._read(lib.perf_buffer__poll, ptr, ms), "poll perf buffer")

    def consume(self, limit: int = 0) -> int:
        """Handle the records already there (at most ``limit``, the rest kept
        as for ``poll()``), without waiting."""
        ptr = self._live()
        self._start(limit)
        if self.error is not None or not self.room():
            return self._result(0, "consume perf buffer")
        return self._result(self._read(lib.perf_buffer__consume, ptr), "consume perf buffer")

    def _read(self, fn, *args) -> int:
        """Call libbpf to read; a close() from a callback frees the buffer after."""
        self._reading = True
        try:
            return fn(*args)
        finally:
            self._reading = False
            if self.closing:
                self.close()

    def fileno(self) -> int:
        """An epoll fd that is readable when records wait: for selectors / asyncio;
        when it is, ``poll(0)`` reads them.

        Records kept back by a ``limit`` are not in the kernel and do not make
        it readable: call ``poll(0)`` or ``consume()`` while ``backlog`` has any.
        """
        return lib.perf_buffer__epoll_fd(self._live())

    def close(self) -> None:
        """Free the perf buffer; twice is fine (from a callback too: after it returns)."""
        if self._ptr is None:
            return
        if self._reading:  # from a callback: libbpf is still inside the buffer
            self.closing = True
            return
        lib.perf_buffer__free(self._ptr)
        self._ptr = None
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
