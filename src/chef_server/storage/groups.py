"""Groups of an organization and their members (users, clients, groups) in PostgreSQL."""

from __future__ import annotations

import uuid

import psycopg

# A group's members by name; groups outside the org as ACLs name them ("::global", "org::group").
MEMBERS = """
SELECT m.member_type AS type, COALESCE(u.username, c.name, CASE WHEN g2.org_id = %(org)s THEN g2.name
       WHEN g2.org_id IS NULL THEN '::' || g2.name ELSE o.name || '::' || g2.name END) AS name
  FROM group_members m
  LEFT JOIN users u ON m.member_type = 'user' AND u.id = m.member_id
  LEFT JOIN clients c ON m.member_type = 'client' AND c.id = m.member_id
  LEFT JOIN groups g2 ON m.member_type = 'group' AND g2.id = m.member_id
  LEFT JOIN orgs o ON o.id = g2.org_id
 WHERE m.group_id = %(group)s ORDER BY 2
"""


async def get(conn: psycopg.AsyncConnection, org_id: str, name: str) -> dict | None:
    """The group with its members' names by type, or None."""
    cur = await conn.execute("SELECT id, authz_id, name FROM groups WHERE org_id = %s AND name = %s", (org_id, name))
    group = await cur.fetchone()
    if group is None:
        return None
    cur = await conn.execute(MEMBERS, {"group": group["id"], "org": org_id})
    members: dict[str, list[str]] = {"user": [], "client": [], "group": []}
    for row in await cur.fetchall():
        if row["name"] is not None:
            members[row["type"]].append(row["name"])
    return {**group, "members": members}


async def names(conn: psycopg.AsyncConnection, org_id: str) -> list[str]:
    cur = await conn.execute("SELECT name FROM groups WHERE org_id = %s ORDER BY name", (org_id,))
    return [row["name"] for row in await cur.fetchall()]


async def resolve(conn: psycopg.AsyncConnection, org_id: str, kind: str, names_: list[str]) -> dict[str, str]:
    """Ids of the named users (any), clients (of the org) or groups (of the org), by name."""
    if kind == "user":
        cur = await conn.execute("SELECT username AS name, id FROM users WHERE username = ANY(%s)", (names_,))
    elif kind == "client":
        cur = await conn.execute("SELECT name, id FROM clients WHERE org_id = %s AND name = ANY(%s)",
                                 (org_id, names_))
    else:  # the org's groups by name, server-wide ones as "::name", other orgs' as "org::name"
        cur = await conn.execute(
            "SELECT * FROM (SELECT CASE WHEN g.org_id = %(org)s THEN g.name WHEN g.org_id IS NULL THEN '::' || g.name "
            "ELSE o.name || '::' || g.name END AS name, g.id FROM groups g LEFT JOIN orgs o ON o.id = g.org_id "
            "WHERE g.name = ANY(%(bare)s)) n WHERE n.name = ANY(%(names)s)",
            {"org": org_id, "bare": [n.rsplit("::", 1)[-1] for n in names_], "names": names_})
    return {row["name"]: row["id"] for row in await cur.fetchall()}


async def set_members(conn: psycopg.AsyncConnection, group_id: str, members: list[tuple[str, str]]) -> None:
    """Replace the group's members with (type, id) pairs."""
    await conn.execute("DELETE FROM group_members WHERE group_id = %s", (group_id,))
    for kind, member_id in members:
        await conn.execute("INSERT INTO group_members (group_id, member_type, member_id) VALUES (%s, %s, %s) "
                           "ON CONFLICT DO NOTHING", (group_id, kind, member_id))


async def insert(conn: psycopg.AsyncConnection, org_id: str, name: str) -> bool:
    """A new empty group; False when the name is taken (its ACL comes from the groups container: a trigger)."""
    cur = await conn.execute("INSERT INTO groups (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT DO NOTHING", (uuid.uuid4().hex, org_id, uuid.uuid4().hex, name))
    return cur.rowcount == 1


async def rename(conn: psycopg.AsyncConnection, group_id: str, name: str) -> bool:
    """False when the new name is taken."""
    cur = await conn.execute("UPDATE groups g SET name = %s WHERE id = %s AND NOT EXISTS "
                             "(SELECT 1 FROM groups o WHERE o.org_id = g.org_id AND o.name = %s)",
                             (name, group_id, name))
    return cur.rowcount == 1


async def delete(conn: psycopg.AsyncConnection, group_id: str) -> None:
    """Remove a group, its memberships and its place in other groups (and, by trigger, in ACLs)."""
    await conn.execute("DELETE FROM group_members WHERE member_type = 'group' AND member_id = %s", (group_id,))
    await conn.execute("DELETE FROM groups WHERE id = %s", (group_id,))
