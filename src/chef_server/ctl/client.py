"""A small signed HTTP client for chef-server-ctl (mixlib-authentication protocol 1.3)."""

from __future__ import annotations

import base64
import datetime
import hashlib

import orjson
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ..signing import canonical_path


class ApiError(Exception):
    """A non-2xx answer: its status and Chef's error message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def sign_headers(key, user: str, method: str, path: str, body: bytes, api_version: str = "1",
                 now: datetime.datetime | None = None) -> dict[str, str]:
    """The X-Ops-* headers of a request signed with protocol 1.3."""
    ts = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    canonical = "\n".join([f"Method:{method.upper()}", f"Path:{canonical_path(path)}",
                           f"X-Ops-Content-Hash:{content_hash}", "X-Ops-Sign:version=1.3",
                           f"X-Ops-Timestamp:{ts}", f"X-Ops-UserId:{user}",
                           f"X-Ops-Server-API-Version:{api_version}"]).encode()
    sig = base64.b64encode(key.sign(canonical, padding.PKCS1v15(), hashes.SHA256())).decode()
    headers = {"X-Ops-Sign": "algorithm=sha256;version=1.3", "X-Ops-Userid": user, "X-Ops-Timestamp": ts,
               "X-Ops-Content-Hash": content_hash, "X-Ops-Server-API-Version": api_version,
               "Accept": "application/json", "X-Chef-Version": "18.0.0"}
    headers.update({f"X-Ops-Authorization-{i // 60 + 1}": sig[i:i + 60] for i in range(0, len(sig), 60)})
    return headers


class ChefClient:
    """Signed JSON requests to one Chef server as one user."""

    def __init__(self, server_url: str, user: str, key_pem: str, verify: bool | str = False):
        self.server_url = server_url.rstrip("/")
        self.user = user
        self.key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        self.session = requests.Session()
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's `verify`.
        self.verify = verify

    def request(self, method: str, path: str, body: object = None) -> object:
        data = b"" if body is None else orjson.dumps(body)
        headers = sign_headers(self.key, self.user, method, path, data)
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self.session.request(method, self.server_url + path, data=data, headers=headers, timeout=60,
                                        verify=self.verify)
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            error = payload.get("error", payload) if isinstance(payload, dict) else payload
            if isinstance(error, list):
                error = "; ".join(map(str, error))
            raise ApiError(response.status_code, str(error))
        return payload

    def get(self, path: str) -> object:
        return self.request("GET", path)

    def post(self, path: str, body: object) -> object:
        return self.request("POST", path, body)

    def put(self, path: str, body: object) -> object:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> object:
        return self.request("DELETE", path)
