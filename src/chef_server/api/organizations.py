"""/organizations[/O], org membership (/organizations/O/users[/U]) and association requests (invitations)."""

from __future__ import annotations

from .. import authz, org_policy
from .. import keys as keylib
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import clients as client_store
from ..storage import keys as key_store
from ..storage import orgs as store
from ..storage import users as user_store
from ..validation import ORG_FULL_NAME, ORG_NAME, require_string
from .users import new_id, user_body


def validate_org(data: dict, existing_name: str | None = None) -> dict:
    """{"name", "full_name"} of a POST, or of a PUT (where the name cannot change) — erchef's 400s (pure)."""
    name = require_string(data, "name", ORG_NAME)
    if existing_name is not None and name != existing_name:
        raise bad_request("Field 'name' invalid")
    full_name = require_string(data, "full_name", ORG_FULL_NAME)
    return {"name": name, "full_name": full_name}


def org_body(row: dict) -> dict:
    return {"name": row["name"], "full_name": row["full_name"], "guid": row["id"]}


async def list_orgs(ctx: Ctx) -> tuple[int, object]:
    authz.require_superuser(ctx.requestor)
    async with ctx.db.connection() as conn:
        names = await store.names(conn)
    return 200, {name: ctx.url("organizations", name) for name in names}


async def create_org(ctx: Ctx) -> tuple[int, object]:
    authz.require_superuser(ctx.requestor, "create")
    org = validate_org(ctx.json())
    name = org["name"]
    creator = ctx.requestor
    org_row = {"id": new_id(), "authz_id": new_id(), **org}
    public, private = await keylib.new_key_pair()
    validator = {"id": new_id(), "org_id": org_row["id"], "authz_id": new_id(), "name": f"{name}-validator",
                 "validator": True, "admin": False}
    async with ctx.transaction() as conn:
        created = await store.insert(conn, org_row, org_policy.default_acls(creator.authz_id),
                                     org_policy.DEFAULT_MEMBERS, creator.id if creator.type == "user" else None)
        if not created:
            raise ChefError(409, {"error": "Organization already exists"})
        await client_store.insert(conn, validator)
        await key_store.insert(conn, validator["id"], "default", public, None)
    return 201, {"clientname": validator["name"], "private_key": private, "uri": ctx.url("organizations", name)}


async def _org(conn, ctx: Ctx) -> dict:
    row = await store.get(conn, ctx.org_name)
    if row is None:  # authentication found it: it was deleted since
        raise ChefError(404, error_body(f"organization '{ctx.org_name}' does not exist."))
    return row


