"""/users, /users/NAME, /users/NAME/organizations, /authenticate_user."""

from __future__ import annotations

import uuid

from .. import authz
from .. import keys as keylib
from ..context import Ctx
from ..errors import ChefError, bad_request, conflict, error_body
from ..passwords import check_password, hash_password
from ..storage import keys as key_store
from ..storage import users as store
from ..validation import EMAIL, USER_NAME, field_invalid, field_missing, optional_bool

# Free-form fields kept in serialized_object (erchef's JSON_SERIALIZABLE).
SERIALIZED = ("display_name", "first_name", "last_name", "middle_name", "city", "country", "twitter_account",
              "image_file_name")
_OPTIONAL_STRINGS = ("first_name", "last_name", "middle_name", "twitter_account", "city", "country",
                     "external_authentication_uid")


def new_id() -> str:
    return uuid.uuid4().hex


def user_name_of(data: dict) -> str:
    """erchef reads `name` first, then `username`; either must match the user-name pattern."""
    if "name" in data:
        if not isinstance(data["name"], str) or not USER_NAME.match(data["name"]):
            raise field_invalid("name")
        return data["name"]
    if "username" not in data:
        raise field_missing("username")
    if not isinstance(data["username"], str) or not USER_NAME.match(data["username"]):
        raise field_invalid("username")
    return data["username"]


def check_key_fields(api_version: int, data: dict, operation: str) -> None:
    """The key fields a user or client body may carry in this API version (erchef's chef_key_base)."""
    if api_version == 0:
        if data.get("public_key") is not None and data.get("private_key") is not True \
                and not keylib.valid_public_key(data["public_key"]):
            raise bad_request("Public Key must be a valid key.")
        return
    if operation == "update":
        if "private_key" in data:
            raise bad_request("Please use create_key: true instead of private_key: true")
        if "create_key" in data or "public_key" in data:
            raise bad_request("Since Server API v1, all keys must be updated via the keys endpoint. ")
        return
    if "private_key" in data:
        raise bad_request("Please use create_key: true instead of private_key: true")
    optional_bool(data, "create_key")
    if "public_key" in data and not keylib.valid_public_key(data["public_key"]):
        raise bad_request("Public Key must be a valid key.")
    if data.get("create_key") is True and "public_key" in data:
        raise bad_request("You must specify either create_key or public_key, but not both")


def validate_user(api_version: int, data: dict, operation: str, existing: dict | None = None) -> dict:
    """The user fields to store from a POST/PUT body, or erchef's 400 (pure)."""
    check_key_fields(api_version, data, operation)
    name = user_name_of(data)
    if "display_name" not in data:
        raise field_missing("display_name")
    for field in ("display_name", *_OPTIONAL_STRINGS):
        if field in data and not isinstance(data[field], str):
            raise field_invalid(field)
    password = data.get("password")
    if password is not None and (not isinstance(password, str) or len(password.encode()) < 6):
        raise bad_request("Password must have at least 6 characters")
    recovery = optional_bool(data, "recovery_authentication_enabled")
    external = data.get("external_authentication_uid")
    if external is None and existing is not None:
        external = existing.get("external_authentication_uid")
    email = data.get("email")
    if external is None:
        if email is None:
            raise field_missing("email")
        if not isinstance(email, str) or not EMAIL.match(email):
            raise bad_request("email must be valid")
        if operation == "create" and password is None:
            raise field_missing("password")
    elif email is not None and not isinstance(email, str):
        raise field_invalid("email")
    return {
        "username": name,
        "email": email.lower() if isinstance(email, str) else None,
        "external_authentication_uid": external,
        "recovery_authentication_enabled": bool(
            recovery if recovery is not None else (existing or {}).get("recovery_authentication_enabled", False)),
        "serialized_object": {k: data[k] for k in SERIALIZED if k in data},
        "password": password,
    }


def user_body(row: dict, api_version: int) -> dict:
    """The user as GET /users/NAME answers (v0 adds the default public key)."""
    body = {"username": row["username"], "email": row["email"] or ""}
    body.update({k: row["serialized_object"][k] for k in SERIALIZED if k in row["serialized_object"]})
    if api_version == 0:
        body["public_key"] = row.get("public_key")
    return body


def key_body(ctx: Ctx, owner_url: list[str], name: str, public_key: str, expires, private_key: str | None) -> dict:
    body = {"name": name, "public_key": public_key, "expiration_date": keylib.format_expiration(expires),
            "uri": ctx.url(*owner_url, "keys", name)}
    if private_key is not None:
        body["private_key"] = private_key
    return body


