"""The man pages and shell completion (pyrunq.cli.manual), made as build.py
makes them for the wheel: man renders every page, each names every flag its
tool's parser knows, and bash completes the tools and each tool's flags. A
tool added to cli.TOOLS is covered with no edit here."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from pyrunq.cli import TOOLS, full_parser, manual
from needs import need

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> str:
    """The directory ``python -m pyrunq.cli.manual DIR`` (build.py's step) filled."""
    out = str(tmp_path_factory.mktemp("manual"))
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    subprocess.run([sys.executable, "-m", "pyrunq.cli.manual", out], check=True, env=env, capture_output=True)
    return out


def tool_parsers() -> dict[str, argparse.ArgumentParser]:
    return manual.tool_parsers(full_parser())


def flags(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def rendered(path: str) -> str:
    need("man")
    env = {**os.environ, "MANWIDTH": "200", "LC_ALL": "C", "MAN_KEEP_FORMATTING": ""}
    done = subprocess.run(["man", "-l", path], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


def test_a_page_per_tool_with_every_flag(made):
    parsers = tool_parsers()
    assert set(parsers) == set(TOOLS)
    assert sorted(f for f in os.listdir(made) if f.endswith(".1")) == sorted(
        ["pyrunq.1"] + [f"pyrunq-{t}.1" for t in TOOLS]
    )
    for tool, parser in parsers.items():
        text = rendered(os.path.join(made, f"pyrunq-{tool}.1"))
        assert text.splitlines()[0].startswith(f"PYRUNQ-{tool.upper()}(1)")
        assert f"pyrunq-{tool} - {TOOLS[tool]}" in " ".join(text.split())
        # every flag, but --help: the page is the help (-h is in the synopsis)
        missing = {f for f in flags(parser) if f not in text} - {"--help"}
        assert not missing and f"pyrunq {tool} [-h]" in " ".join(text.split()), (tool, missing)
        positionals = {a.metavar or a.dest for a in parser._actions if not a.option_strings}
        assert all(p in text for p in positionals), (tool, positionals)
        if parser.epilog:  # the tool's examples, line by line
            assert "EXAMPLES" in text and parser.epilog.splitlines()[1].strip() in text


def test_the_main_page_names_every_tool(made):
    text = rendered(os.path.join(made, "pyrunq.1"))
    for tool in TOOLS:
        assert f"pyrunq-{tool}(1)" in text


def bash_complete(script: str, *lines: str) -> list[list[str]]:
    """What Tab offers at the end of each command line, in bash with the script sourced."""
    need("bash")
    probe = [f"source {script}"]
    for line in lines:
        probe.append(
            f'COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}; read -ra COMP_WORDS <<< "$COMP_LINE";'
            + (' COMP_WORDS+=("");' if line.endswith(" ") else "")
            + " COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _shtab_pyrunq;"
            + ' echo "${COMPREPLY[*]}"'
        )
    done = subprocess.run(["bash", "-c", "\n".join(probe)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines()]


def test_bash_completes_tools_and_each_tools_flags(made):
    parsers = tool_parsers()
    lines = ["pyrunq "] + [f"pyrunq {tool} --" for tool in parsers] + ["pyrunq runqlat -"]
    offered = bash_complete(os.path.join(made, "pyrunq"), *lines)
    assert set(offered[0]) == set(TOOLS)
    for (tool, parser), words in zip(parsers.items(), offered[1:]):
        assert set(words) == {f for f in flags(parser) if f.startswith("--")}, tool
    assert {"-T", "-m", "-P", "-L", "-p", "-c"} <= set(offered[-1])


def test_bash_offers_files_where_a_file_goes(made, tmp_path, monkeypatch):
    (tmp_path / "graph.svg").write_text("")
    monkeypatch.chdir(tmp_path)
    (words,) = bash_complete(os.path.join(made, "pyrunq"), "pyrunq stackcount --flamegraph gr")
    assert words == ["graph.svg"]


def test_zsh_completion_names_the_tools_and_flags(made):
    text = open(os.path.join(made, "_pyrunq")).read()
    assert text.startswith("#compdef pyrunq")
    for tool, parser in tool_parsers().items():
        assert tool in text and all(f in text for f in flags(parser)), tool
