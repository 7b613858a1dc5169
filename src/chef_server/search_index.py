"""The search driver: the search engine's HTTP API, and the indexer that drains the outbox into it.

Durability: every write of a searchable object leaves a row in `search_outbox` in the same
transaction (database triggers, schema migration 100), so a write acknowledged to the client is
known to be owed to the index even if the search engine, this frontend, or both die right after
the acknowledgement. Indexing is synchronous as erchef's: before answering, a write drains the
outbox (`index_now`, bounded by `sync_timeout`), so an acknowledged object is in the engine and
searchable after the engine's next refresh. When the engine is slow or away the write is answered
anyway and each API worker's `Indexer` keeps draining in the background: every `poll` seconds, which
also picks up rows another (perhaps dead) frontend left.
One drainer at a time in the whole cluster (a PostgreSQL advisory lock), so batches reach the engine
in order. A row names an object, not a version: the drainer sends the object's *current* state
(or deletes its document when the object is gone), so replays and duplicates are harmless, and the
row is deleted only after the engine has accepted the batch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import orjson

from .search import document, mapping
from .search.query import SEARCH_PATH
from .storage.db import Database

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

DRAIN_LOCK = 0x43686573  # "Ches": the advisory lock held by the one drainer at work
BATCH = 500
# Outbox table -> the type erchef indexes it as.
KINDS = {"nodes": "node", "roles": "role", "environments": "environment", "clients": "client",
         "data_bag_items": document.DATA_BAG_ITEM}


class EngineError(Exception):
    """The search engine answered something other than success (or did not answer)."""


class Engine:
    """The Elasticsearch 7 / OpenSearch HTTP API, as erchef calls it (through the local HAProxy)."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(timeout=timeout, headers={"Content-Type": "application/json"})

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, body: bytes | None = None) -> httpx.Response:
        try:
            return await self.http.request(method, self.url + path, content=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"{method} {path}: {exc!r}") from exc

    async def ensure_index(self) -> None:
        """Create the `chef` index with Chef's mapping unless it exists (it is never updated)."""
        response = await self._call("GET", f"/{mapping.INDEX}")
        if response.status_code == 404:
            response = await self._call("PUT", f"/{mapping.INDEX}", orjson.dumps(mapping.index_body()))
            if response.status_code == 400 and b"resource_already_exists" in response.content:
                return  # another frontend created it meanwhile
        if response.status_code != 200:
            raise EngineError(f"index {mapping.INDEX}: {response.status_code} {response.text[:200]}")

    async def bulk(self, lines: str) -> None:
        """Send `_bulk` lines; raise unless every action was applied (a missing document to delete is fine)."""
        response = await self._call("POST", "/_bulk", lines.encode())
        if response.status_code != 200:
            raise EngineError(f"_bulk: {response.status_code} {response.text[:200]}")
        answer = response.json()
        if answer.get("errors"):
            for entry in answer.get("items", []):
                (action, result), = entry.items()
                status = result.get("status", 500)
                if status >= 300 and not (action == "delete" and status == 404):
                    if status == 429 or status >= 500:
                        raise EngineError(f"_bulk {action} {result.get('_id')}: {status}")
                    # a document the engine refuses for good would block the outbox: log it, as erchef does
                    log.error("search engine refused %s of %s: %s", action, result.get("_id"), result.get("error"))

    async def delete_by_query(self, body: dict) -> None:
        """Delete the matching documents. The documents this batch just wrote or deleted are refreshed first,
        and version conflicts (a document changed since the query's snapshot) do not stop the rest."""
        await self.refresh()
        response = await self._call("POST", f"/{mapping.INDEX}/_delete_by_query?conflicts=proceed",
                                    orjson.dumps(body))
        if response.status_code != 200:
            raise EngineError(f"_delete_by_query: {response.status_code} {response.text[:200]}")

    async def refresh(self) -> None:
        response = await self._call("POST", "/_refresh")
        if response.status_code != 200:
            raise EngineError(f"_refresh: {response.status_code}")

    async def search(self, body: dict) -> tuple[int, Any]:
        """`GET /chef/_search` with a JSON body, as erchef sends it: (status, parsed answer)."""
        response = await self._call("GET", SEARCH_PATH, orjson.dumps(body))
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None


async def current_documents(conn, rows: list[dict]) -> str:
    """The `_bulk` lines that bring the index to the objects' current state (index what exists, delete
    what does not)."""
    wanted: dict[str, set[str]] = {}
    for row in rows:
        wanted.setdefault(row["kind"], set()).add(row["object_id"])
    found = {table: {obj["id"]: obj for obj in await _load(conn, table, list(ids))} for table, ids in wanted.items()}
    # Flattening a node with ohai's attributes costs tens of milliseconds of CPU: in a thread, so that the
    # worker's event loop keeps answering other requests meanwhile.
    return await asyncio.to_thread(_bulk_lines, wanted, found)