async def get_org(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await _org(conn, ctx)
        await authz.require_org(ctx, "read", conn=conn)
    return 200, org_body(row)


async def update_org(ctx: Ctx) -> tuple[int, object]:
    await authz.require_org(ctx, "update")
    data = ctx.json()
    org = validate_org(data, ctx.org_name)
    async with ctx.transaction() as conn:
        row = await _org(conn, ctx)
        await store.update(conn, row["id"], org["full_name"])
    return 200, {**data, **org_body({**row, **org})}


async def delete_org(ctx: Ctx) -> tuple[int, object]:
    await authz.require_org(ctx, "delete")
    async with ctx.transaction() as conn:
        row = await _org(conn, ctx)
        await store.delete(conn, row["id"])
    return 200, org_body(row)


def _no_user(name: str) -> ChefError:
    return ChefError(404, {"error": f"Could not find user {name}"})


def _not_member(name: str, org: str) -> ChefError:
    return ChefError(404, {"error": f"Cannot find a user {name} in organization {org}"})


async def list_members(ctx: Ctx) -> tuple[int, object]:
    await authz.require_org(ctx, "read")
    async with ctx.db.connection() as conn:
        names = await store.member_names(conn, ctx.org_id)
    return 200, [{"user": {"username": name}} for name in names]


async def add_member(ctx: Ctx) -> tuple[int, object]:
    """Only the superuser associates a user directly; others invite (association requests)."""
    data = ctx.json()
    name = require_string(data, "username")
    async with ctx.transaction() as conn:
        user = await user_store.get(conn, name)
        if user is None:
            raise _no_user(name)
        authz.require_superuser(ctx.requestor, "create")
        if not await store.add_member(conn, ctx.org_id, user["id"], admin=data.get("admin") is True):
            raise ChefError(409, {"error": "The association already exists."})
    return 201, {"uri": ctx.org_url("users", name)}


async def get_member(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["user"]
    async with ctx.db.connection() as conn:
        user = await user_store.get_with_default_key(conn, name)
        if user is None:
            raise _no_user(name)
        if not await store.is_member(conn, ctx.org_id, user["id"]):
            raise _not_member(name, ctx.org_name)
    await authz.require_org(ctx, "read")
    return 200, user_body(user, ctx.api_version)


async def remove_member(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["user"]
    async with ctx.transaction() as conn:
        user = await user_store.get_with_default_key(conn, name)
        if user is None:
            raise _no_user(name)
        if not await store.is_member(conn, ctx.org_id, user["id"]):
            raise _not_member(name, ctx.org_name)
        if not (ctx.requestor.type == "user" and ctx.requestor.name == name):
            await authz.require_org(ctx, "update")
        if await store.in_group(conn, ctx.org_id, "admins", user["id"]):
            raise ChefError(403, {"error": f"Please remove {name} from this organization's admins group before "
                                           "removing him or her from the organization."})
        await store.remove_member(conn, ctx.org_id, user["id"])
    return 200, user_body(user, ctx.api_version)


def invite_body(invite: dict) -> dict:
    return {"id": invite["id"], "orgname": invite["orgname"], "username": invite["username"],
            "organization": {"deprecated": True, "name": invite["orgname"]}, "user": "deprecated"}


async def invite(ctx: Ctx) -> tuple[int, object]:
    await authz.require_org(ctx, "create")
    data = ctx.json()
    name = require_string(data, "user")
    async with ctx.transaction() as conn:
        user = await user_store.get(conn, name)
        if user is None:
            raise _no_user(name)
        if await store.is_member(conn, ctx.org_id, user["id"]):
            raise ChefError(409, {"error": "The association already exists."})
        invite_id = await store.insert_invite(conn, ctx.org_id, user["id"], ctx.requestor.id)
        if invite_id is None:
            raise ChefError(409, {"error": "The invite already exists."})
    return 201, {"uri": ctx.org_url("association_requests", invite_id),
                 "organization_user": {"username": ctx.requestor.name},
                 "organization": {"name": ctx.org_name},
                 "user": {"email": user["email"], "first_name": user["serialized_object"].get("first_name")}}


async def org_invites(ctx: Ctx) -> tuple[int, object]:
    await authz.require_org(ctx, "read")
    async with ctx.db.connection() as conn:
        rows = await store.invites_of_org(conn, ctx.org_id)
    return 200, [{"id": r["id"], "username": r["username"]} for r in rows]


async def cancel_invite(ctx: Ctx) -> tuple[int, object]:
    await authz.require_org(ctx, "delete")
    async with ctx.transaction() as conn:
        row = await store.get_invite(conn, ctx.params["invite"])
        if row is None or row["org_id"] != ctx.org_id:
            raise ChefError(404, {"error": f"Cannot find association request: {ctx.params['invite']}"})
        await store.delete_invite(conn, row["id"])
    return 200, invite_body(row)


async def _invited_user(conn, ctx: Ctx) -> dict:
    name = ctx.params["user"]
    user = await user_store.get(conn, name)
    if user is None:
        raise _no_user(name)
    return user


async def user_invites(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        user = await _invited_user(conn, ctx)
        authz.require_self_or_superuser(ctx.requestor, user["username"], "read")
        rows = await store.invites_of_user(conn, user["id"])
    return 200, [{"id": r["id"], "orgname": r["orgname"]} for r in rows]


async def user_invite_count(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        user = await _invited_user(conn, ctx)
        authz.require_self_or_superuser(ctx.requestor, user["username"], "read")
        rows = await store.invites_of_user(conn, user["id"])
    return 200, {"value": len(rows)}


async def answer_invite(ctx: Ctx) -> tuple[int, object]:
    data = ctx.json()
    response = data.get("response")
    if response not in ("accept", "reject"):
        raise bad_request("Param response must be either 'accept' or 'reject'")
    async with ctx.transaction() as conn:
        user = await _invited_user(conn, ctx)
        authz.require_self_or_superuser(ctx.requestor, user["username"], "update")
        row = await store.get_invite(conn, ctx.params["invite"])
        if row is None or row["user_id"] != user["id"]:
            raise ChefError(404, {"error": f"Cannot find association request: {ctx.params['invite']}"})
        if response == "accept":
            # an invitation is only good while the admin who sent it is still an admin of the org
            if not await store.in_group(conn, row["org_id"], "admins", row["last_updated_by"]):
                raise ChefError(403, {"error": "This invitation is no longer valid. Please notify an administrator "
                                               "and request to be re-invited to the organization."})
            await store.add_member(conn, row["org_id"], user["id"])
        await store.delete_invite(conn, row["id"])
    return 200, invite_body(row)
