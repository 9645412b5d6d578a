"""The object / map / ring buffer API on the real kernel, with bpf/selftest.bpf.c.

The self-test program runs on getpgid() from this process and records the
argument, so ``fire(n)`` is a deterministic trigger carrying a payload.
"""

from __future__ import annotations

import os
import selectors
import subprocess

import pytest

from pyrunq.bpf import BPFObject, kernel_ids, packaged_object
from pyrunq.errors import BPFError, BPFNotFoundError, StateError
from needs import need
from testobjects import compile_object
from waiting import wait_for

BASE = 10_000_000  # above any pid_max: getpgid() fails, the tracepoint still fires


def fire(seq: int) -> None:
    try:
        os.getpgid(seq)
    except ProcessLookupError:
        pass


@pytest.fixture
def obj(kernel):
    with BPFObject.open("selftest") as o:
        o.rodata["targ_tgid"] = os.getpid()
        yield o


@pytest.fixture
def loaded(obj):
    obj.load()
    obj.attach()
    return obj


def test_open_describes_the_object_without_privileges_needed(obj):
    assert set(obj.maps) == {"numbers", "pairs", "slots", "percpu_hits", "events", "more_events"}
    assert obj.programs["on_sys_enter"].section == "raw_tp/sys_enter"
    assert list(obj.rodata) == ["targ_tgid", "multiplier", "label"]
    assert obj.rodata["label"] == "default" and obj.data["bias"] == -5


def test_open_load_attach_close_cycles_leave_nothing(kernel):
    """What "nothing" means is checked by the ``kernel`` fixture after the
    test: no program, map or link of ours left in the kernel. Each cycle
    must have loaded and attached for real: its program ran once."""
    for _ in range(50):
        with BPFObject.open("selftest") as o:
            o.rodata["targ_tgid"] = os.getpid()
            o.load()
            o.attach()
            o.ring_buffer("events")
            fire(BASE)
            assert o.bss["hits"] == 1


def test_close_is_idempotent_and_blocks_further_use(loaded):
    m = loaded.maps["numbers"]
    loaded.close()
    loaded.close()
    with pytest.raises(StateError, match="closed"):
        m[1] = 2
    with pytest.raises(StateError, match="closed"):
        loaded.bss["hits"]


def test_ring_buffer_delivers_every_record_in_order_decoded(loaded):
    rb = loaded.ring_buffer("events", event="selftest_event")
    seqs = [BASE + 2 * i for i in range(200)]  # even: all to `events`
    for s in seqs:
        fire(s)
    got = list(rb.events(timeout=0.2))
    assert [e.seq for e in got] == seqs
    e = got[0]
    assert (e.tgid, e.tid) == (os.getpid(), os.getpid())
    assert e.comm == open("/proc/self/comm").read().strip()[:15]
    assert e.scaled == e.seq and e.delta == -5 - e.seq and e.flag == ord("d")


def test_ring_buffer_over_two_maps_with_callbacks(loaded):
    seen = []
    rb = loaded.ring_buffer(
        "events", "more_events", event="selftest_event", callback=lambda e: seen.append(e.seq)
    )
    for i in range(10):
        fire(BASE + i)
    assert rb.poll(0.5) >= 1
    rb.consume()
    assert sorted(seen) == [BASE + i for i in range(10)]


def test_ring_buffer_raw_records_and_selectors(loaded):
    rb = loaded.ring_buffer("events", raw=True)
    sel = selectors.DefaultSelector()
    sel.register(rb.fileno(), selectors.EVENT_READ)
    assert sel.select(0) == []
    fire(BASE)
    assert len(sel.select(1.0)) == 1
    assert rb.consume() == 1
    record = rb.pending.popleft()
    assert (
        isinstance(record, bytes) and len(record) == loaded.btf.layout(loaded.btf.find("selftest_event")).size
    )


def test_poll_limit_bounds_the_records_handled(loaded):
    seen = []
    rb = loaded.ring_buffer("events", event="selftest_event", callback=seen.append)
    for i in range(10):
        fire(BASE + 2 * i)
    assert rb.poll(0.5, limit=3) == 3 and len(seen) == 3
    assert rb.consume(limit=4) == 4
    assert rb.consume() == 3
    assert [e.seq for e in seen] == [BASE + 2 * i for i in range(10)]


def test_callback_exception_propagates_from_poll(loaded):
    def boom(_):
        raise ValueError("from callback")

    rb = loaded.ring_buffer("events", event="selftest_event", callback=boom)
    fire(BASE)
    with pytest.raises(ValueError, match="from callback"):
        rb.poll(0.5)


