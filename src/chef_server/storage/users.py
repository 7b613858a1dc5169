"""Users and their org memberships in PostgreSQL."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from .schema_authz import SERVER_ADMINS

_COLUMNS = ("id, authz_id, username, email, external_authentication_uid, recovery_authentication_enabled, "
            "superuser, serialized_object, hashed_password")


async def get(conn: psycopg.AsyncConnection, username: str) -> dict | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM users WHERE username = %s", (username,))
    return await cur.fetchone()


async def get_with_default_key(conn: psycopg.AsyncConnection, username: str) -> dict | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS}, (SELECT public_key FROM keys WHERE owner_id = users.id AND key_name = 'default') "
        "AS public_key FROM users WHERE username = %s", (username,))
    return await cur.fetchone()


async def insert(conn: psycopg.AsyncConnection, user: dict) -> bool:
    """Insert a user; False when the name or email is taken."""
    cur = await conn.execute(
        "INSERT INTO users (id, authz_id, username, email, external_authentication_uid, "
        "recovery_authentication_enabled, superuser, serialized_object, hashed_password) "
        "VALUES (%(id)s, %(authz_id)s, %(username)s, %(email)s, %(external_authentication_uid)s, "
        "%(recovery_authentication_enabled)s, %(superuser)s, %(serialized_object)s, %(hashed_password)s) "
        "ON CONFLICT DO NOTHING", {**user, "serialized_object": Jsonb(user["serialized_object"])})
    return cur.rowcount == 1


async def update(conn: psycopg.AsyncConnection, user_id: str, user: dict) -> None:
    await conn.execute(
        "UPDATE users SET username = %(username)s, email = %(email)s, "
        "external_authentication_uid = %(external_authentication_uid)s, "
        "recovery_authentication_enabled = %(recovery_authentication_enabled)s, "
        "serialized_object = %(serialized_object)s, hashed_password = %(hashed_password)s, updated_at = now() "
        "WHERE id = %(id)s", {**user, "id": user_id, "serialized_object": Jsonb(user["serialized_object"])})


async def delete(conn: psycopg.AsyncConnection, user_id: str) -> None:
    await conn.execute("DELETE FROM keys WHERE owner_id = %s", (user_id,))
    await conn.execute("DELETE FROM group_members WHERE member_type = 'user' AND member_id = %s", (user_id,))
    await conn.execute("DELETE FROM users WHERE id = %s", (user_id,))


async def names(conn: psycopg.AsyncConnection, email: str | None = None, external_uid: str | None = None) -> list[str]:
    clauses, args = [], []
    if email is not None:
        clauses.append("lower(email) = lower(%s)")
        args.append(email)
    if external_uid is not None:
        clauses.append("external_authentication_uid = %s")
        args.append(external_uid)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    cur = await conn.execute(f"SELECT username FROM users{where} ORDER BY username", args)
    return [row["username"] for row in await cur.fetchall()]


async def verbose_list(conn: psycopg.AsyncConnection) -> list[dict]:
    cur = await conn.execute("SELECT username, email, serialized_object FROM users ORDER BY username")
    return await cur.fetchall()


async def email_taken(conn: psycopg.AsyncConnection, email: str, except_id: str | None = None) -> bool:
    cur = await conn.execute("SELECT 1 FROM users WHERE lower(email) = lower(%s) AND id IS DISTINCT FROM %s",
                             (email, except_id))
    return await cur.fetchone() is not None


async def orgs_of(conn: psycopg.AsyncConnection, user_id: str) -> list[dict]:
    cur = await conn.execute(
        "SELECT o.name, o.full_name, o.id AS guid FROM org_user_associations a JOIN orgs o ON o.id = a.org_id "
        "WHERE a.user_id = %s ORDER BY o.name", (user_id,))
    return await cur.fetchall()


async def readable_by(conn: psycopg.AsyncConnection, target_id: str, requestor_id: str) -> bool:
    """Can a user read another? Yes through an org of the target whose users or admins group holds the reader
    (the org's read-access group is on every member's read ACL)."""
    cur = await conn.execute(
        "SELECT 1 FROM org_user_associations a JOIN groups g ON g.org_id = a.org_id AND g.name IN ('users', 'admins') "
        "JOIN group_members m ON m.group_id = g.id AND m.member_type = 'user' AND m.member_id = %s "
        "WHERE a.user_id = %s LIMIT 1", (requestor_id, target_id))
    return await cur.fetchone() is not None


async def common_orgs(conn: psycopg.AsyncConnection, user_id: str, other_id: str) -> list[dict]:
    cur = await conn.execute(
        "SELECT o.name, o.full_name, o.id AS guid FROM org_user_associations a JOIN orgs o ON o.id = a.org_id "
        "JOIN org_user_associations b ON b.org_id = a.org_id AND b.user_id = %s "
        "WHERE a.user_id = %s ORDER BY o.name", (other_id, user_id))
    return await cur.fetchall()


async def is_server_admin(conn: psycopg.AsyncConnection, user_id: str) -> bool:
    """Is the user in the server-wide ::server-admins group (chef-server-ctl grant-server-admin-permissions)?"""
    cur = await conn.execute(f"SELECT 1 FROM group_members WHERE group_id = {SERVER_ADMINS} "
                             "AND member_type = 'user' AND member_id = %s", (user_id,))
    return await cur.fetchone() is not None
