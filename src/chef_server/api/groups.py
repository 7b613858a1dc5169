"""/organizations/O/groups[/G]: an org's groups, their members (users, clients, nested groups) and names.

A new group's ACL is the groups container's plus its creator (a trigger, storage/schema_authz.py).
"""

from __future__ import annotations

import re

from .. import authz
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import groups as store


def group_body(group: dict, org: str) -> dict:
    m = group["members"]
    return {"actors": sorted(m["user"] + m["client"]), "users": m["user"], "clients": m["client"],
            "groups": m["group"], "orgname": org, "name": group["name"], "groupname": group["name"]}


_NAME = re.compile(r"^[a-z0-9\-_]+$")


def group_name(data: dict) -> str | None:
    """A body's group name (`id`, else `groupname`): None when absent, erchef's 400 when invalid (pure)."""
    name = data.get("id", data.get("groupname"))
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise bad_request("Invalid group name.")
    return name


def requested_members(data: dict) -> dict[str, list[str]]:
    """{"user"|"client"|"group": [names]} from a PUT body's `actors` (pure)."""
    actors = data.get("actors", {})
    if not isinstance(actors, dict):
        raise bad_request("Field 'actors' invalid")
    wanted: dict[str, list[str]] = {}
    for field, kind in (("users", "user"), ("clients", "client"), ("groups", "group")):
        value = actors.get(field, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_request(f"Field '{field}' invalid")
        wanted[kind] = value
    return wanted


async def list_groups(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        await authz.require_container(ctx, "groups", "read", conn=conn)
        names = await store.names(conn, ctx.org_id)
    return 200, {name: ctx.org_url("groups", name) for name in names}


async def create_group(ctx: Ctx) -> tuple[int, object]:
    data = ctx.json()
    name = group_name(data)
    if name is None:
        raise bad_request("Invalid group name.")
    async with ctx.transaction() as conn:
        await authz.require_container(ctx, "groups", "create", conn=conn)
        if not await store.insert(conn, ctx.org_id, name):
            raise ChefError(409, error_body("Group already exists"))
        if "actors" in data:
            group = await store.get(conn, ctx.org_id, name)
            await _set_members(conn, ctx, group["id"], requested_members(data))
    return 201, {"uri": ctx.org_url("groups", name)}


async def _load(conn, ctx: Ctx, perm: str) -> dict:
    group = await store.get(conn, ctx.org_id, ctx.params["group"])
    if group is None:
        raise ChefError(404, error_body(f"group '{ctx.params['group']}' not found"))
    await authz.require(ctx, perm, object_id=group["authz_id"], conn=conn)
    return group


async def get_group(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        group = await _load(conn, ctx, "read")
    return 200, group_body(group, ctx.org_name)


async def _set_members(conn, ctx: Ctx, group_id: str, wanted: dict[str, list[str]]) -> None:
    users = await store.resolve(conn, ctx.org_id, "user", wanted["user"])
    # `actors` as GET shows it lists clients too: a name that is no user may be a client
    clients = await store.resolve(conn, ctx.org_id, "client",
                                  wanted["client"] + [n for n in wanted["user"] if n not in users])
    groups = await store.resolve(conn, ctx.org_id, "group", wanted["group"])
    missing = [n for n in wanted["user"] if n not in users and n not in clients] + \
              [n for n in wanted["client"] if n not in clients] + [n for n in wanted["group"] if n not in groups]
    if missing:
        raise bad_request(f"Could not find actors or groups: {', '.join(missing)}")
    members = [("user", i) for i in users.values()] + [("client", i) for i in clients.values()] + \
              [("group", i) for i in groups.values()]
    await store.set_members(conn, group_id, members)


async def update_group(ctx: Ctx) -> tuple:
    """Replace the members (when `actors` is given) and rename (when `groupname` differs: 201 and Location)."""
    data = ctx.json()
    new_name = group_name({"groupname": data["groupname"]}) if "groupname" in data else None  # `id` renames nothing
    async with ctx.transaction() as conn:
        group = await _load(conn, ctx, "update")
        if "actors" in data:
            await _set_members(conn, ctx, group["id"], requested_members(data))
        renamed = new_name is not None and new_name != group["name"]
        if renamed and not await store.rename(conn, group["id"], new_name):
            raise ChefError(409, error_body("Group already exists"))
        group = await store.get(conn, ctx.org_id, new_name if renamed else group["name"])
    if renamed:
        return 201, group_body(group, ctx.org_name), {"Location": ctx.org_url("groups", new_name)}
    return 200, group_body(group, ctx.org_name)


async def delete_group(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        group = await _load(conn, ctx, "delete")
        await store.delete(conn, group["id"])
    return 200, group_body(group, ctx.org_name)
