"""Flame graphs: stacks drawn as one interactive, self-contained SVG file,
with flamegraph.pl's conventions (Brendan Gregg's): the root ("all") at the
bottom, each frame as wide as its share of the weight, its callees on top,
siblings in alphabetical order; hover names a frame and its share, a click
zooms to it, Search (or Ctrl-F, or ``?s=REGEX`` in the address) highlights
the frames that match and totals their share. Kernel frames (those whose
name ends in ``folded.KERNEL_SUFFIX``) are coloured apart from user frames.

Input is the folded format's: ``(frames from the root to the leaf, weight)``
pairs, the weight a count, bytes or time as the tool measures. Any tool that
shows stacks draws its picture with one call:
``flamegraph.write(path, pairs, title=..., unit=...)``.

Written here, not taken from a library: flamegraph.pl and inferno are
programs (Perl, Rust), not Python libraries, and the drawing is a few
hundred lines of text; the SVG and its script are our own.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import folded, svg

WIDTH = 1200  # pixels, as flamegraph.pl
FRAME_HEIGHT = 16
FONT_SIZE = 12
FONT_WIDTH = 0.59  # average character width, in font sizes (flamegraph.pl's)
XPAD = 10
TOP = FONT_SIZE * 3  # title and subtitle
BOTTOM = FONT_SIZE * 2 + 10  # details line
MIN_PX = 0.1  # frames narrower than this at full width are left out (flamegraph.pl's minwidth)
SEARCH_FILL = "rgb(230,0,230)"


@dataclass
class Node:
    name: str
    weight: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def tree(stacks: Iterable[tuple[Sequence[str], int]], reverse: bool = False) -> Node:
    """The merged stacks under a root "all"; ``reverse``: leaf first (who
    reaches this function, merged by the function)."""
    root = Node("all")
    for frames, weight in stacks:
        if weight <= 0:
            continue
        names = [folded.frame(f) for f in frames] or ["[empty]"]
        root.weight += weight
        node = root
        for name in reversed(names) if reverse else names:
            node = node.children.setdefault(name, Node(name))
            node.weight += weight
    return root


@dataclass(frozen=True)
class Box:
    """One frame laid out: ``offset`` and ``weight`` in units of weight, so
    the script can zoom without the stacks."""

    name: str
    offset: int
    weight: int
    depth: int


def layout(root: Node, min_weight: float = 0) -> tuple[list[Box], int]:
    """Every frame at least ``min_weight`` wide, root first, and the depth of the deepest."""
    boxes: list[Box] = []
    todo = [(root, 0, 0)]
    deepest = 0
    while todo:
        node, offset, depth = todo.pop()
        boxes.append(Box(node.name, offset, node.weight, depth))
        deepest = max(deepest, depth)
        x = offset
        kids = []
        for name in sorted(node.children):
            child = node.children[name]
            if child.weight >= min_weight:
                kids.append((child, x, depth + 1))
            x += child.weight
        todo.extend(reversed(kids))
    return boxes, deepest


def colour(name: str) -> str:
    """flamegraph.pl's "hot" palette for user frames, aqua for the kernel's,
    grey for the root; the same name always gets the same colour."""
    if name == "all":
        return "rgb(200,200,200)"
    h = binascii.crc32(name.encode("utf-8", "surrogatepass"))
    v1, v2, v3 = (h & 0xFF) / 255, ((h >> 8) & 0xFF) / 255, ((h >> 16) & 0xFF) / 255
    if name.endswith(folded.KERNEL_SUFFIX):
        g = int(165 + 55 * v2)
        return f"rgb({int(50 + 60 * v1)},{g},{g})"
    return f"rgb({int(205 + 50 * v3)},{int(230 * v1)},{int(55 * v2)})"


def shown(name: str) -> str:
    """A frame's name as the picture shows it: without the kernel annotation."""
    return name[: -len(folded.KERNEL_SUFFIX)] if name.endswith(folded.KERNEL_SUFFIX) else name


