"""Inspektor Gadget's conventions (tools/generic/gadget.py), on our own
objects in its gadgets' style (tests/objects/gen_gadget_*.bpf.c): their
markers, types and section spellings, as its loader reads them."""

from __future__ import annotations

import datetime
import os
import threading
import time

import pytest

import podman_images
from needs import need

from pyrunq.tools.generic import Runner, gadget
from testobjects import fire, my_comm

SYSCALL_ENTRY = {"x86_64": "do_syscall_64", "aarch64": "invoke_syscall"}[os.uname().machine]


@pytest.mark.slow  # naming stacks reads kallsyms and libc's symbols: half a second
def test_a_tracers_records_are_its_struct_with_its_types_shown_as_its_loader_does(kernel, objs):
    """gen_gadget_trace: the marker names the records' struct (two structs
    of their size: nothing else would); a gadget_timestamp is wall-clock
    time, the mount namespace "host", errno, signal and flags by name
    (ESRCH, SIGKILL, O_CLOEXEC); a table's columns flatten the struct
    gadget_process and name X_raw X; the
    gadget_kernel_stack and struct gadget_user_stack are named from
    ig_kstack and ig_ustack; the library's scratch map and lost-sample
    counter are not shown, the counter's total is read; SEC("uprobe/libc:F")
    attaches to libc's F."""
    start = datetime.datetime.now()
    with Runner(objs["gen_gadget_trace"], settings={"target_tgid": os.getpid()}) as r:
        assert not r.not_attached, r.not_attached
        fire(999999, 0, 999998)
        r.stop()
        assert r.lost_samples() == {"outbox": 0}
        hidden, reports = r.view.hidden, {rep.name: rep for rep in r.maps()}
    end = datetime.datetime.now()
    records = [rec for ring, rec in r.events if ring == "outbox"]
    assert [rec.error_raw for rec in records] == ["ESRCH", "", "ESRCH"]
    for rec in records:
        proc = rec.proc
        assert start <= datetime.datetime.fromisoformat(rec.timestamp_raw) <= end
        assert (proc.comm, proc.pid, proc.tid) == (my_comm(), os.getpid(), os.getpid())
        assert (proc.mntns_id, proc.creds.uid, proc.parent.pid) == ("host", "root", os.getppid())
        assert (rec.flags_raw, rec.sig_raw) == ("O_RDONLY|O_CLOEXEC", "SIGKILL")
        assert SYSCALL_ENTRY in rec.kstack_raw, rec.kstack_raw
        assert rec.ustack and rec.ustack[0].endswith("getpgid"), rec.ustack
    assert r.streams["outbox"].struct == "event"
    # a table lays the process out as columns, and names X_raw X
    columns = {c.name: c.path for c in r.streams["outbox"].columns}
    assert columns["container"] == ("proc", "mntns_id") and columns["ppid"] == ("proc", "parent", "pid")
    assert columns["timestamp"] == ("timestamp_raw",) and "kstack_raw" not in columns
    assert {"outbox_lost_samples", "gadget_heap"} <= set(hidden)
    assert reports["libc_calls"].entries == [(None, 3)]


GADGET_YAML = """
name: gen gadget hist
datasources:
  values:
    annotations:
      metrics.print: "true"
      ebpf.map.flush-on-stop: "true"
    fields:
      latency:
        annotations:
          metrics.unit: µs
          columns.width: 20
      parity:
        annotations:
          metrics.type: key
params:
  ebpf:
    target_tgid:
      key: pid
      defaultValue: "{pid}"
      description: the process traced
"""


def test_a_map_iterators_histograms_and_bitmaps(kernel, objs, tmp_path):
    """gen_gadget_hist: an array of gadget_histogram_slot__u32 is a log2
    histogram per key (its mount namespace shown as "host"); the bitmap's
    map is shown, beside histograms, because its marker says it is a
    result, and its bytes as the set of values seen. Its gadget.yaml
    (``config``) gives the histogram's unit, its parameter's default (the
    process traced) and its key's labels (parity, not the mount namespace),
    as Inspektor Gadget's loader gives them."""
    config = tmp_path / "gadget.yaml"
    config.write_text(GADGET_YAML.format(pid=os.getpid()))
    with Runner(objs["gen_gadget_hist"], config=str(config)) as r:
        fire(1, 3, 5, 7, 9, 100, 120)
        r.stop()
        reports = {rep.name: rep for rep in r.maps()}
        found = r.gadget_yaml
    assert found is not None and found.not_applied == ["ebpf.map.flush-on-stop (datasource values)"]
    hists = {key["parity"]: slots for key, slots, _ in reports["hists"].entries}
    assert reports["hists"].kind == "hist" and reports["hists"].unit == "usecs"
    assert [list(key) for key, _, _ in reports["hists"].entries] == [["parity"], ["parity"]]
    assert hists[1] == [1, 1, 2, 1] + [0] * 23
    assert hists[0] == [0] * 6 + [2] + [0] * 20
    assert reports["seen"].entries == [({"mntns_id_raw": "host"}, {"values": [1, 3, 5, 7, 9, 36, 56]})]


