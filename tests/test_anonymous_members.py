"""Members of anonymous structs and unions are the record's own, as in C
(``e->connect4.dport``, ``e->port16[1]``) and in bpftool's dump: in the
decoded ``Record`` (BTF and DWARF alike), the skeleton's classes, and
``pyrunq run``'s columns and JSON (tests/objects/gen_anon, in the style of
the eunomia tutorial's cgroup_guard and sockfilter)."""

from __future__ import annotations

import os
import struct
import sys

import pytest

from pyrunq.bpf import BTF, BPFObject
from pyrunq.bpf import btf as B
from pyrunq.bpf.skelgen import model
from pyrunq.tools.generic import Runner
from pyrunq.tools.generic.measures import plus, role
from pyrunq.tools.generic.present import presenter
from testobjects import fire

CONNECT, DEVICE, SYSCTL = 1 << 16 | 9090, 2 << 16 | 7, 3 << 16 | 5  # kind << 16 | n: what gen_anon sends
LOOPBACK = int.from_bytes(bytes([127, 0, 0, 1]), sys.byteorder)  # 127.0.0.1 in network order, as a u32


def _types() -> tuple[BTF, int]:
    """struct event { u32 pid; union { struct {u32 daddr; u16 dport; u16 proto;} connect4;
    struct {u32 major, minor;} device; }; union { be32 ports; be16 port16[2];
    struct { u16 lo; union { u16 hi; u16 high; }; }; }; u32 type; }"""
    b = BTF.new()
    u32, u16 = b.add_int("unsigned int", 4), b.add_int("unsigned short", 2)
    be32, be16 = b.add_ref(B.TYPEDEF, u32, "__be32"), b.add_ref(B.TYPEDEF, u16, "__be16")
    addr = [("daddr", u32, 0, 0), ("dport", u16, 32, 0), ("proto", u16, 48, 0)]
    connect4 = b.add_struct(B.STRUCT, "", 8, addr)
    device = b.add_struct(B.STRUCT, "", 8, [("major", u32, 0, 0), ("minor", u32, 32, 0)])
    what = b.add_struct(B.UNION, "", 8, [("connect4", connect4, 0, 0), ("device", device, 0, 0)])
    hi = b.add_struct(B.UNION, "", 2, [("hi", u16, 0, 0), ("high", u16, 0, 0)])
    halves = b.add_struct(B.STRUCT, "", 4, [("lo", u16, 0, 0), ("", hi, 16, 0)])
    ports = b.add_struct(
        B.UNION, "", 4, [("ports", be32, 0, 0), ("port16", b.add_array(be16, 2), 0, 0), ("", halves, 0, 0)]
    )
    members = [("pid", u32, 0, 0), ("", what, 32, 0), ("", ports, 96, 0), ("type", u32, 128, 0)]
    return b, b.add_struct(B.STRUCT, "event", 20, members)


