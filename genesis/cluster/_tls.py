"""Certificates for the secure local cluster: a private CA and a broker certificate signed by it.

Kafka reads them as PEM stores (``ssl.keystore.type=PEM``): the broker file holds the
unencrypted PKCS#8 key followed by its certificate chain (a PKCS#1 ``RSA PRIVATE KEY`` would be
refused). The certificate names ``IP:127.0.0.1`` and ``DNS:localhost``, because both Kafka and
librdkafka check the host name against it. Clients trust ``ca.pem``. The CA key is never
written: nothing needs to sign again, and a key that is not on disk cannot leak.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClusterError

CA_FILE = "ca.pem"
BROKER_FILE = "broker.pem"  # key + certificate chain, 0600


@dataclass(frozen=True)
class TLSFiles:
    """Where the PEM files of a secure cluster are."""

    ca: Path
    broker: Path


def _crypto():
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # an optional dependency (extra "secure")
        raise ClusterError(
            "a secure local cluster needs the `cryptography` package: pip install 'genesis-streaming[secure]'"
        ) from exc
    return x509, hashes, serialization, rsa, ExtendedKeyUsageOID, NameOID


def _key():
    _, _, _, rsa, _, _ = _crypto()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_ca(common_name: str = "genesis local Kafka CA"):
    """A self-signed CA: ``(private key, certificate)``."""
    x509, hashes, _, _, _, NameOID = _crypto()
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_cert(ca_key, ca_cert, host: str):
    x509, hashes, _, _, EKU, NameOID = _crypto()
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # the broker is also a TLS client of the other brokers (replication)
        .add_extension(x509.ExtendedKeyUsage([EKU.SERVER_AUTH, EKU.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def cert_pem(cert) -> bytes:
    _, _, serialization, _, _, _ = _crypto()
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by its owner only (0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def create(directory: Path, host: str = "127.0.0.1") -> TLSFiles:
    """Make a CA and a broker certificate for ``host`` in ``directory`` (created 0700)."""
    _, _, serialization, _, _, _ = _crypto()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca_cert = new_ca()
    key, cert = _server_cert(ca_key, ca_cert, host)
    files = TLSFiles(directory / CA_FILE, directory / BROKER_FILE)
    files.ca.write_bytes(cert_pem(ca_cert))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(files.broker, key_pem + cert_pem(cert) + cert_pem(ca_cert))
    return files


def write_ca(path: Path, common_name: str = "an unrelated CA") -> Path:
    """Write the certificate of a fresh CA that signed nothing (for trying an untrusted CA)."""
    _, cert = new_ca(common_name)
    path.write_bytes(cert_pem(cert))
    return path
