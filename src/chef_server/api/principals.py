"""/organizations/O/principals/NAME: unsigned; a user and a client may share a name (v1+ lists both)."""

from __future__ import annotations

from ..context import Ctx
from ..errors import ChefError

QUERY = """
WITH o AS (SELECT id FROM orgs WHERE name = %(org)s)
SELECT (SELECT id FROM o) AS org_id, p.* FROM (
    SELECT 'user' AS type, u.username AS name, u.authz_id,
           (SELECT public_key FROM keys WHERE owner_id = u.id AND key_name = 'default') AS public_key,
           EXISTS (SELECT 1 FROM org_user_associations a JOIN o ON a.org_id = o.id WHERE a.user_id = u.id)
               AS org_member
      FROM users u WHERE u.username = %(name)s
    UNION ALL
    SELECT 'client', c.name, c.authz_id,
           (SELECT public_key FROM keys WHERE owner_id = c.id AND key_name = 'default'), true
      FROM clients c JOIN o ON c.org_id = o.id WHERE c.name = %(name)s
) p RIGHT JOIN (SELECT 1) one ON true
"""


async def get_principal(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["name"]
    async with ctx.db.connection() as conn:
        cur = await conn.execute(QUERY, {"org": ctx.org_name, "name": name})
        rows = await cur.fetchall()
    if not rows or rows[0]["org_id"] is None:
        raise ChefError(404, {"error": f"Cannot find org {ctx.org_name}", "not_found": "org"})
    found = [{"name": r["name"], "type": r["type"], "public_key": r["public_key"], "authz_id": r["authz_id"],
              "org_member": r["org_member"]} for r in rows if r["name"] is not None]
    if not found:
        raise ChefError(404, {"error": f"Cannot find principal {name}", "not_found": "principal"})
    # erchef answers a client first when both exist (v0 has room for one)
    found.sort(key=lambda p: p["type"] != "client")
    return 200, (found[0] if ctx.api_version == 0 else {"principals": found})
