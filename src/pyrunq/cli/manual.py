"""The manual a terminal user expects: a man page per tool (``man
pyrunq-runqlat``) and ``pyrunq.1``, and bash and zsh completion, all made
from the same argparse parsers the command runs (``cli.full_parser``), so
they name every tool and flag there is and cannot drift.

Made at build time (``build.py`` runs ``python -m pyrunq.cli.manual DIR``)
and installed with the wheel's data files: ``share/man/man1/`` and the
directories bash-completion and zsh search. The pages are rendered by
argparse-manpage and the completion scripts by shtab (static scripts: a
Tab costs no Python start), both build-time dependencies only.
"""

from __future__ import annotations

import argparse
import os
import sys

# what each made file is, where the wheel installs it (below its data directory)
BASH = "pyrunq"
ZSH = "_pyrunq"
DESTINATIONS = {
    "man": "share/man/man1",
    BASH: "share/bash-completion/completions",
    ZSH: "share/zsh/site-functions",
}


FILES = {"FILE.svg", "OBJECT"}  # metavars of arguments that name a file


def _roff_lines(text: str) -> str:
    """Preformatted text as roff: no line read as a request, dashes as dashes."""
    body = "\n".join("\\&" + _escape(line) for line in text.splitlines())
    return f".nf\n{body}\n.fi\n"


def _page(parser, name: str, summary: str, sections: dict[str, str]) -> str:
    from argparse_manpage.manpage import Manpage

    from .. import __version__

    examples, parser.epilog = parser.epilog, None  # an EXAMPLES section of its own, preformatted
    page = Manpage(parser)
    page.prog, page.description = name, summary
    page.source, page.manual = f"pyrunq {__version__}", "pyrunq manual"
    if examples:
        page.add_section("examples", ">", _roff_lines(examples.removeprefix("examples:\n")))
    for heading, text in sections.items():
        page.add_section(heading, ">", text)
    return str(page)


def _main_page() -> str:
    """``pyrunq.1``: the command's own top parser, and a list of the tools."""
    from . import TOOLS, _top_parser

    top = _top_parser(with_tools=False)
    top.add_argument("tool", metavar="TOOL", help="the tool to run, one of TOOLS below")
    top.add_argument("args", metavar="ARGS", nargs="...", help="its arguments: man pyrunq-TOOL")
    tools = "".join(f".TP\n\\fB{name}\\fR\n{_escape(summary)}\n" for name, summary in TOOLS.items())
    see_also = ",\n".join(f"\\%\\fBpyrunq\\-{name}\\fR(1)" for name in TOOLS)  # roff: never hyphenated
    return _page(top, "pyrunq", "scheduler latency tracing with eBPF", {"tools": tools, "see also": see_also})


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def tool_parsers(top) -> dict:
    """Tool name -> its parser, in ``full_parser()``'s subcommands."""
    (tools,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(tools.choices)


def man_pages() -> dict[str, str]:
    """File name -> roff text: ``pyrunq.1`` and ``pyrunq-TOOL.1`` for each tool."""
    from . import TOOLS, full_parser

    tools = tool_parsers(full_parser())
    pages = {"pyrunq.1": _main_page()}
    for name, summary in TOOLS.items():
        pages[f"pyrunq-{name}.1"] = _page(
            tools[name], f"pyrunq-{name}", summary, {"see also": "\\fBpyrunq\\fR(1)"}
        )
    return pages


def completions() -> dict[str, str]:
    """File name -> script: bash's and zsh's completion of ``pyrunq``."""
    import shtab

    from . import full_parser

    def parser():
        top = full_parser()
        for sub in tool_parsers(top).values():
            for action in sub._actions:
                if action.metavar in FILES:  # Tab offers file names there
                    action.complete = shtab.FILE
        return top

    return {BASH: shtab.complete(parser(), "bash"), ZSH: shtab.complete(parser(), "zsh")}


def write(directory: str) -> dict[str, str]:
    """Write the pages and scripts in ``directory``; return path -> where
    the wheel installs it (its data directory's relative path)."""
    os.makedirs(directory, exist_ok=True)
    out = {}
    for name, text in {**man_pages(), **completions()}.items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out[path] = f"{DESTINATIONS.get(name, DESTINATIONS['man'])}/{name}"
    return out


if __name__ == "__main__":
    import json

    json.dump(write(sys.argv[1]), sys.stdout)
