"""pyrunq skel: a typed Python module (a skeleton) from a compiled CO-RE
object, as libbpf-cargo and bpf2go make them for Rust and Go."""

from __future__ import annotations

import os
import sys

from . import reading

FOREIGN_FILES = True  # error lines escaped: names in the object may hold control characters
EXAMPLES = """examples:
    pyrunq skel counter.bpf.o -o counter_skel.py      # then: counter_skel.open()
    pyrunq skel counter.bpf.o -o counter_skel.py --event rb=event"""


def add_arguments(p) -> None:
    p.add_argument("object", metavar="OBJECT", help="a BPF object file (clang -target bpf -g)")
    p.add_argument("-o", "--output", metavar="MODULE", required=True, help="the module to write (MODULE.py)")
    p.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="MAP=STRUCT",
        help="the struct of an event map's records, where the object does not say",
    )


def run(args, parser) -> int:
    from ..bpf import skelgen
    from ..tools.generic.objfile import check_object_file

    explicit: dict[str, str | None] = {}
    for item in args.event:
        name, sep, struct = item.partition("=")
        if not sep or not name or not struct:
            parser.error(f"--event {item}: expected MAP=STRUCT")
        explicit[name] = struct
    if not args.output.endswith(".py"):
        parser.error(f"-o {args.output}: a module's file name ends in .py")
    with reading():
        check_object_file(args.object)
        text = skelgen.generate(args.object, args.output, explicit)
    tmp = f"{args.output}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.output)
    sys.stderr.write(f"pyrunq skel: wrote {args.output}\n")
    return 0
