"""Policies (named policyfile revisions) and policy groups (which revision of each policy) in PostgreSQL."""

from __future__ import annotations

import uuid

import orjson
import psycopg


async def list_policies(conn: psycopg.AsyncConnection, org_id: str, name: str | None = None) -> dict[str, list[str]]:
    """{policy name: [revision ids]} (a policy always has a revision)."""
    where, args = ("AND p.name = %s", (org_id, name)) if name is not None else ("", (org_id,))
    cur = await conn.execute(
        "SELECT p.name, r.revision_id FROM policies p JOIN policy_revisions r ON r.policy_id = p.id "
        f"WHERE p.org_id = %s {where} ORDER BY p.name, r.revision_id", args)
    out: dict[str, list[str]] = {}
    for row in await cur.fetchall():
        out.setdefault(row["name"], []).append(row["revision_id"])
    return out


async def list_groups(conn: psycopg.AsyncConnection, org_id: str, name: str | None = None) -> dict[str, dict]:
    """{group name: {policy name: revision id}}."""
    where, args = ("AND g.name = %s", (org_id, name)) if name is not None else ("", (org_id,))
    cur = await conn.execute(
        "SELECT g.name, p.name AS policy, r.revision_id FROM policy_groups g "
        "LEFT JOIN policy_group_revisions a ON a.policy_group_id = g.id "
        "LEFT JOIN policies p ON p.id = a.policy_id LEFT JOIN policy_revisions r ON r.id = a.policy_revision_id "
        f"WHERE g.org_id = %s {where} ORDER BY g.name, p.name", args)
    out: dict[str, dict] = {}
    for row in await cur.fetchall():
        policies = out.setdefault(row["name"], {})
        if row["policy"] is not None:
            policies[row["policy"]] = row["revision_id"]
    return out


async def delete_policy(conn: psycopg.AsyncConnection, org_id: str, name: str) -> None:
    await conn.execute("DELETE FROM policies WHERE org_id = %s AND name = %s", (org_id, name))


async def delete_group(conn: psycopg.AsyncConnection, org_id: str, name: str) -> None:
    await conn.execute("DELETE FROM policy_groups WHERE org_id = %s AND name = %s", (org_id, name))


async def get_revision(conn: psycopg.AsyncConnection, org_id: str, name: str, revision_id: str) -> dict | None:
    cur = await conn.execute(
        "SELECT r.id, r.policy_id, r.doc FROM policies p JOIN policy_revisions r ON r.policy_id = p.id "
        "WHERE p.org_id = %s AND p.name = %s AND r.revision_id = %s", (org_id, name, revision_id))
    row = await cur.fetchone()
    if row is not None:
        row["doc"] = orjson.loads(row["doc"])
    return row


async def groups_of_revision(conn: psycopg.AsyncConnection, revision_row_id: str) -> list[str]:
    cur = await conn.execute("SELECT g.name FROM policy_group_revisions a JOIN policy_groups g ON g.id = "
                             "a.policy_group_id WHERE a.policy_revision_id = %s ORDER BY a.assigned_at, g.name",
                             (revision_row_id,))
    return [row["name"] for row in await cur.fetchall()]


async def add_revision(conn: psycopg.AsyncConnection, org_id: str, name: str, doc: dict) -> tuple[str, bool]:
    """Create the policy if needed and the revision if new (inside a transaction); (revision row id, created)."""
    await conn.execute("INSERT INTO policies (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s) "
                       "ON CONFLICT (org_id, name) DO NOTHING", (uuid.uuid4().hex, org_id, uuid.uuid4().hex, name))
    cur = await conn.execute("SELECT id FROM policies WHERE org_id = %s AND name = %s FOR KEY SHARE", (org_id, name))
    policy_id = (await cur.fetchone())["id"]
    cur = await conn.execute(
        "INSERT INTO policy_revisions (id, policy_id, revision_id, doc) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (policy_id, revision_id) DO NOTHING RETURNING id",
        (uuid.uuid4().hex, policy_id, doc["revision_id"], orjson.dumps(doc).decode()))
    row = await cur.fetchone()
    if row is not None:
        return row["id"], True
    cur = await conn.execute("SELECT id FROM policy_revisions WHERE policy_id = %s AND revision_id = %s",
                             (policy_id, doc["revision_id"]))
    return (await cur.fetchone())["id"], False


async def delete_revision(conn: psycopg.AsyncConnection, row: dict) -> None:
    """Delete a revision (its group assignments go with it), and the policy when it was the last."""
    await conn.execute("DELETE FROM policy_revisions WHERE id = %s", (row["id"],))
    await conn.execute("DELETE FROM policies p WHERE id = %s AND NOT EXISTS "
                       "(SELECT 1 FROM policy_revisions r WHERE r.policy_id = p.id)", (row["policy_id"],))


async def get_assignment(conn: psycopg.AsyncConnection, org_id: str, group: str, policy: str) -> dict | None:
    cur = await conn.execute(
        "SELECT a.policy_group_id, a.policy_id, r.doc FROM policy_groups g "
        "JOIN policy_group_revisions a ON a.policy_group_id = g.id JOIN policies p ON p.id = a.policy_id "
        "JOIN policy_revisions r ON r.id = a.policy_revision_id "
        "WHERE g.org_id = %s AND g.name = %s AND p.name = %s", (org_id, group, policy))
    row = await cur.fetchone()
    if row is not None:
        row["doc"] = orjson.loads(row["doc"])
    return row


async def assign(conn: psycopg.AsyncConnection, org_id: str, group: str, revision_row_id: str) -> bool:
    """Point the group (created if needed) at this revision of its policy; True when newly assigned."""
    await conn.execute("INSERT INTO policy_groups (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s) "
                       "ON CONFLICT (org_id, name) DO NOTHING", (uuid.uuid4().hex, org_id, uuid.uuid4().hex, group))
    cur = await conn.execute(
        "INSERT INTO policy_group_revisions (policy_group_id, policy_id, policy_revision_id) "
        "SELECT g.id, r.policy_id, r.id FROM policy_groups g, policy_revisions r "
        "WHERE g.org_id = %s AND g.name = %s AND r.id = %s "
        "ON CONFLICT (policy_group_id, policy_id) DO UPDATE SET policy_revision_id = EXCLUDED.policy_revision_id "
        "RETURNING (xmax = 0) AS inserted", (org_id, group, revision_row_id))
    return (await cur.fetchone())["inserted"]


async def unassign(conn: psycopg.AsyncConnection, row: dict) -> None:
    await conn.execute("DELETE FROM policy_group_revisions WHERE policy_group_id = %s AND policy_id = %s",
                       (row["policy_group_id"], row["policy_id"]))
