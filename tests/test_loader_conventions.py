"""What the collections' own loaders do that their objects count on, done
by pyrunq run (tests/objects/gen_cilium, gen_perfevent, gen_cgroup):
cilium/ebpf drops the sizes of event maps that name their record
(``__type(value, struct event)``) and decodes records by that struct;
ebpf_exporter opens the perf event a ``SEC("perf_event/type=T,config=C,...")``
names on every CPU; cgroup programs attach to the cgroup their user space
names (``--cgroup``)."""

from __future__ import annotations

import json
import mmap
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

import cli
from pyrunq import cgroup as cgroups
from pyrunq.tools.generic import Runner, describe
from testobjects import fire, my_comm


def test_event_maps_that_name_their_record_load_and_are_decoded_by_it(kernel, objs):
    """A ring buffer and a perf event array declared with __type(value,
    struct ...): the kernel refuses them as declared (EINVAL), the struct
    decodes their records from the first one, though neither is named
    after its map nor kept by a global."""
    shown = {m["name"]: m["shown_as"] for m in describe(objs["gen_cilium"])["maps"]}
    assert shown == {"events": "events of struct exec_info", "lines": "events of struct pgid_line"}
    with Runner(objs["gen_cilium"], settings={"target_tgid": os.getpid()}) as r:
        fire(31, 32)
        r.stop()
        assert {name: (s.struct, s.by_size) for name, s in r.streams.items()} == {
            "events": ("exec_info", False),
            "lines": ("pgid_line", False),
        }
        me = os.getpid()
        events = sorted(((m, e._asdict()) for m, e in r.events), key=lambda e: (e[0], e[1]["value"]))
        assert events == [
            ("events", {"pid": me, "value": 31, "comm": my_comm()}),
            ("events", {"pid": me, "value": 32, "comm": my_comm()}),
            ("lines", {"tgid": me, "cpu": events[2][1]["cpu"], "value": 31, "twice": 62}),
            ("lines", {"tgid": me, "cpu": events[3][1]["cpu"], "value": 32, "twice": 64}),
        ]


PAGES = 1000  # page faults the test makes


@pytest.mark.slow
def test_an_address_the_object_turns_to_host_order_is_read_so(kernel, objs):
    """tests/objects/gen_hostorder: as cilium/ebpf's tcprtt_sockops, a u32
    address the program turns around (bpf_ntohl) is in host order; one
    declared __be32 stays in network order. Both are 127.0.0.1."""
    loopback = int.from_bytes(bytes([127, 0, 0, 1]), sys.byteorder)  # network order, as an integer
    with Runner(objs["gen_hostorder"], settings={"target_tgid": os.getpid()}) as r:
        fire(loopback)
        r.stop()
    ((name, e),) = r.events
    assert (name, e._asdict()) == (
        "rtt_events",
        {"sport": 4242, "dport": 80, "saddr": "127.0.0.1", "daddr": "127.0.0.1", "srtt": 7},
    )


def test_perf_event_sections_open_the_event_they_name(kernel, objs):
    """type=1,config=2,sample_period=1: every page fault is a sample (not the
    CPU clock's 99 Hz); type=1,config=0,frequency=1000: the CPU clock at
    1000 Hz; an item no loader knows, an event the kernel does not have: that
    program only is left out, saying so."""
    programs = {p["name"]: p for p in describe(objs["gen_perfevent"])["programs"]}
    assert programs["on_page_fault"]["type"] == "perf_event"
    with Runner(objs["gen_perfevent"], settings={"target_tgid": os.getpid()}) as r:
        assert [(n.program, n.reason) for n in r.not_attached] == [
            (
                "on_nothing",
                "unknown item 'colour=3' in its section (knows: type, config, frequency, freq, "
                "sample_freq, sample_period, period)",
            ),
            (
                "on_no_such_event",
                "this machine cannot open perf event type=1,config=999 (software): No such file or directory",
            ),
        ]
        memory = mmap.mmap(-1, PAGES * mmap.PAGESIZE)
        memory.madvise(mmap.MADV_NOHUGEPAGE)  # one fault per page
        for page in range(PAGES):
            memory[page * mmap.PAGESIZE] = 1
        start, n = time.process_time(), 0
        while time.process_time() - start < 0.2:  # 0.2 s on a CPU: 200 ticks at 1000 Hz, 20 at 99
            n += 1
        r.stop()
        (samples,) = r.maps()
        counts = dict(samples.entries)
    # the test's own other faults (Python's allocations) are few
    assert PAGES <= counts[0] <= PAGES + 300, counts
    assert counts[1] > 100, counts


