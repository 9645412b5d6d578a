"""Socket filters (``SEC("socket")``, Inspektor Gadget's ``SEC("socket1")``),
as their own front ends run them: attached to a raw packet socket that
pyrunq opens, of every interface or of those named (``sockets``,
``--socket``), and closed at the end (tests/objects/gen_socket)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess

import pytest

import cli
from pyrunq.tools.generic import Runner, describe

DATAGRAMS = 5
LOOPBACK = socket.if_nametoindex("lo")


def packet_sockets() -> dict[int, tuple[int, int]]:
    """This process's packet sockets: inode -> (interface index, 0 for every
    interface; protocol), as /proc/net/packet lists them."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own fd)
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    with open("/proc/net/packet") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    # sk RefCnt Type Proto Iface R Rmem User Inode
    return {int(r[8]): (int(r[4]), int(r[3], 16)) for r in rows if int(r[8]) in inodes}


def send_datagrams(listener: socket.socket) -> list[bytes]:
    """DATAGRAMS UDP datagrams to ``listener`` on the loopback, each received
    (so that the filter has seen it both going out and coming in)."""
    payloads = [b"pyrunq-socket-%02d" % i for i in range(DATAGRAMS)]  # 16 bytes: what the object keeps
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for payload in payloads:
            sender.sendto(payload, listener.getsockname())
            assert listener.recv(64) == payload
    return payloads


def expected(port: int, payloads: list[bytes]) -> list[tuple]:
    """Each datagram twice, as a packet socket of the loopback sees it: sent, then received."""
    return sorted(
        (way, f"127.0.0.1:{port}", LOOPBACK, 16, p.decode())
        for p in payloads
        for way in ("PACKET_OUTGOING", "PACKET_HOST")
    )


def test_a_socket_filter_sees_the_datagrams_of_every_interface_or_of_those_named(kernel, objs):
    """gen_socket's SEC("socket1") loads as a socket filter and sees 5
    datagrams to the port given, each going out and coming in on lo: with a
    packet socket of every interface, then of lo only; the socket is there
    while it runs, and gone after. Its addresses, turned back to network
    order, are not taken to be in host order; its endpoints' columns fit them."""
    assert describe(objs["gen_socket"])["programs"][0]["type"] == "socket_filter"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        for sockets, interface in ((None, 0), ("lo", LOOPBACK)):
            before = packet_sockets()
            with Runner(objs["gen_socket"], settings={"port": port}, sockets=sockets) as r:
                assert r.attached == ["ig_trace_udp"] and not r.not_attached
                assert r.socket_filters == [("ig_trace_udp", "socket1")]
                assert not r.objfile.host_order_ipv4  # its bpf_htonl undoes load_word's host order
                opened = {i: v for i, v in packet_sockets().items() if i not in before}
                assert list(opened.values()) == [(interface, 0x0003)]  # ETH_P_ALL
                payloads = send_datagrams(listener)
                r.stop()
            assert packet_sockets() == before  # nothing of the run left open
            records = [rec for name, rec in r.events if name == "datagrams"]
            assert {rec.src.rsplit(":", 1)[0] for rec in records} == {"127.0.0.1"}
            seen = sorted((rec.way, rec.dst, rec.ifindex, rec.length, rec.payload) for rec in records)
            assert seen == expected(port, payloads), sockets
    widths = {c.name: c.size for c in r.streams["datagrams"].columns}
    assert widths["src"] == widths["dst"] == len("255.255.255.255:65535")  # a table's columns fit them


def test_a_packets_type_read_from_its_sk_buff_is_named(kernel, objs):
    """gen_sockfilter (the eunomia tutorial's way): ``skb->pkt_type`` copied
    into a plain __u32 of its record reads as <linux/if_packet.h> names it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        with Runner(objs["gen_sockfilter"], settings={"port": port}, sockets="lo") as r:
            payloads = send_datagrams(listener)
            r.stop()
    seen = sorted((rec.pkt_type, rec.ip_proto, rec.ifindex, rec.payload_length) for _, rec in r.events)
    assert seen == sorted(
        (way, 17, LOOPBACK, len(p)) for p in payloads for way in ("PACKET_OUTGOING", "PACKET_HOST")
    )
    widths = {c.name: c.size for c in r.streams["rb"].columns}  # a table's columns fit the names
    assert widths["pkt_type"] == len("PACKET_OTHERHOST") and widths["src_addr"] == len("255.255.255.255")


@pytest.mark.slow  # two processes: a second
def test_socket_on_the_command_line(kernel, objs):
    """``--socket lo``: the datagrams, each twice, and a note of what the
    filter sees; an interface that does not exist, or an object without a
    socket filter: one line, exit 2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        with cli.spawn("run", objs["gen_socket"], "--set", f"port={port}", "--socket", "lo", "--json") as p:
            p.wait_line("^Tracing with", stream="err")
            payloads = send_datagrams(listener)
            rc, out, err = p.finish(signal.SIGINT)
    assert rc == 0, err
    events = [d["event"] for d in map(json.loads, out.splitlines()) if d["type"] == "event"]
    seen = sorted((e["way"], e["dst"], e["ifindex"], e["length"], e["payload"]) for e in events)
    assert seen == expected(port, payloads)
    note = 'note: ig_trace_udp (SEC("socket1")) sees the packets of lo through a raw packet socket'
    assert note in err and "host order" not in err, err
    cli.assert_usage_error(
        "run", [objs["gen_socket"], "--socket", "nosuchif0"], "--socket nosuchif0: no such network interface"
    )
    cli.assert_usage_error(
        "run", [objs["gen_events"], "--socket", "lo"], "--socket lo: gen_events has no socket filter program"
    )


@pytest.mark.slow  # two processes as uid 65534: a second or two
def test_a_packet_socket_needs_cap_net_raw_and_says_so(kernel, objs, unprivileged):
    """With CAP_BPF and CAP_PERFMON the object loads, but its packet socket
    is refused: one line that names CAP_NET_RAW; with it too, it runs."""
    path = os.path.join(os.path.dirname(unprivileged.path), "gen_socket.bpf.o")
    shutil.copy(objs["gen_socket"], path)
    os.chmod(path, 0o644)
    for caps, code in ((cli.BPF_CAPS, 1), ([c + ",+net_raw" for c in cli.BPF_CAPS], 0)):
        out = subprocess.run(
            unprivileged.cmd("run", path, "--duration", "0.3", caps=caps),
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
        assert out.returncode == code, out.stderr
        if code:
            assert len(out.stderr.splitlines()) == 1, out.stderr
            why = "packet socket of every interface: Operation not permitted (a raw packet socket needs root"
            assert f"{why}, or CAP_NET_RAW)" in out.stderr, out.stderr