def fit(name: str, width: float) -> str:
    """As much of ``name`` as fits in ``width`` pixels ("..": cut), as the script does it."""
    chars = int((width - 6) // (FONT_SIZE * FONT_WIDTH))
    if chars < 3:
        return ""
    return name if len(name) <= chars else name[: chars - 2] + ".."


def svg_text(
    stacks: Iterable[tuple[Sequence[str], int]],
    title: str = "Flame Graph",
    subtitle: str = "",
    unit: str = "samples",
    inverted: bool = False,
    reverse: bool = False,
    width: int = WIDTH,
) -> str:
    """The flame graph of ``stacks`` as an SVG document. ``inverted``: an
    icicle graph (the root at the top); ``reverse``: stacks leaf first;
    ``unit``: what a weight counts (calls, bytes, ns...)."""
    root = tree(stacks, reverse)
    total = root.weight
    span = width - 2 * XPAD
    boxes, deepest = layout(root, total * MIN_PX / span if total else 0)
    left_out = _count(root) - len(boxes)
    height = TOP + (deepest + 1) * FRAME_HEIGHT + BOTTOM
    note = [subtitle] if subtitle else []
    if left_out:
        note.append(f"{left_out} frames narrower than {MIN_PX} px left out")
    parts = [
        svg.script(_SCRIPT),
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="rgb(248,248,240)"/>\n',
        f'<text id="title" x="{width / 2:g}" y="{FONT_SIZE * 2}" text-anchor="middle"'
        f' style="font-size:17px">{svg.text(title)}</text>\n',
        f'<text id="subtitle" x="{width / 2:g}" y="{FONT_SIZE * 3 - 2}" text-anchor="middle"'
        f' style="fill:rgb(160,160,160)">{svg.text("; ".join(note))}</text>\n',
        _legend(width),
        f'<text id="details" x="{XPAD}" y="{height - 17}"> </text>\n',
        f'<text id="unzoom" class="button" x="{XPAD}" y="{FONT_SIZE * 2}" style="display:none">'
        "Reset Zoom</text>\n",
        f'<text id="search" class="button" x="{width - XPAD - 100}" y="{FONT_SIZE * 2}">Search</text>\n',
        f'<text id="matched" x="{width - XPAD - 100}" y="{height - 17}"> </text>\n',
        '<g id="frames">\n',
    ]
    for box in boxes:
        parts.append(_frame(box, total, span, height, inverted, unit))
    parts.append("</g>\n")
    style = (
        ".button { cursor: pointer; fill: rgb(40,40,160); }\n"
        "#frames > g { cursor: pointer; }\n"
        "#frames > g:hover > rect { stroke: black; stroke-width: 0.5; }\n"
        "#frames > g.parent { opacity: 0.5; }\n"
    )
    attrs = (
        f' data-total="{total}" data-unit="{svg.text(unit)}" data-xpad="{XPAD}"'
        f' data-font="{FONT_SIZE * FONT_WIDTH:g}"'
    )
    doc = svg.document(width, height, "".join(parts), style, onload="init(evt)")
    return doc.replace("<svg ", "<svg" + attrs + " ", 1)


def _count(node: Node) -> int:
    return 1 + sum(_count(c) for c in node.children.values())


def _legend(width: int) -> str:
    x = width - XPAD - 250
    y = FONT_SIZE * 3 - 2
    return (
        f'<g id="legend"><rect x="{x}" y="{y - 10}" width="10" height="10" fill="{colour("main")}"/>'
        f'<text x="{x + 14}" y="{y}">user</text>'
        f'<rect x="{x + 54}" y="{y - 10}" width="10" height="10"'
        f' fill="{colour("x" + folded.KERNEL_SUFFIX)}"/>'
        f'<text x="{x + 68}" y="{y}">kernel</text></g>\n'
    )


def _frame(box: Box, total: int, span: int, height: int, inverted: bool, unit: str) -> str:
    x = XPAD + (box.offset / total * span if total else 0)
    w = box.weight / total * span if total else span
    if inverted:
        y = TOP + box.depth * FRAME_HEIGHT
    else:
        y = height - BOTTOM - (box.depth + 1) * FRAME_HEIGHT
    name = shown(box.name)
    kernel = box.name.endswith(folded.KERNEL_SUFFIX)
    share = box.weight / total * 100 if total else 0
    what, mark = (" [kernel]", ' data-k="1"') if kernel else ("", "")
    return (
        f'<g data-o="{box.offset}" data-v="{box.weight}" data-d="{box.depth}"{mark}'
        f' data-f="{svg.text(name)}">'
        f"<title>{svg.text(name)}{what} ({box.weight:,} {svg.text(unit)}, {share:.2f}%)</title>"
        f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{FRAME_HEIGHT - 1}"'
        f' fill="{colour(box.name)}" rx="2" ry="2"/>'
        f'<text x="{x + 3:.2f}" y="{y + FRAME_HEIGHT - 5}">{svg.text(fit(name, w))}</text></g>\n'
    )


def write(path: str, stacks: Iterable[tuple[Sequence[str], int]], **options) -> None:
    """``svg_text(stacks, **options)`` written to ``path`` (whole: ``svg.write_file``)."""
    svg.write_file(path, svg_text(stacks, **options))


# The script: our own, inline (nothing is fetched). Frames carry their offset
# and weight in units of weight (data-o, data-v) and their depth (data-d):
# zooming lays them out again from those alone.
_SCRIPT = r"""
"use strict";
var root, frames, details, matched, unzoom, searchbtn, total, unit, xpad, span, charw;
var zoomed = null, searching = null;

function num(g, name) { return Number(g.getAttribute("data-" + name)); }
function rect(g) { return g.getElementsByTagName("rect")[0]; }
function label(g) { return g.getElementsByTagName("text")[0]; }

function init(evt) {
  root = document.documentElement;
  frames = Array.prototype.slice.call(document.getElementById("frames").children);
  details = document.getElementById("details");
  matched = document.getElementById("matched");
  unzoom = document.getElementById("unzoom");
  searchbtn = document.getElementById("search");
  total = Number(root.getAttribute("data-total"));
  unit = root.getAttribute("data-unit");
  xpad = Number(root.getAttribute("data-xpad"));
  span = Number(root.getAttribute("width")) - 2 * xpad;
  charw = Number(root.getAttribute("data-font"));
  frames.forEach(function (g) { g.setAttribute("data-c", rect(g).getAttribute("fill")); });
  var box = document.getElementById("frames");
  box.addEventListener("mouseover", function (e) {
    var g = frameOf(e.target);
    if (g) details.textContent = describe(g);
  });
  box.addEventListener("mouseout", function () { details.textContent = " "; });
  box.addEventListener("click", function (e) {
    var g = frameOf(e.target);
    if (g) zoom(g);
  });
  unzoom.addEventListener("click", function () { zoom(frames[0]); });
  searchbtn.addEventListener("click", function () {
    if (searching !== null) { clearSearch(); return; }
    var term = prompt("Search for (a regular expression):", "");
    if (term) search(term);
  });
  window.addEventListener("keydown", function (e) {
    if (e.keyCode === 114 || ((e.ctrlKey || e.metaKey) && e.keyCode === 70)) {
      e.preventDefault();
      var term = prompt("Search for (a regular expression):", "");
      if (term) search(term);
    }
  });
  var params = new URLSearchParams(document.location.search);
  if (params.get("s")) search(params.get("s"));
}

function frameOf(node) {
  while (node && node.parentNode && node.parentNode.id !== "frames") node = node.parentNode;
  return node && node.parentNode ? node : null;
}

function describe(g) {
  var v = num(g, "v");
  var pct = total ? (100 * v / total).toFixed(2) : "0.00";
  var kernel = g.getAttribute("data-k") ? " [kernel]" : "";
  return "Function: " + g.getAttribute("data-f") + kernel + " (" + v.toLocaleString("en-US") +
    " " + unit + ", " + pct + "%)";
}

function fit(name, w) {
  var chars = Math.floor((w - 6) / charw);
  if (chars < 3) return "";
  return name.length <= chars ? name : name.slice(0, chars - 2) + "..";
}

function place(g, x, w) {
  var r = rect(g), t = label(g);
  r.setAttribute("x", (xpad + x).toFixed(2));
  r.setAttribute("width", w.toFixed(2));
  t.setAttribute("x", (xpad + x + 3).toFixed(2));
  t.textContent = fit(g.getAttribute("data-f"), w);
  g.style.display = "";
}

// The clicked frame takes the full width, its callees scaled with it; its
// callers stay, full width and dimmed; everything else is hidden.
function zoom(target) {
  var o = num(target, "o"), v = num(target, "v"), d = num(target, "d");
  frames.forEach(function (g) {
    var go = num(g, "o"), gv = num(g, "v"), gd = num(g, "d");
    if (gd < d && go <= o && go + gv >= o + v) {
      place(g, 0, span);
      g.classList.add("parent");
    } else if (gd >= d && go >= o && go + gv <= o + v) {
      place(g, (go - o) / v * span, gv / v * span);
      g.classList.remove("parent");
    } else {
      g.style.display = "none";
    }
  });
  zoomed = d === 0 ? null : target;
  unzoom.style.display = zoomed ? "" : "none";
}

// Frames whose name matches are highlighted; their share counts each
// stretch of the x axis once (a match inside a match adds nothing).
function search(term) {
  var re;
  try { re = new RegExp(term); } catch (err) {
    re = new RegExp(term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  }
  clearSearch();
  var hits = [];
  frames.forEach(function (g) {
    if (re.test(g.getAttribute("data-f"))) {
      rect(g).setAttribute("fill", "rgb(230,0,230)");
      g.classList.add("match");
      hits.push(g);
    }
  });
  hits.sort(function (a, b) { return num(a, "o") - num(b, "o") || num(b, "v") - num(a, "v"); });
  var sum = 0, end = -1;
  hits.forEach(function (g) {
    if (num(g, "o") >= end) { sum += num(g, "v"); end = num(g, "o") + num(g, "v"); }
  });
  searching = term;
  searchbtn.textContent = "Reset Search";
  matched.textContent = "Matched: " + (total ? (100 * sum / total).toFixed(2) : "0.00") + "% (" +
    sum.toLocaleString("en-US") + " " + unit + ")";
  matched.setAttribute("data-sum", String(sum));
  return sum;
}

function clearSearch() {
  frames.forEach(function (g) {
    rect(g).setAttribute("fill", g.getAttribute("data-c"));
    g.classList.remove("match");
  });
  searching = null;
  searchbtn.textContent = "Search";
  matched.textContent = " ";
}
"""
