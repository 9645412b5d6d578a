"""What the generic loader may add and subtract (tools/generic/measures.py):
counts and sums, never identities."""

from __future__ import annotations

import collections

import pytest

from pyrunq.tools.generic.measures import Apart, PerCpu, merge_percpu, minus, plus, role
from pyrunq.tools.generic.reports import MapReport, difference


@pytest.mark.parametrize(
    "name, expected",
    [
        ("count", "sum"),
        ("delta", "sum"),  # libbpf-tools' offcputime: the summed off-CPU time
        ("total_ns", "sum"),
        ("rbytes", "sum"),
        ("pid", "identity"),
        ("mntns_id", "identity"),
        ("major", "identity"),
        ("inode", "identity"),
        ("ts", "identity"),
        ("cgroupId", "identity"),
        ("max_lat", "max"),
        ("minLatency", "min"),
        ("", "sum"),  # a bare value: a count
    ],
)
def test_a_members_role_is_in_its_name(name, expected):
    assert role(name) == expected


def test_entries_add_their_measures_and_keep_apart_on_an_identity():
    a = {"pid": 7, "count": 2, "max_ns": 10, "comm": "a", "slots": [1, 2]}
    b = {"pid": 7, "count": 3, "max_ns": 4, "comm": "b", "slots": [0, 5]}
    assert plus(a, b) == {"pid": 7, "count": 5, "max_ns": 10, "comm": "a", "slots": [1, 7]}
    with pytest.raises(Apart):
        plus({"major": 29464, "count": 1}, {"major": 8, "count": 1})


def test_per_cpu_values_are_one_only_when_they_can_be():
    scratch = collections.namedtuple("scratch", "pid calls")
    assert merge_percpu([scratch(5, 2), scratch(0, 0), scratch(5, 3)]) == scratch(
        5, 5
    )  # an idle CPU left out
    apart = merge_percpu([scratch(15174, 2), scratch(0, 0), scratch(13545, 3)])
    assert isinstance(apart, PerCpu) and apart == [scratch(15174, 2), scratch(13545, 3)]  # never pid=28719
    assert merge_percpu([1, 2, 3]) == 6


def test_an_interval_subtracts_measures_and_shows_identities_as_they_are():
    assert minus({"pid": 42, "count": 9}, {"pid": 42, "count": 4}) == ({"pid": 42, "count": 5}, False)
    assert minus({"pid": 43, "count": 9}, {"pid": 42, "count": 4})[1]  # another pid: made anew
    before = MapReport("m", "entries", [(1, {"pid": 42, "count": 4})])
    now = MapReport("m", "entries", [(1, {"pid": 42, "count": 9})])
    assert difference(now, before).entries == [(1, {"pid": 42, "count": 5})]  # not pid 0
