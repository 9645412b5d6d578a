"""Numbers that are names, shown as names where the object's instructions say
what they hold (tests/objects/gen_names.bpf.c): a TCP state, a syscall, a
softirq vector or a disk copied from a tracepoint's field into a record or a
map's key; a number nothing says the meaning of stays a number."""

from __future__ import annotations

import mmap
import os
import re
import signal
import socket
import tempfile
import time

import pytest

import pyrunq
from pyrunq.tools.generic import origins
from pyrunq.tools.generic.describe import describe
from pyrunq.tools.generic.objfile import ObjectFile
from pyrunq.tools.generic import Runner
from testobjects import fire


def meanings(path: str, **settings) -> dict:
    objfile = ObjectFile(path)
    obj = objfile.open()
    try:
        for name, value in settings.items():
            obj.rodata[name] = value
        return objfile.meanings(obj)
    finally:
        obj.close()
        objfile.close()


def test_where_a_number_was_read_says_what_it_holds(objs):
    assert meanings(objs["gen_names"]) == {
        "changes": {origins.RECORD: {8: origins.TCP_STATE, 12: origins.TCP_STATE}},
        "perf_changes": {origins.RECORD: {8: origins.TCP_STATE, 12: origins.TCP_STATE}},  # from the stack
        "by_syscall": {origins.KEY: {0: origins.SYSCALL}},
        "by_signal": {origins.KEY: {0: origins.SIGNAL}},
        "by_vec": {origins.KEY: {0: origins.SOFTIRQ}},
        "by_disk": {origins.KEY: {0: origins.DEV}},  # through BPF_CORE_READ: bpf_probe_read_kernel
        # by tp_btf's argument (named in the kernel's BTF), handed to a BPF function
        ".bss:finished": {origins.INDEX: {0: origins.SOFTIRQ}},
        "mixed": {
            origins.KEY: {0: origins.SYSCALL}
        },  # by_pid is false: the branch that counts by pid never runs
    }
    # counted by process: a number (the other way, nothing says what it holds)
    assert "mixed" not in meanings(objs["gen_names"], by_pid=True)
    d = describe(objs["gen_names"])  # pyrunq inspect --json
    maps = {m["name"]: m["names"] for m in d["maps"]}
    assert maps["by_vec"] == {"key": {"0": "softirq vector"}} and maps["mixed"] == {"key": {"0": "syscall"}}
    assert {g["name"]: g["names"] for g in d["globals"]}["finished"] == {"index": {"0": "softirq vector"}}


@pytest.mark.slow
def test_tcp_states_syscalls_signals_and_softirqs_are_shown_by_name(kernel, objs):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def on_maps(reports):  # called in the loop, after attach: a connection on lo, then end as Ctrl-C would
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        client.close()
        server.close()
        listener.close()
        fire(999_999, 999_998, 999_997)
        before = signal.signal(signal.SIGUSR2, lambda *_: None)
        try:
            os.kill(os.getpid(), signal.SIGUSR2)
            os.kill(os.getpid(), signal.SIGUSR2)
        finally:
            signal.signal(signal.SIGUSR2, before)
        raise KeyboardInterrupt

    try:
        result = pyrunq.run(
            objs["gen_names"],
            set={"target_port": port, "target_tgid": os.getpid()},
            interval=0.01,
            on_maps=on_maps,
            duration=600,
        )
    finally:
        listener.close()
    changes = [e for m, e in result.events if m == "changes"]
    assert sorted(changes) == sorted(e for m, e in result.events if m == "perf_changes")
    seen = {(c.oldstate, c.newstate) for c in changes}
    # the client's connect and the listener's close, each done before the reading ends
    assert {
        ("TCP_CLOSE", "TCP_SYN_SENT"),
        ("TCP_SYN_SENT", "TCP_ESTABLISHED"),
        ("TCP_LISTEN", "TCP_CLOSE"),
    } <= seen
    assert all(s.startswith("TCP_") for pair in seen for s in pair), seen
    assert {c.protocol for c in changes} == {6}  # IPPROTO_TCP: nothing says it is one, a number
    maps = {r.name: dict(r.entries) for r in result.maps}
    assert maps["by_syscall"]["getpgid"] == 3
    assert all(isinstance(k, str) for k in maps["by_syscall"]), maps["by_syscall"]
    assert maps["by_signal"] == {"SIGUSR2": 2}
    assert maps["by_pid_type"] == {"PIDTYPE_PGID": 3}  # a key of a kernel enum's type, by the kernel's names
    assert maps["mixed"] == maps["by_syscall"]  # by syscall, as by_pid (false) says
    assert "NET_RX_SOFTIRQ" in maps["by_vec"]  # the connection's packets on lo
    assert all(k.endswith("_SOFTIRQ") for k in maps["by_vec"]), maps["by_vec"]
    finished = maps["finished"]  # a global array indexed by tp_btf/softirq_exit's vec_nr
    assert "NET_RX_SOFTIRQ" in finished and all(k.endswith("_SOFTIRQ") for k in finished), finished
    assert all(re.fullmatch(r"\d+:\d+( \S+)?", k) for k in maps["by_disk"]), maps["by_disk"]


