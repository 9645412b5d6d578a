"""Certificates made at test time (never committed): a CA, and server and
client certificates it signs, written as PEM files; with bcrypt hashes for
web configuration files."""

from __future__ import annotations

import datetime
import ipaddress
import os

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def hashed(password: str) -> str:
    """bcrypt at its lowest cost: the same check, 4 ms rather than 0.1 s."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


class CA:
    """A certificate authority whose files are written in ``directory``."""

    def __init__(self, directory: str, name: str = "pyrunq test CA"):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            self._builder(self.name, self.key, now - DAY, now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.file = self._write(
            f"{name.replace(' ', '-')}.crt", self.cert.public_bytes(serialization.Encoding.PEM)
        )

    def _builder(self, subject, key, before, after) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(before)
            .not_valid_after(after)
        )

    def issue(self, name: str, server: bool = True, expired: bool = False) -> tuple[str, str, int]:
        """A certificate for 127.0.0.1 (``server``) or a client, and its key:
        (cert file, key file, serial number). ``expired``: ended yesterday."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        before, after = (now - 10 * DAY, now - DAY) if expired else (now - DAY, now + 30 * DAY)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key, before, after)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return (
            self._write(f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(f"{name}.key", key_pem),
            cert.serial_number,
        )

    def _write(self, name: str, data: bytes) -> str:
        """Written beside and renamed over, as a Kubernetes Secret changes."""
        path = os.path.join(self.directory, name)
        with open(path + ".new", "wb") as f:
            f.write(data)
        os.replace(path + ".new", path)
        return path
