"""Verification of mixlib-authentication signed requests (protocols 1.0, 1.1 and 1.3).

Pure functions: the driver (authn.py) reads the headers, finds the requestor's keys and calls
`check_headers`, `check_clock` and `verify` here. Messages and codes are erchef's.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import ChefError, bad_request, error_body, unauthorized

CLOCK_SKEW = datetime.timedelta(minutes=15)
PROTOCOLS = ("1.0", "1.1", "1.3")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_AUTH_HEADER = re.compile(r"^x-ops-authorization-(\d+)$")


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers, as read from the request."""

    user_id: str
    timestamp: str
    content_hash: str
    protocol: str
    algorithm: str
    signature: bytes | None  # None: the header lines do not decode to a signature
    server_api_version: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def parse_sign_description(value: str) -> tuple[str, str]:
    """(protocol, algorithm) of `X-Ops-Sign` such as `algorithm=sha1;version=1.1;` (mixlib adds a trailing ;)."""
    fields = {}
    for part in value.split(";"):
        if "=" in part:
            key, _, val = part.partition("=")
            fields[key.strip()] = val.strip()
    protocol = fields.get("version", "")
    algorithm = fields.get("algorithm", "sha256" if protocol == "1.3" else "sha1")
    if protocol not in PROTOCOLS or (protocol == "1.3" and algorithm != "sha256") or \
            (protocol != "1.3" and algorithm != "sha1"):
        raise bad_request("Unsupported authentication protocol version")
    return protocol, algorithm


def check_headers(headers: Mapping[str, str]) -> SignedRequest:
    """Read the signing headers (lower-case names) or raise erchef's 400/401."""
    missing = [name for name in ("X-Ops-UserId", "X-Ops-Timestamp", "X-Ops-Sign", "X-Ops-Content-Hash")
               if not headers.get(name.lower())]
    if missing:
        listed = ", ".join(f"'{name}'" for name in missing)
        raise bad_request(f"missing required authentication header(s) {listed}")
    protocol, algorithm = parse_sign_description(headers["x-ops-sign"])
    lines = {}
    for name, value in headers.items():
        match = _AUTH_HEADER.match(name)
        if match:
            lines[int(match.group(1))] = value
    signature = None
    if lines and sorted(lines) == list(range(1, len(lines) + 1)):
        try:
            signature = base64.b64decode("".join(lines[i] for i in sorted(lines)), validate=False)
        except (binascii.Error, ValueError):
            signature = None
    return SignedRequest(user_id=headers["x-ops-userid"], timestamp=headers["x-ops-timestamp"],
                         content_hash=headers["x-ops-content-hash"], protocol=protocol, algorithm=algorithm,
                         signature=signature or None,
                         server_api_version=headers.get("x-ops-server-api-version") or "0")


def check_clock(signed: SignedRequest, now: datetime.datetime) -> None:
    """Refuse a timestamp more than 15 minutes away from `now` (erchef's auth_skew), or unparsable."""
    if _TIMESTAMP.match(signed.timestamp):
        try:
            when = datetime.datetime.strptime(signed.timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.UTC)
            if abs(now - when) <= CLOCK_SKEW:
                return
        except ValueError:
            pass
    raise unauthorized(f"Failed to authenticate as {signed.user_id}. Synchronize the clock on your host.")


def canonical_path(path: str) -> str:
    """The path as signed: no query, no repeated or trailing slashes."""
    path = re.sub(r"/+", "/", path.split("?", 1)[0])
    return path.rstrip("/") if len(path) > 1 else path


def canonical_request(signed: SignedRequest, method: str, path: str) -> bytes:
    """The string the client signed, for this request's method and path."""
    path = canonical_path(path)
    if signed.protocol == "1.3":
        return "\n".join([
            f"Method:{method.upper()}", f"Path:{path}", f"X-Ops-Content-Hash:{signed.content_hash}",
            "X-Ops-Sign:version=1.3", f"X-Ops-Timestamp:{signed.timestamp}", f"X-Ops-UserId:{signed.user_id}",
            f"X-Ops-Server-API-Version:{signed.server_api_version}"]).encode()
    user_id = signed.user_id
    if signed.protocol == "1.1":
        user_id = _b64(hashlib.sha1(user_id.encode()).digest())
    return "\n".join([
        f"Method:{method.upper()}", f"Hashed Path:{_b64(hashlib.sha1(path.encode()).digest())}",
        f"X-Ops-Content-Hash:{signed.content_hash}", f"X-Ops-Timestamp:{signed.timestamp}",
        f"X-Ops-UserId:{user_id}"]).encode()


def content_hash(signed: SignedRequest, body: bytes) -> str:
    digest = hashlib.sha256(body) if signed.protocol == "1.3" else hashlib.sha1(body)
    return _b64(digest.digest())


def signature_matches(key: rsa.RSAPublicKey, signed: SignedRequest, canonical: bytes) -> bool:
    """Does `key` verify the signature over `canonical`? (1.0/1.1: RSA private-encrypt of the raw string.)"""
    if signed.signature is None:
        return False
    try:
        if signed.protocol == "1.3":
            key.verify(signed.signature, canonical, padding.PKCS1v15(), hashes.SHA256())
            return True
        return key.recover_data_from_signature(signed.signature, padding.PKCS1v15(), None) == canonical
    except (InvalidSignature, ValueError):
        return False


def matching_key(signed: SignedRequest, method: str, path: str, body: bytes,
                 keys: Sequence[rsa.RSAPublicKey]) -> int | None:
    """The index of the key in `keys` that signed this request (the body matching its hash), or None."""
    if content_hash(signed, body) != signed.content_hash:
        return None
    canonical = canonical_request(signed, method, path)
    return next((i for i, key in enumerate(keys) if signature_matches(key, signed, canonical)), None)


def verify(signed: SignedRequest, method: str, path: str, body: bytes, keys: Sequence[rsa.RSAPublicKey]) -> bool:
    """True when the body matches its hash and one of `keys` signed this request."""
    return matching_key(signed, method, path, body, keys) is not None


def bad_signature(user_id: str) -> ChefError:
    return ChefError(401, error_body(f"Invalid signature for user or client '{user_id}'"))


def unknown_requestor(user_id: str) -> ChefError:
    return ChefError(401, error_body(f"Failed to authenticate as '{user_id}'. "
                                     "Ensure that your node_name and client key are correct."))
