"""/organizations/O/roles[/R], /roles/R/environments[/E] and /environments/E/roles/R."""

from __future__ import annotations

from .. import authz
from ..chef_objects import DEFAULT_ENVIRONMENT, role_environments, role_from_body, role_run_list_for
from ..context import Ctx
from ..storage import objects as store
from . import named_objects as named
from .environments import ENVIRONMENT

ROLE = named.Kind(table="roles", param="role", not_found=lambda n: f"Cannot load role {n}",
                  conflict="Role already exists")


async def list_roles(ctx: Ctx) -> tuple[int, object]:
    return await named.list_all(ctx, ROLE)


async def create_role(ctx: Ctx) -> tuple[int, object]:
    return await named.create(ctx, ROLE, role_from_body(ctx.json()))


async def get_role(ctx: Ctx) -> tuple[int, object]:
    return await named.get(ctx, ROLE)


async def update_role(ctx: Ctx) -> tuple:
    return await named.update(ctx, ROLE, role_from_body(ctx.json(), ctx.params["role"]))


async def delete_role(ctx: Ctx) -> tuple[int, object]:
    return await named.delete(ctx, ROLE)


async def role_env_names(ctx: Ctx) -> tuple[int, object]:
    """The environments the role has a run list for, `_default` always."""
    async with ctx.db.connection() as conn:
        row = await named.load(conn, ctx, ROLE)
        await authz.require(ctx, "read", object_id=row["authz_id"], conn=conn)
    return 200, role_environments(row["serialized_object"])


async def role_env_run_list(ctx: Ctx) -> tuple[int, object]:
    """`{"run_list": [...]}` of the role in the environment (null when it has none there); the role
    is looked up first, then the environment."""
    env = ctx.params["environment"]
    async with ctx.db.connection() as conn:
        row = await named.load(conn, ctx, ROLE)
        if env != DEFAULT_ENVIRONMENT and await store.get(conn, ENVIRONMENT.table, ctx.org_id, env) is None:
            raise named.missing(ENVIRONMENT, env)
        await authz.require(ctx, "read", object_id=row["authz_id"], conn=conn)
    return 200, {"run_list": role_run_list_for(row["serialized_object"], env)}
