"""pyrunq exporter on the real kernel, scraped by a real Prometheus (Debian's
`prometheus`, started here on loopback), plus the collector's arithmetic and
the deploy/ files' agreement with the code."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families

import pyrunq.containers
import pyrunq.prometheus
from pyrunq.errors import UsageError
from pyrunq.prometheus import LATENCY, RunqueueCollector
from pyrunq.selection import CgroupGlob, Selection
from pyrunq.tools.blame import Attribution, CgroupNaming, Culprit
from pyrunq.hist import Histogram
from pyrunq.tools.runqlat import Key
import cli
from cli import Exporter, assert_usage_error
from needs import need
from promserver import Prometheus
from waiting import wait_for
from workload import Contention, Quiet, victim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFRESH = 1.0


# ---- helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus():
    need("prometheus")
    with tempfile.TemporaryDirectory(prefix="pyrunq-prometheus-") as tmp:
        server = Prometheus(tmp)
        yield server
        server.stop()


def value(prometheus, promql: str) -> float | None:
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if result else None


def p99(prometheus, cgroup: str) -> float | None:
    return value(prometheus, f'histogram_quantile(0.99, rate({LATENCY}_bucket{{cgroup="{cgroup}"}}[10s]))')


# ---- the exporter, the kernel and Prometheus ----------------------------------


@pytest.mark.slow  # ten seconds of scrapes fill the rate() window
@pytest.mark.external
def test_prometheus_sees_contended_cgroup_in_milliseconds(kernel, prometheus, cgroup_tree):
    with Contention() as busy, Quiet() as idle:
        contended = cgroup_tree("busy", busy.victim)
        quiet = cgroup_tree("idle", idle.victim)
        with Exporter("--cgroup", cgroup_tree.parent + "/**", "--refresh", str(REFRESH)) as e:
            prometheus.scrape([e.url])
            # ten seconds of 1 s scrapes fill the rate() window
            window = f'count_over_time({LATENCY}_count{{cgroup="{quiet}"}}[10s])'
            wait_for(
                lambda: (value(prometheus, window) or 0) >= 9, 40, 0.5, seen=lambda: prometheus.query("up")
            )
            slow, fast = p99(prometheus, contended), p99(prometheus, quiet)
            check_dashboard_queries(prometheus)
            assert concurrent_scrapes(e, 50) == 50
            content_type, body = e.scrape("application/openmetrics-text; version=1.0.0")
            assert content_type.startswith("application/openmetrics-text")
            assert body.endswith("# EOF\n")
            prometheus.scrape([])
            assert e.stop() == 0, e.stderr()
    assert 0.001 <= slow <= 0.25, (slow, fast)
    assert fast < slow / 5, (slow, fast)


def check_dashboard_queries(prometheus) -> None:
    """Every query of the Grafana dashboard and the recording rules runs, and
    the latency ones find data."""
    for expr in dashboard_exprs() + rule_exprs():
        promql = (
            expr.replace("$__rate_interval", "10s")
            .replace("$cgroup", ".+")
            .replace("$instance", ".+")
            .replace("$job", ".+")
        )
        result = prometheus.query(promql)
        if LATENCY in expr:
            assert result, promql


def concurrent_scrapes(e: Exporter, n: int) -> int:
    def one(_):
        content_type, body = e.scrape()
        return content_type.startswith("text/plain") and f"{LATENCY}_count" in body

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return sum(pool.map(one, range(n)))


# What deploy/kubernetes/daemonset.yaml grants: root with these capabilities only.
DAEMONSET_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all,+bpf,+perfmon,+setuid,+setgid"]


@pytest.mark.slow  # seconds of CLI runs: the quick tier stays under two minutes
def test_comm_and_user_nobody_follow_processes_live(kernel):
    with Exporter(
        "--by",
        "process",
        "--comm",
        "^pyrunq-late$",
        "--refresh",
        str(REFRESH),
        "--user",
        "nobody",
        wrapper=DAEMONSET_CAPS,
    ) as e:
        assert_runs_as_nobody(e.proc.pid)
        assert e.samples("pyrunq_tracked") == {frozenset({("kind", "process")}): 0}
        late = victim(1, comm="pyrunq-late")
        try:  # within two refreshes (and a little time to run)
            key = frozenset({("pid", str(late.pid)), ("comm", "pyrunq-late")})
            counts = lambda: e.samples(f"{LATENCY}_count")  # noqa: E731
            wait_for(lambda: key in counts(), 2 * REFRESH + 1, seen=lambda: e.scrape()[1])
            first = counts()[key]
            wait_for(lambda: counts()[key] > first, seen=counts)  # nobody reads the map fine
        finally:
            late.kill()
            late.wait()
        wait_for(lambda: not e.samples(f"{LATENCY}_count"), 2 * REFRESH + 1, seen=lambda: e.scrape()[1])
        assert e.samples("pyrunq_tracked") == {frozenset({("kind", "process")}): 0}
        assert e.stop(signal.SIGINT) == 0, e.stderr()
        assert "running as nobody (uid 65534, gid 65534) with no capabilities" in e.stderr()


def assert_runs_as_nobody(pid: int) -> None:
    """Every thread of the exporter, the HTTP server's too, is nobody, with
    no capability left (this kernel needs none for map access through fds)."""
    tasks = os.listdir(f"/proc/{pid}/task")
    assert len(tasks) >= 2  # the main thread and the HTTP server's
    for tid in tasks:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
        assert status["Uid"].split() == ["65534"] * 4, status["Uid"]
        assert status["Gid"].split() == ["65534"] * 4, status["Gid"]
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0


def test_max_series_counts_the_overflow(kernel, cgroup_tree):
    with Contention(victims=3, hog=False) as w:
        for name, v in zip("abc", w.victims):
            cgroup_tree(name, v)
        with Exporter("--cgroup", cgroup_tree.parent + "/*", "--max-series", "2") as e:
            overflow = frozenset({("reason", "max_series")})
            # the first refresh sees all three cgroups: two get a series, one is dropped
            wait_for(lambda: e.samples("pyrunq_lost_samples_total").get(overflow), seen=lambda: e.scrape()[1])
            assert len(e.samples(f"{LATENCY}_count")) == 2
            assert e.samples("pyrunq_series_dropped_total") == {frozenset(): 1}
            assert e.stop() == 0


def test_one_series_of_every_task_by_total(kernel):
    """--by total (RunqLat(per=None)): its one key is None, which the
    interval's rows must not take for "not counted in yet"."""
    from pyrunq.tools.runqlat import RunqLat

    with RunqLat(per=None, blame=True) as rq:
        collector = RunqueueCollector(rq)
        with Contention(victims=1, hog=True):
            wait_for(lambda: collector.update() or collector.samples, seen=lambda: collector.samples)
        (count,) = [
            s.value
            for f in collector.collect()
            if f.name == LATENCY
            for s in f.samples
            if s.name.endswith("_count")
        ]
    assert count > 0


