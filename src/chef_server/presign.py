"""Bookshelf URLs: S3 query-string signatures (AWS Signature Version 4), as Chef's bookshelf hands out.

Pure: `presign` builds a URL valid for `ttl` seconds; `verify` checks one. The key is shared by every
frontend through the cluster's PostgreSQL (server_secrets), so a URL from one frontend works on another.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from urllib.parse import quote

ACCESS_KEY = "chef-server"
REGION = "us-east-1"
SERVICE = "s3"
ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))


def _signature(secret: str, method: str, host: str, path: str, params: dict[str, str]) -> str:
    amz_date = params["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/{SERVICE}/aws4_request"
    canonical = "\n".join([method, quote(path, safe="/-_.~"), _canonical_query(params), f"host:{host}\n", "host",
                           "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    for part in (REGION, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def presign(secret: str, method: str, base_url: str, path: str, ttl: int, now: float | None = None) -> str:
    """A URL for `method` on `path` at `base_url` (scheme://host[:port]) valid for `ttl` seconds from `now`."""
    host = base_url.split("://", 1)[1]
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    params = {"X-Amz-Algorithm": ALGORITHM,
              "X-Amz-Credential": f"{ACCESS_KEY}/{amz_date[:8]}/{REGION}/{SERVICE}/aws4_request",
              "X-Amz-Date": amz_date, "X-Amz-Expires": str(ttl), "X-Amz-SignedHeaders": "host"}
    params["X-Amz-Signature"] = _signature(secret, method, host, path, params)
    return f"{base_url}{quote(path, safe='/-_.~')}?{_canonical_query(params)}"


def verify(secret: str, method: str, host: str, path: str, query: dict[str, str], now: float | None = None) -> bool:
    """Whether `query` carries a valid, unexpired signature of `method` on `path` for `host`."""
    try:
        params = {k: query[k] for k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                        "X-Amz-SignedHeaders")}
        signature = query["X-Amz-Signature"]
        signed_at = calendar.timegm(time.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        expires = int(params["X-Amz-Expires"])
    except (KeyError, ValueError):
        return False
    if params["X-Amz-Algorithm"] != ALGORITHM or params["X-Amz-SignedHeaders"] != "host":
        return False
    current = time.time() if now is None else now
    if not (signed_at - 900 <= current <= signed_at + expires):  # 15 minutes of clock skew, as signed requests
        return False
    expected = _signature(secret, method, host, path, params)
    return hmac.compare_digest(expected, signature)
