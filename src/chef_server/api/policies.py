"""/organizations/O/policies... and /policy_groups...: policyfile revisions and which one each group uses."""

from __future__ import annotations

import re

from .. import authz
from ..context import Ctx
from ..cookbook_version import NAME
from ..depsolver import is_valid_constraint
from ..errors import ChefError, bad_request, error_body
from ..storage import policies as store
from .cookbook_artifacts import IDENTIFIER

POLICY_NAME = IDENTIFIER  # 1-255 of A-Z a-z 0-9 _ - : .
RUN_LIST_ITEM = re.compile(r"^recipe\[[.A-Za-z0-9_-]+::[.A-Za-z0-9_-]+\]$", re.ASCII)


def _string(data: dict, field: str, pattern: re.Pattern) -> None:
    if field not in data:
        raise bad_request(f"Field '{field}' missing")
    if not isinstance(data[field], str) or not pattern.match(data[field]):
        raise bad_request(f"Field '{field}' invalid")


def _version(lock: dict, field: str, optional: bool) -> None:
    if field not in lock:
        if optional:
            return
        raise bad_request(f"Field '{field}' missing")
    if not isinstance(lock[field], str) or not is_valid_constraint(lock[field]):
        raise bad_request(f"Field '{field}' is not a valid version")


def validate(data: dict, url_name: str) -> dict:
    """A policy revision document, or erchef's 400s in its order (pure)."""
    _string(data, "revision_id", POLICY_NAME)
    _string(data, "name", POLICY_NAME)
    if "run_list" not in data:
        raise bad_request("Field 'run_list' missing")
    run_list = data["run_list"]
    if not isinstance(run_list, list) or not all(isinstance(i, str) and RUN_LIST_ITEM.match(i) for i in run_list):
        raise bad_request("Field 'run_list' is not a valid run list")
    if "cookbook_locks" not in data:
        raise bad_request("Field 'cookbook_locks' missing")
    locks = data["cookbook_locks"]
    if not isinstance(locks, dict):
        raise bad_request("Field 'cookbook_locks' invalid")
    for cookbook, lock in locks.items():
        if not NAME.match(cookbook):
            raise bad_request(f"Invalid key '{cookbook}' for cookbook_locks")
        if not isinstance(lock, dict):
            raise bad_request("Field 'cookbook_locks' invalid")
        _string(lock, "identifier", IDENTIFIER)
        _version(lock, "dotted_decimal_identifier", optional=True)
        _version(lock, "version", optional=False)
    if data["name"] != url_name:
        raise bad_request(f"Field 'name' invalid : {url_name} does not match {data['name']}")
    return data


def _revisions(ids: list[str]) -> dict:
    return {"revisions": {rev: {} for rev in ids}}


async def list_policies(ctx: Ctx) -> tuple[int, object]:
    await authz.require_container(ctx, "policies", "read")
    async with ctx.db.connection() as conn:
        found = await store.list_policies(conn, ctx.org_id)
    return 200, {name: {"uri": ctx.org_url("policies", name), **_revisions(ids)} for name, ids in found.items()}


async def _policy(ctx: Ctx, conn) -> list[str]:
    name = ctx.params["policy"]
    found = await store.list_policies(conn, ctx.org_id, name)
    if name not in found:
        raise ChefError(404, error_body(f"Cannot load policy {name}"))
    return found[name]


