"""BPFObject: one CO-RE object through open -> configure -> load -> attach -> close."""

from __future__ import annotations

import os
import weakref

from .. import libbpf
from ..errors import BPFNotFoundError, StateError, UsageError, VerifierError, verifier_hint
from ..libbpf import ffi, lib
from . import events
from .btf import BTF
from .codecs import Layout, Record
from .globals import DATA_SECTIONS, GlobalSection
from .kernel import check_kernel_btf, kernel_btf_path
from .maps import RINGBUF, Map
from .perfbuf import DEFAULT_PAGES, PERF_EVENT_ARRAY, PerfBuffer
from .program import Link, Program
from .ringbuf import RingBuffer
from .states import CLOSED, LOADED, OPEN

TYPE_CHECKING = False  # see globals.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .rows import EventRows


# uname's machine -> the directory of the objects built for it (build.py's ARCHES)
ARCHES = {"x86_64": "x86", "aarch64": "arm64"}
_HERE = os.path.dirname(os.path.abspath(__file__))  # the packaged objects are in <arch>/ below


def packaged_object(name: str, package: str | None = None) -> str:
    """Path of an object shipped in pyrunq (or in ``package``, built by
    pyrunq's build hook: ``<package>/bpf/<arch>/``), for this machine's
    architecture: ``"runqlat"`` -> ``.../x86/runqlat.bpf.o``."""
    if package is not None:
        return _object_of(package, name)
    machine = os.uname().machine
    if machine not in ARCHES:
        raise BPFNotFoundError(
            2,
            "find packaged object",
            name,
            f"pyrunq ships objects for {' and '.join(ARCHES)} only; this machine is {machine}",
        )
    # next to this module (importlib.resources would add 10 ms to start-up)
    path = os.path.join(_HERE, ARCHES[machine], f"{name}.bpf.o")
    if not os.path.isfile(path):
        raise BPFNotFoundError(
            2,
            "find packaged object",
            name,
            "the package is incomplete: reinstall pyrunq, or run: python build.py",
        )
    return path


