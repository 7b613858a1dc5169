"""Who is asking: the one query that finds an org and every user or client of a name, with their keys."""

from __future__ import annotations

import psycopg

# One round trip: the org (if any) and every principal of that name — the user, and the org's client —
# with each key, its expiry (epoch seconds, NULL = never), org membership and admin-group membership.
LOOKUP = """
WITH o AS (SELECT id FROM orgs WHERE name = %(org)s)
SELECT (SELECT id FROM o) AS org_id, COALESCE((SELECT json_agg(p) FROM (
    SELECT 'user' AS type, u.id, u.authz_id, u.superuser, false AS validator,
           EXISTS (SELECT 1 FROM org_user_associations a JOIN o ON a.org_id = o.id WHERE a.user_id = u.id) AS member,
           EXISTS (SELECT 1 FROM groups g JOIN o ON g.org_id = o.id JOIN group_members m ON m.group_id = g.id
                   WHERE g.name = 'admins' AND m.member_type = 'user' AND m.member_id = u.id) AS org_admin,
           COALESCE((SELECT json_agg(json_build_array(k.key_name, k.public_key, extract(epoch FROM k.expires_at)))
                     FROM keys k WHERE k.owner_id = u.id), '[]') AS keys
      FROM users u WHERE u.username = %(name)s
    UNION ALL
    SELECT 'client', c.id, c.authz_id, false, c.validator, true,
           EXISTS (SELECT 1 FROM groups g JOIN group_members m ON m.group_id = g.id
                   WHERE g.org_id = c.org_id AND g.name = 'admins' AND m.member_type = 'client' AND m.member_id = c.id),
           COALESCE((SELECT json_agg(json_build_array(k.key_name, k.public_key, extract(epoch FROM k.expires_at)))
                     FROM keys k WHERE k.owner_id = c.id), '[]')
      FROM clients c JOIN o ON c.org_id = o.id WHERE c.name = %(name)s
) p), '[]') AS principals
"""


async def lookup(conn: psycopg.AsyncConnection, org: str | None, name: str) -> dict:
    """{"org_id": str|None, "principals": [...]} for requests signed as `name` (in `org`, if any)."""
    cur = await conn.execute(LOOKUP, {"org": org, "name": name})
    return await cur.fetchone()
