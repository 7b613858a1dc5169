"""An environment's cookbook pins, for the depsolver and the environment cookbook listings.

The environments table belongs to the objects area (nodes, roles, environments, data bags). Until it
exists in a database, `_default` is the only environment and pins nothing.
"""

from __future__ import annotations

import psycopg


async def pins(conn: psycopg.AsyncConnection, org_id: str, environment: str) -> dict[str, str] | None:
    """{cookbook: constraint} of the environment, or None when there is no such environment."""
    cur = await conn.execute("SELECT to_regclass('environments') IS NOT NULL AS present")
    if not (await cur.fetchone())["present"]:
        return {} if environment == "_default" else None
    cur = await conn.execute("SELECT serialized_object -> 'cookbook_versions' AS pins FROM environments "
                             "WHERE org_id = %s AND name = %s", (org_id, environment))
    row = await cur.fetchone()
    if row is None:
        return None
    return row["pins"] if isinstance(row["pins"], dict) else {}
