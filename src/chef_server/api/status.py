"""/_status (unsigned; a load balancer's health check) and /server_api_version."""

from __future__ import annotations

from .. import api_version
from ..context import Ctx
from ..errors import ChefError


async def get_status(ctx: Ctx) -> tuple[int, object]:
    """pong when PostgreSQL answers; otherwise 503 and "fail", so a load balancer takes this frontend out."""
    try:
        async with ctx.db.connection() as conn:
            await conn.execute("SELECT 1")
        upstreams = {"chef_sql": "pong"}
    except ChefError:
        upstreams = {"chef_sql": "fail"}
    ok = all(v == "pong" for v in upstreams.values())
    body = {"status": "pong" if ok else "fail", "upstreams": upstreams, "keygen": {}, "indexing": {}}
    return (200 if ok else 503), body


async def get_server_api_version(ctx: Ctx) -> tuple[int, object]:
    return 200, {"min_api_version": api_version.MIN_VERSION, "max_api_version": api_version.MAX_VERSION}


async def validate(ctx: Ctx) -> tuple[int, object]:
    """/organizations/O/validate/PATH: who signed a request for PATH (used by Chef add-ons to check signatures)."""
    return 200, {"requestor_name": ctx.requestor.name, "requestor_type": ctx.requestor.type}