def test_keep_cap_bpf_alone_for_older_kernels(kernel):
    """The path for kernels before 6.5, forced here: the uid changes, CAP_BPF
    alone stays, and the filter map and histograms still work."""
    code = """if True:
        import os, pwd, time
        from pyrunq.privileges import drop_privileges
        from pyrunq.tools.runqlat import RunqLat
        with RunqLat(per="pid", pids=[]) as rq:
            print(drop_privileges(pwd.getpwnam("nobody"), keep_cap_bpf=True))
            rq.set_pids([os.getpid()])
            for _ in range(50):
                time.sleep(0.002)
            print(sorted(k.id for k in rq.snapshot()) == [os.getpid()])
            status = dict(line.split(":", 1) for line in open("/proc/self/status"))
            print(status["Uid"].split()[0], int(status["CapEff"], 16), int(status["CapPrm"], 16))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    message, found, ids = out.stdout.splitlines()
    assert "with CAP_BPF alone" in message
    assert found == "True"
    assert ids == f"65534 {1 << 39} {1 << 39}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--listen", "localhost"], "invalid address"),
        (["--listen", "127.0.0.1:65536"], "invalid address"),
        (["--listen", "127.0.0.1:http"], "invalid address"),
        (["--comm", "(unclosed"], "invalid regular expression"),
        (["--user", "no-such-user-pyrunq"], "no such user"),
        (["--refresh", "0"], "must be positive"),
        (["--by", "thread"], "invalid choice"),
        (["--blame-top", "17"], "at most 16: '17'"),
        (["--cgroup-label", "(?P<tenant>"], "invalid regular expression"),
        (["--cgroup-label", "^/tenants/[^/]+"], "no named group"),
        (["--cgroup-label", "(?P<le>.)"], "group 'le' of '(?P<le>.)' is not a label name"),
        (["--cgroup-label", "(?P<cgroup>.)"], "group 'cgroup'"),
        (["--cgroup-label", "(?P<__name__>.)"], "group '__name__'"),
        (["--cgroup-label", "(?P<t\u00e9nant>.)"], "is not a label name"),  # Python's names may be Unicode
        (["--by", "process", "--cgroup-label", "(?P<tenant>.)"], "--cgroup-label needs --by cgroup"),
    ],
)
def test_bad_input_one_line_exit_2(args, message):
    assert_usage_error("exporter", args, message)


def test_port_in_use_one_line_exit_2():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = cli.run("exporter", "--listen", f"127.0.0.1:{port}")
    assert out.returncode == 2
    assert out.stderr == (
        f"pyrunq exporter: error: --listen 127.0.0.1:{port}: cannot listen: Address already in use\n"
    )


# ---- the collector's arithmetic, on a stand-in for RunqLat ----------------------


class FakeRunqLat:
    """Hands out the snapshots a test queues, like RunqLat.snapshot() deltas."""

    unit, pids, cgroup_ids, lost = "usecs", None, None, 0

    def __init__(self, per="cgroup", blame=False):
        self.per, self.queued, self.forgotten = per, [], []
        self.blame, self.blamed, self.naming = blame, [], None

    def snapshot(self):
        return self.queued.pop(0) if self.queued else {}

    def interval(self):
        return self.snapshot(), self.blamed.pop(0) if self.blamed else {}

    def interval_named(self, top):
        """interval(), its culprits named by the reference of the C naming"""
        if self.naming is None:
            self.naming = CgroupNaming(top)
        snapshot, blame = self.interval()
        return snapshot, blame, {k: self.naming.add(k, a.culprits) for k, a in blame.items()}

    def stats(self):
        return {"clock_skew": 0, "hist_full": 3}

    def unattributed(self):
        return {"migrated": 2, "history": 1, "full": 0, "unseen": 0}

    def program_stats(self):
        return {}

    def forget(self, ids):
        self.forgotten.extend(ids)

    def detached(self):
        return []


def cgroup_series(path: str, **labels: str) -> frozenset:
    """The label set of a cgroup's series: the path, the container labels ("" unless given)."""
    return frozenset(
        {"cgroup": path, "container_id": "", "pod_uid": "", "qos_class": "", "runtime": "", **labels}.items()
    )


