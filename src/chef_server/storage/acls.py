"""ACE rows (object authz id, permission, member authz id): the one-query check, reading and writing ACLs."""

from __future__ import annotations

import psycopg

PERMS = ("create", "read", "update", "delete", "grant")

# The requestor's effective ids: itself and every group it is in, through nested groups (walked upwards from
# the member by the group_members_member index).
# Each step joins groups by primary key, so the walk touches only the requestor's groups.
_EFFECTIVE = """
WITH RECURSIVE g(id, authz_id) AS (
    SELECT gr.id, gr.authz_id FROM group_members m JOIN groups gr ON gr.id = m.group_id
     WHERE m.member_type = %(type)s AND m.member_id = %(id)s
    UNION
    SELECT gr.id, gr.authz_id FROM g JOIN group_members m ON m.member_type = 'group' AND m.member_id = g.id
      JOIN groups gr ON gr.id = m.group_id
), me(authz_id) AS (
    SELECT %(me)s::text UNION ALL SELECT authz_id FROM g
)"""

# One round trip per check: the requestor's effective ids and the object's ACEs naming any of them.
_CHECK = _EFFECTIVE + """, obj AS ({target})
SELECT (SELECT authz_id FROM obj) AS object,
       (SELECT array_agg(authz_id) FROM me) AS effective,
       (SELECT COALESCE(json_object_agg(perm, members), '{{}}') FROM (
            SELECT a.perm, array_agg(a.member) AS members FROM aces a
             WHERE a.authz_id = (SELECT authz_id FROM obj) AND a.member IN (SELECT authz_id FROM me)
             GROUP BY a.perm) p) AS aces
"""
CHECK_OBJECT = _CHECK.format(target="SELECT %(object)s::text AS authz_id")
CHECK_CONTAINER = _CHECK.format(target="SELECT authz_id FROM containers WHERE org_id = %(org)s AND name = %(name)s")
CHECK_ORG = _CHECK.format(target="SELECT authz_id FROM orgs WHERE id = %(org)s")
# Objects named in the URL whose handlers load versions, not the object row: by table, org and name.
CHECK_NAMED = {table: _CHECK.format(target=f"SELECT authz_id FROM {table} WHERE org_id = %(org)s AND name = %(name)s")
               for table in ("cookbooks", "cookbook_artifacts", "policies", "policy_groups")}

READABLE = _EFFECTIVE + """
SELECT DISTINCT a.authz_id FROM aces a
 WHERE a.authz_id = ANY(%(objects)s) AND a.perm = 'read' AND a.member IN (SELECT authz_id FROM me)
"""


def _subject(requestor) -> dict:
    return {"type": requestor.type, "id": requestor.id, "me": requestor.authz_id}


async def check(conn: psycopg.AsyncConnection, requestor, *, object_id: str | None = None,
                org_id: str | None = None, container: str | None = None, table: str | None = None,
                name: str | None = None) -> dict:
    """{"object": authz id or None, "effective": [ids], "aces": {perm: [ids of the requestor's]}} for an object
    (by authz id), an object of `table` by name, an org's container (by name) or, with none, the org itself."""
    if table is not None:
        cur = await conn.execute(CHECK_NAMED[table], {**_subject(requestor), "org": org_id, "name": name})
    elif object_id is not None:
        cur = await conn.execute(CHECK_OBJECT, {**_subject(requestor), "object": object_id})
    elif container is None:
        cur = await conn.execute(CHECK_ORG, {**_subject(requestor), "org": org_id})
    else:
        cur = await conn.execute(CHECK_CONTAINER, {**_subject(requestor), "org": org_id, "name": container})
    return await cur.fetchone()


async def readable(conn: psycopg.AsyncConnection, requestor, object_ids: list[str]) -> set[str]:
    """The authz ids among `object_ids` the requestor may read (search filters its rows with this)."""
    cur = await conn.execute(READABLE, {**_subject(requestor), "objects": object_ids})
    return {row["authz_id"] for row in await cur.fetchall()}


