"""pyrunq run: load any CO-RE object, set its globals, attach its programs,
print its event records (ring buffers, perf event arrays) and maps, decoded
from the object's own BTF."""

from __future__ import annotations

import sys
import time

from . import reading
from .printers import PREFIX_BYTES, JsonPrinter, TablePrinter, only, prefix, print_records, without

FOREIGN_FILES = True  # output escaped: names in the object may hold control characters
EXAMPLES = """examples:
    pyrunq run opensnoop.bpf.o                      # attach, print events and maps
    pyrunq run opensnoop.bpf.o --set targ_pid=1234  # set a const volatile global first
    pyrunq run x.bpf.o --event rb=event_t           # decode ring buffer rb by struct event_t
    pyrunq run x.bpf.o --raw                        # undecoded records whole, not 16 bytes
    pyrunq run runqlat.bpf.o --interval 1 --duration 10   # each second's counts, for 10 s
    pyrunq run cpudist.bpf.o --max-entries start=4096     # size a map before load
    pyrunq run runqslower.bpf.o --map start         # show a map of working state too
    pyrunq run opensnoop.bpf.o --json               # JSON lines
    pyrunq run runqlat.bpf.o --program handle_sched_switch  # this program (not its twins) only
    pyrunq run runqlen.bpf.o --frequency 49         # perf_event programs: each CPU at 49 Hz
    pyrunq run llcstat.bpf.o --perf-event on_cache_miss=cache-misses,period=100  # another event
    pyrunq run cgroup_skb.o --cgroup /sys/fs/cgroup/my.slice   # attach cgroup programs there
    pyrunq run trace_dns.bpf.o --socket eth0       # socket filters see eth0's packets only
    pyrunq run profile.bpf.o --duration 10 --flamegraph profile.svg   # maps' stacks, drawn
    pyrunq run profile.bpf.o --duration 10 --folded  # maps' stacks, folded (flamegraph.pl input)

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


def _setting(text: str) -> tuple[str, str]:
    """--set NAME=VALUE, or MAP[KEY]=VALUE, whose KEY may hold "=" ({a=1})."""
    import argparse

    head, bracket, _ = text.partition("[")
    if bracket and head.isidentifier() and "=" not in head:
        depth = 0
        for i, c in enumerate(text):
            depth += c in "[{"
            depth -= c in "]}"
            if depth == 0 and c == "]" and text[i + 1 : i + 2] == "=":
                return text[: i + 1], text[i + 2 :]
        raise argparse.ArgumentTypeError(f"expected MAP[KEY]=VALUE, got {text!r}")
    return _pair("NAME=VALUE")(text)


def _flags_inside(message: str) -> str:
    """A generic tool's hint that names a Python parameter (``setting
    NAME=...``), with the flag that sets it."""
    from ..tools.generic import SETTING

    return message.replace(f"{SETTING} ", "--set ")


def _targets(pairs: list) -> dict[str, list[str]]:
    """--uprobe (--usdt) PROGRAM=TARGET flags: program -> its targets, in order."""
    out: dict[str, list[str]] = {}
    for program, spec in pairs:
        out.setdefault(program, []).append(spec)
    return out


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _unit(text: str) -> tuple[str | None, str]:
    import argparse

    name, sep, unit = text.rpartition("=")
    if (sep and not name) or not unit:
        raise argparse.ArgumentTypeError(f"expected UNIT or NAME=UNIT, got {text!r}")
    return name or None, unit


def _hertz(text: str) -> int:
    from . import positive_int

    return positive_int(text)


def add_arguments(p) -> None:
    p.add_argument("object", metavar="OBJECT", help="a BPF object file (clang -target bpf -g)")
    p.add_argument(
        "--set",
        metavar="NAME=VALUE",
        type=_setting,
        action="append",
        default=[],
        help="set a global before load (integers, 0x hex, true/false, "
        "enum names, strings for char arrays, 1,2,3 for arrays); 'MAP[KEY]=VALUE': "
        "write an entry into map MAP before the programs attach; repeatable",
    )
    p.add_argument(
        "--event",
        metavar="MAP=STRUCT",
        type=_pair("MAP=STRUCT"),
        action="append",
        default=[],
        help="decode event map MAP's records as struct STRUCT (from the object's BTF or DWARF); repeatable",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="print records that no struct decodes whole, in hex (by default: their "
        f"size and first {PREFIX_BYTES} bytes)",
    )
    p.add_argument("--duration", type=_seconds, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument(
        "--interval",
        type=_seconds,
        metavar="SECONDS",
        help="print the maps every this many seconds: each interval's own counts",
    )
    p.add_argument(
        "--cumulative",
        action="store_true",
        help="with --interval: running totals instead of each interval's counts",
    )
    p.add_argument(
        "--map",
        metavar="NAME",
        action="append",
        default=[],
        dest="show",
        help="show map NAME too (working state is not shown by default); 'all': every map; repeatable",
    )
    p.add_argument(
        "--max-entries",
        metavar="MAP=N",
        type=_pair("MAP=N"),
        action="append",
        default=[],
        help="size map MAP before load (a map declared with max_entries 0 gets 10240 otherwise); repeatable",
    )
    p.add_argument(
        "--unit",
        metavar="[NAME=]UNIT",
        type=_unit,
        action="append",
        default=[],
        help="unit of every histogram, or of histogram NAME (usecs, msecs, nsecs, "
        "bytes...), instead of the one its name suggests; repeatable",
    )
    p.add_argument(
        "--program",
        metavar="NAME",
        action="append",
        default=[],
        dest="programs",
        help="load and attach only program NAME (of twins such as tp_btf/X and "
        "raw_tp/X, the best this kernel supports runs otherwise); repeatable",
    )
    p.add_argument(
        "--no-program",
        metavar="NAME",
        action="append",
        default=[],
        dest="skip",
        help="do not load program NAME; repeatable",
    )
    p.add_argument(
        "--frequency",
        metavar="HZ",
        type=_hertz,
        default=99,
        help='SEC("perf_event") programs sample the CPU clock of every CPU this many '
        "times a second (default 99)",
    )
    p.add_argument(
        "--perf-event",
        metavar="PROGRAM=EVENT",
        type=_pair("PROGRAM=EVENT"),
        action="append",
        default=[],
        dest="perf_events",
        help='SEC("perf_event") program PROGRAM samples EVENT instead of the CPU clock: '
        "perf(1)'s name (cache-misses, page-faults...) or type=T,config=C, then ,frequency=HZ "
        "or ,period=N; repeatable",
    )
    p.add_argument(
        "--uprobe",
        metavar="PROGRAM=BINARY:FUNCTION",
        type=_pair("PROGRAM=BINARY:FUNCTION"),
        action="append",
        default=[],
        help='attach uprobe PROGRAM, whose SEC("uprobe") names no target, to FUNCTION of BINARY '
        "(a path, or a library name such as c) in every process; repeatable, for one program too",
    )
    p.add_argument(
        "--usdt",
        metavar="PROGRAM=BINARY:PROVIDER:NAME",
        type=_pair("PROGRAM=BINARY:PROVIDER:NAME"),
        action="append",
        default=[],
        help='attach USDT program PROGRAM, whose SEC("usdt") names no probe, to probe PROVIDER:NAME '
        "of BINARY (a path, or a library name) in every process; repeatable, for one program too",
    )
    p.add_argument(
        "--cgroup",
        metavar="PATH",
        help="attach the cgroup programs (cgroup_skb/egress, sockops, cgroup/sock_create...) to "
        "this cgroup v2 directory (absolute, or below the cgroup2 mount)",
    )
    p.add_argument(
        "--socket",
        metavar="IFACE",
        action="append",
        default=[],
        dest="sockets",
        help='attach the socket filters (SEC("socket"), socket1...) to a raw packet socket of '
        "network interface IFACE (lo, eth0...), not of every interface; repeatable, or IFACE,IFACE",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="the object's ebpf_exporter YAML: its metrics' names, help, labels and buckets "
        "(default: NAME.yaml beside NAME.bpf.o, if there is one); for an Inspektor Gadget "
        "object, its gadget.yaml (default: the one in its directory)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document per event / map per line")
    p.add_argument(
        "--allow-untrusted-object",
        action="store_true",
        help="load an object that is writable by others or owned by another user",
    )
    from .pictures import add_stack_arguments

    add_stack_arguments(p)


class _Discard:
    """Where records and maps go with --folded: stdout holds the stacks only."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def run(args, parser) -> int:
    from . import wait
    from .pictures import check_stack_arguments

    check_stack_arguments(args, parser)
    out = sys.stdout
    shown = _Discard() if args.folded else out
    printer = JsonPrinter(shown) if args.json else TablePrinter(shown)
    printer.raw = args.raw
    with reading():  # open, load, attach: a signal ends it at once
        runner = _runner(args, printer.event, _pairing_note(parser.prog))
    with runner as r:
        _program_notes(parser.prog, r)
        for name, path in r.unpinned:
            print(
                f"{parser.prog}: note: map {name} not pinned at {path}: "
                "nothing of this run stays in the kernel",
                file=sys.stderr,
            )
        for name, size in r.sized.items():
            print(
                f"{parser.prog}: note: map {name} declares max_entries 0 (its own user space "
                f"sizes it): sized {size}; choose with --max-entries {name}=N",
                file=sys.stderr,
            )
        for name in r.supplied:
            print(
                f"{parser.prog}: note: {name} added to the kernel's BTF for the object's CO-RE, as "
                "Inspektor Gadget's loader adds it (its socket enricher's map stays empty: "
                "records carry no process)",
                file=sys.stderr,
            )
        if r.metrics.config is not None:
            print(
                f"{parser.prog}: note: metrics named, labelled and bucketed as {r.metrics.config.path} says",
                file=sys.stderr,
            )
            for line in r.metrics.notes():
                print(f"{parser.prog}: note: {line}", file=sys.stderr)
        for line in r.gadget_yaml.notes() if r.gadget_yaml else []:
            print(f"{parser.prog}: note: {line}", file=sys.stderr)
        for plan in r.view.plans:
            if plan.shown and plan.unit_why:
                print(
                    f"{parser.prog}: note: histogram {plan.name} in {plan.unit}: {plan.unit_why}; "
                    f"--unit {plan.name}=UNIT says otherwise",
                    file=sys.stderr,
                )
        if r.view.trace_pipe:
            print(f"{parser.prog}: note: {_printk_where(r.obj.name)}", file=sys.stderr)
        for name, why in r.unfilled:
            what = "map" if name in r.obj.maps else "global"
            print(f"{parser.prog}: note: {what} {name}: {_flags_inside(why)}", file=sys.stderr)
        if r.view.hidden:
            hidden = "; ".join(f"{name} ({why})" for name, why in r.view.hidden.items())
            print(
                f"{parser.prog}: note: maps not shown: {hidden}. Show them with --map NAME, "
                "or every map with --map all",
                file=sys.stderr,
            )
        printer.streams = r.streams
        print(
            f"Tracing with {len(r.attached)} program(s) of {r.obj.name}... Hit Ctrl-C to end.",
            file=sys.stderr,
            flush=True,
        )
        r.loop(
            args.duration,
            args.interval,
            on_maps=printer.maps_with_time,
            on_iterators=lambda texts: _print_iterators(out, texts, args.json),
            wait=wait,
            cumulative=args.cumulative,
        )
        if args.interval:  # the last interval, or the totals
            printer.maps_with_time(r.maps(delta=not args.cumulative))
        else:
            printer.maps(r.maps())
        _print_iterators(shown, r.iterators(), args.json)
        shown.flush()
        if args.folded or args.flamegraph:
            _draw_stacks(parser.prog, args, r, out)
        for name, lost in r.lost_by_map().items():
            if lost:
                print(
                    f"{parser.prog}: lost {lost} records of {name} in all (perf buffer full)",
                    file=sys.stderr,
                )
        for name, lost in r.lost_samples().items():
            if lost:
                print(
                    f"{parser.prog}: lost {lost} records of {name} in all (its programs counted "
                    f"them in {name}_lost_samples: the buffer was full)",
                    file=sys.stderr,
                )
        for s in r.streams.values():
            if s.short:
                print(
                    f"{parser.prog}: warning: {s.short} record(s) of {s.map} were shorter than "
                    f"struct {s.struct}; the rest was shown as zeros",
                    file=sys.stderr,
                )
    return 0