def test_an_anonymous_unions_members_are_the_records_each_from_its_bytes():
    b, event = _types()
    layout = b.layout(event)
    data = struct.pack("=IIHHHHI", 7, LOOPBACK, 9090, 6, 0x1234, 0x5678, 3)
    e = layout.decode(data)
    assert e._fields == ("pid", "connect4", "device", "ports", "port16", "lo", "hi", "high", "type")
    assert (e.pid, e.type) == (7, 3)
    assert e.connect4._asdict() == {"daddr": LOOPBACK, "dport": 9090, "proto": 6}
    assert e.device._asdict() == {"major": LOOPBACK, "minor": 6 << 16 | 9090}  # the same bytes
    assert e.port16 == (0x1234, 0x5678) and e.ports == 0x5678 << 16 | 0x1234
    assert (e.lo, e.hi, e.high) == (0x1234, 0x5678, 0x5678)  # nested anonymous: flattened too
    assert layout.encode(e) == data
    assert [(name, offset // 8) for name, _, offset, _ in b.fields(event)] == [
        ("pid", 0), ("connect4", 4), ("device", 4), ("ports", 12), ("port16", 12),
        ("lo", 12), ("hi", 14), ("high", 14), ("type", 16),
    ]  # fmt: skip


def test_a_union_is_written_from_the_members_given():
    b, event = _types()
    layout = b.layout(event)
    written = layout.encode({"pid": 1, "port16": (2, 3), "device": (4, 5)})
    assert written == struct.pack("=IIIHHI", 1, 4, 5, 2, 3, 0)
    record = layout.decode(written)
    assert layout.encode(record) == written
    # a member changed: it wins over the others, which hold the bytes as they were
    changed = record._replace(device=record.device._replace(minor=9), port16=(2, 7))
    assert layout.encode(changed) == struct.pack("=IIIHHI", 1, 4, 9, 2, 7, 0)
    with pytest.raises(ValueError, match="members port16 and hi of an anonymous union give different bytes"):
        layout.encode(record._replace(port16=(2, 7), hi=8))


def test_members_whose_names_clash_stay_one_member():
    b = BTF.new()
    u32 = b.add_int("unsigned int", 4)
    inner = b.add_struct(B.UNION, "", 4, [("pid", u32, 0, 0), ("tid", u32, 0, 0)])
    event = b.add_struct(B.STRUCT, "event", 8, [("pid", u32, 0, 0), ("", inner, 32, 0)])
    e = b.layout(event).decode(struct.pack("=II", 1, 2))
    assert e._fields == ("pid", "_1") and e == (1, struct.pack("=I", 2))


def test_a_named_unions_anonymous_struct_is_shown_inline():
    """``union { struct { u16 lo, hi; }; u32 both; } u``: bpftool's ``u={lo, hi, both}``."""
    b = BTF.new()
    u32, u16 = b.add_int("unsigned int", 4), b.add_int("unsigned short", 2)
    halves = b.add_struct(B.STRUCT, "", 4, [("lo", u16, 0, 0), ("hi", u16, 16, 0)])
    u = b.add_struct(B.UNION, "u", 4, [("", halves, 0, 0), ("both", u32, 0, 0)])
    event = b.add_struct(B.STRUCT, "event", 8, [("pid", u32, 0, 0), ("u", u, 32, 0)])
    shown = presenter(b, event)(b.layout(event).decode(struct.pack("=IHH", 1, 2, 3)))
    assert shown == {"pid": 1, "u": {"lo": 2, "hi": 3, "both": 3 << 16 | 2}}


def test_identities_of_a_flattened_union_are_never_added():
    assert [role(n) for n in ("port16", "ports", "daddr", "dport", "major", "count")] == [
        "identity", "identity", "identity", "identity", "identity", "sum",
    ]  # fmt: skip
    assert plus({"port16": [80, 8080], "count": 1}, {"port16": [80, 8080], "count": 2}) == {
        "port16": [80, 8080],
        "count": 3,
    }


def test_a_number_is_named_by_the_enum_cs_convention_gives_it():
    """Member M of struct S reads by the object's own enum S_M, or else by
    its one own enum named *_M; never by a library's (a reserved name) or the
    running kernel's enum, by one of two that end alike, nor in a kernel
    struct."""
    b = BTF.new()
    u32 = b.add_int("unsigned int", 4)
    for name, first in (("event_type", "EVENT_CONNECT"), ("softirq_stage", "STAGE_RAISE"), ("a_way", "IN")):
        b.add_enum(name, 4, {first: 1}, False)
    b.add_enum("b_way", 4, {"OUT": 1}, False)
    b.add_enum("__bpf_usdt_arg_type", 4, {"BPF_USDT_ARG_CONST": 1}, False)  # libbpf's usdt.bpf.h
    b.add_enum("bpf_map_type", 4, {"BPF_MAP_TYPE_HASH": 1}, False)  # the kernel's (vmlinux.h)
    members = [("type", u32, 0, 0), ("stage", u32, 32, 0), ("way", u32, 64, 0), ("map_type", u32, 96, 0)]
    data = struct.pack("=IIII", 1, 1, 1, 1)
    event = b.add_struct(B.STRUCT, "event", 16, members)
    assert presenter(b, event)(b.layout(event).decode(data)) == {
        "type": "EVENT_CONNECT",
        "stage": "STAGE_RAISE",
        "way": 1,
        "map_type": 1,
    }
    kernels = b.add_struct(B.STRUCT, "task_struct", 16, members)
    shown = presenter(b, kernels)(b.layout(kernels).decode(data))
    assert shown == dict.fromkeys(("type", "stage", "way", "map_type"), 1)


@pytest.mark.slow
def test_run_shows_an_anonymous_unions_members_under_their_c_names(kernel, objs):
    """A union of structs told apart by ``kind`` (DWARF's type; its numbers
    named by the object's ``enum guard_kind``) and a union of a
    __be32 and two __be16 (BTF's): columns and values by the C names, each
    union member from the same bytes, the ports in host order (ntohs)."""
    with Runner(objs["gen_anon"], settings={"target_tgid": os.getpid()}) as r:
        fire(CONNECT, DEVICE, SYSCTL)
        r.stop()
        columns = {name: [c.name for c in s.columns] for name, s in r.streams.items()}
    assert columns == {
        "guard_events": ["pid", "kind", "task", "connect4", "device", "sysctl"],
        "flows": ["src_addr", "ports", "port16", "ip_proto"],
    }
    guards = [e for m, e in r.events if m == "guard_events"]
    flows = [e._asdict() for m, e in r.events if m == "flows"]
    assert [e.kind for e in guards] == ["GUARD_CONNECT", "GUARD_DEVICE", "GUARD_SYSCTL"]  # enum guard_kind
    connect, device, sysctl = guards
    assert connect.connect4._asdict() == {"daddr": "127.0.0.1", "dport": 9090, "proto": 6}
    assert connect.device._asdict() == {"major": LOOPBACK, "minor": 6 << 16 | 9090, "access_type": 0}
    assert device.device._asdict() == {"major": 7, "minor": 8, "access_type": 3}
    assert sysctl.sysctl._asdict() == {"write": 1, "name": "kernel/pid_max"}
    assert flows == [
        {"src_addr": "127.0.0.1", "ports": n << 16 | 8080, "port16": [n, 8080], "ip_proto": 6}
        for n in (9090, 7, 5)
    ]


@pytest.mark.slow
def test_the_python_api_and_the_skeleton_have_the_same_members(kernel, objs):
    """``BPFObject``'s ring buffer gives what C reads (``e->port16[0]``, in
    network order: ntohs is the reader's), and the skeleton's class has the
    decoder's members."""
    with BPFObject(objs["gen_anon"]) as obj:
        structs = model(obj)["structs"]
        obj.rodata["target_tgid"] = os.getpid()
        obj.load()
        obj.attach()
        rb = obj.ring_buffer("flows", event="flow_event")
        fire(CONNECT)
        (flow,) = list(rb.events(timeout=0.2))
    assert flow._fields == ("src_addr", "ports", "port16", "ip_proto")
    assert [f[0] for f in structs["flow_event"]["fields"]] == list(flow._fields)
    assert flow.port16 == tuple(int.from_bytes(p.to_bytes(2, "big"), sys.byteorder) for p in (9090, 8080))
