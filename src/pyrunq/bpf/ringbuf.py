"""RingBuffer: records from one or more BPF ring buffer maps.

Each map has either a callback, called with every record, or none, in which
case records queue up for ``events()``. Records are decoded by a BTF layout
(``event="event"``, or as ``pyrunq.bpf.events`` pairs them) or handed over as bytes; or, with ``rows``
(``pyrunq.bpf.rows.EventRows``), written as text rows in C. An exception raised by a callback
stops the poll and is re-raised from ``poll()``/``consume()``.
"""

from __future__ import annotations

import collections
import errno

from .. import libbpf
from ..errors import StateError
from ..libbpf import ffi, lib

TYPE_CHECKING = False  # see globals.py
if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# What a callback returns when a poll's budget is spent: libbpf stops there
# and hands the value back from poll (native/rows.c's callback too).
_BUDGET_SPENT = lib.PYRUNQ_BUDGET_SPENT


class _Sink:
    __slots__ = ("rb", "callback", "decode")

    def __init__(self, rb, callback, layout):
        self.rb, self.callback = rb, callback
        self.decode = layout.decode if layout is not None else None


def _keep_interrupt(exc_type, exc, tb):
    libbpf.keep_interrupt(exc_type, exc, tb)
    return -1  # stop the poll, which raises it


@ffi.def_extern(onerror=_keep_interrupt)
def pyrunq_ringbuf_sample(ctx, data, size):
    sink = ffi.from_handle(ctx)
    try:
        buf = ffi.buffer(data, size)
        record = sink.decode(buf) if sink.decode else buf[:]
        rb = sink.rb
        if sink.callback is None:
            rb.pending.append(record)
        else:
            sink.callback(record)
        rb.handled += 1
        return _BUDGET_SPENT if rb.handled == rb.budget else 0
    except BaseException as e:  # noqa: BLE001 - re-raised by poll()
        sink.rb.error = e
        return -1


class Records:
    """What ring and perf buffers share: records without a callback queue in
    ``pending`` for ``events()``."""

    pending: collections.deque
    _ptr: object

    def poll(self, timeout: float | None = None, limit: int = 0) -> int:
        raise NotImplementedError

    def events(self, timeout: float | None = None):
        """Yield queued records; stop after ``timeout`` seconds with none, or on close."""
        while True:
            while self.pending:
                yield self.pending.popleft()
            if self._ptr is None or (self.poll(timeout) == 0 and not self.pending and timeout is not None):
                return

    __iter__ = events

    def fileno(self) -> int:
        raise NotImplementedError

    def __aiter__(self) -> AsyncIterator[object]:
        """``async for record in buffer``: the queued records, waiting for more
        in the running event loop (a reader on ``fileno()``) until close."""
        return self._arecords()

    async def _arecords(self) -> AsyncIterator[object]:
        import asyncio  # only for those who iterate so: it costs every start 10 ms

        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        fd = self.fileno()
        loop.add_reader(fd, ready.set)
        try:
            while self._ptr is not None:
                while self.pending:
                    yield self.pending.popleft()
                ready.clear()  # before the poll: a record after it sets it again
                if self.poll(0) == 0 and not self.pending:
                    await ready.wait()
        finally:
            loop.remove_reader(fd)


class RingBuffer(Records):
    """The records of one or more ring buffer maps, read together (one epoll).

    Usually made by ``BPFObject.ring_buffer()``, which owns it; ``add()``
    reads one more map. Each map's records go to its callback, or queue for
    ``events()``. ``poll()`` waits for records, ``consume()`` takes what is
    there; a callback's exception stops either and is raised from it. Unlike
    a perf buffer, a full ring buffer loses records without telling this
    side: the program counts its failed reservations.
    """

    def __init__(self) -> None:
        self._ptr = None
        self._handles: list = []  # keep the callback contexts alive
        self.pending: collections.deque = collections.deque()
        self.error: BaseException | None = None
        self.handled, self.budget = 0, 0  # records in this poll, and its limit
        self._rows: list = []  # the EventRows that write records in C

    def add(self, map_, callback=None, layout=None, rows=None) -> "RingBuffer":
        """Also read ``map_`` (a ring buffer Map), with its own callback and
        layout, or written as ``rows`` (an EventRows) in C."""
        if rows is not None:
            sample, ctx = rows.sample, rows.ptr
            self._rows.append(rows)
        else:
            sample, ctx = lib.pyrunq_ringbuf_sample, ffi.new_handle(_Sink(self, callback, layout))
        fd = map_.fileno()
        if self._ptr is None:
            self._ptr = libbpf.check_ptr(
                lib.ring_buffer__new(fd, sample, ctx, ffi.NULL), "open ring buffer", map_.name
            )
        else:
            libbpf.check(lib.ring_buffer__add(self._ptr, fd, sample, ctx), "add ring buffer", map_.name)
        self._handles.append(ctx)
        return self

    def _start(self, limit: int) -> None:
        self.handled, self.budget = 0, limit
        for rows in self._rows:
            rows.start(limit)

    def _live(self):
        if self._ptr is None:
            raise StateError("ring buffer is closed")
        return self._ptr

    def _result(self, ret: int, op: str) -> int:
        for rows in self._rows:
            rows.settle()
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        libbpf.raise_interrupt()
        if ret == -errno.EINTR:  # a signal: its Python handler runs next
            return 0
        if ret == _BUDGET_SPENT:
            return self.handled + sum(rows.handled for rows in self._rows)
        return libbpf.check(ret, op)

    def poll(self, timeout: float | None = None, limit: int = 0) -> int:
        """Wait up to ``timeout`` seconds (None: forever) and handle what came in:
        at most ``limit`` records if given, so that a producer faster than the
        callbacks cannot keep the caller inside poll forever."""
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        self._start(limit)
        return self._result(lib.ring_buffer__poll(self._live(), ms), "poll ring buffer")

    def consume(self, limit: int = 0) -> int:
        """Handle the records already there (at most ``limit``), without waiting."""
        self._start(limit)
        return self._result(lib.ring_buffer__consume(self._live()), "consume ring buffer")

    def fileno(self) -> int:
        """An epoll fd that is readable when records wait: for selectors / asyncio."""
        return lib.ring_buffer__epoll_fd(self._live())

    def close(self) -> None:
        """Free the ring buffer; twice is fine."""
        if self._ptr is not None:
            lib.ring_buffer__free(self._ptr)
            self._ptr = None
            self._handles.clear()
            self._rows.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