WEIGHTS = ("count", "counts", "delta", "total", "ns", "us", "bytes", "size", "value")  # by preference


def _weight(value) -> tuple[int, str]:
    """What an entry with stacks weighs, and the name of that: the value
    itself when a number, else its first member named like a count or a
    time (``WEIGHTS``), else its first number; 1 when it has none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, "count"
    if isinstance(value, dict):
        numbers = {k: v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}
        name = next((w for w in WEIGHTS if w in numbers), next(iter(numbers), None))
        if name is not None:
            return numbers[name], name
    return 1, "entries"


def _process_name(*parts) -> str | None:
    for part in parts:
        if isinstance(part, dict):
            for member in ("comm", "name", "task"):
                if isinstance(part.get(member), str) and part[member]:
                    return part[member]
    return None


def stack_pairs(reports) -> tuple[list, str]:
    """(frames root first, weight) of every map entry with stacks (a
    histogram's: its samples), and what the weight is: the process name (a ``comm`` or ``name`` member) at the
    root, then the user stack, then the kernel's (each outermost first);
    with stacks in several maps, the map's name below them all."""
    from ..folded import KERNEL_SUFFIX

    with_stacks = [r for r in reports if r.stacks and r.section is None]
    pairs, units = [], []
    for rep in with_stacks:
        user = [m for m in rep.stacks if m not in rep.kernel_stacks]
        for key, value, *_ in rep.entries:
            stacks = {**only(key, rep.stacks), **only(value, rep.stacks)}
            if rep.kind == "hist":  # a histogram per stack (futexctn): weighed by its samples
                weight, unit = sum(value), "samples"
            else:
                weight, unit = _weight(without(value, rep.stacks))
            units.append(unit)
            frames = [rep.name] if len(with_stacks) > 1 else []
            comm = _process_name(key, value)
            frames += [comm] if comm else []
            for member in user:
                frames += reversed(stacks.get(member) or [])
            for member in rep.kernel_stacks:
                frames += [f + KERNEL_SUFFIX for f in reversed(stacks.get(member) or [])]
            pairs.append((frames, weight))
    return pairs, (units[0] if len(set(units)) == 1 else "weight")


def _draw_stacks(prog: str, args, r, out) -> None:
    """--folded and --flamegraph: the stacks of the maps' totals."""
    from .pictures import write_stacks

    pairs, unit = stack_pairs(r.maps())
    if not pairs:
        print(f"{prog}: note: no map of {r.obj.name} held stacks: nothing to draw", file=sys.stderr)
    write_stacks(
        args,
        pairs,
        title=f"pyrunq run {r.obj.name}",
        unit=unit,
        folded_to=out if args.folded else None,
    )
    out.flush()


def _printk_where(name: str) -> str:
    """Where the lines of an object that uses bpf_printk go, and how to read them."""
    from ..bpf import features

    pipe = f"{features.TRACEFS}/trace_pipe"
    read = f"cat {pipe}"
    if not features.tracefs_mounted():
        read = f"mount -t tracefs nodev {features.TRACEFS}; {read}"
    return f"{name} writes lines with bpf_printk: they go to the kernel's trace_pipe; read them with: {read}"


def _program_notes(prog: str, r) -> None:
    """On stderr: which twins run, tracefs, and each program that did not attach."""
    from ..tools.generic import CGROUP, TRACEFS_HOW, UPROBE

    for choice in r.choices:
        print(f"{prog}: note: {choice}", file=sys.stderr)
    if r.objfile.host_order_ipv4:
        print(
            f"{prog}: note: IPv4 addresses kept as plain 32-bit integers (*addr, not __be32) are read "
            "in host order: the object's programs turn 32-bit values around (bpf_ntohl, bpf_htonl)",
            file=sys.stderr,
        )
    if r.clock_sampled:  # what they count may be another event, which their own user space opens
        print(
            f'{prog}: note: {", ".join(r.clock_sampled)} (SEC("perf_event")) sample each CPU\'s clock '
            f"at {r.frequency} Hz: the section names no event; if the object counts another "
            "(cache misses...), name it with --perf-event PROGRAM=EVENT",
            file=sys.stderr,
        )
    if r.socket_filters:  # what they see: on the loopback, each packet twice
        filters = ", ".join(f'{name} (SEC("{section}"))' for name, section in r.socket_filters)
        where = ", ".join(r.interfaces) or "every interface"
        sees = "sees" if len(r.socket_filters) == 1 else "see"
        sockets = "raw packet sockets" if len(r.interfaces) > 1 else "a raw packet socket"
        print(
            f"{prog}: note: {filters} {sees} the packets of {where} through {sockets} "
            "(sent and received: a packet on lo twice)"
            + ("" if r.interfaces else "; name interfaces with --socket IFACE"),
            file=sys.stderr,
        )
    if r.tracefs_mounted:
        print(
            f"{prog}: note: mounted tracefs at {r.tracefs_mounted} for tracepoint programs "
            "(it stays mounted, as perf leaves it)",
            file=sys.stderr,
        )
    if r.tracefs_problem:
        print(
            f"{prog}: note: {r.tracefs_problem}: tracepoint programs cannot attach; {TRACEFS_HOW}",
            file=sys.stderr,
        )
    for n in r.not_attached:
        how = ""
        if n.param == CGROUP:  # the flag that gives it a cgroup
            how = f" with {_flag(n.param)} PATH"
        elif n.param:  # the flag that gives it a target
            form = "BINARY:FUNCTION" if n.param == UPROBE else "BINARY:PROVIDER:NAME"
            how = f" with {_flag(n.param)} {n.program}={form}"
        print(
            f'{prog}: note: program {n.program} (SEC("{n.section}")) not attached: {n.reason}{how}',
            file=sys.stderr,
        )


def _print_iterators(out, texts: dict, as_json: bool) -> None:
    """What each iter/* program wrote, as it wrote it (JSON: one document
    each); binary output bounded, as undecoded event records are."""
    import json

    for name, text in texts.items():
        if isinstance(text, list):  # records of a struct (Inspektor Gadget's iterators)
            print_records(out, name, text, as_json)
            continue
        if isinstance(text, bytes):
            text = f"{name}: {len(text)} bytes of binary records: {prefix(text.hex())}\n"
        if as_json:
            out.write(
                json.dumps({"type": "iterator", "time": time.time(), "program": name, "text": text}) + "\n"
            )
        else:
            out.write(text)
    out.flush()


def _pairing_note(prog: str):
    """What to say, once per event map, when its first record decided how its
    records are decoded: by their size, or not at all."""

    def note(stream) -> None:
        if stream.by_size:
            what = f"decoded as struct {stream.struct} (the only struct of their size, {stream.size} bytes)"
        elif stream.choices or stream.dwarf:
            what = (
                f"are not decoded: name their struct with --event {stream.map}=STRUCT "
                f"(structs in this object: {', '.join(stream.choices) or 'none'})"
            )
        else:  # the struct was a local variable's: only DWARF has it
            what = (
                "are not decoded: the object has no struct they could be, and no DWARF (where "
                "a struct only a local variable has is kept: bpftool gen object and strip drop it); "
                "run the object as clang wrote it (-g), or name a struct with --event "
                f"{stream.map}=STRUCT"
            )
        print(f"{prog}: note: records of {stream.map} {what}", file=sys.stderr, flush=True)

    return note


def _runner(args, on_event, on_pairing=None):
    """The Runner for these arguments; its usage errors name the flags."""
    from ..errors import UsageError
    from ..tools.generic import CONFIG_AUTO, Runner

    try:
        return Runner(
            args.object,
            settings=dict(args.set),
            events=dict(args.event),
            on_event=on_event,
            allow_untrusted=args.allow_untrusted_object,
            max_entries=dict(args.max_entries),
            show=args.show,
            units=dict(args.unit),
            programs=args.programs or None,
            skip=args.skip,
            frequency=args.frequency,
            uprobes=_targets(args.uprobe),
            usdts=_targets(args.usdt),
            on_pairing=on_pairing,
            cgroup=args.cgroup,
            config=args.config or CONFIG_AUTO,
            perf_events=dict(args.perf_events),
            sockets=args.sockets,
        )
    except UsageError as e:
        raise UsageError(e.text(_flag(e.param))) from None


def _flag(param: str | None) -> str | None:
    """The flag that sets a parameter of the generic tool (``UsageError.param``)."""
    from ..tools.generic import (
        ALLOW_UNTRUSTED,
        CGROUP,
        CONFIG,
        EVENT,
        MAX_ENTRIES,
        PERF_EVENTS,
        PROGRAMS,
        SETTING,
        SHOW,
        SKIP,
        SOCKET,
        UNITS,
        UPROBE,
        USDT,
    )

    flags = {
        SETTING: "--set",
        EVENT: "--event",
        MAX_ENTRIES: "--max-entries",
        SHOW: "--map",
        UNITS: "--unit",
        PROGRAMS: "--program",
        SKIP: "--no-program",
        UPROBE: "--uprobe",
        USDT: "--usdt",
        CONFIG: "--config",
        CGROUP: "--cgroup",
        PERF_EVENTS: "--perf-event",
        SOCKET: "--socket",
        ALLOW_UNTRUSTED: "--allow-untrusted-object",
    }
    return flags.get(param, param) if param else None
