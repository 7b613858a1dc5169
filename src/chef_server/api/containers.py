"""/organizations/O/containers[/C]: an org's containers (their ACLs are what new objects start with)."""

from __future__ import annotations

import re

from .. import authz
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import acls
from ..storage import containers as store

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def container_body(name: str) -> dict:
    return {"containername": name, "containerpath": name}


def container_name(data: dict) -> str:
    """The name of a POST body (`id` as knife sends it, else `containername`), or erchef's 400 (pure)."""
    name = data.get("id", data.get("containername"))
    if name is None:
        raise bad_request("Field 'containername' missing")
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad_request("Malformed container name. Must only contain A-Z, a-z, 0-9, _, -, or .")
    return name


async def list_containers(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        await authz.require_container(ctx, "containers", "read", conn=conn)
        names = await store.names(conn, ctx.org_id)
    return 200, {name: ctx.org_url("containers", name) for name in names}


async def create_container(ctx: Ctx) -> tuple[int, object]:
    name = container_name(ctx.json())
    async with ctx.transaction() as conn:
        await authz.require_container(ctx, "containers", "create", conn=conn)
        authz_id = await store.insert(conn, ctx.org_id, name)
        if authz_id is None:
            raise ChefError(409, error_body("Container already exists"))
        # a new container's ACL is its creator's alone (erchef does not copy the containers container's)
        await acls.grant(conn, authz_id, acls.PERMS, ctx.requestor.authz_id)
    return 201, {"uri": ctx.org_url("containers", name)}


async def _load(conn, ctx: Ctx, perm: str) -> dict:
    name = ctx.params["container"]
    row = await store.get(conn, ctx.org_id, name)
    if row is None:
        raise ChefError(404, error_body(f"Cannot load container {name}"))
    await authz.require(ctx, perm, object_id=row["authz_id"], conn=conn)
    return row


async def get_container(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await _load(conn, ctx, "read")
    return 200, container_body(row["name"])


async def delete_container(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await _load(conn, ctx, "delete")
        await store.delete(conn, row["id"])
    return 200, container_body(row["name"])
