"""pyrunq.flamegraph without a browser: the document is well-formed XML
whatever the names hold, and its frames are the folded input merged
(tests/test_pictures_browser.py opens it in chromium)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pyrunq import flamegraph, folded
from cli import assert_usage_error

NS = {"s": "http://www.w3.org/2000/svg"}
HOSTILE = "<b id=h>&amp;\x01\"'</b>"


def frames(doc: str) -> list[dict]:
    root = ET.fromstring(doc.encode())
    out = []
    for g in root.find("s:g[@id='frames']", NS):
        rect = g.find("s:rect", NS)
        out.append(
            {
                "name": g.get("data-f"),
                "o": int(g.get("data-o")),
                "v": int(g.get("data-v")),
                "d": int(g.get("data-d")),
                "kernel": g.get("data-k") == "1",
                "x": float(rect.get("x")),
                "y": float(rect.get("y")),
                "w": float(rect.get("width")),
                "text": g.find("s:text", NS).text or "",
                "title": g.find("s:title", NS).text,
            }
        )
    return out


STACKS = [
    (["main", "Bar", "Foo"], 3),
    (["main", "Baz"], 1),
    (["main", "Bar", "Foo", "sys_write" + folded.KERNEL_SUFFIX], 2),
    (["main", "Bar"], 2),
]


def test_frames_merge_the_stacks_in_alphabetical_order():
    doc = flamegraph.svg_text(STACKS, unit="calls")
    got = {(f["name"], f["d"]): (f["o"], f["v"]) for f in frames(doc)}
    assert got == {
        ("all", 0): (0, 8),
        ("main", 1): (0, 8),
        ("Bar", 2): (0, 7),
        ("Foo", 3): (0, 5),
        ("sys_write", 4): (0, 2),
        ("Baz", 2): (7, 1),
    }
    root = ET.fromstring(doc.encode())
    assert root.get("data-total") == "8" and root.get("data-unit") == "calls"
    (kernel,) = [f for f in frames(doc) if f["kernel"]]
    assert kernel["name"] == "sys_write" and kernel["title"] == "sys_write [kernel] (2 calls, 25.00%)"


def test_widths_are_shares_of_the_full_width_root_at_the_bottom():
    fs = {f["name"]: f for f in frames(flamegraph.svg_text(STACKS))}
    full = flamegraph.WIDTH - 2 * flamegraph.XPAD
    assert fs["all"]["w"] == full and fs["all"]["x"] == flamegraph.XPAD
    assert abs(fs["Baz"]["w"] - full / 8) < 0.01
    assert abs(fs["Baz"]["x"] - (flamegraph.XPAD + full * 7 / 8)) < 0.01
    assert fs["all"]["y"] > fs["main"]["y"] > fs["Foo"]["y"]  # flames grow up
    icicle = {f["name"]: f for f in frames(flamegraph.svg_text(STACKS, inverted=True))}
    assert icicle["all"]["y"] < icicle["main"]["y"] < icicle["Foo"]["y"]


def test_kernel_and_user_frames_coloured_apart():
    user = flamegraph.colour("sys_write")
    kernel = flamegraph.colour("sys_write" + folded.KERNEL_SUFFIX)
    assert user != kernel
    assert flamegraph.colour("Foo") == flamegraph.colour("Foo")  # stable across graphs


def test_reverse_merges_by_the_leaf():
    fs = frames(flamegraph.svg_text(STACKS, reverse=True))
    assert {(f["name"], f["d"], f["v"]) for f in fs if f["d"] == 1} == {
        ("Foo", 1, 3),
        ("Baz", 1, 1),
        ("sys_write", 1, 2),
        ("Bar", 1, 2),
    }


def test_hostile_names_stay_text_and_the_document_well_formed():
    doc = flamegraph.svg_text([([HOSTILE, "main"], 1)], title=HOSTILE)
    fs = frames(doc)  # parses: no control character, no markup got through
    assert fs[1]["name"] == "<b id=h>&amp:\ufffd\"'</b>"  # ";" is the folded separator
    assert fs[1]["text"] == fs[1]["name"]
    root = ET.fromstring(doc.encode())
    assert root.find(".//s:b", NS) is None and root.find(".//*[@id='h']", NS) is None


def test_self_contained_nothing_to_fetch():
    doc = flamegraph.svg_text(STACKS)
    assert "http" not in doc.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "href" not in doc and "@import" not in doc and "url(" not in doc


def test_narrow_frames_left_out_and_said():
    stacks = [(["main", "wide"], 1_000_000)] + [(["main", f"tiny{i}"], 1) for i in range(5)]
    doc = flamegraph.svg_text(stacks)
    assert {f["name"] for f in frames(doc)} == {"all", "main", "wide"}
    assert "5 frames narrower than 0.1 px left out" in doc


def test_text_fits_the_frame():
    assert flamegraph.fit("a_long_function_name", 1000) == "a_long_function_name"
    assert flamegraph.fit("a_long_function_name", 60) == "a_lon.."  # 7 characters of 7.08 px
    assert flamegraph.fit("a_long_function_name", 20) == ""


def test_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "f.svg"
    path.write_text("old")
    flamegraph.write(str(path), STACKS, title="t")
    assert path.read_text().startswith("<?xml") and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "tool, args, message",
    [
        ("stackcount", ["--icicle", "c:malloc"], "give --flamegraph FILE.svg"),
        ("memleak", ["-p", "1", "--folded", "--json"], "--folded and --json are two formats"),
        ("run", ["--flamegraph", "/no/such/dir/f.svg", "x.bpf.o"], "no such directory: '/no/such/dir'"),
        ("stackcount", ["--flamegraph", "/", "c:malloc"], "is a directory: '/'"),
    ],
)
def test_bad_picture_flags_one_line_exit_2(tool, args, message):
    assert_usage_error(tool, args, message)


def test_no_stacks_draw_an_empty_graph():
    fs = frames(flamegraph.svg_text([]))
    assert [(f["name"], f["v"]) for f in fs] == [("all", 0)]
