"""pyrunq inspect: what a BPF object declares, read from its ELF and BTF
without loading it (no privileges needed)."""

from __future__ import annotations

import sys

from . import reading

FOREIGN_FILES = True  # output escaped: names in the object may hold control characters
EXAMPLES = """examples:
    pyrunq inspect opensnoop.bpf.o          # programs, maps, globals, event structs,
                                            # structs only its DWARF has
    pyrunq inspect opensnoop.bpf.o --json   # the same as one JSON document"""


def add_arguments(p) -> None:
    p.add_argument("object", metavar="OBJECT", help="a BPF object file (clang -target bpf -g)")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="the object's ebpf_exporter YAML (default: NAME.yaml beside NAME.bpf.o, if there is one)",
    )


def run(args, parser) -> int:
    from ..errors import UsageError
    from ..tools.generic import describe

    try:
        with reading():
            d = describe(args.object) if args.config is None else describe(args.object, args.config)
    except UsageError as e:
        raise UsageError(e.text("--config" if e.param else None)) from None
    if args.json:
        import json

        print(json.dumps(d))
        return 0
    sys.stdout.write(render(d))
    return 0


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def render(d: dict) -> str:
    out = [
        f"object:  {d['object']} ({d['path']})",
        f"license: {d['license'] if d['license'] is not None else '(none)'}",
        f"CO-RE:   {'yes' if d['core'] else 'no (.BTF.ext missing)'}",
        "",
    ]
    out.append(f"programs ({len(d['programs'])}):")
    if d["programs"]:
        out += _table(
            [["NAME", "SECTION", "TYPE", "TARGET", "AUTOLOAD", "INSNS"]]
            + [
                [
                    p["name"],
                    p["section"],
                    p["type"],
                    p["attach_target"] or "-",
                    "yes" if p["autoload"] else "no",
                    str(p["instructions"]),
                ]
                for p in d["programs"]
            ]
        )
    out += ["", f"maps ({len(d['maps'])}):"]
    if d["maps"]:
        out += _table(
            [["NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "PINNING", "SHOWN AS"]]
            + [
                [
                    m["name"],
                    m["type"],
                    m["key"] or "-",
                    m["value"] or "-",
                    str(m["max_entries"]),
                    m["pinning"] or "-",
                    m["shown_as"] or "-",
                ]
                for m in d["maps"]
            ]
        )
    out += ["", f"globals ({len(d['globals'])}):"]
    if d["globals"]:
        out += _table(
            [
                [g["section"], f"{g['declaration']} = {_c_value(g['default'], g['kind'])};"]
                for g in d["globals"]
            ]
        )
    if d["gadget"]:  # Inspektor Gadget's markers
        out += _gadget(d["gadget"])
    out += ["", f"event structs ({len(d['event_structs'])}):"]
    out += _structs(d["event_structs"])
    if not d["dwarf"]:
        out += ["", "structs in DWARF only: unknown (no DWARF: built without -g, or stripped)"]
    else:  # what --event can name beside the event structs
        out += ["", f"structs in DWARF only ({len(d['dwarf_structs'])}):"]
        out += _structs(d["dwarf_structs"])
    return "\n".join(out) + "\n"


def _gadget(g: dict) -> list[str]:
    """What an Inspektor Gadget gadget's markers declare: its parameters
    (set with --set), its tracers, map iterators and iterators."""
    out = ["", f"gadget parameters ({len(g['params'])}, set with --set NAME=VALUE):"]
    if g["params"]:
        out += _table([[f"{p['declaration']} = {_c_value(p['default'], p['kind'])};"] for p in g["params"]])
    what = [f"tracer: {m} -> struct {s}" for m, s in g["tracers"].items()]
    what += [f"map iterator {name}: {m}" for m, name in g["mapiters"].items()]
    what += [
        f"iterator {it['name']}: program {p} -> struct {it['struct']}" for p, it in g["iterators"].items()
    ]
    return out + ["", "gadget (Inspektor Gadget's markers):"] + ["  " + line for line in what]


def _structs(structs: list[dict]) -> list[str]:
    out = []
    for s in structs:
        out += ["  " + line for line in s["definition"].replace("\t", "    ").splitlines()]
        out[-1] += f"  /* {s['size']} bytes */"
    return out


def _c_value(v, kind: str = "other") -> str:
    """A default value as C would write it."""
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if kind == "string":
        return json.dumps(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f".{k} = {_c_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        if v and all(x == 0 for x in v):
            return "{0}"  # C's "all zero"
        return "{" + ", ".join(_c_value(x) for x in v) + "}"
    return str(v)  # numbers, enum names, hex of raw bytes
