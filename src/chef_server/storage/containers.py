"""An organization's containers (one per object type, and any made through /containers)."""

from __future__ import annotations

import uuid

import psycopg


async def names(conn: psycopg.AsyncConnection, org_id: str) -> list[str]:
    cur = await conn.execute("SELECT name FROM containers WHERE org_id = %s ORDER BY name", (org_id,))
    return [row["name"] for row in await cur.fetchall()]


async def get(conn: psycopg.AsyncConnection, org_id: str, name: str) -> dict | None:
    cur = await conn.execute("SELECT id, authz_id, name FROM containers WHERE org_id = %s AND name = %s",
                             (org_id, name))
    return await cur.fetchone()


async def insert(conn: psycopg.AsyncConnection, org_id: str, name: str) -> str | None:
    """A new container's authz id, or None when the name is taken."""
    authz_id = uuid.uuid4().hex
    cur = await conn.execute("INSERT INTO containers (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT DO NOTHING", (uuid.uuid4().hex, org_id, authz_id, name))
    return authz_id if cur.rowcount == 1 else None


async def delete(conn: psycopg.AsyncConnection, container_id: str) -> None:
    await conn.execute("DELETE FROM containers WHERE id = %s", (container_id,))
