"""Clients of an organization in PostgreSQL."""

from __future__ import annotations

import psycopg

_COLUMNS = "c.id, c.authz_id, c.name, c.validator, c.admin"


async def get(conn: psycopg.AsyncConnection, org_id: str, name: str) -> dict | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS}, (SELECT public_key FROM keys WHERE owner_id = c.id AND key_name = 'default') "
        "AS public_key FROM clients c WHERE c.org_id = %s AND c.name = %s", (org_id, name))
    return await cur.fetchone()


async def names(conn: psycopg.AsyncConnection, org_id: str) -> list[str]:
    cur = await conn.execute("SELECT name FROM clients WHERE org_id = %s ORDER BY name", (org_id,))
    return [row["name"] for row in await cur.fetchall()]


async def insert(conn: psycopg.AsyncConnection, client: dict) -> bool:
    """Insert a client and put it in the org's clients group; False when the name is taken."""
    cur = await conn.execute(
        "INSERT INTO clients (id, org_id, authz_id, name, validator, admin) "
        "VALUES (%(id)s, %(org_id)s, %(authz_id)s, %(name)s, %(validator)s, %(admin)s) ON CONFLICT DO NOTHING",
        client)
    if cur.rowcount != 1:
        return False
    await conn.execute(
        "INSERT INTO group_members (group_id, member_type, member_id) "
        "SELECT id, 'client', %s FROM groups WHERE org_id = %s AND name = 'clients' ON CONFLICT DO NOTHING",
        (client["id"], client["org_id"]))
    return True


async def update(conn: psycopg.AsyncConnection, client_id: str, name: str, validator: bool) -> bool:
    """Rename or change a client; False when the new name is taken."""
    try:
        async with conn.transaction():
            await conn.execute("UPDATE clients SET name = %s, validator = %s WHERE id = %s",
                               (name, validator, client_id))
    except psycopg.errors.UniqueViolation:
        return False
    return True


async def delete(conn: psycopg.AsyncConnection, client_id: str) -> None:
    await conn.execute("DELETE FROM keys WHERE owner_id = %s", (client_id,))
    await conn.execute("DELETE FROM group_members WHERE member_type = 'client' AND member_id = %s", (client_id,))
    await conn.execute("DELETE FROM clients WHERE id = %s", (client_id,))