def test_an_iterators_binary_records_are_decoded_with_its_struct(kernel, objs):
    """gen_gadget_iter: one record per thread of this process, decoded with
    the struct its GADGET_ITER marker names, and its parameter listed."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    try:
        with Runner(objs["gen_gadget_iter"], settings={"target_tgid": os.getpid()}) as r:
            (rows,) = r.iterators().values()
            markers = gadget.markers(r.obj.btf)
    finally:
        done.set()
        thread.join()
    assert {(row["pid"], row["tid"]) for row in rows} >= {
        (os.getpid(), os.getpid()),
        (os.getpid(), thread.native_id),
    }
    assert {row["mntns_id_raw"] for row in rows} == {"host"}
    assert markers.params == ["target_tgid"]
    assert markers.iterators == {"dump_threads": gadget.Iterator("threads", "task_row", ("dump_threads",))}


LOOP = "import os, time\nwhile True:\n    os.getpgid(0)\n    time.sleep(0.05)\n"


@pytest.mark.slow  # a podman container
def test_a_mount_namespace_is_shown_as_the_container_it_is_ones(kernel, objs):
    """A record of a process in a podman container names the container as
    ``pyrunq top`` names it (``podman:`` and its short id), not its mount
    namespace's inode."""
    need("podman")
    image = podman_images.build()
    cid = podman_images.podman("run", "-d", "--rm", "--entrypoint=python3", image, "-c", LOOP)
    try:
        pid = int(podman_images.podman("inspect", "--format", "{{.State.Pid}}", cid))
        with Runner(objs["gen_gadget_trace"], settings={"target_tgid": pid}) as r:
            deadline = time.monotonic() + 60
            while not r.events and time.monotonic() < deadline:
                r.poll(1)
    finally:
        podman_images.podman("rm", "-f", cid)
    assert r.events, "no getpgid() of the container's process seen in 60 s"
    _, record = r.events[0]
    assert (record.proc.pid, record.proc.mntns_id) == (pid, f"podman:{cid[:12]}")


def test_the_socket_enrichers_type_is_added_to_the_kernels_btf(kernel, objs):
    """gen_gadget_socket reads a struct gadget_socket_value with CO-RE, as
    the network gadgets do: the kernel has no such type (libbpf refused the
    object); with the object's own copy added to the kernel's BTF it loads
    and runs, the enricher's table empty."""
    with Runner(objs["gen_gadget_socket"], settings={"target_tgid": os.getpid()}) as r:
        fire(0, 0)
        r.stop()
        values = {rep.name: rep.entries for rep in r.maps()}
        assert r.supplied == ["struct gadget_socket_value"]
    assert (values["found"], values["not_found"]) == ([(None, 0)], [(None, 2)])


def test_inspect_lists_a_gadgets_parameters_and_markers():
    """What ``pyrunq inspect`` prints of a gadget's markers, parameters or none."""
    from pyrunq.cli.inspect import _gadget

    g = {
        "params": [{"declaration": "const volatile bool paths", "default": False, "kind": "bool"}],
        "tracers": {"events": "event"},
        "mapiters": {"hists": "qdisc"},
        "iterators": {"dump": {"name": "files", "struct": "file_row"}},
    }
    assert _gadget(g) == [
        "",
        "gadget parameters (1, set with --set NAME=VALUE):",
        "  const volatile bool paths = false;",
        "",
        "gadget (Inspektor Gadget's markers):",
        "  tracer: events -> struct event",
        "  map iterator qdisc: hists",
        "  iterator files: program dump -> struct file_row",
    ]
    assert _gadget({**g, "params": []})[:3] == ["", "gadget parameters (0, set with --set NAME=VALUE):", ""]


@pytest.mark.slow  # naming stacks reads kallsyms and libc's symbols
def test_a_profiles_stacks_in_its_keys_and_values_are_named_from_their_maps(kernel, objs):
    """gen_gadget_profile, profile_cpu's shape: a gadget_kernel_stack in the
    key and a struct gadget_user_stack in the value are named from
    ig_kstack and ig_ustack."""
    with Runner(objs["gen_gadget_profile"], settings={"target_tgid": os.getpid()}) as r:
        fire(1, 2, 3, 4)
        r.stop()
        (report,) = [rep for rep in r.maps() if rep.name == "counts"]
    assert report.stacks == ["kern_stack_raw", "user_stack_raw"]
    [(key, value)] = report.entries
    assert (key["proc"]["comm"], key["proc"]["pid"], key["proc"]["mntns_id"]) == (
        my_comm(),
        os.getpid(),
        "host",
    )
    assert value["samples"] == 4
    assert SYSCALL_ENTRY in key["kern_stack_raw"], key
    assert value["user_stack_raw"] and value["user_stack_raw"][0].endswith("getpgid"), value