def exposed(collector) -> dict:
    registry = CollectorRegistry()
    registry.register(collector)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }


def test_histogram_buckets_are_cumulative_log2_in_seconds():
    rq = FakeRunqLat()
    key = Key("cgroup", 7, "/a")
    hist = Histogram.from_values([0, 1, 3, 1500, 3000], "usecs")
    rq.queued = [{key: Histogram(hist.buckets, "usecs", 4_505_000)}]
    out = exposed(RunqueueCollector(rq))
    series = cgroup_series("/a")

    def bucket(le):
        return out[(f"{LATENCY}_bucket", series | {("le", le)})]

    assert bucket("2e-06") == 2 and bucket("4e-06") == 3 and bucket("0.001024") == 3
    assert bucket("0.002048") == 4 and bucket("0.004096") == 5 and bucket("+Inf") == 5
    assert out[(f"{LATENCY}_count", series)] == 5
    assert out[(f"{LATENCY}_sum", series)] == pytest.approx(0.004505)
    assert out[("pyrunq_lost_samples_total", frozenset({("reason", "hist_full")}))] == 3


def test_counters_accumulate_past_the_kernels_u32():
    rq = FakeRunqLat(per=None)
    big = Histogram([2**32 - 1] + [0] * 99, "usecs", 0)
    rq.queued = [{None: big}, {None: big}]
    collector = RunqueueCollector(rq)
    exposed(collector)
    assert exposed(collector)[(f"{LATENCY}_count", frozenset())] == 2 * (2**32 - 1)


