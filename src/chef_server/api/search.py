"""/organizations/O/search[/INDEX]: full and partial search. The engine finds ids; the objects come
from PostgreSQL as they are now (a document not yet removed from the index finds nothing)."""

from __future__ import annotations

from .. import authz
from ..context import Ctx
from ..errors import ChefError, error_body
from ..search import partial
from ..search import query as sq
from ..search_index import EngineError
from ..storage import objects as store

_TABLES = {"node": "nodes", "role": "roles", "environment": "environments"}


def _error(exc: sq.SearchError) -> ChefError:
    return ChefError(exc.status, exc.body())


def _require_member(ctx: Ctx) -> None:
    r = ctx.requestor
    if not (r.superuser or r.org_admin or r.groups & {"users", "clients"}):
        authz.deny("read")


async def list_indexes(ctx: Ctx) -> tuple[int, object]:
    _require_member(ctx)
    async with ctx.db.connection() as conn:
        bags = await store.bag_names(conn, ctx.org_id)
    return 200, sq.index_list(ctx.base_url, ctx.org_name, bags)


async def _found(ctx: Ctx, search: sq.SearchQuery, keys: list[str] | None = None) -> tuple[int, list[dict]]:
    """(total, the readable objects found, in the engine's order) for a validated search; with `keys`,
    nodes come with only those keys in each attribute level (what a partial search looks at)."""
    if ctx.search is None:
        raise ChefError(500, error_body("internal search error"))
    try:
        status, answer = await ctx.search.engine.search(search.es_body())
    except EngineError as exc:
        raise ChefError(503, error_body("The search service is unavailable; retry later.")) from exc
    if status != 200:
        raise _error(sq.engine_error(status))
    total, ids = sq.hits(answer)
    async with ctx.db.connection() as conn:
        objects = await _load(conn, ctx, search.index, ids, keys)
        if total == 0 and search.data_bag is not None and await store.bag(conn, ctx.org_id, search.data_bag) is None:
            raise _error(sq.no_such_data_bag(search.data_bag))
    return total, objects


_LEVELS = ("default", "normal", "override", "automatic")

# A node with each attribute level cut down to the top-level keys %(keys)s (a level that is not an object
# kept as it is): nodes carry ~100 KB of ohai attributes, and a partial search that reads a few of them
# need not turn every found node into text and parse it back. The merge of a key only depends on each
# level's value at that key, so the paths below those keys come out the same. serialized_object is named
# once: PostgreSQL decompresses a large value again for every mention.
_PRUNED_NODE = (
    "(SELECT COALESCE(jsonb_object_agg(t.key, CASE WHEN t.key = ANY(%(levels)s) AND jsonb_typeof(t.value) = 'object' "
    "THEN (SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}'::jsonb) FROM jsonb_each(t.value) AS e "
    "WHERE e.key = ANY(%(keys)s)) ELSE t.value END), '{}'::jsonb) FROM jsonb_each(serialized_object) AS t)")


async def _load(conn, ctx: Ctx, index: str, ids: list[str], keys: list[str] | None = None) -> list[dict]:
    if not ids:
        return []
    if index == "client":
        cur = await conn.execute(
            "SELECT c.id, c.authz_id, c.name, c.validator, (SELECT public_key FROM keys WHERE owner_id = c.id "
            "AND key_name = 'default') AS public_key FROM clients c WHERE c.org_id = %s AND c.id = ANY(%s)",
            (ctx.org_id, ids))
        rows = {row["id"]: row for row in await cur.fetchall()}
        readable = await authz.readable(ctx, [row["authz_id"] for row in rows.values()], conn)
        return [sq.client_row(row["name"], row["validator"], ctx.org_name,
                              row["public_key"] if ctx.api_version == 0 else None)
                for row in (rows.get(i) for i in ids)
                if row is not None and row["authz_id"] in readable]
    if index in _TABLES:
        table = _TABLES[index]
        body = _PRUNED_NODE if index == "node" and keys is not None else "serialized_object"
        cur = await conn.execute(f"SELECT id, authz_id, {body} AS serialized_object FROM {table} "
                                 "WHERE org_id = %(org)s AND id = ANY(%(ids)s)",
                                 {"org": ctx.org_id, "ids": ids, "keys": keys, "levels": list(_LEVELS)})
        rows = {row["id"]: row for row in await cur.fetchall()}
        readable = await authz.readable(ctx, [row["authz_id"] for row in rows.values()], conn)
        return [row["serialized_object"] for row in (rows.get(i) for i in ids)
                if row is not None and row["authz_id"] in readable]
    cur = await conn.execute("SELECT id, serialized_object FROM data_bag_items "
                             "WHERE org_id = %s AND bag_name = %s AND id = ANY(%s)", (ctx.org_id, index, ids))
    rows = {row["id"]: row for row in await cur.fetchall()}
    bag = await store.bag(conn, ctx.org_id, index)
    if bag is None or not await authz.may(ctx, "read", object_id=bag["authz_id"], conn=conn):
        return []  # items are read through their bag's ACL
    return [rows[i]["serialized_object"] for i in ids if i in rows]


def _query(ctx: Ctx) -> sq.SearchQuery:
    q = ctx.query
    try:
        return sq.search_query(ctx.org_id, ctx.params["index"], q.get("q"), q.get("start"), q.get("rows"))
    except sq.SearchError as exc:
        raise _error(exc) from None


async def search(ctx: Ctx) -> tuple[int, object]:
    _require_member(ctx)
    search = _query(ctx)
    total, objects = await _found(ctx, search)
    bag = search.data_bag
    rows = [sq.data_bag_item_row(bag, obj) for obj in objects] if bag is not None else objects
    return 200, sq.results(total, search.start, rows)


async def partial_search(ctx: Ctx) -> tuple[int, object]:
    _require_member(ctx)
    search = _query(ctx)
    try:
        paths = partial.parse_body(ctx.body)
    except sq.SearchError as exc:
        raise _error(exc) from None
    total, objects = await _found(ctx, search, sorted({path[0] for _, path in paths if path}) if paths else None)
    if not paths:  # an empty body asks for whole objects
        bag = search.data_bag
        rows = [sq.data_bag_item_row(bag, obj) for obj in objects] if bag is not None else objects
    else:
        rows = [partial.row(ctx.base_url, ctx.org_name, search.index, obj, paths) for obj in objects]
    return 200, sq.results(total, search.start, rows)


async def flush(ctx: Ctx) -> tuple[int, object]:
    """The test hook (setting search_test_flush): everything written so far becomes searchable, then 200."""
    if not ctx.settings.search_test_flush or ctx.search is None:
        raise ChefError(404, error_body("not found"))
    try:
        await ctx.search.flush()
    except EngineError as exc:
        raise ChefError(503, error_body(f"search flush failed: {exc}")) from exc
    return 200, {"flushed": True}
