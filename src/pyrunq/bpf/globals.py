"""GlobalSection: an object's global variables, typed by its BTF."""

from __future__ import annotations

from ..errors import MalformedObject, StateError
from ..libbpf import ffi, lib
from .maps import Map
from .states import LOADED, OPEN

TYPE_CHECKING = False  # importing typing would cost every start 2 ms; mypy reads the block
if TYPE_CHECKING:
    from typing import Any

    from .object import BPFObject

DATA_SECTIONS = (".rodata", ".bss", ".data")


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
            raise KeyError(
                f"no global {name!r} in {self.section} of {self._obj.name!r}"
                f" (has: {', '.join(self._vars) or 'none'})"
            ) from None

    def _section_map(self) -> Map:
        if self._map is None:  # no variables: _var() raised before anyone got here
            raise StateError(f"{self._obj.name!r} has no {self.section}")
        return self._map

    def _image(self) -> Any:
        """Before load the object's initial image (writable), after it the map's value."""
        if self._obj.state == OPEN:
            size = ffi.new("size_t *")
            ptr = lib.pyrunq_map_initial_value(self._section_map()._ptr, size)
            return ffi.buffer(ptr, size[0])
        return self._section_map().lookup_bytes(0)

    def data(self) -> bytes:
        """The section's bytes: before load as the object will be loaded, after it as they are."""
        return bytes(self._image()) if self._map is not None else b""

    def __getitem__(self, name: str):
        offset, layout = self._var(name)
        self._obj._require((OPEN, LOADED), f"read {self.section} global {name!r}")
        image = self._image()
        if offset + layout.size > len(image):  # the object's BTF says more than its section holds
            raise MalformedObject(
                f"{self._obj.name}: {self.section} global {name!r} ({layout.size} bytes at {offset}) "
                f"lies past the section's {len(image)} bytes"
            )
        return layout.decode(image, offset)

    def __setitem__(self, name: str, value) -> None:
        offset, layout = self._var(name)
        try:
            data = layout.encode(value)
        except ValueError as e:
            raise ValueError(f"{self.section} global {name!r} ({layout.name}): {e}") from None
        if self._obj.state == OPEN:
            self._image()[offset : offset + len(data)] = data
            return
        if self.section == ".rodata":
            raise StateError(
                f"cannot set .rodata global {name!r} of {self._obj.name!r} after load: set it before load()"
            )
        self._obj._require(LOADED, f"set {self.section} global {name!r}")
        image = bytearray(self._image())
        image[offset : offset + len(data)] = data
        self._section_map()[0] = bytes(image)