def test_cap_refuses_new_keys_until_a_series_goes():
    rq = FakeRunqLat()
    keys = [Key("cgroup", i, f"/{i}") for i in range(3)]
    one = Histogram.from_values([5], "usecs")
    rq.queued = [{k: one for k in keys}, {keys[2]: one}]
    collector = RunqueueCollector(rq, max_series=2)
    collector.update()
    out = exposed(collector)  # its update sees the third key again: counted once
    assert cgroups_exposed(out) == {"/0", "/1"}
    assert out[("pyrunq_series_dropped_total", frozenset())] == 1
    assert out[("pyrunq_lost_samples_total", frozenset({("reason", "max_series")}))] == 2
    assert collector.prune({1: "/1", 2: "/2"}) == [keys[0]]  # /0 was removed
    assert rq.forgotten == [0]
    rq.queued = [{keys[2]: one}]  # its room goes to the third
    assert cgroups_exposed(exposed(collector)) == {"/1", "/2"}


CONTAINERD = "34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376"
POD = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod35550f44_f691_427e_b57d_ab6127d2cb65.slice"
)
CONTAINER_KEYS = [
    Key("cgroup", 9, f"{POD}/cri-containerd-{CONTAINERD}.scope"),
    Key("cgroup", 10, f"/kubepods/pod1f2e/{CONTAINERD}"),
    Key("cgroup", 11, f'/tenants/we"ird\\x/docker/{CONTAINERD}'),
]
TENANT = re.compile(r"^/tenants/(?P<tenant>[^/]+)/")


