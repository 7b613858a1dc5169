"""/organizations/O/environments[/E]: `_default` exists in every org and cannot be changed; a PUT
may rename an environment."""

from __future__ import annotations

from ..chef_objects import DEFAULT_ENVIRONMENT, environment_from_body
from ..context import Ctx
from ..errors import ChefError, error_body
from . import named_objects as named

ENVIRONMENT = named.Kind(table="environments", param="environment", not_found=lambda n: f"Cannot load environment {n}",
                         conflict="Environment already exists")


def _refuse_default(ctx: Ctx) -> None:
    if ctx.params["environment"] == DEFAULT_ENVIRONMENT:
        raise ChefError(405, error_body("The '_default' environment cannot be modified."), {"Allow": "GET"})


async def list_environments(ctx: Ctx) -> tuple[int, object]:
    return await named.list_all(ctx, ENVIRONMENT)


async def create_environment(ctx: Ctx) -> tuple[int, object]:
    return await named.create(ctx, ENVIRONMENT, environment_from_body(ctx.json()))


async def get_environment(ctx: Ctx) -> tuple[int, object]:
    return await named.get(ctx, ENVIRONMENT)


async def update_environment(ctx: Ctx) -> tuple:
    _refuse_default(ctx)
    return await named.update(ctx, ENVIRONMENT, environment_from_body(ctx.json()))


async def delete_environment(ctx: Ctx) -> tuple[int, object]:
    _refuse_default(ctx)
    return await named.delete(ctx, ENVIRONMENT)
