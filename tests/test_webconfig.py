"""pyrunq exporter --web-config: TLS and basic auth in the Prometheus
exporter-toolkit's format, with Debian's Prometheus scraping through them;
certificates made here at test time. And the health endpoints."""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from wsgiref.util import setup_testing_defaults

import pytest

from pyrunq.cli.exporter import metrics_app
from pyrunq.prometheus import LATENCY, RunqueueCollector
from pyrunq.webconfig import WebConfigError, WebServing, load
from certs import CA, hashed
from cli import Exporter, assert_usage_error
from needs import need
from promserver import Prometheus
from waiting import wait_for

USER, PASSWORD = "prometheus", "s3cret pass:word"


@pytest.fixture
def tmp(tmp_path) -> str:
    return str(tmp_path)


def write(path: str, text: str) -> str:
    """Written beside and renamed over, as a Kubernetes Secret changes."""
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)
    return path


def web_config(directory: str, cert=None, key=None, users=None, name="web.yml", **tls) -> str:
    lines = []
    if cert or key or tls:
        lines.append("tls_server_config:")
        lines += [f"  {k}: {v}" for k, v in {"cert_file": cert, "key_file": key, **tls}.items() if v]
    if users:
        lines.append("basic_auth_users:")
        lines += [f"  {u}: '{h}'" for u, h in users.items()]
    return write(os.path.join(directory, name), "\n".join(lines) + "\n")


def authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- bad files: one line, exit 2, before anything is loaded ---------------------


@pytest.fixture
def bad_configs(tmp) -> dict[str, tuple[str, str]]:
    ca = CA(tmp)
    cert, key, _ = ca.issue("server")
    old_cert, old_key, _ = ca.issue("old", expired=True)
    return {
        "missing file": (os.path.join(tmp, "nowhere.yml"), "No such file or directory"),
        "unknown key": (
            write(os.path.join(tmp, "key.yml"), f"tls_server_config:\n  cert_file: {cert}\n  certfile: x\n"),
            "unknown key tls_server_config.certfile",
        ),
        "bad hash": (
            web_config(tmp, users={USER: "plain-text"}, name="hash.yml"),
            f"basic_auth_users.{USER}: not a bcrypt hash",
        ),
        "expired cert": (
            web_config(tmp, old_cert, old_key, name="old.yml"),
            f"{old_cert}: the certificate expired on ",
        ),
    }


@pytest.mark.parametrize("case", ["missing file", "unknown key", "bad hash", "expired cert"])
def test_bad_web_config_is_one_line_exit_2(bad_configs, case):
    path, message = bad_configs[case]
    assert_usage_error("exporter", ["--web-config", path], f"--web-config {path}: {message}")


@pytest.mark.parametrize(
    "text, message",
    [
        ("basic_auth_users: [a, b]\n", "basic_auth_users must be a mapping"),
        ("http_server_config: {http2: false}\n", "unknown key http_server_config (pyrunq reads"),
        ("tls_server_config: {cert_file: a.crt}\n", "needs both cert_file and key_file"),
        (
            "tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequestClientCert}\n",
            "not supported",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b, client_auth_type: VerifyClientCertIfGiven}\n",
            "VerifyClientCertIfGiven needs client_ca_file",
        ),
        ("tls_server_config: {cert_file: a, key_file: b, min_version: TLS14}\n", "'TLS14' is not one of"),
        ("tls_server_config: [\n", "not valid YAML (line 2, column 1)"),
    ],
)
def test_what_is_wrong_is_named(tmp, text, message):
    with pytest.raises(WebConfigError, match=re.escape(message)):
        load(write(os.path.join(tmp, "web.yml"), text))


def test_a_certificate_and_a_key_that_do_not_match(tmp):
    ca = CA(tmp)
    cert, _, _ = ca.issue("one")
    _, key, _ = ca.issue("two")
    with pytest.raises(WebConfigError, match="not a certificate and its key"):
        load(web_config(tmp, cert, key))


def test_files_are_found_from_the_configs_directory(tmp):
    ca = CA(tmp)
    ca.issue("server")
    config = load(web_config(tmp, "server.crt", "server.key", client_ca_file=os.path.basename(ca.file)))
    assert config.scheme == "https" and config.tls.verify_mode == ssl.CERT_REQUIRED  # the CA alone says so
    assert config.files == (
        os.path.join(tmp, "web.yml"),
        *(os.path.join(tmp, f"server.{e}") for e in "crt key".split()),
        ca.file,
    )
    assert load(write(os.path.join(tmp, "empty.yml"), "")).scheme == "http"


