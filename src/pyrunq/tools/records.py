"""The shapes of the tools' records, for type checkers and editors.

A tool's records are ``pyrunq.bpf.Record``s decoded from its object's BTF at
run time; these protocols name their members and types so that ``mypy
--strict`` checks a script that reads them (tests/test_typing.py checks them
against the objects' BTF, so they cannot drift from the C). The tools import
this module only when type checking: ``typing`` costs every start 2 ms.
"""

from __future__ import annotations

from typing import Protocol


class RunqSlowerEvent(Protocol):
    """A wait longer than the threshold (bpf/runq.h ``struct event``)."""

    @property
    def task(self) -> str: ...
    @property
    def prev_task(self) -> str: ...
    @property
    def delta_ns(self) -> int: ...
    @property
    def pid(self) -> int: ...
    @property
    def tid(self) -> int: ...
    @property
    def prev_pid(self) -> int: ...
    @property
    def prev_tid(self) -> int: ...
    @property
    def cpu(self) -> int: ...


class BootstrapEvent(Protocol):
    """An exec or a process exit (bpf/bootstrap.h ``struct bootstrap_event``)."""

    @property
    def duration_ns(self) -> int: ...
    @property
    def pid(self) -> int: ...
    @property
    def ppid(self) -> int: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def exit_event(self) -> int: ...
    @property
    def comm(self) -> str: ...
    @property
    def filename(self) -> str: ...
