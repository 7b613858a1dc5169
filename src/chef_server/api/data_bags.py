"""/organizations/O/data[/BAG[/ITEM]]: data bags and their items (an item's JSON is opaque to the
server but for its `id`; encrypted items are stored as sent)."""

from __future__ import annotations

from .. import authz
from ..chef_objects import data_bag_from_body, data_bag_item_from_body, item_with_type, wrapped_item
from ..context import Ctx
from ..errors import ChefError, error_body
from ..storage import objects as store

CONTAINER = "data"


def _no_bag(name: str) -> ChefError:
    return ChefError(404, error_body(f"Cannot load data bag {name}"))


async def _bag(conn, ctx: Ctx, perm: str, missing: ChefError | None = None) -> dict:
    name = ctx.params["bag"]
    row = await store.bag(conn, ctx.org_id, name)
    if row is None:
        raise missing or _no_bag(name)
    await authz.require(ctx, perm, object_id=row["authz_id"], conn=conn)
    return row


async def list_bags(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        await authz.require_container(ctx, CONTAINER, "read", conn=conn)
        names = await store.bag_names(conn, ctx.org_id)
    return 200, {name: ctx.org_url("data", name) for name in names}


async def create_bag(ctx: Ctx) -> tuple[int, object]:
    name = data_bag_from_body(ctx.json())
    async with ctx.transaction() as conn:
        await authz.require_container(ctx, CONTAINER, "create", conn=conn)
        if not await store.insert_bag(conn, ctx.org_id, name, ctx.requestor.id):
            raise ChefError(409, error_body("Data bag already exists"))
    return 201, {"uri": ctx.org_url("data", name)}


async def list_items(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await _bag(conn, ctx, "read")
        names = await store.item_names(conn, ctx.org_id, row["name"])
    return 200, {name: ctx.org_url("data", row["name"], name) for name in names}


async def delete_bag(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await _bag(conn, ctx, "delete")
        await store.delete_bag(conn, row["id"])
    return 200, {"name": row["name"], "json_class": "Chef::DataBag", "chef_type": "data_bag"}


async def create_item(ctx: Ctx) -> tuple[int, object]:
    item = data_bag_item_from_body(ctx.json())
    bag = ctx.params["bag"]
    missing = ChefError(404, error_body(f"No data bag '{bag}' could be found. Please create this data bag "
                                        "before adding items to it."))
    async with ctx.transaction() as conn:
        await _bag(conn, ctx, "create", missing)
        if not await store.insert_item(conn, ctx.org_id, bag, item):
            raise ChefError(409, error_body(f"Data Bag Item '{item['id']}' already exists in Data Bag '{bag}'."))
    return 201, item_with_type(bag, item)


async def _item(conn, ctx: Ctx, perm: str, message: str) -> dict:
    bag, name = ctx.params["bag"], ctx.params["item"]
    missing = ChefError(404, error_body(message.format(bag=bag, item=name)))
    await _bag(conn, ctx, perm, missing)
    row = await store.item(conn, ctx.org_id, bag, name)
    if row is None:
        raise missing
    return row


_NO_ITEM = "Cannot load data bag item {item} for data bag {bag}"


async def get_item(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await _item(conn, ctx, "read", _NO_ITEM)
    return 200, row["serialized_object"]


async def update_item(ctx: Ctx) -> tuple[int, object]:
    item = data_bag_item_from_body(ctx.json(), ctx.params["item"])
    async with ctx.transaction() as conn:
        row = await _item(conn, ctx, "update", _NO_ITEM)
        await store.update_item(conn, row["id"], item)
    return 200, item_with_type(ctx.params["bag"], item)


async def delete_item(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await _item(conn, ctx, "delete", "Cannot load data bag {bag} item {item}")
        await store.delete_item(conn, row["id"])
    return 200, wrapped_item(ctx.params["bag"], row["serialized_object"])
