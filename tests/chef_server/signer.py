"""A test signer independent of the server's code: mixlib-authentication 1.0/1.1/1.3 as clients sign."""

from __future__ import annotations

import base64
import datetime
import hashlib
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _path(p: str) -> str:
    p = re.sub(r"/+", "/", p.split("?", 1)[0])
    return p.rstrip("/") if len(p) > 1 else p


def _raw_sign(key, data: bytes) -> bytes:
    """RSA private-encrypt with PKCS#1 type-1 padding and no DigestInfo (what 1.0/1.1 use)."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    em = b"\0\1" + b"\xff" * (k - len(data) - 3) + b"\0" + data
    return pow(int.from_bytes(em, "big"), numbers.d, n).to_bytes(k, "big")


def sign(key, user: str, method: str, path: str, body: bytes = b"", version: str = "1.3", api_version: str = "1",
         ts: str | None = None) -> dict[str, str]:
    ts = ts or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = _path(path)
    if version == "1.3":
        bh = _b64(hashlib.sha256(body).digest())
        canon = "\n".join([f"Method:{method.upper()}", f"Path:{path}", f"X-Ops-Content-Hash:{bh}",
                           "X-Ops-Sign:version=1.3", f"X-Ops-Timestamp:{ts}", f"X-Ops-UserId:{user}",
                           f"X-Ops-Server-API-Version:{api_version}"])
        sig = key.sign(canon.encode(), padding.PKCS1v15(), hashes.SHA256())
        desc = "algorithm=sha256;version=1.3"
    else:
        bh = _b64(hashlib.sha1(body).digest())
        uid = _b64(hashlib.sha1(user.encode()).digest()) if version == "1.1" else user
        canon = "\n".join([f"Method:{method.upper()}", f"Hashed Path:{_b64(hashlib.sha1(path.encode()).digest())}",
                           f"X-Ops-Content-Hash:{bh}", f"X-Ops-Timestamp:{ts}", f"X-Ops-UserId:{uid}"])
        sig = _raw_sign(key, canon.encode())
        desc = f"algorithm=sha1;version={version};"
    headers = {"X-Ops-Sign": desc, "X-Ops-Userid": user, "X-Ops-Timestamp": ts, "X-Ops-Content-Hash": bh,
               "X-Ops-Server-API-Version": api_version, "X-Chef-Version": "18.0.0", "Accept": "application/json"}
    s = _b64(sig)
    headers.update({f"X-Ops-Authorization-{i // 60 + 1}": s[i:i + 60] for i in range(0, len(s), 60)})
    return headers
