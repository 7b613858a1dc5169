"""/organizations/O/clients and /organizations/O/clients/C (API v0 and v1 shapes)."""

from __future__ import annotations

from .. import authz
from .. import keys as keylib
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body, forbidden
from ..storage import clients as store
from ..storage import keys as key_store
from ..validation import CLIENT_NAME, field_invalid
from .users import check_key_fields, initial_key, key_body, new_id


def client_name_of(data: dict, url_name: str | None) -> str:
    """The client's name from `name`/`clientname` (which must agree), or the URL's on PUT (pure)."""
    name, clientname = data.get("name"), data.get("clientname")
    if name is None and clientname is None:
        if url_name is None:
            raise bad_request("Field 'name' missing")
        return url_name
    if name is not None and clientname is not None and name != clientname:
        raise bad_request("name and clientname must match")
    chosen = name if name is not None else clientname
    if not isinstance(chosen, str) or not CLIENT_NAME.match(chosen):
        raise bad_request(f"Invalid client name '{chosen}' using regex: "
                          "'Malformed client name.  Must be A-Z, a-z, 0-9, _, -, or .'.")
    return chosen


def validate_client(api_version: int, data: dict, url_name: str | None, operation: str) -> dict:
    """The fields to store from a client POST/PUT body, or erchef's 400 (pure)."""
    name = client_name_of(data, url_name)
    if "validator" in data and not isinstance(data["validator"], bool):
        raise field_invalid("validator")
    if api_version == 0 and "private_key" in data and not isinstance(data["private_key"], bool):
        raise field_invalid("private_key")
    if api_version > 0 and "public_key" in data and not isinstance(data["public_key"], str):
        raise field_invalid("public_key")
    check_key_fields(api_version, data, operation)
    return {"name": name, "validator": data.get("validator")}


def client_body(row: dict, org: str, api_version: int) -> dict:
    body = {"name": row["name"], "clientname": row["name"], "validator": row["validator"], "orgname": org,
            "json_class": "Chef::ApiClient", "chef_type": "client"}
    if api_version == 0 and row.get("public_key") is not None:
        body["public_key"] = row["public_key"]
    return body


async def list_clients(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        await authz.require_container(ctx, "clients", "read", conn=conn)
        names = await store.names(conn, ctx.org_id)
    return 200, {name: ctx.org_url("clients", name) for name in names}


async def create_client(ctx: Ctx) -> tuple[int, object]:
    data = ctx.json()
    client = validate_client(ctx.api_version, data, None, "create")
    r = ctx.requestor
    await authz.require_container(ctx, "clients", "create")
    if client["validator"] and r.validator:
        raise forbidden("missing create permission")
    public, private = await initial_key(ctx.api_version, data)
    client_id = new_id()
    row = {"id": client_id, "org_id": ctx.org_id, "authz_id": new_id(), "name": client["name"],
           "validator": bool(client["validator"]), "admin": False}
    async with ctx.transaction() as conn:
        if not await store.insert(conn, row):
            raise ChefError(409, error_body("Client already exists"))
        if public is not None:
            await key_store.insert(conn, client_id, "default", public, None)
    name = client["name"]
    body: dict = {"uri": ctx.org_url("clients", name)}
    if ctx.api_version == 0:
        if public is not None:
            body["public_key"] = public
        if private is not None:
            body["private_key"] = private
    elif public is not None:
        body["chef_key"] = key_body(ctx, ["organizations", ctx.org_name, "clients", name], "default", public,
                                    None, private)
    return 201, body


async def _load(conn, ctx: Ctx) -> dict:
    name = ctx.params["client"]
    row = await store.get(conn, ctx.org_id, name)
    if row is None:
        raise ChefError(404, error_body(f"Cannot load client {name}"))
    return row


async def get_client(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await _load(conn, ctx)
        await authz.require(ctx, "read", object_id=row["authz_id"], conn=conn)
    return 200, client_body(row, ctx.org_name, ctx.api_version)


async def update_client(ctx: Ctx) -> tuple[int, object]:
    data = ctx.json()
    async with ctx.transaction() as conn:
        row = await _load(conn, ctx)
        await authz.require(ctx, "update", object_id=row["authz_id"], conn=conn)
        client = validate_client(ctx.api_version, data, row["name"], "update")
        validator = row["validator"] if client["validator"] is None else client["validator"]
        if not await store.update(conn, row["id"], client["name"], validator):
            raise ChefError(409, error_body("Client already exists"))
        private = public = None
        if ctx.api_version == 0:
            if data.get("private_key") is True:
                public, private = await keylib.new_key_pair()
            elif data.get("public_key") is not None:
                public = data["public_key"]
            if public is not None:
                await key_store.upsert_default(conn, row["id"], public)
    # erchef answers the request's body as stored; v0 adds the key and whether a private key was made
    body = {**data, "name": client["name"], "clientname": client["name"], "validator": validator}
    if ctx.api_version == 0:
        body["public_key"] = public or row.get("public_key")
        body["private_key"] = private if private is not None else False
    return (201 if client["name"] != row["name"] else 200), body


async def delete_client(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await _load(conn, ctx)
        await authz.require(ctx, "delete", object_id=row["authz_id"], conn=conn)
        await store.delete(conn, row["id"])
    return 200, client_body(row, ctx.org_name, ctx.api_version)
