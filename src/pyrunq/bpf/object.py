"""BPFObject: one CO-RE object through open -> configure -> load -> attach -> close."""

from __future__ import annotations

import os
import weakref

from .. import libbpf
from ..errors import BPFNotFoundError, StateError
from ..libbpf import ffi, lib
from .btf import BTF
from .globals import DATA_SECTIONS, GlobalSection
from .kernel import check_kernel_btf, kernel_btf_path
from .maps import Map
from .perfbuf import DEFAULT_PAGES, PerfBuffer
from .program import Link, Program
from .ringbuf import RingBuffer
from .states import CLOSED, LOADED, OPEN


# uname's machine -> the directory of the objects built for it (build.py's ARCHES)
ARCHES = {"x86_64": "x86", "aarch64": "arm64"}


def packaged_object(name: str) -> str:
    """Path of an object shipped in the package, for this machine's architecture:
    ``"runqlat"`` -> ``.../x86/runqlat.bpf.o``."""
    machine = os.uname().machine
    if machine not in ARCHES:
        raise BPFNotFoundError(
            2,
            "find packaged object",
            name,
            f"pyrunq ships objects for {' and '.join(ARCHES)} only; this machine is {machine}",
        )
    # next to this module (importlib.resources would add 10 ms to start-up)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), ARCHES[machine], f"{name}.bpf.o")
    if not os.path.isfile(path):
        raise BPFNotFoundError(
            2,
            "find packaged object",
            name,
            "the package is incomplete: reinstall pyrunq, or run: python build.py",
        )
    return path


class Named(dict):
    """Maps or programs by name; a miss names what exists."""

    def __init__(self, what: str, owner: str):
        super().__init__()
        self._what, self._owner = what, owner

    def __missing__(self, name):
        raise KeyError(f"no {self._what} {name!r} in {self._owner!r} (has: {', '.join(self) or 'none'})")


class BPFObject:
    """A BPF ELF object and everything created from it.

    ``with BPFObject.open("runqlat") as obj:`` configure (globals, map sizes,
    autoload), then ``obj.load()`` and ``obj.attach()``. ``close()`` releases
    ring and perf buffers and links (newest first), then the object; it is idempotent.
    """

    def __init__(self, path: str, btf_custom_path: str | None = None):
        self.path = path
        self.state = CLOSED
        self._owned: list = []
        opts = ffi.new("struct bpf_object_open_opts *")
        opts.sz = ffi.sizeof("struct bpf_object_open_opts")
        self._btf_path = btf_custom_path or kernel_btf_path()
        if btf_custom_path or "PYRUNQ_BTF" in os.environ:
            btf_path = ffi.new("char[]", os.fsencode(self._btf_path))
            opts.btf_custom_path = btf_path
        libbpf.reset_warnings()
        self._ptr = libbpf.check_ptr(
            lib.bpf_object__open_file(os.fsencode(path), opts), "open BPF object", path, explain=True
        )
        self.state = OPEN
        self._finalizer = weakref.finalize(self, lib.bpf_object__close, self._ptr)
        self.name = ffi.string(lib.bpf_object__name(self._ptr)).decode()
        self.btf = BTF(lib.bpf_object__btf(self._ptr))
        self.maps: dict[str, Map] = Named("map", self.name)
        self._sections: dict[str, Map] = {}
        m = lib.bpf_object__next_map(self._ptr, ffi.NULL)
        while m != ffi.NULL:
            map_ = Map(m, self)
            if lib.bpf_map__is_internal(m):
                # internal maps are named "<object prefix>.rodata" and so on
                for section in DATA_SECTIONS:
                    if map_.name.endswith(section):
                        self._sections[section] = map_
            else:
                self.maps[map_.name] = map_
            m = lib.bpf_object__next_map(self._ptr, m)
        self.programs: dict[str, Program] = Named("program", self.name)
        p = lib.bpf_object__next_program(self._ptr, ffi.NULL)
        while p != ffi.NULL:
            prog = Program(p, self)
            self.programs[prog.name] = prog
            p = lib.bpf_object__next_program(self._ptr, p)
        self.rodata, self.bss, self.data = (
            GlobalSection(self, s, self._sections.get(s)) for s in DATA_SECTIONS
        )

    @classmethod
    def open(cls, name_or_path: str, btf_custom_path: str | None = None) -> "BPFObject":
        """Open a packaged object by name (``"runqlat"``) or any object file by path."""
        if os.sep not in name_or_path and not name_or_path.endswith(".o"):
            name_or_path = packaged_object(name_or_path)
        return cls(name_or_path, btf_custom_path)

    def __repr__(self):
        return f"<BPFObject {self.name!r} {self.state}>"

    def _require(self, states, action: str) -> None:
        states = (states,) if isinstance(states, str) else states
        if self.state in states:
            return
        if self.state == CLOSED:
            raise StateError(f"cannot {action}: BPF object {self.name!r} is closed")
        when = "before load()" if self.state == OPEN else "after load()"
        raise StateError(f"cannot {action} {when}")

    def load(self) -> "BPFObject":
        """Relocate against the kernel's BTF and load every program and map (once)."""
        self._require(OPEN, "load")
        check_kernel_btf(self._btf_path)
        libbpf.reset_warnings()
        libbpf.check(lib.bpf_object__load(self._ptr), "load BPF object", self.name, explain=True)
        self.state = LOADED
        return self

    def attach(self) -> list[Link]:
        """Attach every program that is set to load."""
        return [p.attach() for p in self.programs.values() if p.autoload]

    def attached(self) -> list[str]:
        """The names of the programs attached now (those with an open link)."""
        return [o.program.name for o in self._owned if isinstance(o, Link)]

    def detach(self) -> None:
        """Detach every program, keeping maps and ring buffers readable."""
        for link in [o for o in self._owned if isinstance(o, Link)]:
            link.close()
            self._owned.remove(link)

    def ring_buffer(self, *maps, callback=None, event: str | None = None, rows=None) -> RingBuffer:
        """A ring buffer over these maps (names or Maps), owned by this object;
        ``rows`` (an EventRows): records written as text rows in C instead."""
        self._require(LOADED, "open a ring buffer")
        rb = RingBuffer()
        for m in maps:
            layout = None if rows is not None else self._event_layout(event)
            rb.add(self.maps[m] if isinstance(m, str) else m, callback=callback, layout=layout, rows=rows)
        self._owned.append(rb)
        return rb

    def perf_buffer(
        self, map_name, callback=None, event: str | None = None, pages: int = DEFAULT_PAGES
    ) -> PerfBuffer:
        """A perf buffer over this perf event array (a name or a Map), ``pages``
        pages per CPU (a power of two), owned by this object. One per map: a
        second one over the same map takes the kernel's samples from the first."""
        self._require(LOADED, "open a perf buffer")
        pb = PerfBuffer(
            self.maps[map_name] if isinstance(map_name, str) else map_name,
            callback=callback,
            layout=self._event_layout(event),
            pages=pages,
        )
        self._owned.append(pb)
        return pb

    def _event_layout(self, event: str | None):
        """The layout of struct ``event`` in this object's BTF; None: records as bytes."""
        return self.btf.layout(self.btf.find(event)) if event else None

    def close(self) -> None:
        """Release buffers and links (newest first), then the object; twice is fine."""
        if self.state == CLOSED:
            return
        while self._owned:
            self._owned.pop().close()
        self.state = CLOSED
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
