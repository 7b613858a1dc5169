"""The frontend's TLS endpoint: an HAProxy terminating HTTPS (and redirecting HTTP) in front of the API,
with a self-signed certificate for the FQDN unless nginx['ssl_certificate'] names one (as Chef's nginx)."""

from __future__ import annotations

import datetime
import ipaddress
import shlex
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from chef_backend.host import fsutil
from chef_backend.supervision.runit import ServiceSpec

from .server_rb import ServerSettings

HAPROXY = "/usr/sbin/haproxy"

TEMPLATE = """\
global
    user haproxy
    group haproxy
defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend https
    bind {listen}:{ssl_port} ssl crt {pem}
    http-request set-header X-Forwarded-Proto https
    default_backend chef_api
frontend http
    bind {listen}:{non_ssl_port}
    http-request redirect scheme https code 301
backend chef_api
    server api {api}:{api_port} check inter 2s
"""


def _addr(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def render(s: ServerSettings, pem: Path) -> str:
    """haproxy.cfg of the TLS endpoint (pure)."""
    return TEMPLATE.format(listen=_addr(s.tls_listen), ssl_port=s.ssl_port, non_ssl_port=s.non_ssl_port,
                           pem=pem, api=_addr(s.api_listen), api_port=s.api_port)


def self_signed(fqdn: str, address: str | None) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `fqdn` (and `address`, when it is an IP), valid ten years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn[:64])])
    alt: list[x509.GeneralName] = [x509.DNSName(fqdn)]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(address or "")))
    except ValueError:
        pass
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_pem(s: ServerSettings, var: Path) -> Path:
    """The certificate and key HAProxy serves, in one root-only file (generated once when not configured)."""
    if s.ssl_certificate:
        cert, key = Path(s.ssl_certificate).read_bytes(), Path(s.ssl_certificate_key).read_bytes()
    else:
        ca = fsutil.make_dir(var / "nginx" / "ca", mode=0o755)
        cert_file, key_file = ca / f"{s.fqdn}.crt", ca / f"{s.fqdn}.key"
        if not (cert_file.exists() and key_file.exists()):
            cert, key = self_signed(s.fqdn, s.tls_listen)
            fsutil.write_file(key_file, key, mode=0o600)
            fsutil.write_file(cert_file, cert, mode=0o644)
        cert, key = cert_file.read_bytes(), key_file.read_bytes()
    pem = fsutil.make_dir(var / "https", mode=0o750) / "server.pem"
    fsutil.write_file(pem, cert + key, mode=0o600)
    return pem


def service_spec(config: Path, log_dir: Path) -> ServiceSpec:
    """HAProxy starts as root to bind 443 and read the key, then runs as haproxy (global user/group)."""
    run = f"#!/bin/sh\nexec 2>&1\nexec {HAPROXY} -W -db -f {shlex.quote(str(config))}\n"
    return ServiceSpec(name="https", run_script=run, log_dir=log_dir, log_user="haproxy",
                       file_maxbytes=104857600, num_to_keep=10)
