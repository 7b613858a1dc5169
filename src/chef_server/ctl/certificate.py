"""The TLS endpoint's certificate: the operator's (nginx['ssl_certificate'], nginx['ssl_certificate_key']) or a
self-signed one generated on first reconfigure and kept afterwards, as Chef's frontends do."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from chef_backend.host import fsutil

VALID_DAYS = 3650


def self_signed(fqdn: str, *addresses: str | None) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `fqdn`, with each of `addresses` that is an IP address as a further name
    (a frontend's listen address; for a certificate shared by frontends behind a load balancer, every address)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn[:64])])
    alt: list[x509.GeneralName] = [x509.DNSName(fqdn)]
    for address in addresses:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(address or "")))
        except ValueError:
            pass
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure(certificate: Path, key: Path, fqdn: str, *addresses: str | None) -> bool:
    """Generate the self-signed pair unless both files exist; True if it did."""
    if certificate.exists() and key.exists():
        return False
    cert_pem, key_pem = self_signed(fqdn, *addresses)
    fsutil.make_dir(certificate.parent, mode=0o755)
    fsutil.write_file(key, key_pem, mode=0o600)
    fsutil.write_file(certificate, cert_pem, mode=0o644)
    return True
