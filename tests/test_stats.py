"""The kernel side's drop counters (bpf/stats.bpf.h) are named from each
object's BTF, and the names are public: ``stats()`` keys, the exporter's
labels, the CLI's loss lines. A renamed enumerator shows up here first."""

from __future__ import annotations

import pytest

from pyrunq.bpf import BPFObject
from pyrunq.tools.runqlat import PER_KINDS, RunqLat
from waiting import wait_for
from workload import Contention

# object -> stats() keys, in order; None: no drop counters
STATS = {
    "runqlat": ["clock_skew", "hist_full", "start_full", "lost"],
    "runqslower": ["clock_skew", "hist_full", "start_full", "lost"],
    "bootstrap": ["lost", "start_full"],
    "stackcount": ["stack_collisions", "stack_errors", "counts_full"],
    "memleak": ["stack_collisions", "stack_errors", "allocs_full", "pending_full"],
    "funclatency": None,
}


@pytest.mark.parametrize("name", STATS)
def test_counter_names_come_from_the_objects_enum(name):
    with BPFObject.open(name) as obj:  # opened only: no privileges needed
        if STATS[name] is None:
            assert "stats" not in obj.maps
            return
        stats = obj.maps["stats"]
        assert list(stats.counter_names().values()) == STATS[name]
        assert list(stats.counter_names()) == list(range(stats.max_entries))  # every index named
        assert obj.btf.type_name(stats.key_type_id) == "__u32"  # what the kernel takes


def test_runqlat_stats_index_by_the_enum(kernel):
    # one histogram key: the second thread that waits cannot get one
    with Contention(), RunqLat(per="tid", max_keys=1) as rq:
        wait_for(lambda: rq.stats()["hist_full"], seen=rq.stats)
        rq.stop()  # detached: the counters hold still while they are compared
        assert list(rq.stats()) == STATS["runqlat"]
        assert rq.lost == sum(rq.stats().values())
        assert rq.obj.maps["stats"].counters() == rq.stats()


def test_per_kinds_take_their_values_from_btf():
    with BPFObject.open("runqlat") as obj:
        _, layout = obj.btf.datasec(".rodata")["targ_per"]
        assert layout.name == "enum per_kind" and layout.size == 4
        values = obj.btf.enum("per_kind")
    assert [f"PER_{(p or 'none').upper()}" for p in PER_KINDS] == list(values)


def test_counters_of_a_map_without_an_enum_need_names(kernel):
    with BPFObject.open("selftest") as obj:
        obj.load()
        hits = obj.maps["percpu_hits"]
        assert hits.counter_names() == {}
        with pytest.raises(KeyError, match="percpu_hits_keys"):
            hits.counters()
        assert hits.counters(["hits"]) == {"hits": 0}
