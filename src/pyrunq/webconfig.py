"""The exporter's web configuration: TLS and basic auth for /metrics, in the
file format of the Prometheus exporter-toolkit (node_exporter's
``--web.config.file``), its documented subset:

    tls_server_config:
      cert_file: server.crt        # relative paths: from the file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional
      client_ca_file: ca.crt                         # optional
      min_version: TLS12                             # optional (the default)
    basic_auth_users:
      prometheus: $2b$12$...                         # bcrypt hashes

An unknown key, a missing file, a certificate that has expired or does not
match its key, a hash that is not bcrypt: ``WebConfigError``, one line.

``WebServing`` watches the file and the files it names: when one changes
(a rotated certificate, a Kubernetes Secret updated in place), the next
connection loads them all again; if they do not load, the previous
configuration stays and the reason is logged once.

PyYAML, bcrypt and cryptography (certificate dates) are imported here only:
a plain HTTP exporter needs none of them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import logging
import os
import ssl
import threading
from dataclasses import dataclass, field

from . import yamlfile
from .errors import UsageError

log = logging.getLogger(__name__)

TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version")
TOP_KEYS = ("tls_server_config", "basic_auth_users")
VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Python's ssl verifies every client certificate it asks for: the toolkit's
# RequestClientCert and RequireAnyClientCert (ask, never verify) have no
# equivalent, and are refused rather than served with another meaning.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
CACHED_LOGINS = 64  # bcrypt costs ~0.1 s: a scraper's good password is checked once


class WebConfigError(UsageError):
    """A web configuration that cannot be served: the message names the file
    and what is wrong with it."""


@dataclass(frozen=True)
class WebConfig:
    """What one read of the file says: a server TLS context (None: plain
    HTTP) and the users of basic auth (none: no auth)."""

    path: str
    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # every file it was made from, the config first

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def load(path: str) -> WebConfig:
    """Read and check the web configuration at ``path``: every file it names
    is loaded now, so what is wrong is said before anything is served."""
    doc = yamlfile.read(path, WebConfigError)
    doc = _mapping(path, "the file", {} if doc is None else doc)
    _known(path, "", doc, TOP_KEYS)
    base = os.path.dirname(os.path.abspath(path))
    users = _users(path, _mapping(path, "basic_auth_users", doc.get("basic_auth_users") or {}))
    tls_doc = _mapping(path, "tls_server_config", doc.get("tls_server_config") or {})
    _known(path, "tls_server_config.", tls_doc, TLS_KEYS)
    files = {k: os.path.join(base, str(tls_doc[k])) for k in TLS_KEYS if k.endswith("_file") and k in tls_doc}
    tls = _context(path, tls_doc, files) if tls_doc else None
    return WebConfig(path, tls, users, (path, *files.values()))


def _mapping(path: str, what: str, value) -> dict:
    if not isinstance(value, dict):
        raise WebConfigError(f"{path}: {what} must be a mapping, not {type(value).__name__}")
    return value


def _known(path: str, prefix: str, doc: dict, keys) -> None:
    for key in doc:
        if key not in keys:
            raise WebConfigError(
                f"{path}: unknown key {prefix}{key} (pyrunq reads {', '.join(prefix + k for k in keys)})"
            )


def _users(path: str, doc: dict) -> dict[str, bytes]:
    import bcrypt

    users = {}
    for user, hashed in doc.items():
        encoded = str(hashed).encode()
        try:  # bcrypt says whether a hash is one by checking against it
            bcrypt.checkpw(b"", encoded)
        except ValueError:
            raise WebConfigError(f"{path}: basic_auth_users.{user}: not a bcrypt hash") from None
        users[str(user)] = encoded
    return users


def _context(path: str, doc: dict, files: dict[str, str]) -> ssl.SSLContext:
    if "cert_file" not in files or "key_file" not in files:
        raise WebConfigError(f"{path}: tls_server_config needs both cert_file and key_file")
    auth = doc.get("client_auth_type") or ("RequireAndVerifyClientCert" if "client_ca_file" in files else "")
    auth = auth or "NoClientCert"
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"{path}: tls_server_config.client_auth_type {auth!r} is not supported "
            f"(pyrunq serves {', '.join(CLIENT_AUTH)})"
        )
    if CLIENT_AUTH[auth] != ssl.CERT_NONE and "client_ca_file" not in files:
        raise WebConfigError(f"{path}: tls_server_config.client_auth_type {auth} needs client_ca_file")
    version = doc.get("min_version", "TLS12")
    if version not in VERSIONS:
        raise WebConfigError(
            f"{path}: tls_server_config.min_version {version!r} is not one of {', '.join(VERSIONS)}"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = VERSIONS[version]
    _check_dates(path, files["cert_file"])
    try:
        context.load_cert_chain(files["cert_file"], files["key_file"])
    except ssl.SSLError as e:  # an OSError too: first
        raise WebConfigError(
            f"{path}: {files['cert_file']}, {files['key_file']}: not a certificate and its key"
            + (f" ({e.reason})" if e.reason else "")
        ) from None
    except OSError as e:
        raise WebConfigError(f"{path}: {e.filename or files['key_file']}: {e.strerror}") from None
    context.verify_mode = CLIENT_AUTH[auth]
    if "client_ca_file" in files:
        try:
            context.load_verify_locations(cafile=files["client_ca_file"])
        except (OSError, ssl.SSLError) as e:
            reason = getattr(e, "reason", None) or e.strerror
            raise WebConfigError(f"{path}: {files['client_ca_file']}: {reason}") from None
    return context


def _check_dates(path: str, cert_file: str) -> None:
    """A certificate outside its validity would be served and refused by
    every client: say so now (the ssl module does not look at dates)."""
    from cryptography import x509

    try:
        with open(cert_file, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except OSError as e:
        raise WebConfigError(f"{path}: {cert_file}: {e.strerror}") from None
    except ValueError:
        raise WebConfigError(f"{path}: {cert_file}: not a PEM certificate") from None
    now = datetime.datetime.now(datetime.timezone.utc)
    after, before = _utc(cert, "not_valid_after"), _utc(cert, "not_valid_before")
    if now > after:
        raise WebConfigError(f"{path}: {cert_file}: the certificate expired on {after:%Y-%m-%d %H:%M} UTC")
    if now < before:
        raise WebConfigError(f"{path}: {cert_file}: the certificate is valid only from {before:%Y-%m-%d} UTC")


def _utc(cert, name: str) -> datetime.datetime:
    # *_utc since cryptography 42; Debian 12's (38) has only the naive UTC ones
    aware = getattr(cert, name + "_utc", None)
    return aware if aware is not None else getattr(cert, name).replace(tzinfo=datetime.timezone.utc)


def _signature(files) -> tuple:
    """What changes when a file is rewritten or replaced (a Secret's symlink swap)."""
    out: list[tuple | None] = []
    for name in files:
        try:
            st = os.stat(name)
            out.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class WebServing:
    """The configuration in force, loaded again when its files change.
    ``current()`` is what a new connection uses; ``authorized()`` checks an
    Authorization header against it."""

    def __init__(self, path: str):
        self._lock = threading.Lock()
        self.config = load(path)
        self._seen = _signature(self.config.files)
        self._logins: dict[bytes, str] = {}  # digest of a good header -> its user

    def current(self) -> WebConfig:
        with self._lock:
            seen = _signature(self.config.files)
            if seen != self._seen:
                self._seen = seen
                self._reload()
            return self.config

    def _reload(self) -> None:
        try:
            config = load(self.config.path)
        except WebConfigError as e:
            log.warning("kept the previous web configuration: %s", e)
            return
        if (config.tls is None) != (self.config.tls is None):
            log.warning("kept the previous web configuration: TLS cannot be turned on or off while serving")
            return
        self.config, self._logins = config, {}
        self._seen = _signature(config.files)
        log.info("web configuration loaded again from %s", config.path)

    def authorized(self, config: WebConfig, header: str | None) -> bool:
        """Whether an Authorization header names a user with its password
        (always, without users). An unknown user costs a bcrypt check too."""
        import bcrypt

        if not config.users:
            return True
        user, password = _basic(header)
        if user is None:  # no credentials at all: nothing to time, no bcrypt to spend
            return False
        digest = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        with self._lock:
            if self._logins.get(digest) == user and user in config.users:
                return True
        hashed = config.users.get(user)
        # a user who does not exist takes as long to refuse as a wrong password
        ok = bcrypt.checkpw((password or "").encode(), hashed or _DUMMY_HASH) and hashed is not None
        if ok:
            with self._lock:
                if len(self._logins) >= CACHED_LOGINS:
                    self._logins.clear()
                self._logins[digest] = user
        return ok


# bcrypt of a random password, cost 10 (the toolkit's default cost)
_DUMMY_HASH = b"$2b$10$mHZ1muecvPJx5JcNgl2s6.VR5.gUTik2ndnc53j282hQeWxOxzl4W"


def _basic(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return (user, password) if sep else (None, None)
