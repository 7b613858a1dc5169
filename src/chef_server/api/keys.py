"""/users/U/keys[/K], /organizations/O/clients/C/keys[/K] and /organizations/O/users/U/keys[/K]."""

from __future__ import annotations

import datetime

from .. import authz
from .. import keys as keylib
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import clients as client_store
from ..storage import keys as store
from ..storage import users as user_store
from ..validation import KEY_NAME, field_invalid, field_missing, optional_bool
from .users import may_read_user

KEY_FIELDS = ("name", "public_key", "create_key", "expiration_date")


def validate_key(data: dict, operation: str) -> dict:
    """A key body for POST ("create": name, public_key xor create_key, expiration_date) or PUT (any of them)."""
    if operation == "update" and not any(data.get(f) is not None for f in KEY_FIELDS):
        raise ChefError(400, {"error": "At least one of 'name', 'expiration_date', or 'public_key' must be specified"})
    if "name" in data or operation == "create":
        if "name" not in data:
            raise field_missing("name")
        if not isinstance(data["name"], str) or not KEY_NAME.match(data["name"]):
            raise field_invalid("name")
    if "private_key" in data:
        raise bad_request("Please use create_key: true instead of private_key: true")
    optional_bool(data, "create_key")
    if "public_key" in data and not keylib.valid_public_key(data["public_key"]):
        raise bad_request("Public Key must be a valid key.")
    create, public = data.get("create_key") is True, data.get("public_key")
    if create and public is not None:
        raise bad_request("You must specify either create_key or public_key, but not both")
    if operation == "create" and not create and public is None:
        raise bad_request("You must either provide a valid value for 'public_key', or specify 'create_key': true")
    expires = None
    if "expiration_date" in data or operation == "create":
        if "expiration_date" not in data:
            raise field_missing("expiration_date")
        expires = keylib.parse_expiration(data["expiration_date"])
    return {"expires": expires}


def key_json(row: dict) -> dict:
    return {"name": row["key_name"], "public_key": row["public_key"],
            "expiration_date": keylib.format_expiration(row["expires_at"])}


async def _owner(ctx: Ctx, conn, kind: str) -> tuple[dict, list[str], str]:
    """(owner row, URL parts of the owner, owner name) or erchef's 404."""
    if kind == "client":
        name = ctx.params["client"]
        row = await client_store.get(conn, ctx.org_id, name)
        if row is None:
            raise ChefError(404, error_body(f"Cannot load client {name}"))
        return row, ["organizations", ctx.org_name, "clients", name], name
    name = ctx.params["user"]
    row = await user_store.get(conn, name)
    if row is None:
        raise ChefError(404, {"error": f"Could not find user {name}"})
    url = ["users", name] if ctx.org_name is None else ["organizations", ctx.org_name, "users", name]
    return row, url, name


async def _may_read(conn, ctx: Ctx, kind: str, owner: dict) -> None:
    """In an org, members of its public_key_read_access group read its actors' keys; elsewhere whoever may
    read the user does."""
    if ctx.org_name is not None:
        if not authz.may_read_public_keys(ctx.requestor):
            authz.deny("read")
    elif not await may_read_user(conn, ctx, owner):
        authz.deny("read")


async def _may_change(conn, ctx: Ctx, kind: str, owner: str, owner_row: dict) -> None:
    """A user's keys: whoever may update the user (itself, the superuser, server admins); a client's: whoever
    may update the client (its ACL)."""
    if kind == "user":
        await authz.require_user_admin(ctx, "update", conn, owner_row)
    else:
        await authz.require(ctx, "update", object_id=owner_row["authz_id"], conn=conn)


def _not_the_signing_key(ctx: Ctx, owner: dict, key_name: str) -> None:
    """A requestor cannot change or delete the key its request was signed with."""
    if ctx.requestor.id == owner["id"] and ctx.requestor.key_name == key_name:
        raise ChefError(403, {"error": f"The key '{key_name}' was used to authenticate this request and cannot "
                                       "be modified or deleted."})


