"""A tool author's own object through ``pyrunq.bpf``, as a new user meets it
(tests/objects/gen_own.bpf.c, written the libbpf-bootstrap way; and
gen_unchecked.bpf.c, which every verifier rejects): records paired as
``pyrunq run`` pairs them, member names kept, globals range-checked, one
link per program, the verifier's reason in the error, ``async for``."""

from __future__ import annotations

import asyncio
import copy
import os
import pathlib
import pydoc

import pytest

from pyrunq.bpf import BPFObject, Int, Layout, Struct
from pyrunq.bpf.codecs import field_names
from pyrunq.errors import UsageError, VerifierError, verifier_reason
from testobjects import fire

BASE = 30_000_000  # above any pid_max: getpgid() fails, the tracepoint still fires


@pytest.fixture
def own(kernel, objs):
    with BPFObject.open(objs["gen_own"]) as obj:
        obj.rodata["target_tgid"] = os.getpid()
        yield obj


def records(rb) -> list:
    """What the ring holds now: the program runs in our getpgid(), so every
    record of a fire() is there when it returns."""
    rb.consume()
    out = list(rb.pending)
    rb.pending.clear()
    return out


def expected(seq: int, mode: int = 0) -> tuple:
    """struct own_event for getpgid(seq), as the program fills it."""
    return (seq, mode, seq & 0xFF, (seq >> 8) & 0xFFFF, os.getpid())


# -- records: which struct, and its member names --------------------------------


def test_records_of_a_struct_only_dwarf_has_decode_without_naming_it(own):
    own.load()
    own.attach()
    rb = own.ring_buffer("rb")  # no event=: paired as `pyrunq run` pairs it (by size, from DWARF)
    fire(BASE + 1)
    (record,) = records(rb)
    assert type(record).__name__ == "own_event"
    assert tuple(record) == expected(BASE + 1)
    # every C member by its name; a keyword with a trailing _
    assert (record.seq, record._pad, record.from_, record.class_) == expected(BASE + 1)[:4]
    assert record._fields == ("seq", "_pad", "from_", "class_", "tgid")


def test_a_wrong_struct_name_lists_the_structs_and_the_btf_idiom(own):
    own.load()
    with pytest.raises(UsageError) as e:
        own.ring_buffer("rb", event="own_evnt")
    assert "no struct 'own_evnt' in the object's BTF or DWARF (structs: own_event)" in str(e.value)
    assert "const struct own_evnt *unused __attribute__((unused));" in str(e.value)


def test_member_names_are_kept():
    assert field_names(["_pad", "from", "class", "", "_fields", "from_", "x"]) == [
        "_pad",
        "from_",
        "class_",
        "_3",  # a nameless member (an anonymous union): its position
        "_fields_",
        "from__",  # from_ was taken by `from`
        "x",
    ]
    layout = Layout(
        Struct("ev", 4, [("_pad", 0, Int(1, False)), ("from", 1, Int(1, False)), ("class", 2, Int(2, True))])
    )
    record = layout.decode(b"\x01\x02\xff\xff")
    assert (record._pad, record.from_, record.class_) == (1, 2, -1)
    assert repr(record) == "ev(_pad=1, from_=2, class_=-1)"
    # a dict by C name or Python name
    assert layout.encode({"from": 2, "class_": -1, "_pad": 1}) == b"\x01\x02\xff\xff"
    assert record._replace(from_=3).from_ == 3 and record._asdict()["class_"] == -1
    assert copy.deepcopy(record) == record and type(copy.copy(record)) is type(record)