def _bulk_lines(wanted: dict[str, set[str]], found: dict[str, dict[str, dict]]) -> str:
    lines = []
    for table, ids in wanted.items():
        for object_id in sorted(ids):
            obj = found[table].get(object_id)
            if obj is None:
                lines.append(document.bulk_delete_line(object_id))
            else:
                doc = document.document(KINDS[table], object_id, obj["org_id"], obj["json"], obj.get("bag"))
                lines.append(document.bulk_index_lines(object_id, doc))
    return "".join(lines)


def segments(rows: list[dict]) -> list[list[dict]]:
    """The rows in order, cut around `orgs` rows (which remove all of an org's documents), so that
    what was queued after an org's removal is indexed after it (a reindex queues exactly that)."""
    out: list[list[dict]] = []
    for row in rows:
        if row["kind"] == "orgs" or not out or out[-1][0]["kind"] == "orgs":
            out.append([row])
        else:
            out[-1].append(row)
    return out


async def _load(conn, table: str, ids: list[str]) -> list[dict]:
    if table == "clients":
        cur = await conn.execute(
            "SELECT c.id, c.org_id, c.name, c.validator, o.name AS orgname FROM clients c "
            "JOIN orgs o ON o.id = c.org_id WHERE c.id = ANY(%s)", (ids,))
        return [{"id": r["id"], "org_id": r["org_id"],
                 "json": {"name": r["name"], "clientname": r["name"], "validator": r["validator"],
                          "orgname": r["orgname"], "json_class": "Chef::ApiClient", "chef_type": "client"}}
                for r in await cur.fetchall()]
    bag = ", bag_name AS bag" if table == "data_bag_items" else ""
    cur = await conn.execute(f"SELECT id, org_id, serialized_object AS json{bag} FROM {table} WHERE id = ANY(%s)",
                             (ids,))
    return await cur.fetchall()


# `chef-server-ctl reindex`: an org's documents are removed, then every searchable object is queued again;
# the frontends' indexers do the work while they keep serving.
REINDEX_SQL = [
    "INSERT INTO search_outbox (kind, object_id, org_id) VALUES ('orgs', %(org)s, %(org)s)",
    *(f"INSERT INTO search_outbox (kind, object_id, org_id) SELECT '{table}', id, org_id FROM {table} "
      "WHERE org_id = %(org)s ORDER BY id" for table in KINDS),
]


class Indexer:
    """Drains the outbox into the engine (one per API worker; see the module's docstring)."""

    def __init__(self, db: Database, engine: Engine, poll: float = 1.0, sync_timeout: float = 5.0):
        self.db = db
        self.engine = engine
        self.poll = poll
        self.sync_timeout = sync_timeout
        self._wake = asyncio.Event()
        self._index_ready = False

    def kick(self) -> None:
        self._wake.set()

    async def index_now(self) -> None:
        """After a committed write: drain the outbox (this write's rows and any others) before the
        answer. Never fails the request: the rows stay in the outbox for the background drainer."""
        try:
            await asyncio.wait_for(self._drain_all(), self.sync_timeout)
        except Exception as exc:
            log.warning("search indexing deferred to the background: %r", exc)
            self.kick()

    async def _drain_all(self) -> None:
        while await self.drain_batch(wait=True):
            pass

    async def run(self) -> None:
        """Forever: drain, then sleep until kicked or `poll` passes; back off while the engine fails."""
        delay = self.poll
        while True:
            try:
                while await self.drain_batch(wait=False):
                    pass
                delay = self.poll
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the engine or the database is away: retry, the rows stay
                log.warning("search indexing will be retried: %s", exc)
                delay = min(max(delay * 2, 1.0), 30.0)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def drain_batch(self, wait: bool) -> int:
        """Index one batch of the outbox; the number of rows done (0: empty, or another drainer is at
        work and `wait` is False)."""
        if not self._index_ready:
            await self.engine.ensure_index()
            self._index_ready = True
        async with self.db.transaction() as conn:
            if wait:
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (DRAIN_LOCK,))
            else:
                cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS got", (DRAIN_LOCK,))
                if not (await cur.fetchone())["got"]:
                    return 0
            cur = await conn.execute("SELECT seq, kind, object_id, org_id FROM search_outbox ORDER BY seq LIMIT %s",
                                     (BATCH,))
            rows = await cur.fetchall()
            if not rows:
                return 0
            for segment in segments(rows):
                if segment[0]["kind"] == "orgs":
                    await self.engine.delete_by_query(document.org_delete_query(segment[0]["org_id"]))
                else:
                    await self.engine.bulk(await current_documents(conn, segment))
            await conn.execute("DELETE FROM search_outbox WHERE seq = ANY(%s)", ([r["seq"] for r in rows],))
            return len(rows)

    async def flush(self) -> None:
        """Make every write committed so far searchable (the test hook): drain all, then refresh."""
        await self._drain_all()
        await self.engine.refresh()