# ---- basic auth, health, on the WSGI app ----------------------------------------


class Collector:
    """What the app asks of a RunqueueCollector."""

    problems: list[str] = []

    def readiness(self, max_age):
        return self.problems

    def exposition(self, encoder, content_type, extra=()):
        return b"pyrunq_series 0.0\n"


def call(app, path: str = "/metrics", auth: str | None = None) -> tuple[str, bytes, dict]:
    environ: dict = {"PATH_INFO": path}
    if auth:
        environ["HTTP_AUTHORIZATION"] = auth
    setup_testing_defaults(environ)
    got = {}
    body = b"".join(app(environ, lambda status, headers: got.update(status=status, headers=dict(headers))))
    return got["status"], body, got["headers"]


def test_wrong_password_is_401_and_nothing_else(tmp):
    web = WebServing(web_config(tmp, users={USER: hashed(PASSWORD), "other": hashed("x")}))
    app = metrics_app(Collector(), web)
    for auth in (
        None,
        authorization(USER, "wrong"),
        authorization("nobody", PASSWORD),
        "Bearer abc",
        "Basic !!",
    ):
        status, body, headers = call(app, auth=auth)
        assert (status, body) == ("401 Unauthorized", b"Unauthorized\n"), auth
        assert headers["WWW-Authenticate"] == 'Basic realm="pyrunq"'
    assert call(app, auth=authorization(USER, PASSWORD))[:2] == ("200 OK", b"pyrunq_series 0.0\n")
    assert call(app, auth=authorization("other", PASSWORD))[0] == "401 Unauthorized"  # not USER's password


def test_users_change_with_the_file_and_a_broken_file_keeps_the_last(tmp):
    path = web_config(tmp, users={USER: hashed(PASSWORD)})
    web = WebServing(path)
    app = metrics_app(Collector(), web)
    assert call(app, auth=authorization(USER, PASSWORD))[0] == "200 OK"  # and remembered
    web_config(tmp, users={"new": hashed("new")})
    assert call(app, auth=authorization(USER, PASSWORD))[0] == "401 Unauthorized"
    assert call(app, auth=authorization("new", "new"))[0] == "200 OK"
    write(path, "basic_auth_users: {new: not-a-hash}\n")
    assert call(app, auth=authorization("new", "new"))[0] == "200 OK"


def test_health_answers_without_auth_and_readiness_says_why(tmp):
    collector = Collector()
    app = metrics_app(collector, WebServing(web_config(tmp, users={USER: hashed(PASSWORD)})))
    assert call(app, "/healthz")[:2] == ("200 OK", b"ok\n")
    assert call(app, "/readyz")[:2] == ("200 OK", b"ready\n")
    collector.problems = ["no refresh for 40 s", "programs not attached: a"]
    assert call(app, "/readyz")[:2] == (
        "503 Service Unavailable",
        b"no refresh for 40 s\nprograms not attached: a\n",
    )


class RunqLat:
    """What readiness reads of a RunqLat: lost samples, links."""

    unit, per, blame, pids, cgroup_ids = "usecs", None, False, None, None

    def __init__(self):
        self.lost, self.unlinked, self.queued = 0, [], []

    def detached(self):
        return self.unlinked

    def snapshot(self):
        return self.queued.pop(0) if self.queued else {}

    def forget(self, ids):
        pass


def test_readiness_from_what_the_last_refresh_saw(monkeypatch):
    from pyrunq.hist import Histogram

    rq = RunqLat()
    collector = RunqueueCollector(rq)
    assert collector.readiness(max_age=30) == []
    rq.queued, rq.lost = [{None: Histogram.from_values([5] * 990, "usecs")}], 10  # 1.0%: no reason
    collector.refresh()
    assert collector.readiness(max_age=30) == []
    rq.queued, rq.lost = [{None: Histogram.from_values([5] * 980, "usecs")}], 31  # 2.1%
    collector.refresh()
    assert collector.readiness(max_age=30) == ["2.1% of the samples lost in the last refresh interval"]
    collector.refresh()  # nothing more lost
    collector.refresh_failed("cannot read /sys/fs/cgroup")
    rq.unlinked = ["handle_sched_switch"]
    monkeypatch.setattr(collector, "refreshed", collector.refreshed - 31)
    assert collector.readiness(max_age=30) == [
        "programs not attached: handle_sched_switch",
        "the last refresh failed: cannot read /sys/fs/cgroup",
        "no refresh for 31 s",
    ]


