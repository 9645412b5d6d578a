"""Where an object's records come from: one ring buffer over all its ring
buffer maps and one perf buffer per perf event array, polled as one (over
one epoll fd when there are several)."""

from __future__ import annotations

import select
from collections.abc import Callable

from ...bpf import RINGBUF, BPFObject, PerfBuffer, RingBuffer


class Sources:
    """The event maps of one loaded object, read raw: ``add`` each (before
    attach: no record is missed), then ``poll``."""

    def __init__(self) -> None:
        self.ring: RingBuffer | None = None  # all the ring buffers
        self.perf: dict[str, PerfBuffer] = {}  # one per perf event array
        self._readable: select.epoll | None = None  # when there are several

    def add(self, obj: BPFObject, name: str, callback: Callable[[bytes], None]) -> None:
        if obj.maps[name].type != RINGBUF:
            self.perf[name] = obj.perf_buffer(name, callback=callback, raw=True)
        elif self.ring is None:
            self.ring = obj.ring_buffer(name, callback=callback, raw=True)
        else:
            self.ring.add(obj.maps[name], callback=callback)

    def ready(self) -> None:
        """After the last ``add``: several sources are polled over one epoll fd."""
        if len(self._all()) > 1 and self._readable is None:
            self._readable = select.epoll()
            for source in self._all():
                self._readable.register(source.fileno(), select.EPOLLIN)

    def _all(self) -> list:
        return ([self.ring] if self.ring is not None else []) + list(self.perf.values())

    def poll(self, timeout: float | None = 0, limit: int = 4096) -> int:
        """Wait up to ``timeout`` seconds, then hand over the records of every
        event map (at most ``limit`` from each); 0 if there is none."""
        sources = self._all()
        if len(sources) == 1:
            return sources[0].poll(timeout, limit)
        if self._readable is not None and timeout != 0:
            select.select([self._readable.fileno()], [], [], timeout)
        return sum(source.poll(0, limit) for source in sources)

    def fileno(self) -> int | None:
        """Readable when records wait in any event map; None without one."""
        if self._readable is not None:
            return self._readable.fileno()
        sources = self._all()
        return sources[0].fileno() if sources else None

    @property
    def lost(self) -> dict[str, int]:
        """Perf event array -> records its perf buffer dropped so far (a ring buffer cannot tell)."""
        return {name: pb.lost for name, pb in self.perf.items()}

    def consume(self) -> None:
        """Hand over every record already written."""
        for source in self._all():
            source.consume()

    def close(self) -> None:
        if self._readable is not None:
            self._readable.close()
            self._readable = None
