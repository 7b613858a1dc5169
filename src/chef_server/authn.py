"""Who is asking: signed-request authentication of users and clients, with a cache of their keys.

Keys are cached per worker for a short time and forgotten at once when any frontend changes a user,
client, key or membership: the database NOTIFYs `chef_auth` and every worker LISTENs. While the
listener is not connected the cache is not used, so a stale key can never authenticate.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from . import keys as keylib
from . import signing
from .errors import ChefError, error_body
from .storage import principals
from .storage.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requestor:
    """The authenticated user or client of a request."""

    name: str
    type: str  # "user" | "client"
    id: str
    authz_id: str
    superuser: bool = False
    validator: bool = False
    member: bool = False     # a user associated with the request's org (clients always are)
    groups: frozenset[str] = frozenset()  # the request's org's groups it is in, directly or nested
    key_name: str | None = None  # the key that signed the request

    @property
    def org_admin(self) -> bool:
        return "admins" in self.groups


class KeyCache:
    """Principal lookups per (org, name), valid while the invalidation listener is connected."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 20000):
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: dict[tuple[str | None, str], tuple[float, dict]] = {}
        self.generation = 0
        self.listening = False

    def get(self, key: tuple[str | None, str]) -> dict | None:
        if not self.listening:
            return None
        hit = self.entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: tuple[str | None, str], value: dict, generation: int) -> None:
        """Store a lookup made while `generation` was current, unless something changed since."""
        if not self.listening or generation != self.generation:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[key] = (time.monotonic() + self.ttl, value)

    def invalidate(self) -> None:
        self.generation += 1
        self.entries.clear()

    async def listen(self, conninfo: str, on_disconnect=None, on_heartbeat=None, heartbeat: float = 60.0) -> None:
        """Run forever: LISTEN chef_auth and forget everything on each notification or disconnection
        (then call `on_disconnect`: the pool's connections are likely dead too).

        Every `heartbeat` seconds of quiet it queries (an idle connection through HAProxy is cut after its
        tunnel timeout, 300 s) and calls `on_heartbeat`, which keeps the pool's idle connections alive too."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute("LISTEN chef_auth")
                    self.invalidate()
                    self.listening = True
                    while True:
                        async for _ in conn.notifies(timeout=heartbeat):
                            self.invalidate()
                        await conn.execute("SELECT 1")
                        if on_heartbeat is not None:
                            on_heartbeat()
            except (psycopg.Error, OSError) as exc:
                log.info("key cache listener: %s", exc)
            finally:
                was_listening, self.listening = self.listening, False
                self.invalidate()
            if was_listening and on_disconnect is not None:
                on_disconnect()
            await asyncio.sleep(1.0)


async def _lookup(db: Database, cache: KeyCache, org: str | None, name: str) -> dict:
    key = (org, name)
    record = cache.get(key)
    if record is None:
        generation = cache.generation
        async with db.connection() as conn:
            record = await principals.lookup(conn, org, name)
        cache.put(key, record, generation)
    return record


def _live_keys(principal: dict, now_epoch: float) -> list[tuple[str, object]]:
    """(name, public key) of a principal's keys that have not expired."""
    keys = [(name, keylib.load_public_key(pem)) for name, pem, expires in principal["keys"]
            if expires is None or expires > now_epoch]
    return [(name, key) for name, key in keys if key is not None]


async def authenticate(db: Database, cache: KeyCache, method: str, path: str, headers: Mapping[str, str],
                       body: bytes, org: str | None, superuser_name: str) -> tuple[Requestor, str | None]:
    """The verified requestor and the org's id, or erchef's 400/401/403/404 as a ChefError.

    Every key of every principal of the name (a user, and a client of the org) is tried. A request marked
    `X-Ops-Request-Source: web` is signed by the web UI's key (the superuser's) on behalf of the named user.
    """
    signed = signing.check_headers(headers)
    now = datetime.datetime.now(datetime.UTC)
    signing.check_clock(signed, now)
    record = await _lookup(db, cache, org, signed.user_id)
    if org is not None and record["org_id"] is None:
        raise ChefError(404, error_body(f"organization '{org}' does not exist."))
    candidates = record["principals"]
    if not candidates:
        raise signing.unknown_requestor(signed.user_id)
    now_epoch = now.timestamp()
    web = headers.get("x-ops-request-source") == "web"
    if web:
        webui = await _lookup(db, cache, None, superuser_name)
        signer_keys = _live_keys(webui["principals"][0], now_epoch) if webui["principals"] else []
    for principal in candidates:
        if web and principal["type"] != "user":
            continue
        keys = signer_keys if web else _live_keys(principal, now_epoch)
        index = signing.matching_key(signed, method, path, body, [key for _, key in keys])
        if index is None:
            continue
        requestor = Requestor(name=signed.user_id, type=principal["type"], id=principal["id"],
                              authz_id=principal["authz_id"], superuser=principal["superuser"],
                              validator=principal["validator"], member=principal["member"],
                              groups=frozenset(principal["groups"]), key_name=None if web else keys[index][0])
        if org is not None and requestor.type == "user" and not requestor.member and not requestor.superuser:
            raise ChefError(403, error_body(f"'{requestor.name}' not associated with organization '{org}'"))
        return requestor, record["org_id"]
    raise signing.bad_signature(signed.user_id)
