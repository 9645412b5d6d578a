"""BPFObject: one CO-RE object through open -> configure -> load -> attach -> close."""

from __future__ import annotations

import os
import weakref

from .. import libbpf
from ..errors import (UPROBE_PRIVILEGE_HINT, BPFNotFoundError, BPFPermissionError, NoKernelBTF,
                      StateError)
from ..libbpf import ffi, lib
from .btf import BTF
from .maps import Map
from .perfbuf import DEFAULT_PAGES, PerfBuffer
from .ringbuf import RingBuffer

OPEN, LOADED, CLOSED = "open", "loaded", "closed"
DATA_SECTIONS = (".rodata", ".bss", ".data")


BTF_MAGIC = b"\x9f\xeb"  # 0xeB9F, little-endian


def kernel_btf_path() -> str:
    """Where the kernel's BTF is read from (``PYRUNQ_BTF`` overrides)."""
    return os.environ.get("PYRUNQ_BTF", "/sys/kernel/btf/vmlinux")


def check_kernel_btf(path: str) -> None:
    """CO-RE needs the kernel's types: say so plainly when they are missing."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except FileNotFoundError:
        raise NoKernelBTF(path) from None
    except OSError as e:
        raise NoKernelBTF(path, f"has no readable BTF ({e.strerror}) at") from None
    if magic != BTF_MAGIC:
        raise NoKernelBTF(path, "has no valid BTF (bad magic) at")


def packaged_object(name: str) -> str:
    """Path of an object shipped in the package: ``"runqlat"`` -> ``.../runqlat.bpf.o``."""
    # next to this module (importlib.resources would add 10 ms to start-up)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.bpf.o")
    if not os.path.isfile(path):
        raise BPFNotFoundError(2, "find packaged object", name,
                               "the package is incomplete: reinstall pyrunq, or run: python build.py")
    return path


class Named(dict):
    """Maps or programs by name; a miss names what exists."""

    def __init__(self, what: str, owner: str):
        super().__init__()
        self._what, self._owner = what, owner

    def __missing__(self, name):
        raise KeyError(f"no {self._what} {name!r} in {self._owner!r} "
                       f"(has: {', '.join(self) or 'none'})")


def kernel_ids() -> dict[str, set[int]]:
    """Ids of every BPF program, map and link in the kernel (needs privileges)."""
    out = {}
    for kind, fn in (("prog", lib.bpf_prog_get_next_id), ("map", lib.bpf_map_get_next_id),
                     ("link", lib.bpf_link_get_next_id)):
        ids, cur = set(), ffi.new("__u32 *")
        while fn(cur[0], cur) == 0:
            ids.add(cur[0])
        out[kind] = ids
    return out


class Link:
    """An attached program. ``close()`` detaches it."""

    def __init__(self, ptr, program: "Program"):
        self._ptr, self.program = ptr, program

    def fileno(self) -> int:
        return lib.bpf_link__fd(self._ptr)

    def close(self) -> None:
        if self._ptr is not None:
            lib.bpf_link__destroy(self._ptr)
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Program:
    def __init__(self, ptr, obj: "BPFObject"):
        self._ptr, self._obj = ptr, obj
        self.name = ffi.string(lib.bpf_program__name(ptr)).decode()
        self.section = ffi.string(lib.bpf_program__section_name(ptr)).decode()

    def __repr__(self):
        return f"<Program {self.name} SEC({self.section!r})>"

    @property
    def type_name(self) -> str:
        """libbpf's name of the program type: "raw_tracepoint", "kprobe"..."""
        name = lib.libbpf_bpf_prog_type_str(lib.bpf_program__type(self._ptr))
        return ffi.string(name).decode() if name != ffi.NULL else "unknown"

    @property
    def insn_count(self) -> int:
        """BPF instructions in the program (after relocation once loaded)."""
        return lib.bpf_program__insn_cnt(self._ptr)

    @property
    def autoload(self) -> bool:
        return bool(lib.bpf_program__autoload(self._ptr))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        self._obj._require(OPEN, f"set autoload of program {self.name!r}")
        libbpf.check(lib.bpf_program__set_autoload(self._ptr, bool(value)),
                     "set autoload", self.name)

    def fileno(self) -> int:
        self._obj._require(LOADED, f"get the fd of program {self.name!r}")
        return lib.bpf_program__fd(self._ptr)

    def stats(self) -> tuple[int, int]:
        """(runs, total run time in ns) since load; both stay 0 unless
        ``kernel.bpf_stats_enabled`` is 1 (the kernel counts nothing else)."""
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        libbpf.check(lib.bpf_obj_get_info_by_fd(self.fileno(), info, size),
                     "get info of program", self.name)
        return info.run_cnt, info.run_time_ns

    def attach(self) -> Link:
        """Attach by section name; the object owns the link (closed with it)."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        libbpf.reset_warnings()
        return self._own(lib.bpf_program__attach(self._ptr), "attach program")

    def attach_uprobe(self, binary: str, offset: int, pid: int = -1,
                      retprobe: bool = False) -> Link:
        """Attach to the instruction at file ``offset`` of ``binary`` (an ELF
        path), in process ``pid`` only, or in every process (-1); ``retprobe``:
        at the return of the function that starts there."""
        self._obj._require(LOADED, f"attach program {self.name!r}")
        opts = ffi.new("struct bpf_uprobe_opts *")
        opts.sz = ffi.sizeof("struct bpf_uprobe_opts")
        opts.retprobe = retprobe
        libbpf.reset_warnings()
        what = f"attach {'uretprobe' if retprobe else 'uprobe'} {binary}+{offset:#x} for"
        try:
            return self._own(lib.bpf_program__attach_uprobe_opts(
                self._ptr, pid, os.fsencode(binary), offset, opts), what)
        except BPFPermissionError as e:  # the uprobe PMU wants more than CAP_PERFMON
            raise BPFPermissionError(e.errno, what, self.name, UPROBE_PRIVILEGE_HINT,
                                     e.log) from None

    def _own(self, ptr, action: str) -> Link:
        link = Link(libbpf.check_ptr(ptr, action, self.name), self)
        self._obj._owned.append(link)
        return link


class GlobalSection:
    """The variables of ``.rodata`` / ``.bss`` / ``.data``, by name, typed by BTF.

    Before load they edit the object's initial image; after load ``.bss`` and
    ``.data`` are read and written through the map (libbpf < 1.5 leaves
    ``bpf_map__initial_value`` pointing at a stale copy), and ``.rodata`` is
    frozen by the kernel.
    """

    def __init__(self, obj: "BPFObject", section: str, map_: Map | None):
        self._obj, self.section, self._map = obj, section, map_
        self._vars = obj.btf.datasec(section) if map_ is not None else {}

    def __iter__(self):
        return iter(self._vars)

    def __contains__(self, name):
        return name in self._vars

    def _var(self, name):
        try:
            return self._vars[name]
        except KeyError:
            raise KeyError(f"no global {name!r} in {self.section} of {self._obj.name!r}"
                           f" (has: {', '.join(self._vars) or 'none'})") from None

    def _image(self) -> bytes:
        if self._obj.state == OPEN:
            size = ffi.new("size_t *")
            ptr = lib.pyrunq_map_initial_value(self._map._ptr, size)
            return ffi.buffer(ptr, size[0])
        return self._map.lookup_bytes(0)

    def __getitem__(self, name: str):
        offset, layout = self._var(name)
        self._obj._require((OPEN, LOADED), f"read {self.section} global {name!r}")
        return layout.decode(self._image(), offset)

    def __setitem__(self, name: str, value) -> None:
        offset, layout = self._var(name)
        data = layout.encode(value)
        if self._obj.state == OPEN:
            self._image()[offset:offset + len(data)] = data
            return
        if self.section == ".rodata":
            raise StateError(f"cannot set .rodata global {name!r} of {self._obj.name!r} after load:"
                             " set it before load()")
        self._obj._require(LOADED, f"set {self.section} global {name!r}")
        image = bytearray(self._image())
        image[offset:offset + len(data)] = data
        self._map[0] = bytes(image)


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
        self._ptr = libbpf.check_ptr(lib.bpf_object__open_file(os.fsencode(path), opts),
                                     "open BPF object", path)
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
        self.rodata, self.bss, self.data = (GlobalSection(self, s, self._sections.get(s))
                                            for s in DATA_SECTIONS)

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
        self._require(OPEN, "load")
        check_kernel_btf(self._btf_path)
        libbpf.reset_warnings()
        libbpf.check(lib.bpf_object__load(self._ptr), "load BPF object", self.name)
        self.state = LOADED
        return self

    def attach(self) -> list[Link]:
        """Attach every program that is set to load."""
        return [p.attach() for p in self.programs.values() if p.autoload]

    def detach(self) -> None:
        """Detach every program, keeping maps and ring buffers readable."""
        for link in [o for o in self._owned if isinstance(o, Link)]:
            link.close()
            self._owned.remove(link)

    def ring_buffer(self, *maps, callback=None, event: str | None = None) -> RingBuffer:
        """A ring buffer over these maps (names or Maps), owned by this object."""
        self._require(LOADED, "open a ring buffer")
        rb = RingBuffer()
        for m in maps:
            rb.add(self.maps[m] if isinstance(m, str) else m, callback=callback,
                   layout=self._event_layout(event))
        self._owned.append(rb)
        return rb

    def perf_buffer(self, map_name, callback=None, event: str | None = None,
                    pages: int = DEFAULT_PAGES) -> PerfBuffer:
        """A perf buffer over this perf event array (a name or a Map), ``pages``
        pages per CPU (a power of two), owned by this object. One per map: a
        second one over the same map takes the kernel's samples from the first."""
        self._require(LOADED, "open a perf buffer")
        pb = PerfBuffer(self.maps[map_name] if isinstance(map_name, str) else map_name,
                        callback=callback, layout=self._event_layout(event), pages=pages)
        self._owned.append(pb)
        return pb

    def _event_layout(self, event: str | None):
        """The layout of struct ``event`` in this object's BTF; None: records as bytes."""
        return self.btf.layout(self.btf.find(event)) if event else None

    def close(self) -> None:
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
