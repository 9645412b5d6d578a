"""The generic tool: any CO-RE object, which pyrunq did not write, checked
(``objfile``), described from its own BTF (``introspect``), configured from
text (``settings``), its programs chosen and attached (``attach``), and loaded
and read (``runner``; its maps and globals as ``reports``) on the same
lifecycle as every other tool; stacks are named (``stacks``). ``pyrunq
inspect`` and ``pyrunq run`` are its front ends; ``pyrunq.run()`` is the
whole of it in one call."""

from .attach import CGROUP, PROGRAMS, SKIP, TRACEFS_HOW, UPROBE, USDT, Choice, NotAttached, NothingAttached
from .introspect import EVENT, SHOW, UNITS, View, describe
from .objfile import ALLOW_UNTRUSTED
from .reports import MapReport, difference
from .runner import Runner, RunResult, run
from .settings import DEFAULT_MAX_ENTRIES, MAX_ENTRIES, SETTING

__all__ = [
    "CGROUP",
    "PROGRAMS",
    "SKIP",
    "TRACEFS_HOW",
    "UPROBE",
    "USDT",
    "Choice",
    "NotAttached",
    "NothingAttached",
    "ALLOW_UNTRUSTED",
    "DEFAULT_MAX_ENTRIES",
    "EVENT",
    "MAX_ENTRIES",
    "SETTING",
    "SHOW",
    "UNITS",
    "MapReport",
    "RunResult",
    "Runner",
    "View",
    "describe",
    "difference",
    "run",
]
