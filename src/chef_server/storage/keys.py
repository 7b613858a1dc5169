"""Public keys of users and clients in PostgreSQL."""

from __future__ import annotations

import datetime

import psycopg


async def insert(conn: psycopg.AsyncConnection, owner_id: str, name: str, public_key: str,
                 expires_at: datetime.datetime | None) -> bool:
    """Add a key; False when the owner already has a key of that name."""
    cur = await conn.execute(
        "INSERT INTO keys (owner_id, key_name, public_key, expires_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING", (owner_id, name, public_key, expires_at))
    return cur.rowcount == 1


async def list_for(conn: psycopg.AsyncConnection, owner_id: str) -> list[dict]:
    cur = await conn.execute(
        "SELECT key_name, public_key, expires_at, (expires_at IS NOT NULL AND expires_at <= now()) AS expired "
        "FROM keys WHERE owner_id = %s ORDER BY key_name", (owner_id,))
    return await cur.fetchall()


async def get(conn: psycopg.AsyncConnection, owner_id: str, name: str) -> dict | None:
    cur = await conn.execute("SELECT key_name, public_key, expires_at FROM keys WHERE owner_id = %s AND key_name = %s",
                             (owner_id, name))
    return await cur.fetchone()


async def update(conn: psycopg.AsyncConnection, owner_id: str, name: str, new_name: str, public_key: str,
                 expires_at: datetime.datetime | None) -> bool:
    """Rewrite a key; False when `new_name` is another key's name."""
    try:
        async with conn.transaction():
            await conn.execute("UPDATE keys SET key_name = %s, public_key = %s, expires_at = %s "
                               "WHERE owner_id = %s AND key_name = %s",
                               (new_name, public_key, expires_at, owner_id, name))
    except psycopg.errors.UniqueViolation:
        return False
    return True


async def upsert_default(conn: psycopg.AsyncConnection, owner_id: str, public_key: str) -> None:
    """The v0 way of changing a key: replace the key named "default"."""
    await conn.execute(
        "INSERT INTO keys (owner_id, key_name, public_key, expires_at) VALUES (%s, 'default', %s, NULL) "
        "ON CONFLICT (owner_id, key_name) DO UPDATE SET public_key = EXCLUDED.public_key, expires_at = NULL",
        (owner_id, public_key))


async def delete(conn: psycopg.AsyncConnection, owner_id: str, name: str) -> bool:
    cur = await conn.execute("DELETE FROM keys WHERE owner_id = %s AND key_name = %s", (owner_id, name))
    return cur.rowcount == 1
