"""The flags that turn a tool's output into a picture or a picture's input,
the same for every tool: ``--folded`` and ``--flamegraph FILE.svg`` (with
``--icicle`` and ``--reverse``) for tools that show stacks, ``--heatmap
FILE.svg`` for latency histograms. The formats and the drawing are
``pyrunq.folded``, ``pyrunq.flamegraph`` and ``pyrunq.heatmap``."""

from __future__ import annotations

import argparse
import os


def add_stack_arguments(p, folded: bool = True) -> None:
    """``folded``: also ``--folded`` (not for a tool that has bcc's own
    ``-f/--folded``)."""
    g = p.add_argument_group("flame graphs")
    if folded:
        g.add_argument(
            "--folded",
            action="store_true",
            help="print the stacks folded, one line each (frames root first, joined by ';', then the "
            "weight), as flamegraph.pl, inferno and speedscope read them, instead of the text",
        )
    g.add_argument(
        "--flamegraph",
        metavar="FILE.svg",
        type=svg_path,
        help="also write the stacks as an interactive flame graph (a self-contained SVG file)",
    )
    g.add_argument("--icicle", action="store_true", help="with --flamegraph: the root at the top")
    g.add_argument(
        "--reverse",
        action="store_true",
        help="with --flamegraph: stacks leaf first (merged by the innermost function)",
    )


def add_heatmap_argument(p) -> None:
    p.add_argument(
        "--heatmap",
        metavar="FILE.svg",
        type=svg_path,
        help="also write a latency heatmap of every interval (a self-contained SVG file)",
    )


def svg_path(text: str) -> str:
    """A file we can write: its directory exists (checked before anything
    is attached, so a typo costs no trace)."""
    directory = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"no such directory: {directory!r}")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"is a directory: {text!r}")
    if not os.access(directory, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {directory!r}")
    return text


def check_stack_arguments(args, parser) -> None:
    if (args.icicle or args.reverse) and not args.flamegraph:
        parser.error("--icicle and --reverse draw a flame graph: give --flamegraph FILE.svg")
    if args.folded and getattr(args, "json", False):
        parser.error("--folded and --json are two formats: choose one")


def write_stacks(args, pairs: list, title: str, unit: str, subtitle: str = "", folded_to=None) -> None:
    """``pairs`` of (frames root first, weight): the flame graph in the
    ``--flamegraph`` file, and folded lines on ``folded_to`` if given."""
    from .. import flamegraph, folded

    if folded_to is not None:
        folded_to.write("".join(line + "\n" for line in folded.lines(pairs)))
    if args.flamegraph:
        flamegraph.write(
            args.flamegraph,
            pairs,
            title=title,
            subtitle=subtitle,
            unit=unit,
            inverted=args.icicle,
            reverse=args.reverse,
        )
