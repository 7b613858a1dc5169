"""The node's TLS certificate (PostgreSQL's `hostssl` replication uses it).

Generated from the `ssl.*` settings unless the operator points `ssl.certificate` and
`ssl.certificate_key` at their own files.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from chef_backend.config.settings import ConfigError, Settings
from chef_backend.host import fsutil


@dataclass(frozen=True)
class CertPaths:
    certificate: Path
    key: Path


def ensure_certificate(settings: Settings, owner: str) -> CertPaths:
    """Return the certificate to use, generating a self-signed one on first use."""
    given_cert, given_key = settings.path("ssl.certificate"), settings.path("ssl.certificate_key")
    if given_cert or given_key:
        if not (given_cert and given_key):
            raise ConfigError("set both ssl.certificate and ssl.certificate_key, or neither")
        for p in (given_cert, given_key):
            if not p.is_file():
                raise ConfigError(f"ssl file {p} does not exist")
        return CertPaths(given_cert, given_key)

    data_dir = settings.path("ssl.data_dir")
    assert data_dir is not None
    name = settings.node_name
    paths = CertPaths(data_dir / f"{name}.crt", data_dir / f"{name}.key")
    if paths.certificate.exists() and paths.key.exists():
        return paths

    key = new_key(settings)
    subject = subject_name(settings, name)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name)]
    if settings["publish_address"]:
        alt_names.append(x509.IPAddress(ipaddress.ip_address(settings["publish_address"])))
    cert = (
        certificate_builder(settings, subject, key)
        .issuer_name(subject)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(key, hashes.SHA256())
    )
    fsutil.make_dir(data_dir, mode=0o755)
    fsutil.write_file(paths.key, key_pem(key), mode=0o600, owner=owner, group=owner)
    fsutil.write_file(paths.certificate, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return paths


def new_key(settings: Settings) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=settings["ssl.key_length"])


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def subject_name(settings: Settings, common_name: str) -> x509.Name:
    """A certificate subject from the ssl.* settings."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, settings["ssl.country_name"]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings["ssl.company_name"]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, settings["ssl.organizational_unit_name"]),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def certificate_builder(settings: Settings, subject: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    """A certificate for `key`, valid for ssl.duration days (issuer and extensions still to add)."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=settings["ssl.duration"]))
    )