async def list_users(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        await authz.require_user_admin(ctx, "read", conn)
        if ctx.query.get("verbose") == "true":
            rows = await store.verbose_list(conn)
            return 200, {r["username"]: {"email": r["email"] or "",
                                         "first_name": r["serialized_object"].get("first_name", ""),
                                         "last_name": r["serialized_object"].get("last_name", ""),
                                         "display_name": r["serialized_object"].get("display_name", "")}
                         for r in rows}
        names = await store.names(conn, ctx.query.get("email"), ctx.query.get("external_authentication_uid"))
    return 200, {name: ctx.url("users", name) for name in names}


async def initial_key(api_version: int, data: dict) -> tuple[str | None, str | None]:
    """(public, private) key a new user or client starts with: v0 generates one unless given; v1 on create_key."""
    if api_version == 0:
        if data.get("public_key") is not None and data.get("private_key") is not True:
            return data["public_key"], None
        return await keylib.new_key_pair()
    if data.get("create_key") is True:
        return await keylib.new_key_pair()
    return data.get("public_key"), None


async def create_user(ctx: Ctx) -> tuple[int, object]:
    if not ctx.requestor.superuser:
        async with ctx.db.connection() as conn:
            await authz.require_user_admin(ctx, "create", conn)
    data = ctx.json()
    user = validate_user(ctx.api_version, data, "create")
    public, private = await initial_key(ctx.api_version, data)
    user_id = new_id()
    row = {**user, "id": user_id, "authz_id": new_id(), "superuser": False,
           "hashed_password": await hash_password(user["password"]) if user["password"] else None}
    async with ctx.transaction() as conn:
        if not await store.insert(conn, row):
            raise conflict("Username or email address already in use.")
        if public is not None:
            await key_store.insert(conn, user_id, "default", public, None)
    name = user["username"]
    body: dict = {"uri": ctx.url("users", name)}
    if ctx.api_version == 0:
        if private is not None:
            body["private_key"] = private
    elif public is not None:
        body["chef_key"] = key_body(ctx, ["users", name], "default", public, None, private)
    return 201, body


async def _load(conn, name: str) -> dict:
    row = await store.get_with_default_key(conn, name)
    if row is None:
        raise ChefError(404, {"error": f"Could not find user {name}"})
    return row


async def may_read_user(conn, ctx: Ctx, row: dict) -> bool:
    """The user itself, the superuser, server admins, and users of the target's orgs read a user."""
    r = ctx.requestor
    return r.superuser or authz.is_self(r, row["username"]) or (
        r.type == "user" and (await store.readable_by(conn, row["id"], r.id)
                              or await store.is_server_admin(conn, r.id)))


async def get_user(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["user"]
    async with ctx.db.connection() as conn:
        row = await _load(conn, name)
        if not await may_read_user(conn, ctx, row):
            authz.deny("read")
    return 200, user_body(row, ctx.api_version)


async def update_user(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["user"]
    data = ctx.json()
    async with ctx.transaction() as conn:
        row = await _load(conn, name)
        await authz.require_user_admin(ctx, "update", conn, row)
        user = validate_user(ctx.api_version, data, "update", row)
        if ("external_authentication_uid" in data or "recovery_authentication_enabled" in data) \
                and not ctx.superuser:
            authz.deny("update")
        if user["email"] is not None and user["email"] != (row["email"] or None) \
                and await store.email_taken(conn, user["email"], row["id"]):
            raise conflict("Username or email address already in use.")
        new_name = user["username"]
        if new_name != name and await store.get(conn, new_name) is not None:
            raise conflict(f"User '{new_name}' already exists")
        serialized = {**row["serialized_object"], **user["serialized_object"]}
        hashed = await hash_password(user["password"]) if user["password"] else row["hashed_password"]
        await store.update(conn, row["id"], {**user, "serialized_object": serialized, "hashed_password": hashed})
        private = None
        if ctx.api_version == 0:
            if data.get("private_key") is True:
                public, private = await keylib.new_key_pair()
                await key_store.upsert_default(conn, row["id"], public)
            elif data.get("public_key") is not None:
                await key_store.upsert_default(conn, row["id"], data["public_key"])
    body: dict = {"uri": ctx.url("users", new_name)}
    if private is not None:
        body["private_key"] = private
    return (201 if new_name != name else 200), body


async def delete_user(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["user"]
    async with ctx.transaction() as conn:
        row = await _load(conn, name)
        await authz.require_user_admin(ctx, "delete", conn, row)
        await store.delete(conn, row["id"])
    return 200, user_body(row, ctx.api_version)


async def user_orgs(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["user"]
    async with ctx.db.connection() as conn:
        row = await _load(conn, name)
        r = ctx.requestor
        if r.superuser or authz.is_self(r, name):
            orgs = await store.orgs_of(conn, row["id"])
        elif r.type == "user" and await store.readable_by(conn, row["id"], r.id):
            orgs = await store.common_orgs(conn, row["id"], r.id)
        else:
            authz.deny("read")
    return 200, [{"organization": {"name": o["name"], "full_name": o["full_name"], "guid": o["guid"]}}
                 for o in orgs]


async def authenticate_user(ctx: Ctx) -> tuple[int, object]:
    try:
        data = ctx.json()
    except ChefError:
        raise bad_request("invalid user authentication request") from None
    name, password = data.get("username"), data.get("password")
    if not (isinstance(name, str) and name and isinstance(password, str) and password):
        raise bad_request("invalid user authentication request")
    if name == ctx.settings.superuser_name:
        raise ChefError(403, error_body("missing create permission"))
    authz.require_superuser(ctx.requestor, "create")
    async with ctx.db.connection() as conn:
        row = await store.get(conn, name)
    if row is None or not await check_password(row["hashed_password"], password):
        raise ChefError(401, error_body("Failed to authenticate: Username and password incorrect"))
    return 200, {"status": "linked", "user": user_body(row, 1)}


async def system_recovery(ctx: Ctx) -> tuple[int, object]:
    """The superuser checks the password of a user allowed to recover the system (recovery_authentication_enabled)."""
    data = ctx.json()
    for field in ("username", "password"):
        if field not in data:
            raise field_missing(field)
        if not isinstance(data[field], str) or not data[field]:
            raise field_invalid(field)
    name, password = data["username"], data["password"]
    if name == ctx.settings.superuser_name:
        raise ChefError(403, error_body("missing create permission"))
    authz.require_superuser(ctx.requestor, "create")
    async with ctx.db.connection() as conn:
        row = await store.get(conn, name)
    if row is None or not row["recovery_authentication_enabled"]:
        raise ChefError(403, error_body("System recovery disabled for this user"))
    if not await check_password(row["hashed_password"], password):
        raise ChefError(401, error_body("Failed to authenticate: Username and password incorrect"))
    return 200, {**user_body(row, 1), "recovery_authentication_enabled": True}
