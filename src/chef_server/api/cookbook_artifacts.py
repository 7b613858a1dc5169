"""/organizations/O/cookbook_artifacts...: cookbooks of policyfiles, named by an identifier, immutable."""

from __future__ import annotations

import re

from .. import authz
from .. import cookbook_version as cbv
from ..context import Ctx
from ..errors import ChefError, bad_request, error_body
from ..storage import cookbooks as store
from ..storage import files
from .cookbooks import url_maker

IDENTIFIER = re.compile(r"^[.A-Za-z0-9_:-]{1,255}$", re.ASCII)


def _not_found() -> ChefError:
    return ChefError(404, error_body("not_found"))


def validate(data: dict, url_name: str, url_identifier: str) -> dict:
    """The artifact document of a PUT, or erchef's 400s (pure)."""
    for field, pattern in (("name", cbv.NAME), ("identifier", IDENTIFIER)):
        if field not in data:
            raise bad_request(f"Field '{field}' missing")
        if not isinstance(data[field], str) or not pattern.match(data[field]):
            raise bad_request(f"Field '{field}' invalid")
    for field, url_value in (("name", url_name), ("identifier", url_identifier)):
        if data[field] != url_value:
            raise bad_request(f"Field '{field}' invalid : {url_value} does not match {data[field]}")
    return data


def listing(ctx: Ctx, rows: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(row["name"], {"url": ctx.org_url("cookbook_artifacts", row["name"]), "versions": []})
        entry["versions"].append({"url": ctx.org_url("cookbook_artifacts", row["name"], row["identifier"]),
                                  "identifier": row["identifier"]})
    return out


def for_client(doc: dict, all_files: bool, url_for) -> dict:
    shaped = cbv.to_all_files(doc) if all_files else cbv.to_segments(doc)
    return cbv.with_urls({k: v for k, v in shaped.items() if k != "json_class"}, url_for)


async def list_artifacts(ctx: Ctx) -> tuple[int, object]:
    await authz.require_container(ctx, "cookbook_artifacts", "read")
    async with ctx.db.connection() as conn:
        rows = await store.artifact_listing(conn, ctx.org_id)
    return 200, listing(ctx, rows)


async def get_artifact(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        rows = await store.artifact_listing(conn, ctx.org_id, ctx.params["name"])
    if not rows:
        raise _not_found()
    await authz.require_container(ctx, "cookbook_artifacts", "read")
    return 200, listing(ctx, rows)


async def get_version(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await store.get_artifact(conn, ctx.org_id, ctx.params["name"], ctx.params["identifier"])
        if row is None:
            raise _not_found()
        await authz.require_named(ctx, "cookbook_artifacts", ctx.params["name"], "read", conn)
        url_for = await url_maker(ctx, conn)
    return 200, for_client(row["doc"], ctx.api_version >= 2, url_for)


async def put_version(ctx: Ctx) -> tuple[int, object]:
    doc = validate(ctx.json(), ctx.params["name"], ctx.params["identifier"])
    async with ctx.transaction() as conn:
        existing = await store.get_artifact(conn, ctx.org_id, doc["name"], doc["identifier"])
        await authz.require_named(ctx, "cookbook_artifacts", doc["name"], "update", conn)
        if existing is not None:
            raise ChefError(409, {"error": "Cookbook artifact already exists"})
        try:
            created = await store.put_artifact(conn, ctx.org_id, doc["name"], doc["identifier"], doc,
                                               cbv.checksums(doc))
        except store.MissingChecksum:
            raise bad_request("Manifest has a checksum that hasn't been uploaded.") from None
        if not created:
            raise ChefError(409, {"error": "Cookbook artifact already exists"})
    return 201, doc


async def delete_version(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await store.get_artifact(conn, ctx.org_id, ctx.params["name"], ctx.params["identifier"], lock=True)
        if row is None:
            raise _not_found()
        await authz.require_named(ctx, "cookbook_artifacts", ctx.params["name"], "delete", conn)
        sums = await store.delete_artifact(conn, row)
        await files.collect(conn, ctx.org_id, sums)
        url_for = await url_maker(ctx, conn)
    return 200, for_client(row["doc"], ctx.api_version >= 2, url_for)
