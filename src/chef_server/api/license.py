"""/license: the node count (all organizations) against erchef's default node license."""

from __future__ import annotations

from ..context import Ctx
from ..storage import objects

NODE_LICENSE = 25
UPGRADE_URL = "https://www.chef.io/contact/on-premises-simple"


def license_body(node_count: int) -> dict:
    """What /license answers when `node_count` nodes are stored: the limit is exceeded only above it."""
    return {"limit_exceeded": node_count > NODE_LICENSE, "node_license": NODE_LICENSE,
            "node_count": node_count, "upgrade_url": UPGRADE_URL}


async def get_license(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        return 200, license_body(await objects.count_nodes(conn))
