"""RSA keys of users and clients: generation, parsing, and expiration dates (pure)."""

from __future__ import annotations

import asyncio
import datetime
import functools
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import bad_request

INFINITY = "infinity"
# Expiration dates as erchef accepts them: ISO 8601 UTC ending in Z, or "infinity".
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z|infinity)$")


def generate_key_pair() -> tuple[str, str]:
    """(public PEM, private PEM) of a new 2048-bit RSA key, in the formats Chef hands out."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()).decode()
    return public_pem(private.public_key()), private_pem


async def new_key_pair() -> tuple[str, str]:
    """generate_key_pair off the event loop (RSA generation takes tens of milliseconds of CPU)."""
    return await asyncio.to_thread(generate_key_pair)


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@functools.lru_cache(maxsize=4096)
def load_public_key(pem: str) -> rsa.RSAPublicKey | None:
    """The RSA public key in a PEM public key, PKCS#1 public key or certificate; None if it is not one."""
    data = pem.encode() if isinstance(pem, str) else b""
    try:
        if pem.startswith("-----BEGIN CERTIFICATE"):
            key = x509.load_pem_x509_certificate(data).public_key()
        elif pem.startswith("-----BEGIN RSA PUBLIC KEY") or pem.startswith("-----BEGIN PUBLIC KEY"):
            key = serialization.load_pem_public_key(data)
        else:
            return None
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


def valid_public_key(value: object) -> bool:
    return isinstance(value, str) and load_public_key(value) is not None


def bad_date_message(field: str) -> str:
    return (f"Field {field} is invalid. All dates must be a valid date in ISO8601 form of exactly "
            'YYYY-MM-DDThh:mm:ss, eg 2099-02-28T01:00:00, or the string "infinity". All times are assumed UTC, '
            "so do not include a Z on the end of your date.")


def parse_expiration(value: object, field: str = "expiration_date") -> datetime.datetime | None:
    """A key's expiration: None for "infinity"; raises erchef's 400 for anything but ISO 8601 UTC with Z."""
    if not isinstance(value, str) or not _DATE.match(value):
        raise bad_request(bad_date_message(field))
    if value == INFINITY:
        return None
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        raise bad_request(bad_date_message(field)) from None


def format_expiration(when: datetime.datetime | None) -> str:
    return INFINITY if when is None else when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
