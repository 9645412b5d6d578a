"""What the tool classes share: each owns one BPF object (``self.obj``)."""

from __future__ import annotations


class Tool:
    """Owns ``self.obj``: ``close()`` releases it (twice is fine), ``with``
    closes it. ``STATS`` names, in the order of the tool's enum, the reasons
    its kernel side counts in the per-CPU ``stats`` map (bpf/stats.bpf.h)."""

    STATS: tuple[str, ...] = ()

    def stats(self) -> dict[str, int]:
        """What the kernel side had to drop or could not count, by reason, since start."""
        return self.obj.maps["stats"].counters(self.STATS)

    def close(self) -> None:
        self.obj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EventTool(Tool):
    """A tool whose records come through a ring buffer, ``self.ring``; the
    kernel side counts the records a full ring drops as stat "lost"."""

    def events(self, timeout: float | None = None):
        """Yield events as they come; stop after ``timeout`` seconds without any."""
        return self.ring.events(timeout)

    def poll(self, timeout: float | None = None, limit: int = 0) -> int:
        """Wait up to ``timeout`` seconds and hand over events (at most ``limit``)."""
        return self.ring.poll(timeout, limit)

    def fileno(self) -> int:
        """Readable when events wait: for selectors / asyncio."""
        return self.ring.fileno()

    def stop(self) -> int:
        """Detach, then hand over what is already in the ring buffer."""
        self.obj.detach()
        return self.ring.consume()

    @property
    def lost(self) -> int:
        """Events dropped so far because the ring buffer was full."""
        return self.stats()["lost"]
