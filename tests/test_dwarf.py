"""Records whose struct only the object's DWARF describes, and records that
nothing decodes, on objects written for these tests (tests/objects/gen_dwarf_*.bpf.c):
their record structs are local variables, which leave no BTF. Each object
fires on getpgid(seq) from this test process only, so the records a test
expects are exactly the syscalls it makes."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess

import pytest

from pyrunq.bpf import BPFObject
from pyrunq.bpf import dwarf
from pyrunq.tools.generic import Runner
from pyrunq.tools.generic.present import presenter
import cli
from cli import inspect_json, run_and_fire
from needs import need
from testobjects import as_dict, fire, my_comm

PHASES = {0: "PHASE_COLD", 1: "PHASE_WARM", 2: "PHASE_HOT"}


def ring_event(seq: int) -> dict:
    """What gen_dwarf_ring sends for getpgid(seq), as `run` shows it."""
    return {
        "seq": seq,
        "tgid": os.getpid(),
        "neg": -seq,
        "comm": my_comm(),
        "phase": PHASES[seq % 3],
        "span": {"lo": seq & 0xFFFF, "hi": seq >> 16 & 0xFFFF},
        "vals": [(seq + i) & 0xFFFF for i in range(3)],
        "odd": bool(seq & 1),
        "grid": [[-2, -1], [0, 1]],
        # a union: each member from the same bytes (a __u8 array is text up to its NUL)
        "mix": {
            "word": seq & 0xFFFFFFFF,
            "bytes": struct.pack("<I", seq).split(b"\0")[0].decode(errors="replace"),
        },
        "cookie": seq * 8,
    }


def events_of(out: str) -> dict[str, list]:
    """The records of `run --json` output, by event map."""
    got: dict[str, list] = {}
    for doc in map(json.loads, out.splitlines()):
        if doc["type"] == "event":
            got.setdefault(doc["map"], []).append(doc["event"])
    return got


def notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("pyrunq run: note: records of")]


# -- the reader (no privileges, nothing loaded) -----------------------------------


@pytest.mark.parametrize("name, struct_name", [("gen_events", "event"), ("gen_perf", "perf_rec")])
def test_dwarf_layouts_equal_btf_layouts(objs, name, struct_name):
    """A struct in both BTF and DWARF: the same definition, codecs and values."""
    with BPFObject(objs[name]) as obj:
        btf, btf_tid = obj.btf, obj.btf.find(struct_name)
        types = dwarf.DwarfTypes.read(objs[name])
        tid = types.find(struct_name)
        assert types.definition(tid) == btf.definition(btf_tid)
        assert types.size(tid) == btf.size(btf_tid)
        assert types.layout(tid).struct.format == btf.layout(btf_tid).struct.format
        data = bytes(range(types.size(tid)))
        assert presenter(types, tid)(types.layout(tid).decode(data)) == presenter(btf, btf_tid)(
            btf.layout(btf_tid).decode(data)
        )


def test_dwarf_types_field_by_field(objs):
    types = dwarf.DwarfTypes.read(objs["gen_dwarf_ring"])
    assert types.own_structs() == ["ring_event"]  # struct span is part of it; pt_regs the kernel's
    assert {"ring_event", "span"} <= set(types.structs())
    tid = types.find("ring_event")
    layout = types.layout(tid)
    assert layout.size == types.size(tid) == 72
    assert [(m, off // 8, bits) for m, _, off, bits in types.members(tid)] == [
        ("seq", 0, 0),
        ("tgid", 8, 0),
        ("neg", 12, 0),
        ("comm", 16, 0),
        ("phase", 32, 0),
        ("span", 36, 0),
        ("vals", 40, 0),
        ("odd", 46, 0),
        ("grid", 48, 0),
        ("mix", 56, 0),
        ("cookie", 64, 0),
    ]
    enum = types.resolve(types.members(tid)[4][1])
    assert types.enum_values(enum) == {"PHASE_COLD": -1, "PHASE_WARM": 1, "PHASE_HOT": 2}
    assert types.declaration(types.members(tid)[1][1], "tgid") == "tgid_t tgid"
    assert types.declaration(types.members(tid)[8][1], "grid") == "__s16 grid[2][2]"
    assert types.declaration(types.members(tid)[9][1], "mix") == "union {...} mix"  # on one line
    seq = 0x10203
    comm = my_comm().encode().ljust(16, b"\0")
    phase = {0: -1, 1: 1, 2: 2}[seq % 3]
    data = struct.pack(
        "<QIi16si2H3H?x4hIxxxxQ",
        seq,
        os.getpid(),
        -seq,
        comm,
        phase,
        seq & 0xFFFF,
        seq >> 16,
        *((seq + i) & 0xFFFF for i in range(3)),
        True,
        -2,
        -1,
        0,
        1,
        seq,
        seq * 8,
    )
    assert presenter(types, tid)(layout.decode(data)) == ring_event(seq)


def test_dwarf_bit_fields_and_same_size_structs(objs):
    types = dwarf.DwarfTypes.read(objs["gen_dwarf_nomatch"])
    assert types.own_structs() == ["alpha", "beta", "flagged"]
    tid = types.find("flagged")
    assert [(m, off, bits) for m, _, off, bits in types.members(tid)] == [
        ("seq", 0, 0),
        ("low", 32, 4),
        ("high", 36, 12),
    ]
    assert types.definition(tid) == "struct flagged {\n\t__u32 seq;\n\t__u32 low: 4;\n\t__u32 high: 12;\n};"
    assert types.layout(tid).record is None  # bit-fields: bytes, as BTF layouts do
    assert types.size(types.find("alpha")) == types.size(types.find("beta")) == 24
    with pytest.raises(KeyError):
        types.find("nope")


def test_no_dwarf_in_a_stripped_object(objs, tmp_path):
    stripper = need("llvm-strip", "llvm-strip-14")
    path = shutil.copy(objs["gen_dwarf_ring"], tmp_path / "stripped.bpf.o")
    subprocess.run([stripper, "--strip-debug", str(path)], check=True)
    assert dwarf.DwarfTypes.read(str(path)) is None
    d = inspect_json(str(path))
    assert (d["dwarf"], d["dwarf_structs"], d["maps"][0]["shown_as"]) == (False, [], "raw records")
    out = cli.run("inspect", str(path))
    assert (
        "structs in DWARF only: unknown (no DWARF: built without -g, or stripped)" in out.stdout.splitlines()
    )


def test_run_says_why_a_stripped_objects_records_are_not_decoded(kernel, objs, tmp_path):
    """As the eunomia tutorial's objects after its link step (bpftool gen
    object drops DWARF): the records' struct was a local variable's."""
    stripper = need("llvm-strip", "llvm-strip-14")
    path = shutil.copy(objs["gen_dwarf_ring"], tmp_path / "stripped.bpf.o")
    subprocess.run([stripper, "--strip-debug", str(path)], check=True)
    rc, out, err = run_and_fire(str(path), [5])
    assert rc == 0, err
    assert "records of rb are not decoded: the object has no struct they could be, and no DWARF" in err, err


# -- inspect ----------------------------------------------------------------------


def test_inspect_lists_structs_only_dwarf_has(objs):
    d = inspect_json(objs["gen_dwarf_ring"])
    assert d["event_structs"] == [] and d["dwarf"] is True
    assert [(s["name"], s["size"]) for s in d["dwarf_structs"]] == [("ring_event", 72)]
    assert d["dwarf_structs"][0]["definition"].splitlines()[-6:] == [  # as libbpf prints C
        "\tunion {",
        "\t\t__u32 word;",
        "\t\t__u8 bytes[4];",
        "\t} mix;",
        "\tconst void *cookie;",
        "};",
    ]
    assert d["maps"][0]["shown_as"] == "events of the struct of their size (ring_event)"
    d = inspect_json(objs["gen_dwarf_perf"])
    assert [(s["name"], s["size"]) for s in d["dwarf_structs"]] == [("event", 40), ("parcel", 32)]
    assert [(m["name"], m["shown_as"]) for m in d["maps"]] == [
        ("events", "events of struct event (DWARF)"),
        ("outbox", "events of the struct of their size (event, parcel)"),
    ]
    out = cli.run("inspect", objs["gen_dwarf_nomatch"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    at = lines.index("structs in DWARF only (3):")
    assert lines[at + 1 : at + 7] == [
        "  struct alpha {",
        "      __u64 seq;",
        "      __u32 tgid;",
        "      __u32 magic;",
        "      __u64 twice;",
        "  };  /* 24 bytes */",
    ]
    assert "event structs (0):" in lines
    # an object whose structs are in BTF: nothing only DWARF has
    d = inspect_json(objs["gen_events"])
    assert (d["dwarf"], d["dwarf_structs"]) == (True, [])


# -- run: decoded from DWARF ---------------------------------------------------------


def test_ring_buffer_struct_from_dwarf_paired_by_size(kernel, objs):
    seqs = list(range(9_000_001, 9_000_041)) + [0x10203]
    rc, out, err = run_and_fire(objs["gen_dwarf_ring"], seqs, "--json")
    assert rc == 0, err
    assert events_of(out) == {"rb": [ring_event(s) for s in seqs]}
    assert notes(err) == [
        "pyrunq run: note: records of rb decoded as struct ring_event "
        "(the only struct of their size, 72 bytes)"
    ]


def test_perf_arrays_structs_from_dwarf_by_name_and_by_size(kernel, objs):
    seqs = list(range(9_100_001, 9_100_051))
    rc, out, err = run_and_fire(objs["gen_dwarf_perf"], seqs, "--json")
    assert rc == 0, err
    got = events_of(out)
    assert set(got) == {"events", "outbox"}
    # each CPU has its own perf buffer: order holds per CPU only
    events = sorted(got["events"], key=lambda e: e["seq"])
    assert [{k: v for k, v in e.items() if k != "cpu"} for e in events] == [
        {"seq": s, "tgid": os.getpid(), "comm": my_comm(), "twice": 2 * s} for s in seqs
    ]
    assert all(e["cpu"] in range(os.cpu_count()) for e in events)
    assert sorted(got["outbox"], key=lambda e: e["seq"]) == [
        {"seq": s, "square": s * s, "tgid": os.getpid(), "flags": 0x5A, "tail": ~s & (2**64 - 1)}
        for s in seqs
    ]
    # 32-byte struct parcel arrives as 36-byte samples; struct event is named by its map
    assert notes(err) == [
        "pyrunq run: note: records of outbox decoded as struct parcel "
        "(the only struct of their size, 32 bytes)"
    ]
    assert "lost" not in err and "shorter" not in err, err


def test_event_names_a_struct_only_dwarf_has(kernel, objs):
    seqs = list(range(9_200_001, 9_200_031))
    rc, out, err = run_and_fire(objs["gen_dwarf_nomatch"], seqs, "--json", "--event", "twins=alpha")
    assert rc == 0, err
    got = events_of(out)
    assert got["twins"] == [{"seq": s, "tgid": os.getpid(), "magic": 0xA1FA, "twice": 2 * s} for s in seqs]
    assert len(got["blobs"]) == len(seqs)
    assert notes(err) == [NOT_DECODED.format("blobs", "blobs")]


def test_event_names_an_unknown_struct(objs):
    out = cli.run("run", objs["gen_dwarf_nomatch"], "--event", "twins=nope")
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(
        "pyrunq run: error: --event twins=nope: no struct 'nope' in the "
        "object's BTF or DWARF (structs: alpha, beta, flagged); "
    )
    # how to keep a struct in the BTF: the anchor idiom
    assert "`const struct nope *unused __attribute__((unused));`" in out.stderr
    assert out.stderr.count("\n") == 1


# -- run: records nothing decodes ---------------------------------------------------


def alpha_bytes(seq: int) -> bytes:
    return struct.pack("<QIIQ", seq, os.getpid(), 0xA1FA, 2 * seq)


def blob_bytes(seq: int) -> bytes:
    return bytes((seq >> (8 * (i % 8))) & 0xFF for i in range(20))


NOT_DECODED = (
    "pyrunq run: note: records of {} are not decoded: name their struct with "
    "--event {}=STRUCT (structs in this object: alpha, beta, flagged)"
)


def test_records_nothing_decodes_are_bounded_and_said_once(kernel, objs):
    seqs = list(range(9_300_001, 9_300_041))
    rc, out, err = run_and_fire(objs["gen_dwarf_nomatch"], seqs)
    assert rc == 0, err
    assert sorted(notes(err)) == [NOT_DECODED.format("blobs", "blobs"), NOT_DECODED.format("twins", "twins")]
    rows = [line.split() for line in out.splitlines() if line and not line.startswith("TIME")]
    headers = {line for line in out.splitlines() if line.startswith("TIME")}
    assert headers == {"TIME     SIZE  DATA"}
    assert sorted(row[1:] for row in rows) == sorted(
        [["24", alpha_bytes(s)[:16].hex() + "..."] for s in seqs]
        + [["20", blob_bytes(s)[:16].hex() + "..."] for s in seqs]
    )
    assert max(len(line) for line in out.splitlines()) < 60  # one bounded line per record
    # JSON: the size and the first 16 bytes
    rc, out, err = run_and_fire(objs["gen_dwarf_nomatch"], seqs, "--json")
    assert rc == 0, err
    assert events_of(out) == {
        "twins": [{"size": 24, "prefix": alpha_bytes(s)[:16].hex()} for s in seqs],
        "blobs": [{"size": 20, "prefix": blob_bytes(s)[:16].hex()} for s in seqs],
    }
    assert len(notes(err)) == 2


def test_raw_prints_whole_records(kernel, objs):
    seqs = list(range(9_400_001, 9_400_011))
    rc, out, err = run_and_fire(objs["gen_dwarf_nomatch"], seqs, "--json", "--raw")
    assert rc == 0, err
    assert events_of(out) == {
        "twins": [{"size": 24, "data": alpha_bytes(s).hex()} for s in seqs],
        "blobs": [{"size": 20, "data": blob_bytes(s).hex()} for s in seqs],
    }
    rc, out, err = run_and_fire(objs["gen_dwarf_nomatch"], seqs[:2], "--raw")
    assert rc == 0, err
    assert [line.split()[1:] for line in out.splitlines() if line.split()[1:2] == ["24"]] == [
        ["24", alpha_bytes(s).hex()] for s in seqs[:2]
    ]


# -- Python ------------------------------------------------------------------------


def test_python_pairing_reads_dwarf_once(kernel, objs, monkeypatch):
    reads = []
    read = dwarf.DwarfTypes.read
    monkeypatch.setattr(
        dwarf.DwarfTypes, "read", classmethod(lambda cls, path: reads.append(path) or read(path))
    )
    paired = []
    with Runner(objs["gen_dwarf_ring"], settings={"target_tgid": os.getpid()}, on_pairing=paired.append) as r:
        assert r.streams["rb"].struct is None  # decided by the first record
        fire(11, 12, 13)
        r.stop()  # detach, then hand over what the ring buffer holds
        assert [(m, as_dict(e)) for m, e in r.events] == [("rb", ring_event(s)) for s in (11, 12, 13)]
        assert type(r.events[0][1]).__name__ == "ring_event"  # the struct's own Record class
        assert [(s.map, s.struct, s.source, s.by_size, s.size, s.record_size, s.raw) for s in paired] == [
            ("rb", "ring_event", "DWARF", True, 72, 72, False)
        ]
    assert reads == [objs["gen_dwarf_ring"]]


def test_python_records_nothing_decodes(kernel, objs):
    paired = []
    with Runner(
        objs["gen_dwarf_nomatch"], settings={"target_tgid": os.getpid()}, on_pairing=paired.append
    ) as r:
        fire(21)
        r.stop()
        assert sorted(r.events) == [
            ("blobs", blob_bytes(21)),
            ("twins", alpha_bytes(21)),
        ]
        assert sorted((s.map, s.struct, s.by_size, s.record_size, s.choices) for s in paired) == [
            ("blobs", None, False, 20, ["alpha", "beta", "flagged"]),
            ("twins", None, False, 24, ["alpha", "beta", "flagged"]),
        ]


def test_structs_in_btf_need_no_dwarf(kernel, objs, monkeypatch):
    """Start-up cost: an object whose record structs are in BTF never has its DWARF read."""
    reads = []
    monkeypatch.setattr(dwarf.DwarfTypes, "read", classmethod(lambda cls, path: reads.append(path)))
    for name in ("gen_events", "gen_perf", "gen_filter"):
        with Runner(objs[name], settings={"target_tgid": os.getpid()}) as r:
            fire(31, 32)
            r.stop()
            # gen_filter's records have a "value" (at least 16: both are), the others a "seq"
            assert [e._asdict().get("seq", e._asdict().get("value")) for _, e in r.events] == [31, 32], name
            assert all(not s.raw and s.source == "BTF" for s in r.streams.values()), name
    assert reads == []


def test_structs_named_by_python_keywords_decode():
    """The kernel has a struct class (and DWARF brings it into objects that
    reach it): its records need a namedtuple whose name is no keyword."""
    from pyrunq.bpf.codecs import Int, Layout, Struct

    for name in ("class", "def", "", "not an identifier"):
        layout = Layout(Struct(name, 8, [("class", 0, Int(4, False)), ("", 4, Int(4, False))]))
        assert tuple(layout.decode(struct.pack("<II", 7, 9))) == (7, 9), name
