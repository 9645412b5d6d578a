"""pyrunq exporter: run queue latency for Prometheus, served over HTTP while
the runqlat programs stay attached; what is traced is resolved again at every
refresh and pushed into the kernel's filter maps, without reloading."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import pwd
import re
import socket
import ssl
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from . import non_negative_int, pid_list, positive_int, wait, warn_missing

DEFAULT_LISTEN = "127.0.0.1:9864"
PER = {"cgroup": "cgroup", "process": "pid", "total": None}

EXAMPLES = """examples:
    pyrunq exporter                          # per cgroup, on 127.0.0.1:9864/metrics
    pyrunq exporter --listen :9864 --cgroup '/kubepods*/**' --user nobody
    pyrunq exporter --cgroup-label '^/tenants/(?P<tenant>[^/]+)/'  # a label of your own layout
    pyrunq exporter --by process --comm '^(nginx|postgres)$' --pid 1
    pyrunq exporter --by total"""


def add_arguments(p) -> None:
    p.add_argument(
        "--listen",
        type=listen_address,
        default=DEFAULT_LISTEN,
        metavar="ADDR:PORT",
        help=f"where to serve /metrics (default {DEFAULT_LISTEN}; :PORT for all addresses)",
    )
    p.add_argument(
        "--by",
        choices=PER,
        default="cgroup",
        help="one histogram per cgroup (default), per process, or in total",
    )
    p.add_argument(
        "--cgroup",
        action="append",
        default=[],
        metavar="GLOB",
        help="trace cgroups whose path (relative to the cgroup2 mount) matches; "
        "** matches any depth; repeatable",
    )
    p.add_argument(
        "--comm",
        action="append",
        default=[],
        type=regex,
        metavar="REGEX",
        help="trace processes whose /proc/PID/comm matches (re.search); repeatable",
    )
    p.add_argument(
        "--pid",
        action="append",
        default=[],
        type=pid_list,
        metavar="PID[,PID...]",
        help="trace these processes; repeatable",
    )
    p.add_argument(
        "--cgroup-label",
        action="append",
        default=[],
        type=cgroup_label,
        metavar="REGEX",
        help="with --by cgroup: search the cgroup path with REGEX; its named groups become labels, "
        "and win over the container_id, pod_uid, qos_class and runtime read from the path "
        "(the first REGEX that sets one wins); repeatable",
    )
    p.add_argument(
        "--refresh",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="resolve --cgroup/--comm/--pid again this often (default 10)",
    )
    p.add_argument(
        "--max-series",
        type=positive_int,
        default=1000,
        metavar="N",
        help="at most N histogram series; the overflow is counted (default 1000)",
    )
    p.add_argument(
        "--blame-top",
        type=blame_top,
        default=3,
        metavar="K",
        help="name the K cgroups that took the most CPU from each series while it waited, "
        'the rest as "other" (default 3, at most 16; 0: none named, the split by kind stays)',
    )
    p.add_argument(
        "--web-config",
        metavar="FILE",
        help="TLS and basic auth for /metrics: a web configuration file in the format of the Prometheus "
        "exporter-toolkit (tls_server_config, basic_auth_users); its files are read again when they change",
    )
    p.add_argument(
        "--user", type=user_entry, metavar="USER", help="drop root for USER once the programs are attached"
    )


def listen_address(text: str) -> tuple[int, tuple]:
    """ADDR:PORT, [IPv6]:PORT or :PORT -> (address family, socket address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"invalid address {text!r} (expected ADDR:PORT)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: {e.strerror}") from None
    return family, sockaddr[:2]


def regex(text: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {e}") from None


LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED_LABELS = ("cgroup", "le")  # the exporter's own, always there


def cgroup_label(text: str) -> re.Pattern:
    """A regex whose named groups are labels the exporter may add."""
    pattern = regex(text)
    if not pattern.groupindex:
        raise argparse.ArgumentTypeError(f"no named group in {text!r}: name each label: (?P<tenant>...)")
    for name in pattern.groupindex:
        if not LABEL_NAME.fullmatch(name) or name.startswith("__") or name in RESERVED_LABELS:
            raise argparse.ArgumentTypeError(
                f"group {name!r} of {text!r} is not a label name pyrunq may add: "
                "[a-zA-Z_][a-zA-Z0-9_]*, not starting with __, not cgroup or le"
            )
    return pattern


BLAME_TOP_MAX = 16  # pyrunq.bpf.NAMED_MAX (not imported: the binding would load before parsing)


def blame_top(text: str) -> int:
    value = non_negative_int(text)
    if value > BLAME_TOP_MAX:
        raise argparse.ArgumentTypeError(f"at most {BLAME_TOP_MAX}: {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def user_entry(text: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
    except KeyError:
        raise argparse.ArgumentTypeError(f"no such user: {text!r}") from None


# ---- HTTP ------------------------------------------------------------------


class _Server(ThreadingMixIn, WSGIServer):
    """Serves plain HTTP, or with ``web`` (webconfig.WebServing) TLS and basic
    auth as its configuration says, checked again at each connection."""

    daemon_threads = True
    request_queue_size = 128  # dozens of scrapers at once must not overflow the backlog
    web = None

    def get_request(self):
        conn, address = super().get_request()
        config = self.web.current() if self.web is not None else None
        if config is not None and config.tls is not None:
            # the handshake runs in the connection's thread (_Handler.setup), not in the accepting one
            conn = config.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def handle_error(self, request, client_address) -> None:
        # a client that is refused (no TLS, no certificate) or goes away is not the server's error
        if not isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            super().handle_error(request, client_address)


class _Handler(WSGIRequestHandler):
    timeout = 30  # a client that says nothing does not hold a thread for ever

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, *args) -> None:  # one stderr line per scrape is noise
        pass


def bind(listen: tuple[int, tuple]) -> _Server:
    """Bind before anything is loaded: a bad --listen is a usage error."""
    from ..errors import UsageError

    family, address = listen
    server_class = type("Server", (_Server,), {"address_family": family})
    try:
        return server_class(address, _Handler)
    except OSError as e:
        raise UsageError(f"--listen {url(address)}: cannot listen: {e.strerror}") from None


def url(address: tuple) -> str:
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def metrics_app(collector, web=None, max_age: float = float("inf")):
    """A WSGI app serving the collector's metrics and the exporter's own
    (process_*), in the format the scraper asks for, gzipped when it may be;
    behind basic auth when ``web`` has users. /healthz and /readyz answer
    without auth and without a scrape (they name nothing traced): the
    process serves; it is ready (``collector.readiness(max_age)``)."""
    from prometheus_client import ProcessCollector
    from prometheus_client.exposition import choose_encoder

    process = ProcessCollector(registry=None)  # the exporter's own CPU and memory

    def app(environ, start_response):
        path = environ.get("PATH_INFO")
        if path == "/healthz":
            return _text(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            problems = collector.readiness(max_age)
            body = "".join(f"{p}\n" for p in problems) or "ready\n"
            return _text(start_response, "503 Service Unavailable" if problems else "200 OK", body)
        if web is not None and not web.authorized(web.current(), environ.get("HTTP_AUTHORIZATION")):
            return _text(start_response, "401 Unauthorized", "Unauthorized\n", [AUTHENTICATE])
        if path == "/favicon.ico":
            return _text(start_response, "200 OK", "")
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
        body = collector.exposition(encoder, content_type, extra=process.collect())
        headers = [("Content-Type", content_type)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)  # level 1: 4x smaller, quick
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers + [("Content-Length", str(len(body)))])
        return [body]

    return app


AUTHENTICATE = ("WWW-Authenticate", 'Basic realm="pyrunq"')


def _text(start_response, status: str, text: str, headers=()) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *headers]
    )
    return [body]