# Members of an object's ACL by permission, named as erchef names them: users, the org's clients, the org's
# groups by name, server-wide groups as "::name" and other orgs' groups as "org::name".
_READ = """
SELECT a.perm, u.username AS user, c.name AS client,
       CASE WHEN g.org_id = %(org)s THEN g.name WHEN g.org_id IS NULL THEN '::' || g.name
            ELSE o.name || '::' || g.name END AS group
  FROM aces a
  LEFT JOIN users u ON u.authz_id = a.member
  LEFT JOIN clients c ON c.authz_id = a.member
  LEFT JOIN groups g ON g.authz_id = a.member
  LEFT JOIN orgs o ON o.id = g.org_id
 WHERE a.authz_id = %(object)s
 ORDER BY 2, 3, 4
"""


async def read(conn: psycopg.AsyncConnection, object_id: str, org_id: str | None) -> dict:
    """{perm: {"users": [...], "clients": [...], "groups": [...]}} for every permission."""
    acl = {perm: {"users": [], "clients": [], "groups": []} for perm in PERMS}
    cur = await conn.execute(_READ, {"object": object_id, "org": org_id})
    for row in await cur.fetchall():
        for kind in ("user", "client", "group"):
            if row[kind] is not None:
                acl[row["perm"]][kind + "s"].append(row[kind])
    return acl


async def replace(conn: psycopg.AsyncConnection, object_id: str, perm: str, members: list[str]) -> None:
    """Make `members` (authz ids) the whole list of `perm` on the object."""
    await conn.execute("DELETE FROM aces WHERE authz_id = %s AND perm = %s", (object_id, perm))
    await conn.execute("INSERT INTO aces (authz_id, perm, member) SELECT %s, %s, unnest(%s::text[]) "
                       "ON CONFLICT DO NOTHING", (object_id, perm, members))


async def grant(conn: psycopg.AsyncConnection, object_id: str, perms: tuple[str, ...], member: str) -> None:
    await conn.execute("INSERT INTO aces (authz_id, perm, member) SELECT %s, unnest(%s::text[]), %s "
                       "ON CONFLICT DO NOTHING", (object_id, list(perms), member))


async def users_by_name(conn: psycopg.AsyncConnection, names: list[str]) -> dict[str, str]:
    cur = await conn.execute("SELECT username, authz_id FROM users WHERE username = ANY(%s)", (names,))
    return {row["username"]: row["authz_id"] for row in await cur.fetchall()}


async def clients_by_name(conn: psycopg.AsyncConnection, org_id: str | None, names: list[str]) -> dict[str, str]:
    cur = await conn.execute("SELECT name, authz_id FROM clients WHERE org_id = %s AND name = ANY(%s)",
                             (org_id, names))
    return {row["name"]: row["authz_id"] for row in await cur.fetchall()}


async def groups_by_name(conn: psycopg.AsyncConnection, org_id: str | None, names: list[str]) -> dict[str, str]:
    """Authz ids of groups named as _READ names them (local, "::global", "org::group")."""
    cur = await conn.execute(
        "SELECT CASE WHEN g.org_id = %(org)s THEN g.name WHEN g.org_id IS NULL THEN '::' || g.name "
        "ELSE o.name || '::' || g.name END AS name, g.authz_id FROM groups g LEFT JOIN orgs o ON o.id = g.org_id "
        "WHERE g.name = ANY(%(bare)s)", {"org": org_id, "bare": [n.rsplit("::", 1)[-1] for n in names]})
    found = {row["name"]: row["authz_id"] for row in await cur.fetchall()}
    return {name: found[name] for name in names if name in found}


async def org_member_names(conn: psycopg.AsyncConnection, org_id: str, names: list[str]) -> set[str]:
    """The names that are users of the org, or the superuser (a member of no org but in most ACLs, as erchef)."""
    cur = await conn.execute("SELECT u.username FROM users u WHERE u.username = ANY(%s) AND (u.superuser OR EXISTS "
                             "(SELECT 1 FROM org_user_associations a WHERE a.org_id = %s AND a.user_id = u.id))",
                             (names, org_id))
    return {row["username"] for row in await cur.fetchall()}