def _object_of(package: str, name: str) -> str:
    """``<package>/bpf/<arch>/<name>.bpf.o`` of an installed package (found, not imported)."""
    import importlib.util

    machine = os.uname().machine
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BPFNotFoundError(2, "find the objects of package", package, "is it installed?")
    if machine not in ARCHES:
        raise BPFNotFoundError(
            2,
            "find packaged object",
            name,
            f"objects are built for {' and '.join(ARCHES)}; this is {machine}",
        )
    here = list(spec.submodule_search_locations)[0]
    path = os.path.join(here, "bpf", ARCHES[machine], f"{name}.bpf.o")
    if not os.path.isfile(path):
        folder = os.path.dirname(path)
        built = sorted(f[: -len(".bpf.o")] for f in os.listdir(folder)) if os.path.isdir(folder) else []
        has = ", ".join(built) or "none"
        raise BPFNotFoundError(
            2,
            "find packaged object",
            name,
            f"package {package} has no {ARCHES[machine]} object {name!r} (has: {has}): "
            f"reinstall {package}, built with pyrunq's build hook",
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

    What an object holds, by name (a wrong name lists the right ones):

    - ``maps``: its maps (``Map``): ``obj.maps["counts"].items()``, ``[key]``,
      ``get()``, ``delete()``; keys and values decoded by the object's BTF;
    - ``programs``: its programs (``Program``): ``autoload`` before load,
      ``attach()`` and the other ways to attach after;
    - ``rodata``, ``bss``, ``data``: its global variables per section
      (``GlobalSection``): ``obj.rodata["min_us"] = 10`` before load (range
      checked), ``obj.bss["count"]`` after;
    - ``btf``: its types (``BTF``); ``path``, ``name``, ``state``;
    - ``skel``: all of it by attribute, for the REPL (``obj.skel.rodata.min_us``);
      ``pyrunq skel OBJECT -o MODULE.py`` writes a typed module of it.

    Events: ``ring_buffer()`` / ``perf_buffer()`` over an event map, its
    records decoded as ``pyrunq run`` decodes them (``pyrunq.bpf.events``:
    the struct named, else the one the object pairs with the map, from BTF
    or DWARF, else the only one of the first record's size); iterate over
    them with ``for`` or ``async for``.
    """

    maps: dict[str, Map]
    programs: dict[str, Program]
    rodata: GlobalSection
    bss: GlobalSection
    data: GlobalSection
    btf: BTF

    def __init__(
        self,
        path: str | os.PathLike[str],
        btf_custom_path: str | None = None,
        records: dict[str, type[Record]] | None = None,
    ):
        path = os.fspath(path)
        self.path = path
        self.state = CLOSED
        self._owned: list = []
        self._skel: Any = None
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
        self.name = libbpf.name(lib.bpf_object__name(self._ptr))
        self.btf = BTF(lib.bpf_object__btf(self._ptr), records)  # records: a skeleton's classes
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
    def open(
        cls,
        name_or_path: str | os.PathLike[str],
        btf_custom_path: str | None = None,
        package: str | None = None,
    ) -> BPFObject:
        """Open a packaged object by name (``"runqlat"``; with ``package``, an
        object of that installed package, built by pyrunq's build hook) or any
        object file by path (a str or any ``os.PathLike``: ``pathlib.Path``)."""
        if isinstance(name_or_path, os.PathLike):
            return cls(name_or_path, btf_custom_path)
        if package is not None or (os.sep not in name_or_path and not name_or_path.endswith(".o")):
            name_or_path = packaged_object(name_or_path, package)
        return cls(name_or_path, btf_custom_path)

    def __repr__(self):
        return f"<BPFObject {self.name!r} {self.state}>"

    @property
    def skel(self) -> Any:
        """This object as a skeleton, made now for the REPL:
        ``obj.skel.rodata.min_us``, ``obj.skel.maps.counts.items()``,
        ``obj.skel.events.rb``... (untyped: ``pyrunq skel`` writes the typed one)."""
        if self._skel is None:
            from .skel import runtime

            self._skel = runtime(self)
        return self._skel

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
        for m in self.maps.values():
            m.drop_record_sizes()
        libbpf.reset_warnings()
        try:
            libbpf.check(lib.bpf_object__load(self._ptr), "load BPF object", self.name, explain=True)
        except VerifierError as e:
            if not self.packaged:  # the author's own program: theirs to fix, not ours to hear of
                e.hint = verifier_hint(e.log, report=False)
            raise
        self.state = LOADED
        return self

    @property
    def packaged(self) -> bool:
        """Whether this is one of pyrunq's own objects (shipped in its package)."""
        return os.path.dirname(os.path.dirname(os.path.abspath(self.path))) == _HERE

    def attach(self) -> list[Link]:
        """Attach every program that is set to load, by its section; a program
        attached so already keeps its link (twice is fine: never two links)."""
        return [p.attach() for p in self.programs.values() if p.autoload]

    def attached(self) -> list[str]:
        """The names of the programs attached now (those with an open link)."""
        return [o.program.name for o in self._owned if isinstance(o, Link)]

    def detach(self) -> None:
        """Detach every program, keeping maps and ring buffers readable."""
        for link in [o for o in self._owned if isinstance(o, Link)]:
            link.close()
            self._owned.remove(link)

    def ring_buffer(
        self,
        *maps: str | Map,
        callback: Callable[[Any], object] | None = None,
        event: str | None = None,
        rows: EventRows | None = None,
        raw: bool = False,
    ) -> RingBuffer:
        """A ring buffer over these maps (names or Maps), owned by this object.
        Records decoded by ``struct event`` (BTF or DWARF), else as the object
        pairs them (``pyrunq.bpf.events``); ``raw``: bytes; ``rows`` (an
        EventRows): written as text rows in C instead."""
        self._require(LOADED, "open a ring buffer")
        rb = RingBuffer()
        for m in maps:
            map_ = self.maps[m] if isinstance(m, str) else m
            if map_.type != RINGBUF:
                raise UsageError(
                    f"map {map_.name!r} is a {map_.type_name} map, not a ring buffer"
                    + (": read it with perf_buffer()" if map_.type == PERF_EVENT_ARRAY else "")
                )
            layout = None if rows is not None or raw else self._event_layout(map_, event)
            rb.add(map_, callback=callback, layout=layout, rows=rows)
        self._owned.append(rb)
        return rb

    def perf_buffer(
        self,
        map_name: str | Map,
        callback: Callable[[Any], object] | None = None,
        event: str | None = None,
        pages: int = DEFAULT_PAGES,
        raw: bool = False,
    ) -> PerfBuffer:
        """A perf buffer over this perf event array (a name or a Map), ``pages``
        pages per CPU (a power of two), owned by this object, its records
        decoded as ``ring_buffer()`` decodes them (``raw``: bytes). One per
        map: a second one over the same map takes the kernel's samples from
        the first."""
        self._require(LOADED, "open a perf buffer")
        map_ = self.maps[map_name] if isinstance(map_name, str) else map_name
        layout = self._event_layout(map_, event) if map_.type == PERF_EVENT_ARRAY and not raw else None
        pb = PerfBuffer(map_, callback=callback, layout=layout, pages=pages)
        self._owned.append(pb)
        return pb

    def _event_layout(self, map_: Map, event: str | None) -> Layout | events.BySize:
        """How the records of ``map_`` are decoded: by ``struct event`` (from
        BTF or DWARF), else as the object pairs them (``pyrunq.bpf.events``)."""
        return events.record_layout(self, map_.name, event)

    def close(self) -> None:
        """Release buffers and links (newest first), then the object; twice is fine."""
        if self.state == CLOSED:
            return
        while self._owned:
            self._owned.pop().close()
        self.state = CLOSED
        self._finalizer()

    def __enter__(self) -> BPFObject:
        return self

    def __exit__(self, *exc):
        self.close()