@pytest.mark.parametrize(
    "per, keys, patterns",
    [
        (None, [None], []),
        ("cgroup", [Key("cgroup", 7, "/a"), Key("cgroup", 8, '/we"ird\\path\nx%d%s%%')], []),
        ("cgroup", CONTAINER_KEYS, []),
        ("cgroup", CONTAINER_KEYS, [TENANT, re.compile(r"pod(?P<pod_uid>[0-9a-f]+)/")]),
        ("pid", [Key("pid", 12, "bash"), Key("pid", 13, 'c"o\\m')], []),
    ],
)
@pytest.mark.parametrize("blame", [False, True])
def test_fast_exposition_is_what_prometheus_client_writes(per, keys, patterns, blame, monkeypatch):
    # each cgroup's CPU files: one with everything, one without the cpu controller, one with none
    files = [
        {
            "stat": {"usage_usec": 5, "throttled_usec": 1_234_567, "nr_throttled": 10**7},
            "pressure": {"some": 3, "full": 2},
        },
        {"stat": {"usage_usec": 5}, "pressure": {"some": 12_345_678_901}},
        {"stat": {}, "pressure": {}},
    ]
    paths = [k.name for k in keys if k is not None]
    monkeypatch.setattr(
        pyrunq.prometheus.cgroup, "cpu_files", lambda d, *_: files[paths.index(d[len(mount) :])]
    )
    mount = pyrunq.prometheus.cgroup.cgroup2_mount()
    rq = FakeRunqLat(per=per, blame=blame)
    hists = [Histogram.from_values([0, 3, 1500, 3000 * i, 10**9], "usecs") for i in range(3)]
    rq.queued = [
        {k: Histogram(h.buckets, "usecs", 4_505_000 + i) for i, (k, h) in enumerate(zip(keys, hists))},
        {keys[0]: hists[2]},
        {},
        {keys[0]: Histogram([2**32 - 1] * 100, "usecs", 2 * 10**15)},  # past the short forms of numbers
        {keys[0]: hists[1]},
    ]
    culprits = [  # named culprits beyond the top 2 go to "other"; odd paths escaped
        Culprit(7, 7, "hog", f"/libpod_parent/libpod-{CONTAINERD}", 5, "container", 3_000_000),
        Culprit(8, 8, "sshd", '/system.slice/we"ird\\x', 6, "host", 1_234_567),
        Culprit(9, 9, "cron", "/system.slice/cron.service", 7, "host", 10),
    ]
    kinds = {"self": 5, "container": 3_000_000, "host": 1_234_577, "kernel": 1, "idle": 2, "unattributed": 3}
    rq.blamed = [
        {keys[0]: Attribution(kinds, tuple(culprits))},
        {},
        {},
        {keys[0]: Attribution({k: 10**16 for k in kinds}, (dataclasses.replace(culprits[2], ns=10**16),))},
        {keys[0]: Attribution(kinds, ())},
    ]
    collector = RunqueueCollector(rq, max_series=len(keys), cgroup_labels=patterns, blame_top=2)
    registry = CollectorRegistry()
    registry.register(collector)
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        encoder, content_type = choose_encoder(accept)
        collector.exposition(encoder, content_type)  # series made, then grown
        fast = collector.exposition(encoder, content_type)
        assert fast == encoder(registry), content_type  # what the library writes
        assert fast.count(b"_bucket{") == 26 * len(keys)  # 25 bounds, +Inf
        cgroups = per == "cgroup"
        assert fast.count(b"pyrunq_cgroup_cpu_pressure_seconds_total{") == (3 if cgroups else 0)
        assert fast.count(b"pyrunq_cgroup_cpu_throttled_periods_total{") == (1 if cgroups else 0)
        assert fast.count(b"pyrunq_runqueue_wait_attributed_seconds_total{") == (
            6 * len(keys) if blame else 0
        )


def test_counts_are_written_as_the_library_writes_them():
    from prometheus_client.utils import floatToGoString

    from pyrunq.prometheus import go_int

    rng = random.Random(3)
    numbers = [0, 1, 999_999, 10**6, 10**7, 1_000_001, 123_456_789, 10**10, 2**53 - 1, 2**53, 2**64 + 7] + [
        rng.randrange(10 ** rng.randrange(1, 19)) for _ in range(5000)
    ]
    assert [go_int(n) for n in numbers] == [floatToGoString(n) for n in numbers]


def test_cgroup_series_carry_container_labels_and_the_users_regexes_win():
    rq = FakeRunqLat()
    keys = [*CONTAINER_KEYS, Key("cgroup", 12, "/system.slice/ssh.service")]
    rq.queued = [{k: Histogram.from_values([5], "usecs") for k in keys}]
    # pod_uid: a part of what parse() finds; qos_class: a group that matches nothing, no value
    pod_dir = re.compile(r"^/kubepods/pod(?P<pod_uid>[0-9a-f]{2})[^/]*/(?P<qos_class>x)?")
    collector = RunqueueCollector(rq, cgroup_labels=[TENANT, pod_dir, re.compile(r"(?P<tenant>.+)")])
    counted = {labels for name, labels in exposed(collector) if name == f"{LATENCY}_count"}
    assert counted == {
        cgroup_series(
            keys[0].name,
            runtime="containerd",
            container_id=CONTAINERD,
            tenant=keys[0].name,
            pod_uid="35550f44-f691-427e-b57d-ab6127d2cb65",
            qos_class="burstable",
        ),
        cgroup_series(
            keys[1].name, container_id=CONTAINERD, pod_uid="1f", qos_class="guaranteed", tenant=keys[1].name
        ),
        cgroup_series(keys[2].name, runtime="docker", container_id=CONTAINERD, tenant='we"ird\\x'),
        cgroup_series(keys[3].name, tenant=keys[3].name),
    }


