"""Who is asking: the one query that finds an org and every user or client of a name, with their keys."""

from __future__ import annotations

import psycopg

# Groups of the org an actor is in, directly or through nested groups of the same org (names only mean
# something within their org).
_GROUPS = """
COALESCE((WITH RECURSIVE g(id, name) AS (
    SELECT gr.id, gr.name FROM group_members m JOIN groups gr ON gr.id = m.group_id JOIN o ON gr.org_id = o.id
     WHERE m.member_type = {type} AND m.member_id = {id}
    UNION
    SELECT gr.id, gr.name FROM group_members m JOIN groups gr ON gr.id = m.group_id JOIN g ON m.member_id = g.id
      JOIN o ON gr.org_id = o.id
     WHERE m.member_type = 'group'
) SELECT json_agg(name) FROM g), '[]')"""

_KEYS = """COALESCE((SELECT json_agg(json_build_array(k.key_name, k.public_key, extract(epoch FROM k.expires_at)))
                     FROM keys k WHERE k.owner_id = {id}), '[]')"""

# One round trip: the org (if any) and every principal of that name — the user, and the org's client —
# with each key (name, PEM, expiry in epoch seconds or NULL), org membership and the org's groups it is in.
LOOKUP = f"""
WITH o AS (SELECT id FROM orgs WHERE name = %(org)s)
SELECT (SELECT id FROM o) AS org_id, COALESCE((SELECT json_agg(p) FROM (
    SELECT 'user' AS type, u.id, u.authz_id, u.superuser, false AS validator,
           EXISTS (SELECT 1 FROM org_user_associations a JOIN o ON a.org_id = o.id WHERE a.user_id = u.id) AS member,
           {_GROUPS.format(type="'user'", id="u.id")} AS groups,
           {_KEYS.format(id="u.id")} AS keys
      FROM users u WHERE u.username = %(name)s
    UNION ALL
    SELECT 'client', c.id, c.authz_id, false, c.validator, true,
           {_GROUPS.format(type="'client'", id="c.id")},
           {_KEYS.format(id="c.id")}
      FROM clients c JOIN o ON c.org_id = o.id WHERE c.name = %(name)s
) p), '[]') AS principals
"""


async def lookup(conn: psycopg.AsyncConnection, org: str | None, name: str) -> dict:
    """{"org_id": str|None, "principals": [...]} for requests signed as `name` (in `org`, if any)."""
    cur = await conn.execute(LOOKUP, {"org": org, "name": name})
    return await cur.fetchone()
