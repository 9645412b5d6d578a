"""pyrunq top: its model without a kernel or a terminal, then on the real
kernel: the sampler, batch and JSON output, and the screen in a real terminal
(tmux), with a victim starved behind a real-time hog."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest

from pyrunq.hist import Histogram
from pyrunq.tools.blame import Attribution, Culprit
from pyrunq.tools.runqlat import Key
from pyrunq.tools.top import (
    NAME_AT,
    SORTS,
    Sampler,
    Trends,
    View,
    apply_key,
    batch_text,
    fmt_us,
    json_doc,
    make_frame,
    quantiles,
    row_line,
    screen_lines,
    spark,
    visible,
)
import cli
from cli import assert_usage_error
from needs import need
from waiting import wait_for
from workload import VICTIM_COMM, Contention

MS = re.compile(r"^[\d.]+m?s$")  # a p99 of milliseconds (or seconds), not microseconds


def hist(values, sum_ns=None) -> Histogram:
    h = Histogram.from_values(values)
    return Histogram(h.buckets, "usecs", sum(values) * 1000 if sum_ns is None else sum_ns)


def frame_of(snapshot, seconds=1.0, trends=None, **kw):
    return make_frame(snapshot, seconds, "process", trends or Trends(), **kw)


# ---- the model ----------------------------------------------------------------


def test_quantiles_match_the_histogram_percentiles():
    rng = random.Random(19)
    for _ in range(300):
        h = hist([int(rng.lognormvariate(4, 2.5)) for _ in range(rng.randint(1, 400))])
        p50, p99, top = quantiles(h.buckets, h.total)
        assert (p50, p99, top) == (h.percentile(50), h.percentile(99), h.max), h


def test_rows_rates_exact_means_and_totals():
    victim, idle = Key("pid", 10, "victim"), Key("pid", 11, "idle")
    f = frame_of({victim: hist([8000] * 3 + [10] * 97), idle: hist([3, 5])}, seconds=2.0, ctxt_per_s=500.0)
    row = {r.id: r for r in f.rows}
    assert row[10].waits == 100 and row[10].waits_per_s == 50
    assert row[10].avg_us == pytest.approx((3 * 8000 + 97 * 10) / 100)  # the kernel's sum: exact
    assert row[10].wait_pct == pytest.approx((3 * 8000 + 97 * 10) / 2e6 * 100)
    assert 6000 <= row[10].p99_us <= 8191 and row[10].p50_us <= 11  # within the bucket
    assert row[11].max_us == 5 and row[11].label == "idle"
    # all of a process's waiting at once, its threads' waits adding up
    busy = frame_of({Key("pid", 3, "busy"): hist([1000] * 1000)}, seconds=0.5).rows[0]
    assert busy.wait_pct == pytest.approx(200) and row_line(busy).split()[6] == "200"
    t = f.totals
    assert t.waits == 102 and t.waits_per_s == 51 and t.ctxt_per_s == 500
    assert t.p99_us == hist([8000] * 3 + [10] * 97 + [3, 5]).percentile(99)


def test_trends_keep_the_last_p99s_and_forget_idle_keys():
    key, trends = Key("tid", 7, "t"), Trends(length=3)
    p99s = []
    for values in ([10], [5000], None, [40]):
        f = frame_of({key: hist(values)} if values else {}, trends=trends)
        p99s.append([r.trend for r in f.rows])
    assert p99s[1] == [(None, hist([10]).percentile(99), hist([5000]).percentile(99))]
    assert p99s[2] == [] and p99s[3][0][0] == p99s[1][0][2] and p99s[3][0][1] is None
    for _ in range(3):  # three idle intervals: forgotten
        frame_of({}, trends=trends)
    assert frame_of({key: hist([1])}, trends=trends).rows[0].trend == (None, None, 1.0)


def test_sort_by_each_column_and_filter_by_name_or_id():
    snap = {
        Key("pid", 1, "alpha"): hist([100] * 10),
        Key("pid", 2, "beta"): hist([9000, 10]),
        Key("pid", 30, "gamma"): hist([20] * 50),
    }
    rows = frame_of(snap).rows
    assert [r.id for r in visible(rows, View(sort="p99"))] == [2, 1, 30]
    assert [r.id for r in visible(rows, View(sort="waits"))] == [30, 1, 2]
    assert [r.id for r in visible(rows, View(sort="id"))] == [1, 2, 30]
    assert [r.id for r in visible(rows, View(sort="name"))] == [1, 2, 30]
    assert [r.id for r in visible(rows, View(filter="BET"))] == [2]
    assert [r.id for r in visible(rows, View(filter="30"))] == [30]
    for column in SORTS:
        assert len(visible(rows, View(sort=column))) == 3


def test_rows_made_when_shown_are_the_references_rows_in_its_order():
    """TableRows (the sampler's rows from packed C stats, sorted in C)
    against frame_of's Rows of the same stats sorted in Python: many ties,
    keys without waits, every sort column, a limit and a filter."""
    from pyrunq.bpf import StatsRows
    from pyrunq.bpf.hists import _STATS
    from pyrunq.tools.runqlat import IntervalRows
    from pyrunq.tools.top import KeyInterval, TableRows, frame_of as reference_frame

    rng, packed, keys = random.Random(2626), [], []
    for key in rng.sample(range(1, 10**6), 300):  # map order: no order at all
        waits = rng.choice((0, 1, 2, 7, 7, 1000))  # 0: made, not yet counted in
        p50, p99 = sorted(rng.choice((1.0, 3.0, 24.5, 8191.0)) for _ in range(2))
        s = (key, waits, rng.choice((0, 1, 999, 5 * 10**9)), rng.choice((3, 8191)), p50, p99)
        packed.append(_STATS.pack(*s, *[0] * 5, b"t%d" % (key % 5)))
        keys += [KeyInterval(Key("tid", key, "t%d" % (key % 5)), *s[1:3], p50, p99, s[3])] if waits else []
    table = IntervalRows(StatsRows(b"".join(packed)), [0] * 100, None, lambda k, c: Key("tid", k, c), None)
    reference = reference_frame(keys, [0] * 100, 0, 0.7, "thread", Trends())
    trends = Trends()
    rows = TableRows(table, 0.7, trends.add({k.key.id: k.p99 for k in keys}), trends.length)
    assert list(rows) == reference.rows  # map order, field by field
    for column in SORTS:
        want = visible(reference.rows, View(sort=column))
        assert visible(rows, View(sort=column)) == want
        assert visible(rows, View(sort=column), 9) == want[:9]
        assert visible(rows, View(sort=column, filter="t3")) == visible(want, View(sort=column, filter="t3"))


def test_keys_change_the_view():
    v = View()
    assert apply_key(v, "q") is None
    assert apply_key(v, "t").by == "thread" and apply_key(v, "c").by == "cgroup"
    assert apply_key(apply_key(v, "t"), "p").by == "process"
    assert apply_key(v, ">").sort == "max" and apply_key(v, "<").sort == "p50"
    assert apply_key(View(sort="name"), ">").sort == "id"  # wraps around
    assert apply_key(v, " ").paused and not apply_key(apply_key(v, " "), " ").paused
    helped = apply_key(v, "h")
    assert helped.help and not apply_key(helped, "x").help
    assert apply_key(v, "x") == v


def test_durations_fit_six_characters():
    cases = {None: "-", 0: "0us", 850: "850us", 999.4: "999us", 4210: "4.21ms", 35_000: "35.0ms"}
    cases.update({812_000: "812ms", 1_200_000: "1.20s", 75_000_000: "75.0s"})
    for us, text in cases.items():
        assert fmt_us(us) == text and len(text) <= 6


def test_trend_levels_on_a_fixed_scale():
    assert [spark(v) for v in (None, 1, 5, 20, 100, 300, 2000, 5000, 20000, 10**7)] == list(" ▁▂▃▄▅▆▇██")
    assert spark(5000, utf8=False) == "*" and spark(20000, utf8=False) == "#"


def test_cgroup_rows_show_a_containers_short_id():
    cid = "f7dcb501c8602d13904c07cba0fa5d0e406bd4f842a696c162e91296f999be00"
    path = f"/libpod_parent/libpod-{cid}"
    f = make_frame(
        {Key("cgroup", 5, path): hist([10]), Key("cgroup", 6, "/x.slice"): hist([10])}, 1, "cgroup", Trends()
    )
    row = {r.id: r for r in f.rows}
    assert row[5].label == "podman:f7dcb501c860" and row[5].container["container_id"] == cid
    assert row[6].label == "/x.slice" and row[6].container is None
    doc = json_doc(f, View(by="cgroup"))
    assert {r["path"] for r in doc["rows"]} == {path, "/x.slice"}


def test_screen_lines_fit_the_screen_and_keep_a_paths_end():
    long = "/kubepods.slice/" + "x" * 200 + "/the-end.scope"
    snap = {Key("cgroup", i, f"{long}{i}") for i in range(50)}
    f = make_frame({k: hist([k.id + 1]) for k in snap}, 1, "cgroup", Trends())
    lines = screen_lines(f, View(by="cgroup"), width=NAME_AT + 30, height=20)
    assert len(lines) == 20 and all(len(text) <= NAME_AT + 30 for text, _ in lines)
    assert lines[0][1] == "title" and lines[3][1] == "columns" and "*P99" in lines[3][0]
    assert re.search(r" …x+/the-end\.scope\d+$", lines[4][0]), lines[4][0]
    helped = screen_lines(f, View(help=True), 100, 40)
    assert any("bucket" in text for text, _ in helped) and "columns" not in {style for _, style in helped}
    assert screen_lines(None, View(), 80, 10)[1][0].startswith("waiting for the first interval")


def test_batch_text_and_json_lead_with_the_longest_wait():
    f = frame_of({Key("pid", 1, "quick"): hist([5] * 100), Key("pid", 2, "starved"): hist([9000] * 10)})
    lines = batch_text(f, View()).splitlines()
    assert lines[0].startswith("pyrunq top - ") and "1.00s  by process  sort p99" in lines[0]
    assert lines[1].startswith("all waits 110/s") and "PID" in lines[3]
    assert lines[4].split()[0] == "2" and lines[4].endswith("starved")
    doc = json.loads(json.dumps(json_doc(f, View())))
    assert [r["comm"] for r in doc["rows"]] == ["starved", "quick"] and doc["totals"]["waits"] == 110


def test_rows_show_who_held_the_cpu_and_the_victim_culprit_table():
    box = "/libpod_parent/libpod-" + "ab" * 32
    hog = Culprit(42, 0, "hog", box, 9, "container", 6_000_000)
    kworker = Culprit(23, 0, "kworker/0:1", "/", 1, "kernel", 1_000_000)
    kinds = {
        "self": 0,
        "container": 6_000_000,
        "host": 0,
        "kernel": 1_000_000,
        "idle": 0,
        "unattributed": 1_000_000,
    }
    victim, quiet = Key("pid", 10, "victim"), Key("pid", 11, "quiet")
    f = frame_of(
        {victim: hist([8000]), quiet: hist([5])},
        seconds=2.0,
        blame={victim: Attribution(kinds, (hog, kworker))},
    )
    row = {r.id: r for r in f.rows}
    assert row[10].culprit() == "podman:abababababab hog[42]" and row[11].culprit() == ""
    idle = Attribution(dict(kinds, idle=7_000_000), (hog,))
    assert frame_of({victim: hist([8000])}, blame={victim: idle}).rows[0].culprit() == "idle"
    line = row_line(row[10])
    assert line[: NAME_AT - 1].split()[-7:] == [
        "0",
        "75",
        "0",
        "12",
        "0",
        "podman:abababababab",
        "hog[42]",
    ], line
    assert line.endswith(" victim") and len(line) == NAME_AT + len("victim")
    assert row_line(row[11])[: NAME_AT - 1].split()[-5:] == ["-"] * 5  # no attribution: no shares, no culprit
    assert [(p.culprit, p.kind, p.ns_per_s) for p in f.pairs] == [
        ("podman:abababababab hog[42]", "container", 3e6),
        ("kworker/0:1[23]", "kernel", 5e5),
    ]
    table = batch_text(f, View(blame=True)).splitlines()
    assert table[3].split() == ["MS/s", "KIND", "CULPRIT", "VICTIM"]
    assert table[4].split() == ["3.00", "container", "podman:abababababab", "hog[42]", "victim", "(10)"]
    assert apply_key(View(), "b").blame and not apply_key(View(blame=True), "b").blame
    doc = json.loads(json.dumps(json_doc(f, View())))["rows"]
    assert doc[0]["blame"]["kinds_ns"] == kinds and doc[0]["blame"]["culprits"][0]["comm"] == "hog"


@pytest.mark.parametrize(
    "args, message",
    [
        (["-d", "0"], "must be between"),
        (["-d", "x"], "invalid number of seconds"),
        (["--by", "host"], "invalid choice"),
        (["-p", "0"], "invalid PID list"),
        (["-n", "0"], "must be positive"),
        (["-c", "/no/such/cgroup"], "not a cgroup v2 directory"),
    ],
)
def test_bad_input_one_line_exit_2(args, message):
    assert_usage_error("top", args, message)


# ---- on the real kernel ---------------------------------------------------------


def victim_rank(rows, pid: int):
    """Index of the victim's row among the table's rows if its p99 reads in
    milliseconds (fields: id, waits/s, avg, p50, p99, ...)."""
    for i, fields in enumerate(rows):
        if fields[0] == str(pid) and MS.match(fields[4]):
            return i
    return None


def tables(text: str) -> list[list[list[str]]]:
    """The rows (split in fields) of each table of a batch output or a screen."""
    out = []
    for chunk in re.split(r"^pyrunq top - ", text, flags=re.M)[1:]:
        lines = chunk.splitlines()
        start = next((i for i, line in enumerate(lines) if "WAITS/s" in line), len(lines)) + 1
        rows = []
        for line in lines[start:]:
            fields = line.split()
            if len(fields) < 6:  # the end of the table (or of a screen being drawn)
                break
            rows.append(fields)
        out.append(rows)
    return out


def first_table(screen: str) -> list[list[str]]:
    return (tables(screen) or [[]])[0]


def among_the_first(rows, pid: int) -> bool:
    """The victim is in the top rows, which are in p99 order. On a busy
    machine others wait as long (everything behind the hog, or behind other
    tests' load; a single long wait is a p99), so "top" is generous: the
    first 10 rows, or the first third."""
    p99s = [us(fields[4]) for fields in rows]
    rank = victim_rank(rows, pid)
    return p99s == sorted(p99s, reverse=True) and rank is not None and rank < max(10, len(rows) // 3)


def us(text: str) -> float:
    """Microseconds of a duration as the table shows it (850us, 4.21ms, 1.20s)."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


@pytest.mark.slow
def test_sampler_switches_keys_and_leaves_nothing(kernel):
    with Contention() as w, Sampler("process", pids=[w.victim.pid]) as s:
        with open(f"/proc/{w.victim.pid}/cgroup") as f:
            path = next(line[3:].strip() for line in f if line.startswith("0::"))
        for by, kind, name in (
            ("process", "pid", VICTIM_COMM),
            ("thread", "tid", VICTIM_COMM),
            ("cgroup", "cgroup", path),
        ):
            if s.by != by:
                s.switch(by)

            def starved():
                rows = s.sample().rows
                return rows if rows and rows[0].p99_us >= 1000 else None

            rows = wait_for(starved)
            assert [(r.kind, r.name) for r in rows] == [(kind, name)]
            assert by == "cgroup" or rows[0].id == w.victim.pid


@pytest.mark.slow
def test_batch_prints_n_tables_victim_among_the_first_rows(kernel):
    with Contention() as w:
        out = cli.run("top", "-b", "-n", "3", "-d", "1")
    assert out.returncode == 0, out.stderr
    found = tables(out.stdout)
    assert len(found) == 3, out.stdout
    assert all(among_the_first(rows, w.victim.pid) for rows in found), out.stdout


@pytest.mark.slow
def test_json_one_document_per_interval(kernel, tmp_path):
    """And --heatmap: a column per interval, the row's waits in its cells."""
    svg = tmp_path / "top.svg"
    with Contention() as w:
        out = cli.run("top", "--json", "-n", "2", "-d", "0.5", "-p", str(w.victim.pid), "--heatmap", str(svg))
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == 2
    for doc in docs:
        (row,) = doc["rows"]
        assert row["id"] == w.victim.pid and row["comm"] == VICTIM_COMM and row["p99_us"] >= 1000
        assert row["waits"] == doc["totals"]["waits"] and len(row["trend_p99_us"]) == 10
    panels = {
        g.get("data-label"): [
            int(c.get("data-i"))
            for c in g.iter()
            if c.get("class") == "c"
            for _ in range(int(c.get("data-n")))
        ]
        for g in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}g")
        if g.get("class") == "panel"
    }
    waits = [panels[f"pid {w.victim.pid} {VICTIM_COMM}"].count(i) for i in (0, 1)]
    assert waits == [doc["rows"][0]["waits"] for doc in docs]


class Tmux:
    """A tmux server of our own running one command in a real terminal."""

    def __init__(self, command: str, width: int, height: int):
        self.socket = f"pyrunq-test-{uuid.uuid4().hex[:8]}"
        self("new-session", "-d", "-x", str(width), "-y", str(height), command)

    def __call__(self, *args) -> str:
        out = subprocess.run(
            ["tmux", "-u", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p")

    def keys(self, *keys) -> None:
        self("send-keys", *keys)

    def wait(self, predicate):
        """The screen, once ``predicate(screen)`` holds."""
        last = {}

        def ok():
            last["screen"] = self.screen()
            return predicate(last["screen"]) and last["screen"]

        return wait_for(ok, every=0.1, seen=lambda: last.get("screen"))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


def in_shell(args: str) -> str:
    """``pyrunq ARGS`` in a shell that then says whether the terminal's settings
    are as before, and the exit status; the screen shows what was there before.
    Ctrl-C interrupts the whole foreground group: the shell survives it with
    a trap (which, unlike an ignored signal, its children do not inherit)."""
    script = (
        "trap : INT; printf 'before-top\\n'; s=$(stty -g); "
        f"{shlex.join(cli.cmd())} {args}; rc=$?; "
        '[ "$(stty -g)" = "$s" ] && echo same-tty; echo "exit=$rc"; sleep 600'
    )
    return f"sh -c {shlex.quote(script)}"


def header(screen: str) -> str:
    return next((line for line in screen.splitlines() if line.startswith("pyrunq top - ")), "")


@pytest.fixture
def tmux():
    need("tmux")
    made = []

    def start(command: str, width: int = 60, height: int = 30) -> Tmux:
        made.append(Tmux(command, width, height))
        return made[-1]

    yield start
    for t in made:
        t.close()


@pytest.mark.slow
def test_screen_on_a_terminal_that_does_not_know_its_size(kernel):
    """script(1)'s pseudo-terminal says 0x0 (as a bare pty or a serial line
    does): curses' own size (LINES, COLUMNS) stays; top draws and ends."""
    need("script")
    command = f"{shlex.join(cli.cmd())} top -d 0.2 -n 2"
    env = {**os.environ, "TERM": "xterm", "LINES": "30", "COLUMNS": "120"}
    out = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        capture_output=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0 and b"Traceback" not in out.stdout, out.stdout[-2000:]
    assert b"TOP CULPRIT" in out.stdout and b"pyrunq top - " in out.stdout


@pytest.mark.slow
def test_screen_in_a_real_terminal(kernel, tmux):
    with Contention() as w:
        term = tmux(in_shell("top -d 0.5"), width=60)
        term.wait(lambda s: among_the_first(first_table(s), w.victim.pid))
        term("resize-window", "-x", "160")  # wider: the names appear, so it redrew at the new size
        term.wait(lambda s: "COMM" in s and VICTIM_COMM in s)
        term.keys("t")
        term.wait(
            lambda s: (
                "by thread" in header(s)
                and " TID " in s
                and victim_rank(first_table(s), w.victim.pid) is not None
            )
        )
        term.keys("c")
        term.wait(lambda s: "by cgroup" in header(s) and "CGROUP ID" in s and first_table(s))
        term.keys("p", ">")
        term.wait(lambda s: "by process  sort max" in header(s) and "*MAX" in s and first_table(s))
        term.keys("/")
        term("send-keys", "-l", VICTIM_COMM[:10])
        term.keys("Enter")
        screen = term.wait(lambda s: f'filter "{VICTIM_COMM[:10]}"' in s and first_table(s))
        assert all(row[-1] == VICTIM_COMM for row in first_table(screen)), screen
        term.keys("Space")
        term.wait(lambda s: "PAUSED" in header(s))
        term.keys("Space", "h")
        term.wait(lambda s: "PAUSED" not in header(s) and "Any key closes this help" in s)
        term.keys("x")
        term.wait(lambda s: "WAITS/s" in s)
        term.keys("q")
        screen = term.wait(lambda s: "exit=" in s)
    assert "exit=0" in screen and "same-tty" in screen and "before-top" in screen, screen
    assert "WAITS/s" not in screen  # the screen as it was before top


@pytest.mark.slow
def test_ctrl_c_restores_the_terminal(kernel, tmux):
    with Contention():
        term = tmux(in_shell("top -d 0.5 --by thread"), width=120)
        term.wait(first_table)  # a frame is on the screen
        term.keys("C-c")
        screen = term.wait(lambda s: "exit=" in s)
    assert "exit=0" in screen and "same-tty" in screen and "before-top" in screen, screen
    assert "WAITS/s" not in screen
