"""The object model over libbpf: objects, programs, links, maps, ring and perf buffers, BTF.

Also the directory of the packaged CO-RE objects (``<arch>/<name>.bpf.o``), and the
codecs that turn C data into Python values and back (``Layout``, a struct's ``Record``, and the
parts a type reader of its own builds one from: ``Codec``, ``Int``,
``Float``, ``Raw``, ``CString``, ``Array``, ``Struct``, ``Union``), and the C that
Python is too slow for: ``HistDiffs`` (runqlat's per-key differences, text
and stats), ``BlameDiffs`` (its culprit table's) and ``EventRows``
(runqslower's rows). Layers above use the
names here, and the modules ``btf`` (its type kinds), ``btfcheck`` (BTF
checked before libbpf reads it; imported by those who need it),
``features`` (what the kernel supports), ``dwarf`` (the types an object's
DWARF has and its BTF lacks) and ``events`` (which struct an event map's
records are: the one reading that ``BPFObject.ring_buffer()`` and the
generic loader share); the other modules are internal.
"""

from . import btf, features
from .btf import BTF
from .codecs import Array, Codec, CString, Float, Int, Layout, Raw, Record, Struct, Union
from .globals import DATA_SECTIONS, GlobalSection
from .blames import NAMED_MAX, BlameChange, BlameDiffs, RowBlames, VictimBlame, VictimCgroups
from .hists import HistDiffs, KeyStats, StatsRows
from .kernel import kernel_btf_path, kernel_ids
from .maps import ARRAY_TYPES, BATCH_TYPES, EVENT_TYPES, RINGBUF, Map
from .object import BPFObject, packaged_object
from .perfbuf import PerfBuffer
from .program import Link, Program, SocketLink
from .ringbuf import RingBuffer
from .rows import EventRows

__all__ = [
    "ARRAY_TYPES",
    "Array",
    "BATCH_TYPES",
    "BPFObject",
    "BTF",
    "CString",
    "Codec",
    "DATA_SECTIONS",
    "EVENT_TYPES",
    "EventRows",
    "Float",
    "GlobalSection",
    "BlameChange",
    "BlameDiffs",
    "HistDiffs",
    "KeyStats",
    "RowBlames",
    "StatsRows",
    "VictimBlame",
    "VictimCgroups",
    "NAMED_MAX",
    "Int",
    "Layout",
    "Link",
    "Map",
    "PerfBuffer",
    "Program",
    "RINGBUF",
    "Raw",
    "Record",
    "RingBuffer",
    "SocketLink",
    "Struct",
    "Union",
    "btf",
    "features",
    "kernel_btf_path",
    "kernel_ids",
    "packaged_object",
]