def test_cgroup_paths_are_parsed_once_per_series(monkeypatch):
    parsed = []
    parse = pyrunq.containers.parse
    monkeypatch.setattr(pyrunq.containers, "parse", lambda path: parsed.append(path) or parse(path))
    rq = FakeRunqLat()
    one = Histogram.from_values([5], "usecs")
    rq.queued = [{k: one for k in CONTAINER_KEYS}, {CONTAINER_KEYS[0]: one}]
    collector = RunqueueCollector(rq, cgroup_labels=[TENANT])
    for _ in range(3):
        exposed(collector)
        collector.exposition()
    assert sorted(parsed) == sorted(k.name for k in CONTAINER_KEYS)


def test_cgroup_labels_need_series_per_cgroup():
    with pytest.raises(UsageError, match="per cgroup"):
        RunqueueCollector(FakeRunqLat(per="pid"), cgroup_labels=[TENANT])
    assert RunqueueCollector(FakeRunqLat(per="pid")).labelnames == ("pid", "comm")


def cgroups_exposed(out: dict) -> set[str]:
    return {dict(labels)["cgroup"] for name, labels in out if name == f"{LATENCY}_count"}


@pytest.mark.parametrize(
    "pattern, matches, misses",
    [
        ("/kubepods*/**", ["/kubepods.slice", "/kubepods/burstable/pod1/abc"], ["/", "/system.slice"]),
        (
            "/system.slice/docker-*.scope",
            ["/system.slice/docker-ab12.scope"],
            ["/system.slice/docker-1.scope/x", "/system.slice/sub/docker-1.scope"],
        ),
        ("**/*.scope", ["/a.scope", "/x/y/b.scope"], ["/x/y", "/a.scope/z"]),
        ("/", ["/"], ["/a"]),
        ("/**", ["/", "/a/b/c"], []),
        ("/a/[!b]?", ["/a/cd"], ["/a/bd", "/a/c"]),
    ],
)
def test_cgroup_globs(pattern, matches, misses):
    glob = CgroupGlob(pattern)
    assert [p for p in matches + misses if glob.match(p)] == matches


def test_selection_resolves_comm_and_pids():
    p = victim(1, comm="pyrunq-select")
    try:
        assert Selection(comms=["^pyrunq-sel"], pids=[1]).process_ids() == {p.pid, 1}
    finally:
        p.kill()
        p.wait()
    assert Selection().process_ids() is None and Selection().cgroup_ids({1: "/"}) is None
    assert Selection(pids=[4194999]).process_ids() == set()


# ---- deploy/ and docs/ agree with the code -------------------------------------


def dashboard_exprs() -> list[str]:
    with open(os.path.join(ROOT, "deploy/grafana/pyrunq-dashboard.json")) as f:
        dashboard = json.load(f)
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    with open(os.path.join(ROOT, "deploy/prometheus/pyrunq-rules.yml")) as f:
        return re.findall(r"^\s+expr: (.+)$", f.read(), re.M)


@pytest.fixture
def exported_names(monkeypatch) -> set[str]:
    """Every pyrunq_* name the collector exposes (counters with _total)."""
    monkeypatch.setattr("pyrunq.prometheus.bpf_stats_enabled", lambda: True)
    rq = FakeRunqLat(blame=True)
    rq.pids = rq.cgroup_ids = set()
    return {f.name + "_total" if f.type == "counter" else f.name for f in RunqueueCollector(rq).collect()}


def test_docs_describe_every_metric_and_only_those(exported_names):
    with open(os.path.join(ROOT, "docs/metrics.md")) as f:
        documented = set(re.findall(r"^\| `(pyrunq_\w+)`", f.read(), re.M))
    assert documented == exported_names


def test_dashboard_uses_only_exported_metrics(exported_names):
    for expr in dashboard_exprs() + rule_exprs():
        for used in re.findall(r"\bpyrunq_\w+", expr):
            assert re.sub(r"_(bucket|count|sum)$", "", used) in exported_names, expr


