"""Bootstrap: process execs and exits, with exit codes and lifetimes
(bpf/bootstrap.bpf.c), as libbpf-bootstrap's example reports them.

Events come through a BPF ring buffer. When it is full the kernel side counts
the lost event instead of blocking; ``lost`` reports that count.
"""

from __future__ import annotations

from .base import EventTool, check_threshold

TYPE_CHECKING = False  # see pyrunq.bpf.globals
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .records import BootstrapEvent


class Bootstrap(EventTool):
    """Every exec and every process exit (threads' exits are not reported).

    ``min_duration_ms``: report only exits of processes that lived at least
    that long since their exec, and no execs (0: everything).
    ``callback``: called with each event; without it, read ``events()``.
    Each event has ``exit_event`` (1: exit, 0: exec), ``pid``, ``ppid``,
    ``comm``, and ``filename`` (exec) or ``exit_code`` and ``duration_ns``
    (exit; 0 when the exec came before tracing started).
    """

    object_name, event_struct = "bootstrap", "bootstrap_event"

    def __init__(self, min_duration_ms: int = 0, callback=None, ring_bytes: int = 256 * 1024):
        self.min_duration_ms = check_threshold("min_duration_ms", min_duration_ms, "milliseconds")
        super().__init__(callback=callback, ring_bytes=ring_bytes)

    def configure(self, obj) -> None:
        super().configure(obj)
        obj.rodata["min_duration_ns"] = self.min_duration_ms * 1_000_000

    def events(self, timeout: float | None = None) -> Iterator[BootstrapEvent]:
        """Yield events as they come; stop after ``timeout`` seconds without any."""
        return self.ring.events(timeout)

    @property
    def max_processes(self) -> int:
        """Processes whose exec time can be held at once (the rest: stat "start_full")."""
        return self.obj.maps["exec_start"].max_entries
