"""Program and Link: one program of an object, and an attachment of it."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from .. import libbpf
from ..errors import UPROBE_PRIVILEGE_HINT, BPFPermissionError
from ..libbpf import ffi, lib
from .states import LOADED, OPEN

if TYPE_CHECKING:
    from .object import BPFObject


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
            raise BPFPermissionError(e.errno or errno.EPERM, what, self.name,
                                     UPROBE_PRIVILEGE_HINT, e.log) from None

    def _own(self, ptr, action: str) -> Link:
        link = Link(libbpf.check_ptr(ptr, action, self.name), self)
        self._obj._owned.append(link)
        return link