async def _list(ctx: Ctx, kind: str) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row, url, _ = await _owner(ctx, conn, kind)
        await _may_read(conn, ctx, kind, row)
        rows = await store.list_for(conn, row["id"])
    return 200, [{"uri": ctx.url(*url, "keys", r["key_name"]), "name": r["key_name"], "expired": r["expired"]}
                 for r in rows]


async def _create(ctx: Ctx, kind: str) -> tuple[int, object]:
    data = ctx.json()
    async with ctx.transaction() as conn:
        owner_row, url, owner = await _owner(ctx, conn, kind)
        owner_id = owner_row["id"]
        await _may_change(conn, ctx, kind, owner, owner_row)
        key = validate_key(data, "create")
        public, private = (await keylib.new_key_pair() if data.get("create_key") is True
                           else (data["public_key"], None))
        if not await store.insert(conn, owner_id, data["name"], public, key["expires"]):
            raise ChefError(409, {"error": f"a key with the name '{data['name']}' already exists for this actor."})
    body = {"uri": ctx.url(*url, "keys", data["name"])}
    if private is not None:
        body["private_key"] = private
    return 201, body


async def _named(ctx: Ctx, conn, kind: str) -> tuple[dict, str, dict]:
    owner_row, _, owner = await _owner(ctx, conn, kind)
    row = await store.get(conn, owner_row["id"], ctx.params["key"])
    if row is None:
        raise ChefError(404, {"error": f"There is no key named {ctx.params['key']} associated with {owner}."})
    return owner_row, owner, row


async def _get(ctx: Ctx, kind: str) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        owner_row, _, row = await _named(ctx, conn, kind)
        await _may_read(conn, ctx, kind, owner_row)
    return 200, key_json(row)


async def _update(ctx: Ctx, kind: str) -> tuple[int, object]:
    data = ctx.json()
    async with ctx.transaction() as conn:
        owner_row, owner, row = await _named(ctx, conn, kind)
        owner_id = owner_row["id"]
        await _may_change(conn, ctx, kind, owner, owner_row)
        _not_the_signing_key(ctx, owner_row, row["key_name"])
        key = validate_key(data, "update")
        new_name = data.get("name", row["key_name"])
        private = None
        public = row["public_key"]
        if data.get("create_key") is True:
            public, private = await keylib.new_key_pair()
        elif data.get("public_key") is not None:
            public = data["public_key"]
        expires: datetime.datetime | None = key["expires"] if "expiration_date" in data else row["expires_at"]
        if not await store.update(conn, owner_id, row["key_name"], new_name, public, expires):
            raise ChefError(409, {"error": f"a key with the name '{new_name}' already exists for this actor."})
    body = {k: v for k, v in data.items() if k != "create_key"}
    if private is not None:
        body["private_key"] = private
        body["public_key"] = public
    return (201 if new_name != row["key_name"] else 200), body


async def _delete(ctx: Ctx, kind: str) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        owner_row, owner, row = await _named(ctx, conn, kind)
        await _may_change(conn, ctx, kind, owner, owner_row)
        _not_the_signing_key(ctx, owner_row, row["key_name"])
        await store.delete(conn, owner_row["id"], row["key_name"])
    return 200, key_json(row)


async def list_user_keys(ctx: Ctx): return await _list(ctx, "user")
async def create_user_key(ctx: Ctx): return await _create(ctx, "user")
async def get_user_key(ctx: Ctx): return await _get(ctx, "user")
async def update_user_key(ctx: Ctx): return await _update(ctx, "user")
async def delete_user_key(ctx: Ctx): return await _delete(ctx, "user")
async def list_client_keys(ctx: Ctx): return await _list(ctx, "client")
async def create_client_key(ctx: Ctx): return await _create(ctx, "client")
async def get_client_key(ctx: Ctx): return await _get(ctx, "client")
async def update_client_key(ctx: Ctx): return await _update(ctx, "client")
async def delete_client_key(ctx: Ctx): return await _delete(ctx, "client")
