"""pyrunq run: load any CO-RE object, set its globals, attach its programs,
print its event records (ring buffers, perf event arrays) and maps, decoded
from the object's own BTF."""

from __future__ import annotations

import sys
import time

EXAMPLES = """examples:
    pyrunq run opensnoop.bpf.o                      # attach, print events and maps
    pyrunq run opensnoop.bpf.o --set targ_pid=1234  # set a const volatile global first
    pyrunq run x.bpf.o --event rb=event_t           # decode ring buffer rb by struct event_t
    pyrunq run runqlat.bpf.o --interval 1 --duration 10   # maps every second, for 10 s
    pyrunq run opensnoop.bpf.o --json               # JSON lines

rules (how maps are shown, which struct decodes a ring buffer): see
`pyrunq inspect OBJECT`, column SHOWN AS."""


def _pair(what: str):
    import argparse

    def parse(text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return name, value
    return parse


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_arguments(p) -> None:
    p.add_argument("object", metavar="OBJECT", help="a BPF object file (clang -target bpf -g)")
    p.add_argument("--set", metavar="NAME=VALUE", type=_pair("NAME=VALUE"), action="append",
                   default=[], help="set a global before load (integers, 0x hex, true/false, "
                   "enum names, strings for char arrays); repeatable")
    p.add_argument("--event", metavar="MAP=STRUCT", type=_pair("MAP=STRUCT"), action="append",
                   default=[], help="decode event map MAP's records as struct STRUCT; repeatable")
    p.add_argument("--duration", type=_seconds, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--interval", type=_seconds, metavar="SECONDS",
                   help="print the maps every this many seconds")
    p.add_argument("--json", action="store_true", help="one JSON document per event / map per line")
    p.add_argument("--allow-untrusted-object", action="store_true",
                   help="load an object that is writable by others or owned by another user")


def run(args, parser) -> int:
    from . import wait

    out = sys.stdout
    printer = JsonPrinter(out) if args.json else TablePrinter(out)
    with _runner(args, printer.event) as r:
        for name, section in r.not_attached:
            print(f"{parser.prog}: note: program {name} (SEC(\"{section}\")) not attached: "
                  "libbpf cannot attach that section by itself", file=sys.stderr)
        for name, path in r.unpinned:
            print(f"{parser.prog}: note: map {name} not pinned at {path}: "
                  "nothing of this run stays in the kernel", file=sys.stderr)
        printer.streams = r.streams
        print(f"Tracing with {len(r.links)} program(s) of {r.obj.name}... Hit Ctrl-C to end.",
              file=sys.stderr, flush=True)
        r.loop(args.duration, args.interval, on_maps=printer.maps_with_time, wait=wait)
        printer.maps(r.maps())
        out.flush()
        for name, pb in r.perf.items():
            if pb.lost:
                print(f"{parser.prog}: lost {pb.lost} records of {name} in all "
                      "(perf buffer full)", file=sys.stderr)
        for s in r.streams.values():
            if s.short:
                print(f"{parser.prog}: warning: {s.short} record(s) of {s.map} were shorter than "
                      f"struct {s.struct}; the rest was shown as zeros", file=sys.stderr)
    return 0


def _runner(args, on_event):
    """The Runner for these arguments; its usage errors name the flags."""
    from ..errors import UsageError
    from ..tools.generic import Runner

    try:
        return Runner(args.object, settings=dict(args.set), events=dict(args.event),
                      on_event=on_event, allow_untrusted=args.allow_untrusted_object)
    except UsageError as e:
        raise UsageError(_with_flags(str(e))) from None


def _with_flags(message: str) -> str:
    """A message of the generic tool, which names the Python parameters,
    as a command-line user needs it: with the flags that set them."""
    from ..tools.generic import ALLOW_UNTRUSTED, EVENT, SETTING

    for word, flag in ((SETTING, "--set"), (EVENT, "--event")):
        if message.startswith(f"{word} "):
            return flag + message[len(word):]
    return message.replace(ALLOW_UNTRUSTED, "--allow-untrusted-object")


def text(v) -> str:
    """A decoded value on one line: numbers and strings as they are, structs
    as {field=value, ...}, arrays as [a, b]."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(text(x) for x in v) + "]"
    return str(v)


class TablePrinter:
    """Records as rows under a header of field names; maps bpftrace-style;
    histograms as bcc prints them."""

    def __init__(self, out):
        self.out, self.streams, self._last = out, {}, None

    def event(self, map_name: str, record: dict) -> None:
        columns = self.streams[map_name].columns
        if map_name != self._last:  # a header again whenever the event map changes
            if self._last is not None:
                self.out.write("\n")
            self._last = map_name
            self.out.write(" ".join(["TIME    "] + [f.upper().ljust(w) for f, w in columns])
                           .rstrip() + "\n")
        cells = [time.strftime("%H:%M:%S")]
        cells += [text(record.get(f, "")).ljust(w) for f, w in columns]
        self.out.write(" ".join(cells).rstrip() + "\n")
        self.out.flush()

    def maps_with_time(self, reports) -> None:
        self.out.write(f"\n{time.strftime('%H:%M:%S')}\n")
        self.maps(reports)

    def maps(self, reports) -> None:
        from ..hist import render_log2_bcc

        for rep in reports:
            if rep.kind == "hist":
                for key, slots, labels in rep.entries:
                    head = rep.name if key is None else f"{rep.name}[{text(key)}]"
                    extra = "".join(f" {k}={text(v)}" for k, v in labels.items())
                    self.out.write(f"\n{head}:{extra}\n{render_log2_bcc(slots, rep.unit)}")
                continue
            if rep.entries:
                self.out.write("\n")
            for key, value in rep.entries:
                self.out.write(f"{rep.name}[{text(key)}]: {text(value)}\n")
        self.out.flush()


class JsonPrinter:
    def __init__(self, out):
        import json

        self.out, self.dumps, self.streams = out, json.dumps, {}

    def event(self, map_name: str, record: dict) -> None:
        self.out.write(self.dumps({"type": "event", "time": time.time(), "map": map_name,
                                   "event": record}) + "\n")
        self.out.flush()

    def maps(self, reports) -> None:
        now = time.time()
        for rep in reports:
            if rep.kind == "hist":
                doc = {"type": "hist", "time": now, "map": rep.name, "unit": rep.unit,
                       "histograms": [{"key": k, "slots": s, "labels": lab}
                                      for k, s, lab in rep.entries]}
            else:
                doc = {"type": "map", "time": now, "map": rep.name,
                       "entries": [{"key": k, "value": v} for k, v in rep.entries]}
            self.out.write(self.dumps(doc) + "\n")
        self.out.flush()

    maps_with_time = maps
