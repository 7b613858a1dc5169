"""/license: what a server without a license limit answers (erchef's defaults)."""

from __future__ import annotations

from ..context import Ctx

NODE_LICENSE = 25
UPGRADE_URL = "https://www.chef.io/contact/on-premises-simple"


async def get_license(ctx: Ctx) -> tuple[int, object]:
    node_count = 0  # nodes are stored from part 2 on, which counts them here
    return 200, {"limit_exceeded": node_count > NODE_LICENSE, "node_license": NODE_LICENSE,
                 "node_count": node_count, "upgrade_url": UPGRADE_URL}
