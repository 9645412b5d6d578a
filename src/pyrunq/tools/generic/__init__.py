"""The generic tool: any CO-RE object, which pyrunq did not write, checked
(``objfile``), described from its own BTF (``introspect``), configured from
text (``settings``), and loaded, attached and read (``runner``) on the same
lifecycle as every other tool. ``pyrunq inspect`` and ``pyrunq run`` are its
front ends; ``pyrunq.run()`` is the whole of it in one call."""

from .introspect import EVENT, describe
from .objfile import ALLOW_UNTRUSTED
from .runner import MapReport, Runner, RunResult, run
from .settings import SETTING

__all__ = ["ALLOW_UNTRUSTED", "EVENT", "SETTING", "MapReport", "RunResult", "Runner", "describe",
           "run"]
