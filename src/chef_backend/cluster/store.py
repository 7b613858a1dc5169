"""The cluster's shared state in etcd, through etcd's JSON gateway (etcd3gw).

Key layout under `/chef-backend/`:

    cluster                 {"cluster_id", "fingerprint", "created_at"}   written once by create-cluster
    nodes/<guid>            {"guid", "name", "address", ...}              one per member, permanent
    leader                  {"guid", "address", "name", "since"}          bound to the leader's lease
    status/<guid>           what the node's leader manager last posted     bound to that node's lease
    sync                    {"members": [...], "quorum": k}               the leader's synchronous set
    control/failover        "on" | "off"                                   cluster-wide automatic failover
    control/blocked_leaders [guid, ...]                                    nodes with failover turned off
    control/switchover      {"source", "target", "at"}                     a requested promote/demote
    control/force_leader    guid                                           force-leader on that node
    history                 [{"at", "guid", "reason"}, ...]               leadership changes, newest last

Every value is JSON. Reads are linearizable (etcd's default), so a decision never rests on a
stale view of the leader key.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import etcd3gw
import requests
from etcd3gw import exceptions as etcd_exc
from etcd3gw.utils import _increment_last_byte

PREFIX = "/chef-backend/"
CLUSTER = PREFIX + "cluster"
LEADER = PREFIX + "leader"
NODES = PREFIX + "nodes/"
STATUS = PREFIX + "status/"
SYNC = PREFIX + "sync"
CONTROL_FAILOVER = PREFIX + "control/failover"
CONTROL_BLOCKED = PREFIX + "control/blocked_leaders"
CONTROL_SWITCHOVER = PREFIX + "control/switchover"
# Why the last switchover request was refused, for the promote/demote command waiting on it.
CONTROL_SWITCHOVER_REFUSED = PREFIX + "control/switchover-refused"
CONTROL_FORCE = PREFIX + "control/force_leader"
HISTORY = PREFIX + "history"

StoreError = etcd_exc.Etcd3Exception


def describe(exc: Exception) -> str:
    """etcd's own words for a failed request (the gateway's JSON "message"), else the exception."""
    detail = getattr(exc, "detail_text", None)
    if detail:
        try:
            doc = json.loads(detail)
            return str(doc.get("message") or doc.get("error") or detail).strip()
        except ValueError:
            return str(detail).strip()[:200]
    return str(exc) or exc.__class__.__name__


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _unb64(data: str) -> bytes:
    return base64.b64decode(data)


@dataclass(frozen=True)
class ClientTls:
    """The files a client of etcd over TLS uses: the cluster CA, its certificate and key."""

    ca: str
    cert: str
    key: str

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass(frozen=True)
class Entry:
    """A key's JSON value and its etcd metadata."""

    key: str
    value: Any
    mod_revision: int
    create_revision: int
    lease: int


@dataclass(frozen=True)
class Snapshot:
    """Everything under the prefix, read at one revision."""

    revision: int
    entries: dict[str, Entry]

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def value(self, key: str, default: Any = None) -> Any:
        entry = self.entries.get(key)
        return default if entry is None else entry.value

    def under(self, prefix: str) -> dict[str, Entry]:
        """Entries below `prefix`, keyed by the rest of the key (e.g. the GUID)."""
        return {k[len(prefix) :]: e for k, e in self.entries.items() if k.startswith(prefix)}


