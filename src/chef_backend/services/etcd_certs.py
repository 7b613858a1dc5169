"""The etcd CA and this node's etcd certificates (`etcd.tls`; the files are listed in etcd_tls)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from chef_backend.config.settings import Settings
from chef_backend.host import addresses as hostaddr
from chef_backend.host import fsutil
from chef_backend.node.certificate import certificate_builder, key_pem, new_key, subject_name
from chef_backend.secrets import Secrets, SecretsError
from chef_backend.services import etcd
from chef_backend.services.etcd_tls import directory, enabled, server_files

RENEW_BEFORE = datetime.timedelta(days=30)


def ensure_ca(settings: Settings, secrets: Secrets) -> Secrets:
    """The secrets with a new etcd CA when etcd.tls asks for one and they have none."""
    if not enabled(settings) or secrets.etcd_ca_certificate:
        return secrets
    key = new_key(settings)
    subject = subject_name(settings, "chef-backend etcd CA")
    cert = (
        certificate_builder(settings, subject, key)
        .issuer_name(subject)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return secrets.with_etcd_ca(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key).decode())


def ensure_node_certificates(settings: Settings, secrets: Secrets) -> None:
    """Issue (or renew) this node's etcd server and client certificates from the cluster CA (the
    server's only once the node has a publish address). Callers have checked that the secrets
    hold the CA (etcd_tls.check_consistent)."""
    if not enabled(settings):
        return
    assert secrets.etcd_ca_certificate and secrets.etcd_ca_key
    try:
        ca_cert = x509.load_pem_x509_certificate(secrets.etcd_ca_certificate.encode())
        ca_key = serialization.load_pem_private_key(secrets.etcd_ca_key.encode(), password=None)
        if not isinstance(ca_key, CertificateIssuerPrivateKeyTypes):
            raise TypeError
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SecretsError("the secrets file's etcd CA (etcd.ca_certificate, etcd.ca_key) cannot be read; copy "
                           "chef-backend-secrets.json again from a cluster member") from None
    d = directory(settings)
    fsutil.make_dir(d, mode=0o755)
    fsutil.write_file(d / "ca.crt", secrets.etcd_ca_certificate, mode=0o644)
    address = settings["publish_address"]
    if address:  # (a joining node asks its address after it first reads the cluster)
        # etcd's JSON gateway dials etcd's own gRPC port with the server certificate, so it
        # needs client authentication too.
        server_uses = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        cert_path, key_path = server_files(settings)
        _ensure(settings, ca_cert, ca_key, cert_path, key_path, etcd.USER, f"etcd {settings.node_name}", address,
                server_uses)
    _ensure(settings, ca_cert, ca_key, d / "client.crt", d / "client.key", settings["leaderl.username"],
            f"chef-backend client {settings.node_name}", None, [ExtendedKeyUsageOID.CLIENT_AUTH])


def _ensure(settings: Settings, ca_cert: x509.Certificate,
            ca_key: CertificateIssuerPrivateKeyTypes, cert_path: Path, key_path: Path, owner: str,
            common_name: str, address: str | None, uses: list[x509.ObjectIdentifier]) -> None:
    if key_path.exists() and _still_good(cert_path, ca_cert, address):
        return
    key = new_key(settings)
    builder = (
        certificate_builder(settings, subject_name(settings, common_name), key)
        .issuer_name(ca_cert.subject)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(uses), critical=False)
    )
    if address:
        # etcd checks a peer's certificate against the address its connection comes from, which
        # on a multi-homed host (or over loopback) need not be the publish address: name them all.
        ips = dict.fromkeys([ipaddress.ip_address(address), *map(ipaddress.ip_address, hostaddr.addresses())])
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip) for ip in ips]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    fsutil.write_file(key_path, key_pem(key), mode=0o600, owner=owner, group=owner)
    fsutil.write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _still_good(cert_path: Path, ca_cert: x509.Certificate, address: str | None) -> bool:
    """Issued by this CA, for this address, and not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE < datetime.datetime.now(datetime.UTC):
        return False
    if address is None:
        return True
    try:
        ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.IPAddress)
    except x509.ExtensionNotFound:
        return False
    return ipaddress.ip_address(address) in ips