@pytest.fixture
def own_cgroup():
    """A cgroup v2 directory of this test's own, removed after it."""
    path = os.path.join(cgroups.cgroup2_mount(), f"pyrunq-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        os.rmdir(path)  # its one process has exited: it is empty


CHILD = """
import os, socket, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
udp_port, tcp_port = int(sys.argv[2]), int(sys.argv[3])
for _ in range(3):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"a", ("127.0.0.1", udp_port))
        s.sendto(b"b", ("127.0.0.1", udp_port))
for _ in range(2):
    socket.create_connection(("127.0.0.1", tcp_port)).close()
"""


@pytest.mark.slow
def test_cgroup_programs_attach_to_the_cgroup_given(kernel, objs, own_cgroup):
    """A process in the test's cgroup makes 3 UDP sockets that send 2
    datagrams each, and 2 TCP connections to this process (outside the
    cgroup): cgroup/sock_create counts 2 stream and 3 datagram sockets,
    cgroup_skb/egress 6 UDP packets, sockops 2 connections it opened; this
    process's own sockets are not counted."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(8)
        with Runner(objs["gen_cgroup"], cgroup=own_cgroup) as r:
            assert r.attached == ["count_sockets", "count_egress", "count_connections"]
            ports = [str(udp.getsockname()[1]), str(tcp.getsockname()[1])]
            subprocess.run([sys.executable, "-c", CHILD, own_cgroup, *ports], check=True, timeout=60)
            r.stop()
            maps = {m.name: dict(m.entries) for m in r.maps()}
    assert maps["sockets_by_type"] == {socket.SOCK_STREAM: 2, socket.SOCK_DGRAM: 3}
    assert maps["egress_by_protocol"][socket.IPPROTO_UDP] == 6
    assert maps["connections"] == {0: 2}


@pytest.mark.slow
def test_cgroup_programs_without_a_cgroup_say_what_they_need(objs):
    out = cli.run("run", objs["gen_cgroup"], "--duration", "1")
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    why = "count_egress (cgroup_skb/egress): libbpf cannot attach that section by itself: give it a cgroup"
    assert why in out.stderr, out.stderr
    cli.assert_usage_error(
        "run", [objs["gen_cgroup"], "--cgroup", "/tmp"], "--cgroup /tmp: /tmp: not a cgroup v2 directory"
    )
    cli.assert_usage_error(
        "run",
        [objs["gen_events"], "--cgroup", cgroups.cgroup2_mount()],
        "gen_events has no cgroup program",
    )


# -- what the object's own user space fills ------------------------------------------

FILLED = {
    "freqs_mhz": "1000,1200,1400,0x640",
    "watched[7]": {"weight": 3, "label": "seven"},  # a Python value, or as text: "{weight=3, label=seven}"
    "tail_calls[0]": "tail_target",
}


def test_what_the_objects_user_space_fills_is_named_and_set_fills_it(kernel, objs):
    """Unfilled, the table of frequencies reads 0 MHz, nothing is watched, no
    tail call lands, and each of them (and the user ring buffer) is named
    once; filled with settings, getpgid(5, 6, 7, 7) counts each value's
    "CPU" frequency, value 7's weight twice, and 4 tail calls."""
    for settings in ({}, FILLED):
        with Runner(objs["gen_fills"], settings={"target_tgid": os.getpid(), **settings}) as r:
            unfilled = {u.name: u.why for u in r.unfilled}
            fire(5, 6, 7, 7)
            r.stop()
            maps = {m.name: dict(m.entries) for m in r.maps()}
        if not settings:
            assert unfilled == {
                "watched": "its programs only look entries up and add none: the object's own user "
                "space fills it; give entries with setting 'watched[KEY]=VALUE'",
                "tail_calls": "a program array its programs tail-call into: the object's own user "
                "space puts programs there; give them with setting 'tail_calls[INDEX]=PROGRAM'",
                "requests": "a user ring buffer: the object's own user space writes there the "
                "records its programs read, and pyrunq writes none",
                "freqs_mhz": "starts as zeros and on_enter only reads it: the object's own user "
                "space fills it; give its values with setting freqs_mhz=V1,V2,...",
            }
            assert maps["by_mhz"] == {0: 4} and maps["weights"] == {}
            assert maps["tail_calls_made"] == {None: 0}
        else:
            assert list(unfilled) == ["requests"]
            assert maps["by_mhz"] == {1200: 1, 1400: 1, 1600: 2}  # values 5, 6, 7 & 3: "CPUs" 1, 2, 3
            assert maps["watched"] == {7: {"weight": 3, "label": "seven"}}
            assert maps["weights"] == {7: 6}
            assert maps["tail_calls_made"] == {None: 4}


@pytest.mark.slow
def test_set_fills_from_the_command_line_and_bad_values_are_one_line(kernel, objs):
    rc, out, err = cli.run_and_fire(
        objs["gen_fills"],
        [7],
        "--set",
        "watched[7]={weight=2, label=x=y}",  # "=" in a value: the first "]=" splits
        "--set",
        "freqs_mhz=[1, 2]",
        "--json",
    )
    assert rc == 0, err
    maps = {d["map"]: d for d in map(json.loads, out.splitlines()) if d.get("type") == "map"}
    assert maps["weights"]["entries"] == [{"key": 7, "value": 2}]
    assert "note: map watched" not in err and "note: global freqs_mhz" not in err
    assert "note: map tail_calls: a program array its programs tail-call into" in err
    assert "give them with --set 'tail_calls[INDEX]=PROGRAM'" in err
    for setting, message in (
        (
            "freqs_mhz=1,2,3,4,5",
            "--set freqs_mhz=1,2,3,4,5: 5 values for the 4 elements of __u32 freqs_mhz[4]",
        ),
        ("watched[x]=1", "--set watched[x]=1: not an integer"),
        ("watched[1]={colour=2}", "no member 'colour' in struct watch (has: weight, label)"),
        ("tail_calls[0]=nope", "--set tail_calls[0]=nope: no program 'nope' in gen_fills"),
        ("nothing[0]=1", "--set nothing[0]=1: no map 'nothing' in gen_fills"),
        ("watched[1=2", "expected MAP[KEY]=VALUE"),
    ):
        cli.assert_usage_error("run", [objs["gen_fills"], "--set", setting], message)