def test_daemonset_arguments_parse():
    from pyrunq.cli import Parser
    from pyrunq.cli import exporter

    with open(os.path.join(ROOT, "deploy/kubernetes/daemonset.yaml")) as f:
        text = f.read()
    args = re.findall(r'^\s+- "?(--[^"\n]*)"?$', text, re.M)
    assert "--user" in " ".join(args)
    parser = Parser(prog="pyrunq exporter")
    exporter.add_arguments(parser)
    parser.parse_args(args)


@pytest.mark.external
def test_prometheus_example_config_and_rules_are_valid():
    out = subprocess.run(
        [
            need("promtool"),
            "check",
            "config",  # and the rule file it names
            os.path.join(ROOT, "deploy/prometheus/prometheus.yml"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("by_id", [True, False], ids=["by id", "by scan"])
def test_cgroup_names_are_bounded_by_the_cgroups_there_are(cgroup_tree, by_id):
    """A long run sees tens of thousands of cgroups come and go: names are
    found by id (or, where this process cannot, by a scan that drops the
    removed ones), a removed cgroup's name is dropped unless it was asked
    for, and that only once forgotten (its last samples carry its path)."""
    from pyrunq.cgroup import Names, cgroup2_mount

    mount = cgroup2_mount()
    paths = [f"{cgroup_tree.parent}/c{i}" for i in range(20)]
    for path in paths:
        os.mkdir(mount + path)
    try:
        ids = [os.stat(mount + path).st_ino for path in paths]
        names = Names()
        names._by_id = by_id
        scans = []
        scan = names._scan
        names._scan = lambda: scans.append(1) or scan()  # type: ignore[method-assign]
        assert names(ids[0]) == paths[0]  # asked for: kept
        assert all(names.exists(i) for i in ids)
        before = len(names)  # these 20 (by scan, the whole tree: other cgroups come and go)
        for path in paths[::2]:  # removed: c0 (asked for), c2, c4...
            os.rmdir(mount + path)
        assert names.gone(ids) == ids[::2]
        for i in ids[2::2]:  # as the tools do with the removed, but c0 (its last samples may come)
            names.forget(i)
        os.mkdir(mount + cgroup_tree.parent + "/new")
        assert names(os.stat(mount + cgroup_tree.parent + "/new").st_ino) == cgroup_tree.parent + "/new"
        assert len(names) == before - 9 + 1 or not by_id  # the removed gone, but c0; the new one
        assert names(ids[0]) == paths[0] and not names.exists(ids[2])
        names.forget(ids[0])
        assert names(ids[0]) == f"<cgroup id {ids[0]}, removed>"  # and not looked for again: it is gone
        assert len(scans) == (0 if by_id else 4)  # at c0, the new one, c2 and c0 forgotten
    finally:
        for path in [*paths, cgroup_tree.parent + "/new"]:
            if os.path.isdir(mount + path):
                os.rmdir(mount + path)


def test_blame_top_flag_and_the_c_table_agree():
    from pyrunq.bpf import NAMED_MAX
    from pyrunq.cli.exporter import BLAME_TOP_MAX

    assert BLAME_TOP_MAX == NAMED_MAX
    with pytest.raises(UsageError, match="blame_top must be 0 to 16"):
        RunqueueCollector(FakeRunqLat(blame=True), blame_top=NAMED_MAX + 1)


def test_cpu_files_read_once_per_parent_say_what_each_file_says(cgroup_tree):
    """cpu.stat is read only where the parent gives the cpu controller: the
    samples are the same as from reading every file."""
    from pyrunq.cgroup import cgroup2_mount, cpu_files
    from pyrunq.prometheus import _cpu_samples

    directory = cgroup2_mount() + cgroup_tree("x")
    parents: dict = {}
    assert _cpu_samples(["x"], cpu_files(directory, parents)) == _cpu_samples(["x"], cpu_files(directory))
    assert list(parents) == [os.path.dirname(directory)]
    assert cpu_files(directory)["stat"]["usage_usec"] >= 0  # the file is read when asked to
