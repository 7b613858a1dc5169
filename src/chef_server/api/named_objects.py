"""What nodes, roles and environments share: a JSON object named in its URL, listed as {name: url},
created with POST (201 {"uri"}), answered as stored, replaced with PUT (200 with the object, 201
when renamed), deleted with DELETE (200 with the object). erchef's order of checks: the body (400),
then the object (404), then permission (403), then a name clash (409)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import authz
from ..context import Ctx
from ..errors import ChefError, error_body
from ..storage import objects as store


@dataclass(frozen=True)
class Kind:
    table: str                 # storage table, also the URL segment and the ACL container
    param: str                 # the route parameter holding the name
    not_found: Callable[[str], str]
    conflict: str


def missing(kind: Kind, name: str) -> ChefError:
    return ChefError(404, error_body(kind.not_found(name)))


async def load(conn, ctx: Ctx, kind: Kind) -> dict:
    name = ctx.params[kind.param]
    row = await store.get(conn, kind.table, ctx.org_id, name)
    if row is None:
        raise missing(kind, name)
    return row


async def list_all(ctx: Ctx, kind: Kind) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        await authz.require_container(ctx, kind.table, "read", conn=conn)
        names = await store.names(conn, kind.table, ctx.org_id)
    return 200, {name: ctx.org_url(kind.table, name) for name in names}


async def create(ctx: Ctx, kind: Kind, obj: dict) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        await authz.require_container(ctx, kind.table, "create", conn=conn)
        if not await store.insert(conn, kind.table, ctx.org_id, obj, ctx.requestor.id):
            raise ChefError(409, error_body(kind.conflict))
    uri = ctx.org_url(kind.table, obj["name"])
    return 201, {"uri": uri}


async def get(ctx: Ctx, kind: Kind) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await load(conn, ctx, kind)
        await authz.require(ctx, "read", object_id=row["authz_id"], conn=conn)
    return 200, row["serialized_object"]


async def update(ctx: Ctx, kind: Kind, obj: dict) -> tuple:
    async with ctx.transaction() as conn:
        row = await load(conn, ctx, kind)
        await authz.require(ctx, "update", object_id=row["authz_id"], conn=conn)
        if obj != row["serialized_object"] and not await store.update(conn, kind.table, row["id"], obj):
            raise ChefError(409, error_body(kind.conflict))
    if obj["name"] != row["name"]:  # a rename answers 201 and the new Location, as webmachine does
        return 201, obj, {"Location": ctx.org_url(kind.table, obj["name"])}
    return 200, obj


async def delete(ctx: Ctx, kind: Kind) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await load(conn, ctx, kind)
        await authz.require(ctx, "delete", object_id=row["authz_id"], conn=conn)
        await store.delete(conn, kind.table, row["id"])
    return 200, row["serialized_object"]
