"""/organizations/O/nodes[/N] and /organizations/O/environments/E/nodes."""

from __future__ import annotations

from .. import authz
from ..chef_objects import node_from_body
from ..context import Ctx
from ..errors import ChefError, error_body
from ..storage import objects as store
from . import named_objects as named
from .environments import ENVIRONMENT

NODE = named.Kind(table="nodes", param="node", not_found=lambda n: f"node '{n}' not found",
                  conflict="Node already exists")


async def list_nodes(ctx: Ctx) -> tuple[int, object]:
    return await named.list_all(ctx, NODE)


async def create_node(ctx: Ctx) -> tuple[int, object]:
    return await named.create(ctx, NODE, node_from_body(ctx.json()))


async def get_node(ctx: Ctx) -> tuple[int, object]:
    return await named.get(ctx, NODE)


async def update_node(ctx: Ctx) -> tuple:
    return await named.update(ctx, NODE, node_from_body(ctx.json(), ctx.params["node"]))


async def delete_node(ctx: Ctx) -> tuple[int, object]:
    return await named.delete(ctx, NODE)


async def environment_nodes(ctx: Ctx) -> tuple[int, object]:
    """The nodes in an environment: 404 "Cannot load environment 'E'" (quoted, unlike elsewhere)."""
    env = ctx.params["environment"]
    async with ctx.db.connection() as conn:
        if await store.get(conn, ENVIRONMENT.table, ctx.org_id, env) is None:
            raise ChefError(404, error_body(f"Cannot load environment '{env}'"))
        await authz.require_container(ctx, NODE.table, "read", conn=conn)
        names = await store.node_names_in(conn, ctx.org_id, env)
    return 200, {name: ctx.org_url("nodes", name) for name in names}