class Store:
    """A client for the cluster state that tries each etcd endpoint in turn."""

    def __init__(self, endpoints: list[str], timeout: float = 3.0, tls: ClientTls | None = None) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoints")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.tls = tls
        self._clients = [self._client(url) for url in self.endpoints]

    def _client(self, url: str) -> etcd3gw.Etcd3Client:
        scheme, rest = url.split("://", 1)
        host, port = rest.rsplit(":", 1)
        session = requests.Session()
        # Cluster-internal traffic: no proxy from the environment, and no REQUESTS_CA_BUNDLE,
        # which would otherwise override the cluster CA below.
        session.trust_env = False
        if self.tls:
            session.verify = self.tls.ca
            session.cert = (self.tls.cert, self.tls.key)
        return etcd3gw.Etcd3Client(
            host=host.strip("[]"), port=int(port), protocol=scheme, timeout=self.timeout, api_path="/v3/",
            session=session,
        )

    def with_endpoints(self, endpoints: list[str]) -> Store:
        """Another store with the same timeout and TLS files."""
        return Store(endpoints, timeout=self.timeout, tls=self.tls)

    def member_health(self, members: list[dict[str, Any]], timeout: float = 1.5) -> dict[str, bool]:
        """Each etcd member's own /health answer, asked in parallel."""
        context = self.tls.ssl_context() if self.tls else None

        def check(member: dict[str, Any]) -> tuple[str, bool]:
            name = member.get("name") or member.get("ID", "?")
            urls = member.get("clientURLs") or []
            if not urls:
                return name, False
            try:
                with urllib.request.urlopen(urls[0] + "/health", timeout=timeout, context=context) as resp:
                    return name, json.loads(resp.read()).get("health") == "true"
            except (OSError, ValueError):
                return name, False

        if not members:
            return {}
        with ThreadPoolExecutor(max_workers=len(members)) as pool:
            return dict(pool.map(check, members))

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last: Exception | None = None
        for i, client in enumerate(self._clients):
            try:
                result = client.post(client.get_url(path), json=body)
            except (etcd_exc.ConnectionFailedError, etcd_exc.ConnectionTimeoutError) as exc:
                last = exc
                continue
            if i:  # remember the endpoint that answered
                self._clients.insert(0, self._clients.pop(i))
                self.endpoints.insert(0, self.endpoints.pop(i))
            return result
        assert last is not None
        raise last

    # -- key/value -----------------------------------------------------------------------------
    @staticmethod
    def _entry(kv: dict[str, Any]) -> Entry:
        raw = _unb64(kv.get("value", ""))
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = raw.decode(errors="replace")
        return Entry(
            key=_unb64(kv["key"]).decode(),
            value=value,
            mod_revision=int(kv.get("mod_revision", 0)),
            create_revision=int(kv.get("create_revision", 0)),
            lease=int(kv.get("lease", 0)),
        )

    def snapshot(self) -> Snapshot:
        """Read every key under the prefix in one linearizable request."""
        result = self._call(
            "/kv/range", {"key": _b64(PREFIX), "range_end": _b64(_increment_last_byte(PREFIX.encode()))}
        )
        entries = {e.key: e for e in (self._entry(kv) for kv in result.get("kvs", []))}
        return Snapshot(int(result["header"]["revision"]), entries)

    def get(self, key: str) -> Entry | None:
        result = self._call("/kv/range", {"key": _b64(key)})
        kvs = result.get("kvs", [])
        return self._entry(kvs[0]) if kvs else None

    def put(self, key: str, value: Any, lease: int | None = None) -> None:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(json.dumps(value))}
        if lease:
            body["lease"] = str(lease)
        self._call("/kv/put", body)

    def delete(self, key: str) -> None:
        self._call("/kv/deleterange", {"key": _b64(key)})

    def txn(
        self, compare: list[dict[str, Any]], success: list[dict[str, Any]], failure: list[dict[str, Any]] | None = None
    ) -> bool:
        result = self._call("/kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        return bool(result.get("succeeded", False))

    @staticmethod
    def op_put(key: str, value: Any, lease: int | None = None) -> dict[str, Any]:
        req: dict[str, Any] = {"key": _b64(key), "value": _b64(json.dumps(value))}
        if lease:
            req["lease"] = str(lease)
        return {"request_put": req}

    @staticmethod
    def op_delete(key: str) -> dict[str, Any]:
        return {"request_delete_range": {"key": _b64(key)}}

    @staticmethod
    def cmp_absent(key: str) -> dict[str, Any]:
        return {"key": _b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0"}

    @staticmethod
    def cmp_lease(key: str, lease: int) -> dict[str, Any]:
        return {"key": _b64(key), "result": "EQUAL", "target": "LEASE", "lease": str(lease)}

    @staticmethod
    def cmp_mod(key: str, mod_revision: int) -> dict[str, Any]:
        return {"key": _b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": str(mod_revision)}

    @classmethod
    def cmp_revision(cls, key: str, mod_revision: int) -> dict[str, Any]:
        """`key` is unchanged since it was read at `mod_revision` (0: it was absent, and still is)."""
        return cls.cmp_mod(key, mod_revision) if mod_revision else cls.cmp_absent(key)

    def create(self, key: str, value: Any, lease: int | None = None) -> bool:
        """Create `key` only if it does not exist (the election's atomic step)."""
        return self.txn([self.cmp_absent(key)], [self.op_put(key, value, lease)])

    # -- leases --------------------------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        result = self._call("/lease/grant", {"TTL": str(ttl), "ID": "0"})
        return int(result["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew a lease; return its TTL, 0 when it has already expired."""
        result = self._call("/lease/keepalive", {"ID": str(lease)})
        return int(result.get("result", {}).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        try:
            self._call("/lease/revoke", {"ID": str(lease)})
        except etcd_exc.Etcd3Exception as exc:
            if "not found" not in str(exc):
                raise

    # -- membership ----------------------------------------------------------------------------
    def members(self) -> list[dict[str, Any]]:
        return list(self._call("/cluster/member/list", {}).get("members", []))

    def member_add(self, peer_url: str, timeout: float = 30.0) -> dict[str, Any]:
        """Add a voting member. etcd refuses while the newest member has been connected for less
        than five seconds ("unhealthy cluster"), so that refusal is retried until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self._call("/cluster/member/add", {"peerURLs": [peer_url]})
                return dict(result["member"])
            except etcd_exc.Etcd3Exception as exc:
                if "unhealthy" not in describe(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)

    def member_remove(self, member_id: str) -> None:
        self._call("/cluster/member/remove", {"ID": member_id})

    def status(self) -> dict[str, Any]:
        """The first endpoint's member status (its ID, the raft leader's ID, ...)."""
        return self._call("/maintenance/status", {})

    def transfer_leadership(self, member_id: str) -> None:
        """Ask the raft leader (the first endpoint must be it) to hand leadership to a member."""
        self._call("/maintenance/transfer-leadership", {"targetID": member_id})

    def health(self) -> bool:
        """True when the first endpoint's member is part of a cluster with a raft leader."""
        result = self._call("/maintenance/status", {})
        return int(result.get("leader", 0)) != 0