@contextlib.contextmanager
def serving(server: WSGIServer, collector, max_age: float):
    server.set_app(metrics_app(collector, getattr(server, "web", None), max_age))
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        collector.close()  # a scrape still running must not read a closed RunqLat


# ---- the command -------------------------------------------------------------


def run(args, parser) -> int:
    try:  # the exporter alone needs prometheus_client, an extra: pyrunq[exporter]
        from ..prometheus import RunqueueCollector
        from ..selection import Selection
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "prometheus_client":
            raise
        from ..errors import PyrunqError

        raise PyrunqError("the exporter needs prometheus_client: pip install 'pyrunq[exporter]'") from None

    if args.cgroup_label and args.by != "cgroup":
        parser.error("--cgroup-label needs --by cgroup")
    pids = [p for group in args.pid for p in group]
    warn_missing(parser.prog, pids)
    selection = Selection(args.cgroup, args.comm, pids)
    one_malloc_arena()
    web = serving_config(parser.prog, args.web_config) if args.web_config else None
    server = bind(args.listen)
    server.web = web
    try:
        with selection.open(per=PER[args.by], blame=True) as rq:
            if args.user:
                from ..privileges import drop_privileges

                say(parser.prog, drop_privileges(args.user))
            collector = RunqueueCollector(rq, args.max_series, selection, args.cgroup_label, args.blame_top)
            with serving(server, collector, max_age=3 * args.refresh + 5):
                scheme = web.config.scheme if web else "http"
                say(parser.prog, f"serving {scheme}://{url(server.server_address)}/metrics")
                refresh_until_stopped(parser.prog, collector, args.refresh)
    finally:
        server.server_close()
    return 0


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's malloc.h


def one_malloc_arena() -> None:
    """Keep the exporter's RSS where its live data is, over weeks (glibc;
    musl has no mallopt: nothing to do). Set before the HTTP server starts
    its threads:
    - one malloc arena: a scrape is served in a thread of its own, and glibc
      gives threads arenas of their own, up to 8 per CPU, each of which kept
      a few MB of the scrapes it had served: RSS climbed by 2.9 MB in the
      second half of tests/test_day.py's churn. Python runs one thread at a
      time (the GIL): more arenas bought nothing;
    - blocks of 128 KiB and more (an exposition, its parts) mapped and
      unmapped each time: glibc otherwise raises that threshold to the
      largest block freed, and then such blocks left holes in the heap that
      RSS kept (0.9-1.3 MB more over the same half)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(M_ARENA_MAX, 1)
    mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def serving_config(prog: str, path: str):
    """The web configuration, read now: what is wrong with it is a usage error."""
    from ..errors import UsageError
    from ..webconfig import WebServing

    import logging

    # a file that changes and does not load is said like every other line of the exporter
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
    log = logging.getLogger("pyrunq.webconfig")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return WebServing(path)
    except UsageError as e:
        raise UsageError(f"--web-config {e}") from None
    except ModuleNotFoundError as e:
        raise UsageError(f"--web-config needs {e.name}: pip install 'pyrunq[exporter]'") from None


def refresh_until_stopped(prog: str, collector, every: float) -> None:
    """Until SIGINT / SIGTERM: then serving stops and the programs are
    detached on the way out. A refresh that fails is said and keeps the
    exporter unready (/readyz) until one succeeds."""
    from ..errors import PyrunqError

    while not wait(every):
        try:
            collector.refresh()
        except (PyrunqError, OSError) as e:
            say(prog, f"refresh failed: {e}")
            collector.refresh_failed(str(e))


def say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr, flush=True)
