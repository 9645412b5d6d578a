"""Typed skeletons over ``BPFObject``: what a module that ``pyrunq skel``
wrote (``pyrunq.bpf.skelgen``) is made of, and the same skeleton made at run
time for the REPL (``BPFObject.skel``).

A skeleton is a ``BPFObject`` seen through attributes: ``skel.rodata.min_us``
(globals per section, range-checked, ``.rodata`` read-only after load),
``skel.maps.counts`` (keys and values of the generated classes: ``items()``,
``[k]``, ``get``, ``delete``; a per-CPU value is a list, one per CPU),
``skel.progs.handle_switch`` (``autoload`` before load), ``skel.events.rb``
(records of the map's struct: ``events()``, ``poll()``, ``async for``), and
``load()``, ``attach()``, ``close()`` and ``with``, as libbpf's skeletons.

A generated module checks at ``open()`` that the object's types are still
the ones it was generated from (``skelgen.digest``), else it refuses with
``StaleSkeleton``: regenerate with ``pyrunq skel``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from ..errors import StaleSkeleton, StateError
from .codecs import Record, member
from .globals import GlobalSection
from .maps import RINGBUF, Map
from .object import ARCHES, BPFObject
from .perfbuf import PerfBuffer
from .program import Link
from .ringbuf import RingBuffer

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R", bound=Record)
S = TypeVar("S", bound="Skeleton")


def record(cls: type[R]) -> type[R]:
    """A generated struct class: one property per member, in order (the
    class declares the members' types, for type checkers, and ``_fields``)."""
    for i, name in enumerate(cls._fields):
        setattr(cls, name, member(i, f"member {name}"))
    return cls


class Var(Generic[T]):
    """A global variable of a section, typed: ``skel.rodata.min_us``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, section: None, owner: object) -> Var[T]: ...
    @overload
    def __get__(self, section: Globals, owner: object) -> T: ...
    def __get__(self, section: Globals | None, owner: object) -> Var[T] | T:
        if section is None:
            return self
        value: T = section.section[self.name]
        return value

    def __set__(self, section: Globals, value: T) -> None:
        section.section[self.name] = value


class Globals:
    """The globals of one section; its class declares them as ``Var``s."""

    def __init__(self, section: GlobalSection) -> None:
        self.section = section

    def __repr__(self) -> str:
        names = [n for n, v in vars(type(self)).items() if isinstance(v, Var)]
        return f"<{self.section.section} {', '.join(names) or 'empty'}>"


class TypedMap(Generic[K, V]):
    """A map whose keys are ``K`` and values ``V`` (per-CPU: a list per CPU)."""

    def __init__(self, map_: Map) -> None:
        self.map = map_

    def __getitem__(self, key: K) -> V:
        value: V = self.map[key]
        return value

    def get(self, key: K, default: V | None = None) -> V | None:
        value: V | None = self.map.get(key, default)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self.map[key] = value

    def delete(self, key: K) -> None:
        """Remove ``key`` (KeyError if it is not there)."""
        del self.map[key]

    __delitem__ = delete

    def __contains__(self, key: object) -> bool:
        return key in self.map

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.map)

    def keys(self) -> list[K]:
        keys: list[K] = self.map.keys()
        return keys

    def values(self) -> list[V]:
        values: list[V] = self.map.values()
        return values

    def items(self) -> list[tuple[K, V]]:
        items: list[tuple[K, V]] = self.map.items()
        return items

    def clear(self) -> None:
        self.map.clear()

    @property
    def max_entries(self) -> int:
        return self.map.max_entries

    @max_entries.setter
    def max_entries(self, n: int) -> None:
        self.map.max_entries = n

    def __repr__(self) -> str:
        return f"<TypedMap {self.map.name!r}>"


class Events(Generic[E]):
    """The records of one ring buffer or perf event array, of type ``E``,
    read through a buffer opened at first use (after load)."""

    def __init__(self, obj: BPFObject, name: str, struct: str | None) -> None:
        self._obj, self.name, self.struct = obj, name, struct
        self._buffer: RingBuffer | PerfBuffer | None = None
        self._callback: Callable[[E], object] | None = None

    def on_record(self, callback: Callable[[E], object]) -> None:
        """Hand each record to ``callback`` (before the first read) instead of
        queueing it for ``events()``."""
        if self._buffer is not None:
            raise StateError(f"records of {self.name!r} are already being read: set the callback first")
        self._callback = callback

    @property
    def buffer(self) -> RingBuffer | PerfBuffer:
        """The ring or perf buffer, opened now if not yet (needs load)."""
        if self._buffer is None:
            raw = self.struct is None
            if self._obj.maps[self.name].type == RINGBUF:
                self._buffer = self._obj.ring_buffer(
                    self.name, callback=self._callback, event=self.struct, raw=raw
                )
            else:
                self._buffer = self._obj.perf_buffer(
                    self.name, callback=self._callback, event=self.struct, raw=raw
                )
        return self._buffer

    def open(self) -> None:
        """Open the buffer now (after load, before attach: no record is missed)."""
        self.buffer  # noqa: B018 - opens it

    def events(self, timeout: float | None = None) -> Iterator[E]:
        """Records as they come; stop after ``timeout`` seconds with none."""
        records: Iterator[E] = self.buffer.events(timeout)
        return records

    __iter__ = events

    def __aiter__(self) -> AsyncIterator[E]:
        records: Any = self.buffer.__aiter__()  # of E: the buffer decodes by the struct of E
        return records

    def poll(self, timeout: float | None = None, limit: int = 0) -> int:
        return self.buffer.poll(timeout, limit)

    def consume(self) -> int:
        return self.buffer.consume()

    def fileno(self) -> int:
        return self.buffer.fileno()

    def __repr__(self) -> str:
        return f"<Events {self.name!r} of {self.struct or 'bytes'}>"


class Maps:
    """The maps that are not event maps, each a ``TypedMap``."""

    def __init__(self, obj: BPFObject) -> None:
        for name, m in obj.maps.items():
            if m.type not in (RINGBUF, 4):  # 4: perf event array
                setattr(self, _attribute(name), TypedMap[Any, Any](m))


class Programs:
    """The programs, each a ``Program``."""

    def __init__(self, obj: BPFObject) -> None:
        for name, p in obj.programs.items():
            setattr(self, _attribute(name), p)


class EventMaps:
    """The event maps (ring buffers, perf event arrays), each an ``Events``."""

    def __init__(self, obj: BPFObject, structs: dict[str, str | None]) -> None:
        for name, m in obj.maps.items():
            if m.type in (RINGBUF, 4):
                setattr(self, _attribute(name), Events[Any](obj, name, structs.get(name)))


def _attribute(name: str) -> str:
    import keyword

    return name + "_" if keyword.iskeyword(name) else name


class Skeleton:
    """A ``BPFObject`` by attributes: ``rodata``/``bss``/``data``, ``maps``,
    ``progs``, ``events``; ``load()``, ``attach()``, ``close()``, ``with``."""

    rodata: Globals
    bss: Globals
    data: Globals
    maps: Maps
    progs: Programs
    events: EventMaps

    def __init__(self, obj: BPFObject) -> None:
        self.obj = obj

    def load(self: S) -> S:
        """Load every program and map (once); the event readers open then."""
        self.obj.load()
        for reader in vars(self.events).values():
            reader.open()
        return self

    def attach(self) -> list[Link]:
        """Attach every program set to load, by its section (twice: the same links)."""
        return self.obj.attach()

    def detach(self) -> None:
        self.obj.detach()

    def close(self) -> None:
        """Release everything (twice is fine)."""
        self.obj.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.obj!r}>"


def runtime(obj: BPFObject) -> Skeleton:
    """The skeleton of an open object, made now (untyped: for the REPL; a
    module from ``pyrunq skel`` is the typed one)."""
    from . import events

    skel = Skeleton(obj)
    skel.rodata, skel.bss, skel.data = (_globals(section) for section in (obj.rodata, obj.bss, obj.data))
    skel.maps, skel.progs = Maps(obj), Programs(obj)
    skel.events = EventMaps(obj, {name: events.likely_struct(obj, name) for name in _event_maps(obj)})
    return skel


def _event_maps(obj: BPFObject) -> list[str]:
    return [name for name, m in obj.maps.items() if m.type in (RINGBUF, 4)]


def _globals(section: GlobalSection) -> Globals:
    cls = type(f"Globals{section.section}", (Globals,), {_attribute(n): Var[Any](n) for n in section})
    globals_: Globals = cls(section)
    return globals_


def find_object(module_file: str, name: str, path: str | os.PathLike[str] | None) -> str:
    """The object a generated module opens: ``path`` if given, else ``name``
    beside the module, else ``<arch>/name`` below it (a wheel built by the
    build hook has one object per architecture there)."""
    if path is not None:
        return os.fspath(path)
    here = os.path.dirname(os.path.abspath(module_file))
    machine = os.uname().machine
    candidates = [os.path.join(here, name)]
    if machine in ARCHES:
        arch = ARCHES[machine]
        candidates += [os.path.join(here, arch, name), os.path.join(here, "bpf", arch, name)]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise StaleSkeleton(
        f"no {name} beside {module_file} (looked in: {', '.join(candidates)}): pass its path to open()"
    )


def open_object(
    module_file: str,
    name: str,
    digest: str,
    records: dict[str, type[Record]],
    events: dict[str, str | None],
    path: str | os.PathLike[str] | None,
) -> BPFObject:
    """The object of a generated module, opened with its classes; refused
    (closed) when its types are not those the module was generated from."""
    from .skelgen import model, model_digest

    found = find_object(module_file, name, path)
    obj = BPFObject(found, records=records)
    try:
        if model_digest(model(obj, events)) != digest:
            raise StaleSkeleton(
                f"{os.path.basename(module_file)} was generated from another {name} (its types, maps, "
                f"globals or programs differ from {found}): regenerate with "
                f"pyrunq skel {found} -o {module_file}"
            )
    except BaseException:
        obj.close()
        raise
    return obj