def test_a_block_requests_flags_are_named_as_the_kernel_writes_them(objs):
    """biosnoop's way: `rq->cmd_flags` read with BPF_CORE_READ into a record."""
    assert meanings(objs["gen_rwbs"])["requests"] == {origins.RECORD: {12: origins.BLOCK_OPF}}


@pytest.mark.slow  # direct, synchronous writes to the disk
def test_block_request_flags_read_as_the_tracepoints_rwbs(kernel, objs):
    """Each completed request's cmd_flags, named from the running kernel's
    BTF, reads as the kernel's own tracepoint writes the same completion
    (its `rwbs`): the workload's synchronous direct writes and whatever else
    the machine completes meanwhile (journal writes, flushes, reads...)."""

    def on_maps(reports):  # after attach: 8 direct writes, each synchronous
        with tempfile.NamedTemporaryFile(dir="/var/tmp") as f:  # on a disk: /tmp may be a tmpfs
            fd = os.open(f.name, os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
            try:
                for _ in range(8):
                    os.write(fd, mmap.mmap(-1, 4096))  # page-aligned, as O_DIRECT wants
            finally:
                os.close(fd)
        raise KeyboardInterrupt

    both_programs = ["on_complete", "on_complete_tp"]  # twins (one event): pyrunq would run one
    result = pyrunq.run(
        objs["gen_rwbs"], programs=both_programs, interval=0.01, on_maps=on_maps, duration=600
    )
    ours: dict = {}
    theirs: dict = {}  # (disk, sector) -> each completion's, in order: both programs run at each one
    for m, e in result.events:
        if m == "requests":
            ours.setdefault((e.dev, e.sector), []).append(e.cmd_flags)
        else:
            theirs.setdefault((e.dev, e.sector), []).append(e.rwbs)
    both = set(ours) & set(theirs)
    # the workload's 8 writes at least: WS here, WFS on a disk with forced unit access
    assert sum("W" in flags for k in both for flags in ours[k]) >= 8, (ours, theirs)
    assert all(ours[k] == theirs[k] for k in both), [
        (ours[k], theirs[k]) for k in both if ours[k] != theirs[k]
    ]


def test_a_sockets_state_is_named_in_an_iterators_records(kernel, objs):
    """snapshot_socket's way (gen_gadget_sockets): iterators over TCP and UDP
    sockets copy each socket's state (``sk->sk_state`` through a tcp_sock or
    a udp_sock, a TIME_WAIT socket's ``tw_substate``, or a constant for a
    request socket) into the records they write with bpf_seq_write."""
    found = meanings(objs["gen_gadget_sockets"])
    assert found == {origins.SEQ_WRITE: {origins.RECORD: {4: origins.TCP_STATE}}}
    listener = socket.socket()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets = [listener, udp]
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        udp.bind(("127.0.0.1", port))  # UDP's ports are not TCP's
        for _ in range(2):
            sockets.append(socket.create_connection(("127.0.0.1", port)))
            sockets.append(listener.accept()[0])
        sockets.pop().close()  # the listener's end closes first: it goes to TIME_WAIT
        sockets.pop().close()
        with Runner(objs["gen_gadget_sockets"], settings={"port": port}) as r:
            deadline = time.monotonic() + 10
            while True:  # until the closed end is in TIME_WAIT (after the client's FIN)
                rows = [row for records in r.iterators().values() for row in records]
                if any(row["state"] == "TCP_TIME_WAIT" for row in rows) or time.monotonic() > deadline:
                    break
    finally:
        for s in sockets:
            s.close()
    seen = sorted((row["local_port"], row["proto"], row["state"]) for row in rows)
    assert seen == sorted(
        [
            (port, 6, "TCP_LISTEN"),
            (port, 6, "TCP_ESTABLISHED"),  # the listener's end of the open connection
            (port, 6, "TCP_TIME_WAIT"),
            (port, 17, "TCP_CLOSE"),  # an unconnected UDP socket holds TCP_CLOSE (ss: UNCONN)
        ]
    ), seen
