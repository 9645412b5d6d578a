"""ebpf_exporter's cgroup_id_map on the real kernel: tests/objects/gen_exporter_cgroups.bpf.c
(in its style) counts getpgid(PROBE) only in the cgroups its YAML's regexps
select, which run fills as the exporter does, and keeps in step as cgroups
are made and removed; processes in known cgroups make known numbers of calls."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading

import pytest

from pyrunq.cgroup import cgroup2_mount
from pyrunq.tools.generic import Runner
from waiting import wait_for

PROBE = 0x700001  # the object's: no pid is that high
CHILD = f"""
import os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
for _ in range(int(sys.argv[2])):
    try:
        os.getpgid({PROBE})
    except ProcessLookupError:
        pass
"""
STORAGE_YAML = "cgroup_id_map:\n  name: counted_storage\n  type: cgrp_storage\n"


def calls(directory: str, n: int) -> None:
    """A process that moves itself into ``directory``, then calls getpgid(PROBE) ``n`` times."""
    subprocess.run([sys.executable, "-c", CHILD, directory, str(n)], check=True, timeout=60)


def _config(objs, kind: str, tmp_path) -> str:
    """The object's YAML (its cgroup_id_map a hash map), or a copy naming its cgroup storage instead."""
    beside = objs["gen_exporter_cgroups"][: -len(".bpf.o")] + ".yaml"
    if kind == "hash":
        return beside
    text = open(beside).read()
    head, _, regexps = text.partition("cgroup_id_map:\n")
    path = tmp_path / "storage.yaml"
    path.write_text(head + STORAGE_YAML + regexps[regexps.index("  regexps:") :])
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hash", "cgrp_storage"])
def test_the_cgroup_id_map_holds_the_cgroups_its_regexps_select_as_they_come_and_go(
    kernel, objs, cgroup_tree, tmp_path, kind
):
    """counted-a (there at start) makes 7 calls, other (not matching) 5,
    counted-b (made after the start, once the map holds it) 3: the matched
    counter has exactly a's 7 and b's 3, the unmatched one other's 5. A
    hash map's entry of a removed cgroup is taken out. Each of the two map
    kinds the exporter fills: a hash map, cgroup storage."""
    mount = cgroup2_mount()
    a, other = mount + cgroup_tree("counted-a"), mount + cgroup_tree("other")
    b = mount + cgroup_tree.parent + "/counted-b"
    seen: dict[str, object] = {}
    done = threading.Event()
    with Runner(objs["gen_exporter_cgroups"], config=_config(objs, kind, tmp_path)) as r:
        ids = r.metrics.cgroups
        assert ids is not None and set(ids.matched.values()) == {a}
        assert ids.spec.name not in dict(r.unfilled)  # filled here, not said to be left empty
        assert f"cgroup_id_map {ids.spec.name}: filled with the 1 cgroup(s)" in r.metrics.notes()[-1]

        def workload() -> None:
            try:
                calls(a, 7)
                calls(other, 5)
                os.mkdir(b)
                b_id = seen["b"] = os.stat(b).st_ino
                wait_for(lambda: b_id in ids.matched, timeout=10, seen=lambda: ids.matched)
                calls(b, 3)
                os.rmdir(b)
                wait_for(lambda: b_id not in ids.matched, timeout=10, seen=lambda: ids.matched)
                if kind == "hash":
                    seen["b kept"] = struct.pack("=Q", b_id) in r.obj.maps["counted_cgroups"]
            except BaseException as e:  # said by the test's thread
                seen["error"] = e
            finally:
                done.set()

        worker = threading.Thread(target=workload)
        worker.start()
        r.loop(duration=30, wait=lambda timeout, fd: done.wait(min(timeout or 0.05, 0.05)))
        worker.join()
        if os.path.isdir(b):
            os.rmdir(b)
        assert "error" not in seen, seen
        maps = {m.name: dict((e["cgroup"], v) for e, v in m.entries) for m in r.maps()}
    matched, empty = (
        ("getpgid_matched_total", "getpgid_stored_total")
        if kind == "hash"
        else ("getpgid_stored_total", "getpgid_matched_total")
    )
    # b was removed before the read: named as the exporter names a cgroup that is gone
    assert maps[matched] == {a: 7, f"unknown_cgroup_id:{seen['b']}": 3}, maps
    assert maps[empty] == {}
    assert maps["getpgid_unmatched_total"] == {other: 5}, maps
    assert seen.get("b kept") is not True


MARKED_PROBE = 0x700002  # gen_exporter_marked's


@pytest.mark.slow
def test_a_map_only_a_missing_demo_fills_is_said_and_filled_from_settings(kernel, objs):
    """gen_exporter_marked traces the processes its demo's USDT probe marks;
    without the demo, run says the map stays empty and how to fill it;
    filled with ``--set 'marked_tgids[PID]={tag=5}'`` it counts this
    process's 4 calls under tag 5."""
    with Runner(objs["gen_exporter_marked"]) as r:
        assert r.attached == ["on_enter"]
        why = dict(r.unfilled)["marked_tgids"]
    assert why == (
        "only mark_me adds entries, and it did not attach: on_enter finds it empty; give entries with "
        "setting 'marked_tgids[KEY]=VALUE' (VALUE: {tag=..., since_ns=...})"
    )
    with Runner(objs["gen_exporter_marked"], settings={f"marked_tgids[{os.getpid()}]": "{tag=5}"}) as r:
        assert "marked_tgids" not in dict(r.unfilled)
        for _ in range(4):
            with pytest.raises(ProcessLookupError):
                os.getpgid(MARKED_PROBE)
        r.stop()
        counts = {m.name: dict(m.entries) for m in r.maps()}
    assert counts["marked_calls_total"] == {5: 4}
