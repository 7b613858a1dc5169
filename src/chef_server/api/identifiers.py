"""/organizations/O/TYPE/NAME/_identifiers: an object's internal ids, unsigned (erchef's internal API).

erchef maps only nodes; any other TYPE is an unsupported object type.
"""

from __future__ import annotations

from ..context import Ctx
from ..errors import ChefError, error_body
from ..storage import objects, orgs


async def get_identifiers(ctx: Ctx) -> tuple[int, object]:
    obj_type, name = ctx.params["type"], ctx.params["name"]
    async with ctx.db.connection() as conn:
        org = await orgs.get(conn, ctx.org_name)
        if org is None:
            raise ChefError(404, error_body(f"organization '{ctx.org_name}' does not exist."))
        if obj_type != "nodes":
            raise ChefError(404, error_body(f"Unsupported object type: '{obj_type}'."))
        row = await objects.node_identifiers(conn, org["id"], name)
    if row is None:
        raise ChefError(404, error_body(f"No such '{obj_type}': '{name}'."))
    return 200, {"id": row["id"], "authz_id": row["authz_id"], "org_id": row["org_id"]}
