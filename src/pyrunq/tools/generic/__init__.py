"""The generic tool: any CO-RE object, which pyrunq did not write, as a
pipeline: read once (``objfile``: the ELF checked, its helper calls scanned
by ``bytecode``, its DWARF when needed), planned (``twins``: which programs
run; ``targets``: where uprobes go; ``settings``: globals and map sizes;
``plan``: how each map and global is shown, and why, with ``shapes`` and
``present``), loaded and attached (``attach``), collected (``sources`` and
``streams`` for records, ``reports`` for maps and globals, ``stacks`` named,
``measures`` added and subtracted; ebpf_exporter's maps as its YAML says:
``exporter_config``, ``buckets``, ``exporter_maps``), on the lifecycle every tool has
(``runner``); Inspektor Gadget's conventions are read where an object has them
(``gadget``). ``pyrunq inspect`` (``describe``) and ``pyrunq run`` present
it; ``pyrunq.run()`` is the whole of it in one call."""

from ...errors import NotAttached, NothingAttached
from .attach import TRACEFS_HOW
from .describe import describe
from .exporter_config import CONFIG, ConfigError
from .exporter_maps import CONFIG_AUTO
from .objfile import ALLOW_UNTRUSTED, ObjectFile
from .plan import SHOW, UNITS, MapPlan, View
from .reports import MapReport, difference
from .runner import Runner, RunResult, run
from .settings import DEFAULT_MAX_ENTRIES, MAX_ENTRIES, SETTING
from .streams import Column, Stream
from .targets import CGROUP, PERF_EVENTS, SOCKET, UPROBE, USDT
from .twins import PROGRAMS, SKIP, Choice
from ...bpf.events import EVENT

__all__ = [
    "CGROUP",
    "CONFIG",
    "CONFIG_AUTO",
    "ConfigError",
    "PERF_EVENTS",
    "PROGRAMS",
    "SKIP",
    "SOCKET",
    "TRACEFS_HOW",
    "UPROBE",
    "USDT",
    "Choice",
    "Column",
    "NotAttached",
    "NothingAttached",
    "ALLOW_UNTRUSTED",
    "DEFAULT_MAX_ENTRIES",
    "EVENT",
    "MAX_ENTRIES",
    "SETTING",
    "SHOW",
    "UNITS",
    "MapPlan",
    "MapReport",
    "ObjectFile",
    "RunResult",
    "Runner",
    "Stream",
    "View",
    "describe",
    "difference",
    "run",
]
