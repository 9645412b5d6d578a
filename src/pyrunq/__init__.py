"""pyrunq: scheduler latency tracing with eBPF, from Python.

    import pyrunq
    with pyrunq.RunqLat() as rq:
        time.sleep(1)
        print(rq.snapshot()[None].percentile(99))

Names are imported on first use, so ``import pyrunq`` stays cheap.
"""

import importlib

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (hatch)

_EXPORTS = {
    "BPFObject": "pyrunq.bpf",
    "Program": "pyrunq.bpf",
    "Link": "pyrunq.bpf",
    "Map": "pyrunq.bpf",
    "RingBuffer": "pyrunq.bpf",
    "PerfBuffer": "pyrunq.bpf",
    "Histogram": "pyrunq.hist",
    "RunqLat": "pyrunq.tools.runqlat",
    "RunqSlower": "pyrunq.tools.runqslower",
    "CpuDist": "pyrunq.tools.cpudist",
    "RunqLen": "pyrunq.tools.runqlen",
    "OffCpuTime": "pyrunq.tools.offcputime",
    "OffWakeTime": "pyrunq.tools.offwaketime",
    "BlamedEvent": "pyrunq.tools.runqslower",
    "Attribution": "pyrunq.tools.blame",
    "Culprit": "pyrunq.tools.blame",
    "StackCount": "pyrunq.tools.stackcount",
    "MemLeak": "pyrunq.tools.memleak",
    "Bootstrap": "pyrunq.tools.bootstrap",
    "FuncLatency": "pyrunq.tools.funclatency",
    "PyrunqError": "pyrunq.errors",
    "BPFError": "pyrunq.errors",
    "BPFPermissionError": "pyrunq.errors",
    "BPFNotFoundError": "pyrunq.errors",
    "VerifierError": "pyrunq.errors",
    "StateError": "pyrunq.errors",
    "LibbpfUnavailable": "pyrunq.errors",
    "PrivilegeError": "pyrunq.errors",
    "KernelNotSupported": "pyrunq.errors",
    "UsageError": "pyrunq.errors",
    "NotAttached": "pyrunq.errors",
    "NothingAttached": "pyrunq.errors",
    "run": "pyrunq.tools.generic",
}
__all__ = sorted(_EXPORTS)

TYPE_CHECKING = False  # mypy and editors see the names as they are; Python imports them on use
if TYPE_CHECKING:
    from .bpf import (
        BPFObject as BPFObject,
        Link as Link,
        Map as Map,
        PerfBuffer as PerfBuffer,
        Program as Program,
        RingBuffer as RingBuffer,
    )
    from .errors import (
        BPFError as BPFError,
        BPFNotFoundError as BPFNotFoundError,
        BPFPermissionError as BPFPermissionError,
        KernelNotSupported as KernelNotSupported,
        LibbpfUnavailable as LibbpfUnavailable,
        NotAttached as NotAttached,
        NothingAttached as NothingAttached,
        PrivilegeError as PrivilegeError,
        PyrunqError as PyrunqError,
        StateError as StateError,
        UsageError as UsageError,
        VerifierError as VerifierError,
    )
    from .hist import (
        Histogram as Histogram,
    )
    from .tools.blame import (
        Attribution as Attribution,
        Culprit as Culprit,
    )
    from .tools.bootstrap import (
        Bootstrap as Bootstrap,
    )
    from .tools.funclatency import (
        FuncLatency as FuncLatency,
    )
    from .tools.generic import (
        run as run,
    )
    from .tools.memleak import (
        MemLeak as MemLeak,
    )
    from .tools.runqlat import (
        RunqLat as RunqLat,
    )
    from .tools.runqslower import (
        BlamedEvent as BlamedEvent,
        RunqSlower as RunqSlower,
    )
    from .tools.stackcount import (
        StackCount as StackCount,
    )


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pyrunq' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
