"""ebpf_exporter's YAML (tools/generic/exporter_config.py) and its bucket
histograms (tools/generic/buckets.py), without the kernel: what a file is
read as, the one line a bad one gets, label values from key bytes, and
what each bucket holds."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import struct

import pytest

from pyrunq import syscalls
from pyrunq.tools.generic import buckets as B
from pyrunq.tools.generic import exporter_config as C
from pyrunq.tools.generic import exporter_labels as L

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = os.path.join(HERE, "objects", "gen_exporter_hist.yaml")


def test_our_yaml_is_read_as_the_exporter_reads_it():
    config = C.load(OURS)
    assert list(config.metrics) == [
        "syscalls_total",
        "calls_by_function_total",
        "calls_by_comm_total",
        "calls_per_cpu_total",
        "getpgid_value_seconds",
        "getpgid_linear",
        "getpgid_zero",
    ]
    hist = config.metrics["getpgid_value_seconds"]
    assert (hist.kind, hist.bucket_type, hist.bucket_min, hist.bucket_max, hist.bucket_multiplier) == (
        "histogram",
        "exp2",
        0,
        27,
        1e-6,
    )
    assert hist.label_names == ("device", "operation")
    assert hist.labels[1].decoders[1].static_map == {"0": "even", "1": "odd"}
    assert config.notes() == []


def _bad(tmp_path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(C.ConfigError) as e:
        C.load(str(path))
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"config {path}: ")
    return message[len(f"config {path}: ") :]


def test_a_bad_file_is_one_line_that_says_where(tmp_path):
    assert _bad(tmp_path, "metrics: [counters: {name: x\n").startswith("not valid YAML (line ")
    assert _bad(tmp_path, "metrics: {}\n") == "neither metrics nor tracing are defined"
    assert _bad(tmp_path, "- 1\n") == "the file: expected a mapping of keys, got a list"
    hist = "metrics:\n  histograms:\n    - name: h\n      help: x\n      bucket_type: exp2\n"
    label = "      labels:\n        - name: bucket\n          size: 8\n          decoders:\n"
    assert (
        _bad(
            tmp_path,
            hist + "      bucket_max: 10\n      bucket_multipler: 2\n" + label + "            - name: uint\n",
        )
        == "metrics.histograms[0]: unknown key 'bucket_multipler' (known: bucket_keys, bucket_max, "
        "bucket_min, bucket_multiplier, bucket_type, help, labels, name)"
    )
    assert _bad(tmp_path, hist + label + "            - name: uint\n") == (
        "histogram h: bucket_max 0 must be above bucket_min 0"
    )
    assert _bad(tmp_path, hist + "      bucket_max: 9\n" + label + "            - name: nope\n") == (
        "histogram h: label bucket: decoders[0]: unknown decoder 'nope'"
    )
    assert _bad(tmp_path, hist + "      bucket_max: 9\n" + label + "            - name: syscall\n") == (
        "histogram h: label bucket: decoder syscall reads a number: put uint before it"
    )
    assert _bad(
        tmp_path, hist + "      bucket_max: 9\n" + label.replace("8", "3") + "            - name: uint\n"
    ) == ("histogram h: label bucket: decoder uint reads 1 or 2 or 4 or 8 bytes, the label has 3")
    counter = "metrics:\n  counters:\n    - name: c\n"
    assert _bad(tmp_path, counter) == "counter c: no help (the exporter needs one)"


def test_checked_against_the_object():
    config = C.load(OURS)
    facts = {
        "syscalls_total": C.MapFacts(8, 8, False, True),
        "calls_by_function_total": C.MapFacts(8, 8, False, True),
        "calls_by_comm_total": C.MapFacts(16, 8, False, True),
        "calls_per_cpu_total": C.MapFacts(4, 8, True, True),
        "getpgid_value_seconds": C.MapFacts(16, 8, False, True),
        "getpgid_linear": C.MapFacts(8, 8, False, True),
        "getpgid_zero": C.MapFacts(4, 8, True, True),
    }
    C.check(config, facts, "obj")
    with pytest.raises(C.ConfigError, match=r"histogram getpgid_linear: obj has no hash or array map "):
        C.check(config, {k: v for k, v in facts.items() if k != "getpgid_linear"}, "obj")
    with pytest.raises(C.ConfigError, match="its labels take 16 bytes, its map's key has 12"):
        C.check(config, facts | {"getpgid_value_seconds": C.MapFacts(12, 8, False, True)}, "obj")
    with pytest.raises(C.ConfigError, match="its map's value is 4 bytes, not a 64-bit counter"):
        C.check(config, facts | {"syscalls_total": C.MapFacts(8, 4, False, True)}, "obj")


CGROUPS = os.path.join(HERE, "objects", "gen_exporter_cgroups.yaml")


def test_a_cgroup_id_map_is_read_and_checked_as_the_exporter_checks_it(tmp_path):
    """Its map, type (hash when left out, as the exporter takes it) and
    regexps over absolute cgroup paths; checked against the object: the map
    is there, of a type that fits, keyed as that type is written."""
    config = C.load(CGROUPS)
    spec = config.cgroup_id_map
    assert (spec.name, spec.type) == ("counted_cgroups", "hash")
    assert spec.matches("/sys/fs/cgroup/unified/pyrunq-test-0a1b2c3d/counted-a")
    assert not spec.matches("/sys/fs/cgroup/pyrunq-test-0a1b2c3d/counted-a/inner")
    assert not spec.matches("/sys/fs/cgroup/pyrunq-test-0a1b2c3d/other")
    facts = {
        f"getpgid_{k}_total": C.MapFacts(8, 8, False, True, "hash")
        for k in ("matched", "stored", "unmatched")
    }
    facts["counted_storage"] = C.MapFacts(4, 8, False, False, "cgrp_storage")
    C.check(config, facts | {"counted_cgroups": C.MapFacts(8, 8, False, True, "lru_hash")}, "obj")
    with pytest.raises(C.ConfigError, match="cgroup_id_map counted_cgroups: obj has no map counted_cgroups"):
        C.check(config, facts, "obj")
    with pytest.raises(C.ConfigError, match="type hash fills a hash or lru_hash map, not a cgrp_storage map"):
        C.check(config, facts | {"counted_cgroups": facts["counted_storage"]}, "obj")
    with pytest.raises(C.ConfigError, match="8-byte keys and 8-byte values .u64., not 4 and 8"):
        C.check(config, facts | {"counted_cgroups": C.MapFacts(4, 8, False, True, "hash")}, "obj")
    text = open(CGROUPS).read()
    head = text[: text.index("cgroup_id_map:")] + "cgroup_id_map:\n  name: counted_cgroups\n"
    assert _bad(tmp_path, head + "  type: array\n  regexps: [x]\n") == (
        "cgroup_id_map: type 'array' is not one of hash, cgrp_storage"
    )
    assert (
        _bad(tmp_path, head + "  regexps: []\n")
        == "cgroup_id_map: no regexps: no cgroup would be in counted_cgroups"
    )
    assert _bad(tmp_path, head + "  regexps: ['(']\n").startswith("cgroup_id_map: regexp '(': missing )")
    assert _bad(tmp_path, head + "  regexp: [x]\n").startswith("cgroup_id_map: unknown key 'regexp'")


def test_labels_from_key_bytes():
    config = C.load(OURS)
    hist = L.Labels(config.metrics["getpgid_value_seconds"])
    dev = os.makedev(254, 7)  # no such disk: the exporter's "unknown:M:m"
    key = struct.pack("=IB3xQ", dev, 1, 5)
    assert hist.of(key) == ("unknown:254:7", "odd", "5")
    assert hist.of(struct.pack("=IB3xQ", dev, 9, 5))[1] == "unknown:9"
    comm = L.Labels(config.metrics["calls_by_comm_total"])
    assert comm.of(b"python3".ljust(16, b"\0")) == ("py",)
    assert comm.of(b"bash".ljust(16, b"\0")) is None  # no regexp matched: left out
    calls = L.Labels(config.metrics["syscalls_total"])
    assert calls.of(struct.pack("=Q", 121)) == ((syscalls.name(121) or "unknown_syscall:121"),)
    assert calls.of(struct.pack("=Q", 99999)) == ("unknown_syscall:99999",)
    cpu = config.metrics["calls_per_cpu_total"]
    # a per-CPU array of one element, its last label the CPU: one sample per CPU
    assert L.samples(cpu, L.Labels(cpu), [(bytes(4), [3, 0, 4])], True) == [
        (("0",), 3),
        (("1",), 0),
        (("2",), 4),
    ]
    errno_label = C.Label("e", 8, 0, (C.Decoder("uint"), C.Decoder("errno")))
    metric = C.Metric("counter", "errors_total", "x", (errno_label,))
    assert L.Labels(metric).of(struct.pack("=Q", errno.ENOENT)) == ("ENOENT",)


def test_syscall_names_come_from_libseccomp():
    if os.uname().machine == "x86_64":
        assert (syscalls.name(0), syscalls.name(121), syscalls.name(-1)) == ("read", "getpgid", None)


def test_exp2_buckets_hold_what_the_exporter_says():
    exp2 = B.Buckets("exp2", 0, 27, 1e-6)
    # bucket 0: 0 and 1; bucket b: (2^(b-1), 2^b]
    assert [(exp2.least(b), exp2.bound(b)) for b in range(4)] == [(0, 1), (2, 2), (3, 4), (5, 8)]
    zero = B.Buckets("exp2zero", 0, 12)
    assert [(zero.least(b), zero.bound(b)) for b in range(4)] == [(0, 0), (1, 1), (2, 2), (3, 4)]
    entries = [(("sda",), 5, 2), (("sda",), 0, 1), (("sda",), 28, 40), (("sdb",), 3, 1), (("sdb",), 28, 4)]
    found = B.histograms(entries, exp2)
    assert [(h.key, h.counts, h.sum, h.count) for h in found] == [
        (("sda",), {5: 2, 0: 1}, 40, 3),
        (("sdb",), {3: 1}, 4, 1),
    ]
    assert B.rows(found[1], exp2, 1.0) == [("0 -> 1", 0), ("2", 0), ("3 -> 4", 0), ("5 -> 8", 1)]
    assert B.rows(B.BucketHistogram(None, {27: 1}), exp2, 1.0)[-1] == ("67108865 -> ...", 1)
    linear = B.Buckets("linear", 0, 20, 50)
    assert B.rows(B.BucketHistogram(None, {0: 1, 2: 3, 20: 1}), linear, 50)[:3] == [
        ("<= 0", 1),
        ("<= 50", 0),
        ("<= 100", 3),
    ]
    assert B.rows(B.BucketHistogram(None, {20: 1}), linear, 50)[-1] == (">= 1000", 1)


def test_the_sum_is_found_without_the_yaml_only_where_the_counts_allow_it():
    guess = B.Buckets()
    # 3 values in (16, 32] and one in [0, 1]: their sum is 51..97
    assert B.find_sum_bucket(B.histograms([((), 5, 3), ((), 0, 1)], guess), guess) is None
    with_sum = [((), 5, 3), ((), 0, 1), ((), 28, 70)]
    assert B.find_sum_bucket(B.histograms(with_sum, guess), guess) is None  # taken out already
    assert B.histograms(with_sum, guess)[0].sum == 70
    assert (
        B.histograms([((), 5, 3), ((), 0, 1), ((), 28, 500)], guess)[0].sum is None
    )  # 500 is no sum of them
    assert B.histograms([((), 5, 3), ((), 6, 1000)], guess)[0].sum == 1000  # 6 may be the clamped bucket
    assert B.histograms([((), 28, 5)], guess)[0].sum is None  # nothing else: a count
    # a key that counted values above 1 has a sum too: one without is a sign there is none
    keyed = [(("a",), 5, 3), (("a",), 0, 1), (("a",), 28, 70), (("b",), 4, 2)]
    assert [h.sum for h in B.histograms(keyed, guess)] == [None, None]


def test_units_from_the_metric_name_and_multiplier():
    assert B.display_unit("bio_latency_seconds", 1e-6) == ("usecs", 1.0)
    assert B.display_unit("softirq_wait_seconds", 1e-9) == ("nsecs", 1.0)
    assert B.display_unit("lock_wait_seconds", 1e-7) == ("nsecs", 100.0)
    assert B.display_unit("tcp_syn_backlog", 50) == ("value", 50)


def test_a_tracing_span_cuts_records_into_its_labels():
    config = C.parse(
        {
            "tracing": {
                "spans": [
                    {
                        "name": "io",
                        "ringbuf": "io_spans",
                        "labels": [
                            {"name": "trace_id", "size": 16, "decoders": [{"name": "hex"}]},
                            {"name": "operation", "size": 4, "decoders": [{"name": "uint"}]},
                            {"name": "peer", "size": 4, "decoders": [{"name": "inet_ip"}]},
                        ],
                    }
                ]
            }
        }
    )
    labels = L.Labels(config.spans["io_spans"])
    assert labels.size == 24
    record = bytes(range(16)) + struct.pack("=I", 1) + bytes([127, 0, 0, 1])
    assert labels.of(record) == (bytes(range(16)).hex(), "1", "127.0.0.1")
    from pyrunq.tools.generic.exporter_maps import SpanDecoder
    from pyrunq.tools.generic.streams import Stream

    # a struct's tail padding past the labels is left, as the exporter leaves it; a short record is not cut
    decode = SpanDecoder(Stream("io_spans", None), labels, lambda data: {"raw": len(data)})
    assert decode(record + bytes(8)) == {
        "trace_id": bytes(range(16)).hex(),
        "operation": "1",
        "peer": "127.0.0.1",
    }
    assert decode(record[:20]) == {"raw": 20}
    with pytest.raises(C.ConfigError, match="span io: obj has no ring buffer io_spans"):
        C.check(config, {}, "obj")


def test_inspect_says_how_each_map_is_shown(objs, tmp_path):
    from pyrunq.tools.generic import describe

    shown = {m["name"]: m["shown_as"] for m in describe(objs["gen_exporter_hist"])["maps"]}
    assert shown["getpgid_value_seconds"] == (
        "exp2 histogram getpgid_value_seconds (device, operation), with its sum: "
        "getpgid arguments taken as microseconds"
    )
    assert shown["syscalls_total"] == (
        "counter syscalls_total (syscall): System calls of the target process by name"
    )
    alone = shutil.copy(objs["gen_exporter_hist"], tmp_path)
    shown = {m["name"]: m["shown_as"] for m in describe(alone)["maps"]}
    assert shown["getpgid_value_seconds"].startswith("exp2 histograms, one entry per bucket")
    assert shown["syscalls_total"].startswith("entries (not by default")


def test_fixed_buckets_are_the_keys_the_yaml_lists():
    fixed = B.Buckets("fixed", keys=(1, 5, 10), multiplier=0.001)
    assert fixed.sum_bucket == 11
    (h,) = B.histograms([((), 1, 2), ((), 10, 3), ((), 11, 40)], fixed)
    assert (h.counts, h.sum) == ({1: 2, 10: 3}, 40)
    assert B.rows(h, fixed, 1.0) == [("<= 1", 2), ("<= 5", 0), (">= 10", 3)]


def _label(decoders, size=8, **decoder):
    chain = tuple(C.Decoder(name, **(decoder if name == decoders[-1] else {})) for name in decoders)
    return L.Labels(C.Metric("counter", "m_total", "x", (C.Label("l", size, 0, chain),)))


def test_decoders_that_read_this_machine():
    from pyrunq.cgroup import cgroup2_mount
    from pyrunq.symbols import kernel_symbols

    address = kernel_symbols().address("schedule")
    assert _label(["ksym"]).of(struct.pack("=Q", address)) == ("schedule",)
    assert _label(["ksym"]).of(struct.pack("=Q", address + 1)) == (f"unknown_addr:0x{address + 1:x}",)
    stack = struct.pack("=QQQ", address + 4, address, 0) + bytes(8)
    assert _label(["kstack"], 32).of(stack) == ("schedule\nschedule",)
    mount = cgroup2_mount()
    assert _label(["uint", "cgroup"]).of(struct.pack("=Q", os.stat(mount).st_ino)) == (mount,)
    assert _label(["ifname"], 4).of(struct.pack("=I", socket.if_nametoindex("lo"))) == ("lo",)
    assert _label(["hex"], 2).of(b"\x0a\xff") == ("0aff",)
    assert _label(["dname"], 9).of(b"\x03www\x02io\x00") == ("www.io.",)
    assert _label(["inet_ip"], 16).of(bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])) == ("10.0.0.1",)


def test_kaddrs_are_the_symbols_addresses(tmp_path):
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text("ffffffff81000000 T _text\nffffffff82a0b1c0 d bpf_jit_current\n")
    config = C.parse({"metrics": {"counters": [{"name": "c", "help": "x"}]}, "kaddrs": ["bpf_jit_current"]})
    assert C.kaddr_settings(config, str(kallsyms)) == {"kaddr_bpf_jit_current": 0xFFFFFFFF82A0B1C0}
    config = C.parse({"metrics": {"counters": [{"name": "c", "help": "x"}]}, "kaddrs": ["gone"]})
    with pytest.raises(C.ConfigError, match=f"kaddrs: gone is not in {kallsyms}"):
        C.kaddr_settings(config, str(kallsyms))


def test_a_gadget_yaml_is_read_for_what_changes_a_number(tmp_path):
    """Inspektor Gadget's gadget.yaml: a histogram field's metrics.unit (µs
    as usecs), its parameters' defaults; what lays out columns left; what
    else it holds said, not applied; keys in any case (dataSources)."""
    from pyrunq.tools.generic import gadget_yaml as Y

    found = Y.parse(
        {
            "name": "x",
            "dataSources": {
                "qdisc": {
                    "annotations": {"metrics.print": "true", "cli.clear-screen-before": "true"},
                    "fields": {
                        "latency": {"annotations": {"metrics.unit": "µs"}},
                        "comm": {"annotations": {"columns.width": 16, "template": "comm"}},
                        "pid": {"annotations": {"metrics.type": "counter"}},
                        "cpu": {"annotations": {"metrics.type": "key"}},
                    },
                }
            },
            "params": {
                "ebpf": {"targ_ms": {"key": "ms", "defaultValue": "false"}, "name": {"defaultValue": ""}}
            },
            "operator": {"x": 1},
        },
        "g.yaml",
    )
    assert found.units == {"qdisc": "usecs"} and found.map_units({"hists": "qdisc"}) == {"hists": "usecs"}
    assert found.defaults == {"targ_ms": "false"}
    assert found.not_applied == ["operator (top level)", "metrics.type (field qdisc.pid)"]
    assert (
        found.notes()[1] == "g.yaml: not applied here: operator (top level); metrics.type (field qdisc.pid)"
    )
    # printed as metrics: labelled by the fields whose metrics.type is key, the rest added up
    assert found.metric_keys({"hists": "qdisc"}) == {"hists": {"cpu"}}
    from pyrunq.tools.generic.reports import MapReport

    two = MapReport("hists", "hist", [({"unused": 0}, [1, 2], {}), ({"unused": 1}, [3, 0], {})], "usecs")
    assert Y.metric_labels(two, set()).entries == [(None, [4, 2], {})]
    assert Y.metric_labels(two, {"unused"}).entries == two.entries
    with pytest.raises(Y.GadgetYamlError, match=r"^g.yaml: datasources: expected a mapping, got list$"):
        Y.parse({"datasources": []}, "g.yaml")
    with pytest.raises(Y.GadgetYamlError, match="metrics.unit '% of CPU' is not a unit run knows"):
        Y.parse(
            {"datasources": {"d": {"fields": {"f": {"annotations": {"metrics.unit": "% of CPU"}}}}}}, "g.yaml"
        )
    bad = tmp_path / "gadget.yaml"
    bad.write_text("datasources: [\n")
    with pytest.raises(Y.GadgetYamlError, match=r"gadget.yaml: not valid YAML \(line 2, column 1\)"):
        Y.load(str(bad))