def test_rodata_set_before_load_changes_the_program(obj):
    obj.rodata["multiplier"] = 7
    obj.rodata["label"] = "Zed"
    obj.load()
    obj.attach()
    rb = obj.ring_buffer("events", event="selftest_event")
    fire(BASE + 4)
    (e,) = list(rb.events(timeout=0.2))
    assert e.scaled == 7 * (BASE + 4) and e.flag == ord("Z")


def test_rodata_filter_excludes_other_processes(obj):
    obj.rodata["targ_tgid"] = os.getpid() + 1_000_000
    obj.load()
    obj.attach()
    fire(BASE)
    assert obj.bss["hits"] == 0


def test_globals_after_load(loaded):
    for i in range(3):
        fire(BASE + i)
    assert loaded.bss["hits"] == 3 and loaded.bss["last_seq"] == BASE + 2
    loaded.bss["hits"] = 100
    fire(BASE)
    assert loaded.bss["hits"] == 101
    with pytest.raises(StateError, match="before load"):
        loaded.rodata["multiplier"] = 2


def possible_cpus() -> int:
    """What the kernel sizes per-CPU values by: /sys/devices/system/cpu/possible."""
    with open("/sys/devices/system/cpu/possible") as f:
        return max(int(part.split("-")[-1]) for part in f.read().strip().split(",")) + 1


def test_array_and_percpu_maps(loaded):
    cpu, allowed = max(os.sched_getaffinity(0)), os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})  # every hit lands in this CPU's slot
    try:
        for i in range(6):
            fire(BASE + i)
    finally:
        os.sched_setaffinity(0, allowed)
    assert dict(loaded.maps["slots"].items()) == {0: 2, 1: 2, 2: 1, 3: 1}
    per_cpu = loaded.maps["percpu_hits"][0]
    assert len(per_cpu) == possible_cpus()
    assert per_cpu[cpu] == 6 and sum(per_cpu) == 6
    loaded.maps["slots"].clear()
    assert loaded.maps["slots"].values() == [0, 0, 0, 0]


def test_hash_map_crud_with_struct_keys_and_values(loaded):
    m = loaded.maps["pairs"]
    m[(1, 2, 3)] = {"sum": 5, "name": "abc", "items": (7, 8, 9)}
    v = m[{"a": 1, "b": 2, "c": 3}]
    assert (v.sum, v.name, v.items) == (5, "abc", (7, 8, 9))
    assert (1, 2, 3) in m and (1, 2, 4) not in m
    assert m.get((9, 9, 9), "none") == "none"
    key = m.keys()[0]
    assert (key.a, key.b, key.c) == (1, 2, 3)
    raw = m.lookup_bytes(key)
    assert m.value_layout.decode(raw) == v
    del m[key]
    assert len(m) == 0
    with pytest.raises(KeyError):
        del m[key]
    with pytest.raises(KeyError):
        m[key]


def test_walk_of_ten_thousand_keys_matches_batch(loaded):
    m = loaded.maps["numbers"]
    for i in range(10_000):
        m[i] = i * 3
    walked = sorted(m._walk_items())
    batched = sorted(m.lookup_batch(chunk=64))
    assert walked == batched == [(i, i * 3) for i in range(10_000)]
    assert sorted(m.keys()) == list(range(10_000))


def test_deleting_while_walking_neither_skips_nor_repeats(loaded):
    m = loaded.maps["numbers"]
    for i in range(1000):
        m[i] = i
    visited = []
    for k in m:
        visited.append(k)
        if k % 2:
            del m[k]
    assert sorted(visited) == list(range(1000))
    assert sorted(m.keys()) == list(range(0, 1000, 2))


def test_lookup_and_delete_batch_drains(loaded):
    m = loaded.maps["numbers"]
    for i in range(500):
        m[i] = i
    assert sorted(m.lookup_and_delete_batch(chunk=32)) == [(i, i) for i in range(500)]
    assert len(m) == 0
    m[1] = 1
    m.clear()
    assert m.items() == []


def test_resize_map_before_load_only(obj):
    obj.maps["numbers"].max_entries = 10
    obj.load()
    assert obj.maps["numbers"].max_entries == 10
    for i in range(10):
        obj.maps["numbers"][i] = i
    with pytest.raises(BPFError) as err:
        obj.maps["numbers"][10] = 10
    assert "update map 'numbers'" in str(err.value)
    with pytest.raises(StateError, match="after load"):
        obj.maps["numbers"].max_entries = 20


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("x", 1, "bad key"),
        (1, 2**64, "bad value"),
        (b"\0\0", 1, "bad key"),
        (1, b"\0" * 3, "bad value"),
    ],
)
def test_wrong_key_or_value_type_or_size(loaded, key, value, message):
    with pytest.raises(TypeError, match=message):
        loaded.maps["numbers"][key] = value