# ---- the exporter, the kernel and Prometheus -------------------------------------


def get(url: str, ca: str | None = None, auth: str | None = None, cert=None) -> tuple[int, bytes]:
    """(HTTP status, body) of a GET, trusting ``ca``, presenting ``cert`` (cert, key)."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(*cert)
    request = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def refused(fn) -> Exception:
    """What ``fn()`` raised: the connection ended without an HTTP answer."""
    with pytest.raises((OSError, http.client.HTTPException)) as caught:
        fn()
    assert not isinstance(caught.value, urllib.error.HTTPError), caught.value
    return caught.value


def served_serial(url: str, ca: str) -> int:
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    context = ssl.create_default_context(cafile=ca)
    with context.wrap_socket(socket.create_connection((host, int(port)), 10), server_hostname=host) as s:
        return int(s.getpeercert()["serialNumber"], 16)


@pytest.mark.slow  # Prometheus scrapes for a few seconds
@pytest.mark.external
def test_prometheus_scrapes_through_tls_and_basic_auth(kernel):
    need("prometheus")
    with tempfile.TemporaryDirectory(prefix="pyrunq-tls-") as tmp:
        ca = CA(tmp)
        cert, key, _ = ca.issue("server")
        client = ca.issue("client", server=False)[:2]
        password_file = write(os.path.join(tmp, "password"), PASSWORD)
        path = web_config(tmp, cert, key, users={USER: hashed(PASSWORD)}, min_version="TLS12")
        job = (
            f"  scheme: https\n  tls_config: {{ca_file: {ca.file}}}\n"
            f"  basic_auth: {{username: {USER}, password_file: {password_file}}}\n"
        )
        prometheus = Prometheus(tmp, job)
        try:
            with Exporter("--by", "total", "--web-config", path) as e:
                assert e.url.startswith("https://127.0.0.1:")
                prometheus.scrape([e.url])
                up = lambda: prometheus.query("up")  # noqa: E731
                wait_for(lambda: [r for r in up() if r["value"][1] == "1"], 30, 0.2, seen=up)
                buckets = f"{LATENCY}_bucket"
                wait_for(
                    lambda: len(prometheus.query(buckets)) == 26,
                    30,
                    0.2,
                    seen=lambda: prometheus.query(buckets),
                )
                median = prometheus.query(f"histogram_quantile(0.5, {buckets})")
                assert float(median[0]["value"][1]) > 0, median
                check_refusals(e.url, ca.file)
                check_rotation(e.url, ca, client, path, cert, key)
                prometheus.scrape([])
                assert e.stop() == 0, e.stderr()
        finally:
            prometheus.stop()


def check_refusals(url: str, ca: str) -> None:
    good, wrong = authorization(USER, PASSWORD), authorization(USER, PASSWORD + "x")
    assert get(url, ca, good)[0] == 200
    assert get(url, ca, wrong) == (401, b"Unauthorized\n")
    assert get(url, ca) == (401, b"Unauthorized\n")
    refused(lambda: get(url.replace("https:", "http:"), auth=good))  # plain HTTP to the TLS port
    for path in ("/healthz", "/readyz"):  # no auth: a kubelet's probe has none
        assert get(url.replace("/metrics", path), ca)[0] == 200


def check_rotation(url: str, ca: CA, client, path: str, cert: str, key: str) -> None:
    """A new certificate is served without a restart; then the file asks
    for client certificates, and a client without one is refused."""
    good = authorization(USER, PASSWORD)
    before = served_serial(url, ca.file)
    _, _, serial = ca.issue("server")  # the same files, rewritten
    assert serial != before and served_serial(url, ca.file) == serial
    web_config(os.path.dirname(path), cert, key, users={USER: hashed(PASSWORD)}, client_ca_file=ca.file)
    refused(lambda: get(url, ca.file, good))
    assert get(url, ca.file, good, cert=client)[0] == 200
