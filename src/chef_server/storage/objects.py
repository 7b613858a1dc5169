"""Nodes, roles, environments, data bags and their items in PostgreSQL.

Nodes, roles and environments share one shape (a name and the JSON as answered); `table` is one of
TABLES. Triggers (schema migration 100) queue every change for the search index in the same
transaction, so nothing here talks to search.
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg.types.json import Jsonb

TABLES = ("nodes", "roles", "environments")


def new_id() -> str:
    return uuid.uuid4().hex


def _node_columns(table: str, obj: dict) -> dict:
    if table != "nodes":
        return {}
    return {"environment": obj.get("chef_environment", "_default"), "policy_name": obj.get("policy_name"),
            "policy_group": obj.get("policy_group")}


async def get(conn: psycopg.AsyncConnection, table: str, org_id: str, name: str) -> dict | None:
    assert table in TABLES
    cur = await conn.execute(f"SELECT id, authz_id, name, created_by, serialized_object FROM {table} "
                             "WHERE org_id = %s AND name = %s", (org_id, name))
    return await cur.fetchone()


async def names(conn: psycopg.AsyncConnection, table: str, org_id: str) -> list[str]:
    assert table in TABLES
    cur = await conn.execute(f"SELECT name FROM {table} WHERE org_id = %s ORDER BY name", (org_id,))
    return [row["name"] for row in await cur.fetchall()]


async def node_names_in(conn: psycopg.AsyncConnection, org_id: str, environment: str) -> list[str]:
    cur = await conn.execute("SELECT name FROM nodes WHERE org_id = %s AND environment = %s ORDER BY name",
                             (org_id, environment))
    return [row["name"] for row in await cur.fetchall()]


async def node_identifiers(conn: psycopg.AsyncConnection, org_id: str, name: str) -> dict | None:
    """A node's id, authz_id and org_id, or None."""
    cur = await conn.execute("SELECT id, authz_id, org_id FROM nodes WHERE org_id = %s AND name = %s",
                             (org_id, name))
    return await cur.fetchone()


async def count_nodes(conn: psycopg.AsyncConnection) -> int:
    """The nodes of every organization (what /license counts)."""
    cur = await conn.execute("SELECT count(*) AS n FROM nodes")
    return (await cur.fetchone())["n"]


async def insert(conn: psycopg.AsyncConnection, table: str, org_id: str, obj: dict, created_by: str | None) -> bool:
    """Store a new object named `obj["name"]`; False when the name is taken."""
    assert table in TABLES
    extra = _node_columns(table, obj)
    columns = ", ".join(["id", "org_id", "name", "created_by", "serialized_object", *extra])
    values = ", ".join(["%s"] * (5 + len(extra)))
    cur = await conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING",
                             (new_id(), org_id, obj["name"], created_by, Jsonb(obj), *extra.values()))
    return cur.rowcount == 1


async def update(conn: psycopg.AsyncConnection, table: str, object_id: str, obj: dict) -> bool:
    """Replace an object (its name may change); False when the new name is taken."""
    assert table in TABLES
    extra = _node_columns(table, obj)
    sets = ", ".join(["name = %s", "serialized_object = %s", "updated_at = now()", *(f"{k} = %s" for k in extra)])
    try:
        async with conn.transaction():
            await conn.execute(f"UPDATE {table} SET {sets} WHERE id = %s",
                               (obj["name"], Jsonb(obj), *extra.values(), object_id))
    except psycopg.errors.UniqueViolation:
        return False
    return True


async def delete(conn: psycopg.AsyncConnection, table: str, object_id: str) -> None:
    assert table in TABLES
    await conn.execute(f"DELETE FROM {table} WHERE id = %s", (object_id,))


# --- data bags -----------------------------------------------------------------------------

async def bag(conn: psycopg.AsyncConnection, org_id: str, name: str) -> dict | None:
    cur = await conn.execute("SELECT id, authz_id, name, created_by FROM data_bags WHERE org_id = %s AND name = %s",
                             (org_id, name))
    return await cur.fetchone()


async def bag_names(conn: psycopg.AsyncConnection, org_id: str) -> list[str]:
    cur = await conn.execute("SELECT name FROM data_bags WHERE org_id = %s ORDER BY name", (org_id,))
    return [row["name"] for row in await cur.fetchall()]


async def insert_bag(conn: psycopg.AsyncConnection, org_id: str, name: str, created_by: str | None) -> bool:
    cur = await conn.execute("INSERT INTO data_bags (id, org_id, name, created_by) VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT DO NOTHING", (new_id(), org_id, name, created_by))
    return cur.rowcount == 1


async def delete_bag(conn: psycopg.AsyncConnection, bag_id: str) -> None:
    """Delete a bag and (cascading) its items."""
    await conn.execute("DELETE FROM data_bags WHERE id = %s", (bag_id,))


async def item(conn: psycopg.AsyncConnection, org_id: str, bag_name: str, item_name: str) -> dict | None:
    cur = await conn.execute("SELECT id, serialized_object FROM data_bag_items "
                             "WHERE org_id = %s AND bag_name = %s AND item_name = %s", (org_id, bag_name, item_name))
    return await cur.fetchone()


async def item_names(conn: psycopg.AsyncConnection, org_id: str, bag_name: str) -> list[str]:
    cur = await conn.execute("SELECT item_name FROM data_bag_items WHERE org_id = %s AND bag_name = %s "
                             "ORDER BY item_name", (org_id, bag_name))
    return [row["item_name"] for row in await cur.fetchall()]


async def insert_item(conn: psycopg.AsyncConnection, org_id: str, bag_name: str, obj: dict) -> bool:
    cur = await conn.execute(
        "INSERT INTO data_bag_items (id, org_id, bag_name, item_name, serialized_object) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", (new_id(), org_id, bag_name, obj["id"], Jsonb(obj)))
    return cur.rowcount == 1


async def update_item(conn: psycopg.AsyncConnection, item_id: str, obj: dict) -> None:
    await conn.execute("UPDATE data_bag_items SET serialized_object = %s, updated_at = now() WHERE id = %s",
                       (Jsonb(obj), item_id))


async def delete_item(conn: psycopg.AsyncConnection, item_id: str) -> None:
    await conn.execute("DELETE FROM data_bag_items WHERE id = %s", (item_id,))