def test_struct_value_with_wrong_fields(loaded):
    with pytest.raises(TypeError, match="no field 'nope'"):
        loaded.maps["pairs"][(1, 2, 3)] = {"nope": 1}
    with pytest.raises(TypeError, match="longer than char"):
        loaded.maps["pairs"][(1, 2, 3)] = {"name": "much too long"}


def test_unknown_names(obj):
    with pytest.raises(KeyError, match="no map 'nope' in 'selftest'"):
        obj.maps["nope"]
    with pytest.raises(KeyError, match="no global 'nope' in .rodata"):
        obj.rodata["nope"] = 1
    with pytest.raises(KeyError, match="no program"):
        obj.programs["nope"]


def test_map_use_before_load(obj):
    with pytest.raises(StateError, match="before load"):
        obj.maps["numbers"][1] = 1


def test_missing_object_file(kernel, tmp_path):
    with pytest.raises(BPFNotFoundError, match="open BPF object"):
        BPFObject.open(str(tmp_path / "missing.bpf.o"))
    with pytest.raises(BPFNotFoundError, match="reinstall"):
        packaged_object("no_such_tool")


def test_objects_for_both_architectures_and_one_line_elsewhere(monkeypatch):
    def machine(name):
        return lambda: os.uname_result(("Linux", "host", "6.1", "#1", name))

    for name, arch in (("x86_64", "x86"), ("aarch64", "arm64")):
        monkeypatch.setattr(os, "uname", machine(name))
        assert packaged_object("runqlat").endswith(f"/bpf/{arch}/runqlat.bpf.o")
    monkeypatch.setattr(os, "uname", machine("riscv64"))
    with pytest.raises(BPFNotFoundError, match="for x86_64 and aarch64 only; this machine is riscv64"):
        packaged_object("runqlat")


def test_file_that_is_not_elf(kernel, tmp_path):
    path = tmp_path / "junk.bpf.o"
    path.write_bytes(b"this is not an ELF file\n" * 10)
    with pytest.raises(BPFError, match="open BPF object"):
        BPFObject.open(str(path))


def test_truncated_object(kernel, tmp_path):
    data = open(packaged_object("selftest"), "rb").read()
    path = tmp_path / "truncated.bpf.o"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(BPFError, match="open BPF object"):
        BPFObject.open(str(path))


def test_without_privileges_says_what_is_needed(kernel, unprivileged, tmp_path):
    script = (
        "import os\n"
        "from pyrunq.bpf import BPFObject\n"
        "o = BPFObject.open('selftest')\n"
        "try:\n"
        "    o.load()\n"
        "except PermissionError as e:  # BPFPermissionError is one\n"
        "    print('DENIED', type(e).__name__, e)\n"
    )
    out = subprocess.run(
        unprivileged.python_argv("-c", script), capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("DENIED BPFPermissionError load BPF object 'selftest'"), out.stdout
    assert "needs root, or CAP_BPF and CAP_PERFMON" in out.stdout


REJECTED = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("raw_tp/sys_enter")
int out_of_bounds(void *ctx)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &zero);

	if (v)
		v[bpf_get_prandom_u32()] = 1;	/* unbounded index: the verifier says no */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_verifier_rejection_is_not_called_a_permission_problem(kernel, tmp_path):
    from pyrunq.errors import VerifierError

    src = tmp_path / "rejected.bpf.c"
    src.write_text(REJECTED)
    need("clang")
    compile_object(src, tmp_path / "rejected.bpf.o")
    with BPFObject.open(str(tmp_path / "rejected.bpf.o")) as o:
        with pytest.raises(VerifierError) as err:
            o.load()
    assert not isinstance(err.value, PermissionError)
    assert "the verifier rejected program 'out_of_bounds'" in str(err.value)
    assert any("BEGIN PROG LOAD LOG" in line for line in err.value.log)


def test_leak_check_sees_an_object_left_loaded(kernel):
    from leaks import left_since

    before = kernel_ids()
    obj = BPFObject.open("selftest")
    try:
        obj.load()
        assert left_since(before)["prog"]  # ours: no other process holds it
    finally:
        obj.close()
    wait_for(lambda: not left_since(before))
