"""The object model over libbpf: objects, programs, links, maps, ring and perf buffers, BTF.

Also the directory of the packaged CO-RE objects (``<name>.bpf.o``).
"""

from . import features
from .btf import BTF, Layout
from .maps import Map
from .object import (BPFObject, GlobalSection, Link, Program, kernel_btf_path, kernel_ids,
                     packaged_object)
from .perfbuf import PerfBuffer
from .ringbuf import RingBuffer

__all__ = ["BPFObject", "BTF", "GlobalSection", "Layout", "Link", "Map", "PerfBuffer", "Program",
           "RingBuffer", "features", "kernel_btf_path", "kernel_ids", "packaged_object"]
