"""What a Chef Infra Server without Automate or Reporting answers: required_recipe, /data-collector, /reports.

required_recipe is Chef's nginx feature: 404 to everyone when disabled (no `required_recipe_path`),
else the recipe file as text to signed GETs. Without Automate, /data-collector and /reports are not
routed and answer 404 (chef-client then turns its data collector off for the run). Analytics' old
/organizations/O/controls answers 410 to every request, before authentication, as erchef does.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from ..context import Ctx
from ..errors import ChefError, error_body


async def required_recipe(ctx: Ctx) -> tuple[int, object]:
    path = ctx.settings.required_recipe_path
    if not path:
        raise ChefError(404, error_body("not found"))
    try:
        text = await asyncio.to_thread(_read, path)
    except OSError:
        raise ChefError(404, error_body("not found")) from None
    return 200, Response(text, media_type="text/plain")


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


async def not_served(ctx: Ctx) -> tuple[int, object]:
    """/data-collector and /reports/...: no Automate and no Reporting here."""
    raise ChefError(404, error_body("not found"))


CONTROLS_GONE = "Resource gone, analytics is no longer supported by Chef Server"


async def controls_gone(ctx: Ctx) -> tuple[int, object]:
    """/organizations/O/controls: gone (its error is one string, not erchef's usual list)."""
    raise ChefError(410, {"error": CONTROLS_GONE})