# -- globals and values: in range or refused, saying the range --------------------


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("doubled", 2, "'doubled' (bool): 2 is out of range for a bool: 0..1"),
        (
            "mode",
            1,
            "'mode' (enum own_mode): 1 is not a value of the enum: one of OWN_QUIET (0), OWN_LOUD (2)",
        ),
        ("target_tgid", -1, "-1 is out of range for an unsigned 32-bit integer: 0..4294967295"),
        ("target_tgid", 1 << 32, "4294967296 is out of range for an unsigned 32-bit integer: 0..4294967295"),
    ],
)
def test_globals_are_range_checked(own, name, value, message):
    before = own.rodata[name]
    with pytest.raises(ValueError) as e:
        own.rodata[name] = value
    assert message in str(e.value)
    assert own.rodata[name] == before


def test_an_enum_global_by_its_enumerator(own):
    own.rodata["mode"] = "OWN_LOUD"
    own.rodata["doubled"] = True
    assert (own.rodata["mode"], own.rodata["doubled"]) == (2, True)
    own.load()
    own.attach()
    rb = own.ring_buffer("rb")
    fire(BASE + 2)
    assert [tuple(r) for r in records(rb)] == [expected(BASE + 2, mode=2)]
    assert own.bss["seen"] == 2


# -- lifecycle: one link per program, any path ------------------------------------


def test_attach_twice_keeps_one_link(own):
    own.load()
    first = own.attach()
    assert own.attach() == first
    rb = own.ring_buffer("rb")
    fire(BASE + 3)
    assert len(records(rb)) == 1
    assert own.bss["seen"] == 1 and dict(own.maps["parity"].items()) == {1: 1}
    own.detach()
    assert own.attach() != first  # detached: attached again, once


def test_open_takes_a_path_like(kernel, objs):
    with BPFObject.open(pathlib.Path(objs["gen_own"])) as obj:
        assert obj.name == "gen_own" and obj.path == objs["gen_own"]


def test_ring_buffer_over_a_perf_event_array_says_so(kernel, objs):
    with BPFObject.open(objs["gen_perf"]) as obj:
        obj.load()
        with pytest.raises(
            UsageError,
            match="map 'events' is a perf_event_array map, not a ring buffer: read it with perf_buffer()",
        ):
            obj.ring_buffer("events")


def test_help_lists_what_an_object_holds():
    text = pydoc.render_doc(BPFObject)
    for what in ("maps", "programs", "rodata", "bss", "data", "ring_buffer", "async for"):
        assert what in text


# -- events with asyncio -------------------------------------------------------------


def test_async_for_over_records(own):
    own.load()
    own.attach()
    rb = own.ring_buffer("rb")
    seqs = [BASE + 10, BASE + 11, BASE + 12]

    async def main() -> list:
        got = []
        loop = asyncio.get_running_loop()
        for seq in seqs:  # each fired once the loop waits on the ring
            loop.call_soon(fire, seq)
        async for record in rb:
            got.append(record.seq)
            if len(got) == len(seqs):
                break
        return got

    assert asyncio.run(asyncio.wait_for(main(), 10)) == seqs


# -- the verifier: your program, your line ---------------------------------------------


def test_a_rejected_program_of_ones_own_names_the_reason_and_line(kernel, objs):
    with BPFObject.open(objs["gen_unchecked"]) as obj, pytest.raises(VerifierError) as e:
        obj.load()
    text = str(e.value)
    assert "the verifier rejected program 'unchecked': R0 invalid mem access 'map_value_or_null'" in text
    assert "at gen_unchecked.bpf.c:20 `*count += 1;`" in text
    assert "report" not in text


def test_verifier_reason_from_a_log():
    log = (
        "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n"
        "0: R1=ctx() R10=fp0\n"
        "; *count += 1; @ x.bpf.c:20\n"
        "7: (79) r1 = *(u64 *)(r0 +0)\n"
        "R0 invalid mem access 'map_value_or_null'\n"
        "processed 7 insns (limit 1000000) max_states_per_insn 0\n"
        "-- END PROG LOAD LOG --",
    )
    assert verifier_reason(log) == ("R0 invalid mem access 'map_value_or_null'", "x.bpf.c:20 `*count += 1;`")
    assert verifier_reason(("libbpf: something else",)) == (None, None)