async def get_policy(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        ids = await _policy(ctx, conn)
    await authz.require_container(ctx, "policies", "read")
    return 200, _revisions(ids)


async def delete_policy(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        ids = await _policy(ctx, conn)
        await authz.require_named(ctx, "policies", ctx.params["policy"], "delete", conn)
        await store.delete_policy(conn, ctx.org_id, ctx.params["policy"])
    return 200, _revisions(ids)


async def create_revision(ctx: Ctx) -> tuple[int, object]:
    doc = validate(ctx.json(), ctx.params["policy"])
    await authz.require_container(ctx, "policies", "create")
    async with ctx.transaction() as conn:
        _, created = await store.add_revision(conn, ctx.org_id, doc["name"], doc)
        if not created:
            raise ChefError(409, error_body("Policy revision already exists"))
    return 201, doc


async def _revision(ctx: Ctx, conn) -> dict:
    row = await store.get_revision(conn, ctx.org_id, ctx.params["policy"], ctx.params["revision"])
    if row is None:
        raise ChefError(404, error_body(f"Cannot load policy {ctx.params['policy']} "
                                        f"revision {ctx.params['revision']}"))
    return row


async def get_revision(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await _revision(ctx, conn)
        await authz.require_named(ctx, "policies", ctx.params["policy"], "read", conn)
        groups = await store.groups_of_revision(conn, row["id"])
    return 200, {**row["doc"], "policy_group_list": groups}


async def delete_revision(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await _revision(ctx, conn)
        await authz.require_named(ctx, "policies", ctx.params["policy"], "delete", conn)
        await store.delete_revision(conn, row)
    return 200, row["doc"]


def _group_body(ctx: Ctx, name: str, policies: dict) -> dict:
    return {"uri": ctx.org_url("policy_groups", name),
            "policies": {policy: {"revision_id": rev} for policy, rev in policies.items()}}


async def list_groups(ctx: Ctx) -> tuple[int, object]:
    await authz.require_container(ctx, "policy_groups", "read")
    async with ctx.db.connection() as conn:
        found = await store.list_groups(conn, ctx.org_id)
    # the listing leaves out `policies` for a group without any (the group's own GET shows it empty)
    return 200, {name: _group_body(ctx, name, policies) if policies else {"uri": ctx.org_url("policy_groups", name)}
                 for name, policies in found.items()}


async def _group(ctx: Ctx, conn) -> dict:
    name = ctx.params["group"]
    found = await store.list_groups(conn, ctx.org_id, name)
    if name not in found:
        raise ChefError(404, error_body(f"policy_group '{name}' not found"))
    return found[name]


async def get_group(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        policies = await _group(ctx, conn)
    await authz.require_container(ctx, "policy_groups", "read")
    return 200, _group_body(ctx, ctx.params["group"], policies)


async def delete_group(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        policies = await _group(ctx, conn)
        await authz.require_named(ctx, "policy_groups", ctx.params["group"], "delete", conn)
        await store.delete_group(conn, ctx.org_id, ctx.params["group"])
    return 200, _group_body(ctx, ctx.params["group"], policies)


async def _assignment(ctx: Ctx, conn) -> dict:
    row = await store.get_assignment(conn, ctx.org_id, ctx.params["group"], ctx.params["policy"])
    if row is None:
        raise ChefError(404, error_body(f"Cannot load policy {ctx.params['policy']} "
                                        f"in policy group {ctx.params['group']}"))
    return row


async def get_group_policy(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        row = await _assignment(ctx, conn)
    await authz.require_container(ctx, "policy_groups", "read")
    return 200, row["doc"]


async def put_group_policy(ctx: Ctx) -> tuple[int, object]:
    doc = validate(ctx.json(), ctx.params["policy"])
    await authz.require_container(ctx, "policies", "create")
    await authz.require_container(ctx, "policy_groups", "update")
    async with ctx.transaction() as conn:
        revision_row_id, _ = await store.add_revision(conn, ctx.org_id, doc["name"], doc)
        created = await store.assign(conn, ctx.org_id, ctx.params["group"], revision_row_id)
    return (201 if created else 200), doc


async def delete_group_policy(ctx: Ctx) -> tuple[int, object]:
    async with ctx.transaction() as conn:
        row = await _assignment(ctx, conn)
        await authz.require_named(ctx, "policy_groups", ctx.params["group"], "delete", conn)
        await store.unassign(conn, row)
    return 200, row["doc"]
