"""…/<type>/<name>/_acl[/<perm>]: reading an object's ACL and replacing one permission of it (erchef's
oc_chef_wm_acl). One handler shape for every type; both need `grant` on the object (the superuser
passes). GET answers every permission by name; PUT replaces one permission's actors and groups."""

from __future__ import annotations

from .. import acl, authz
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import acls as store

# URL segment -> (table holding the object's authz id by org and name, erchef's 404 wording)
_TABLES = {
    "nodes": ("nodes", "node"), "roles": ("roles", "role"), "environments": ("environments", "environment"),
    "data": ("data_bags", "data_bag"), "clients": ("clients", "client"), "groups": ("groups", "group"),
    "containers": ("containers", "container"), "cookbooks": ("cookbooks", "cookbook"),
    "cookbook_artifacts": ("cookbook_artifacts", "cookbook_artifact"), "policies": ("policies", "policy"),
    "policy_groups": ("policy_groups", "policy_group"),
}


def _not_found(kind: str, name: str) -> ChefError:
    return ChefError(404, error_body(f"Cannot load {kind} {name}"))


async def _target(conn, ctx: Ctx) -> tuple[str, str | None]:
    """(the object's authz id, the org id names are resolved in) from the route, or erchef's 404."""
    if "user" in ctx.params:  # /users/U/_acl: a server-level object, its ACL names users only
        cur = await conn.execute("SELECT authz_id FROM users WHERE username = %s", (ctx.params["user"],))
        row = await cur.fetchone()
        if row is None:
            raise ChefError(404, error_body(f"Could not find user {ctx.params['user']}"))
        return row["authz_id"], None
    if "type" not in ctx.params:  # /organizations/O/organizations/_acl
        cur = await conn.execute("SELECT authz_id FROM orgs WHERE id = %s", (ctx.org_id,))
        return (await cur.fetchone())["authz_id"], ctx.org_id
    kind, name = ctx.params["type"], ctx.params["name"]
    if kind not in _TABLES:
        raise ChefError(404, error_body("not found"))
    table, label = _TABLES[kind]
    cur = await conn.execute(f"SELECT authz_id FROM {table} WHERE org_id = %s AND name = %s", (ctx.org_id, name))
    row = await cur.fetchone()
    if row is None:
        raise _not_found(label, name)
    return row["authz_id"], ctx.org_id


async def get_acl(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        object_id, org_id = await _target(conn, ctx)
        await authz.require(ctx, "grant", object_id=object_id, conn=conn)
        named = await store.read(conn, object_id, org_id)
    return 200, acl.acl_body(named, ctx.query.get("detail") == "granular")


async def _actor_ids(conn, ctx: Ctx, org_id: str | None, ace: acl.AcePut) -> list[str]:
    if org_id is None:  # a user's ACL: users only
        if ace.clients:
            raise bad_request("Clients can not be added to global ACL entries.")
        names = ace.actors + (ace.users or [])
        users = await store.users_by_name(conn, names)
        unknown = [n for n in names if n not in users]
        if unknown:
            raise bad_request(f"The actor(s) {', '.join(unknown)} is not a valid user "
                              "(clients are not allowed in this context).")
        return list(users.values())
    if ace.users is not None:
        users = await store.users_by_name(conn, ace.users)
        acl.missing("user", ace.users, users)
        clients = await store.clients_by_name(conn, org_id, ace.clients)
        acl.missing("client", ace.clients, clients)
        return list(users.values()) + list(clients.values())
    members = await store.org_member_names(conn, org_id, ace.actors)
    users = await store.users_by_name(conn, list(members))
    clients = await store.clients_by_name(conn, org_id, ace.actors)
    user_names, client_names = acl.split_actors(ace.actors, set(users), set(clients))
    return [users[n] for n in user_names] + [clients[n] for n in client_names]


async def put_ace(ctx: Ctx) -> tuple[int, object]:
    perm = ctx.params["perm"]
    if perm not in acl.PERMS:
        raise ChefError(404, error_body("not found"))
    ace = acl.parse_put(perm, ctx.json())
    async with ctx.transaction() as conn:
        object_id, org_id = await _target(conn, ctx)
        await authz.require(ctx, "grant", object_id=object_id, conn=conn)
        if perm == "grant" and not ctx.requestor.superuser:
            current = await store.read(conn, object_id, org_id)
            acl.check_constraints(acl.Subject(), perm, current["grant"]["groups"], ace.groups)
        actors = await _actor_ids(conn, ctx, org_id, ace)
        groups = await store.groups_by_name(conn, org_id, ace.groups)
        acl.missing("group", ace.groups, groups)
        await store.replace(conn, object_id, perm, actors + list(groups.values()))
    return 200, {}
