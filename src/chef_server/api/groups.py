"""/organizations/O/groups[/G]: reading and replacing a group's members (the org's default groups).

Creating and deleting groups, and ACLs, come with authorization (a later part).
"""

from __future__ import annotations

from .. import authz
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import groups as store


def group_body(group: dict, org: str) -> dict:
    m = group["members"]
    return {"actors": sorted(m["user"] + m["client"]), "users": m["user"], "clients": m["client"],
            "groups": m["group"], "orgname": org, "name": group["name"], "groupname": group["name"]}


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
    authz.require_org_user(ctx.requestor)
    async with ctx.db.connection() as conn:
        names = await store.names(conn, ctx.org_id)
    return 200, {name: ctx.org_url("groups", name) for name in names}


async def _load(conn, ctx: Ctx) -> dict:
    group = await store.get(conn, ctx.org_id, ctx.params["group"])
    if group is None:
        raise ChefError(404, error_body(f"group '{ctx.params['group']}' not found"))
    return group


async def get_group(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        group = await _load(conn, ctx)
    authz.require_org_user(ctx.requestor)
    return 200, group_body(group, ctx.org_name)


async def update_group(ctx: Ctx) -> tuple[int, object]:
    wanted = requested_members(ctx.json())
    async with ctx.db.transaction() as conn:
        group = await _load(conn, ctx)
        authz.require_org_admin(ctx.requestor, "update")
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
        await store.set_members(conn, group["id"], members)
        group = await _load(conn, ctx)
    return 200, group_body(group, ctx.org_name)
