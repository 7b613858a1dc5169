"""POST /organizations/O/environments/E/cookbook_versions: the cookbook versions a run list gets.

The solve (chef_server.depsolver, CPU-bound) runs in a worker thread; at most SOLVERS run at once per
API worker process, and a request that finds none free within QUEUE_WAIT answers erchef's 503.
"""

from __future__ import annotations

import asyncio
import re

from .. import authz
from .. import cookbook_version as cbv
from ..context import Ctx
from ..depsolver import DEFAULT_TIMEOUT, DepsolverFailure, solve
from ..errors import ChefError, bad_request, error_body
from ..storage import cookbooks as store
from ..storage import environment_pins
from .cookbooks import url_maker

SOLVERS = 2
QUEUE_WAIT = 2.0  # seconds a request waits for a free solver before the 503
_NAME = r"[.A-Za-z0-9_-]+"
_VERSION = r"\d+(?:\.\d+){0,2}"
RUN_LIST_ITEM = re.compile(rf"^(?:recipe\[{_NAME}(?:::{_NAME})?(?:@{_VERSION})?\]|role\[{_NAME}\]"
                           rf"|{_NAME}(?:::{_NAME})?(?:@{_VERSION})?)$", re.ASCII)
_solvers: asyncio.Semaphore | None = None


def run_list_of(data: dict) -> list[str]:
    """The body's run list (default empty), or erchef's 400 (pure)."""
    run_list = data.get("run_list", [])
    if not isinstance(run_list, list) or not all(isinstance(i, str) and RUN_LIST_ITEM.match(i) for i in run_list):
        raise bad_request("Field 'run_list' is not a valid run list")
    return [_bare(item) for item in run_list]


def _bare(item: str) -> str:
    """`recipe[x::y@1.0]` as `x::y@1.0`; other items are already bare."""
    return item[7:-1] if item.startswith("recipe[") else item


def minimal(doc: dict, frozen: bool, all_files: bool, url_for) -> dict:
    """A chosen version as the depsolver answers it: no attributes or long description in its metadata."""
    out = cbv.for_client(doc, frozen, all_files, url_for)
    out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in ("attributes", "long_description")}
    return out


async def _solve(universe: dict, pins: dict, run_list: list[str]) -> dict[str, str]:
    global _solvers
    if _solvers is None:
        _solvers = asyncio.Semaphore(SOLVERS)
    try:
        await asyncio.wait_for(_solvers.acquire(), QUEUE_WAIT)
    except TimeoutError:
        raise ChefError(503, error_body("Dependency solver overloaded. Try again later.")) from None
    try:
        return await asyncio.to_thread(solve, universe, pins, run_list, DEFAULT_TIMEOUT)
    finally:
        _solvers.release()


async def solve_run_list(ctx: Ctx) -> tuple[int, object]:
    run_list = run_list_of(ctx.json())
    environment = ctx.params["environment"]
    async with ctx.db.connection() as conn:
        pins = await environment_pins.pins(conn, ctx.org_id, environment)
        if pins is None:
            # erchef's depsolver words this 404 unlike the environments endpoint ("Cannot load environment E")
            raise ChefError(404, error_body(f"environment '{environment}' not found"))
        await authz.require_container(ctx, "cookbooks", "read", conn=conn)
        await authz.require_container(ctx, "environments", "read", conn=conn)
        universe: dict[str, dict[str, dict]] = {}
        for row in await store.universe(conn, ctx.org_id):
            universe.setdefault(row["name"], {})[f"{row['major']}.{row['minor']}.{row['patch']}"] = row["dependencies"]
    try:
        chosen = await _solve(universe, pins, run_list)
    except DepsolverFailure as failure:
        raise ChefError(failure.status, failure.body()) from None
    async with ctx.db.connection() as conn:
        found = await store.docs(conn, ctx.org_id, {n: cbv.parse_version(v) for n, v in chosen.items()})
        url_for = await url_maker(ctx, conn)
    all_files = ctx.api_version >= 2
    return 200, {name: minimal(doc, frozen, all_files, url_for) for name, (frozen, doc) in found.items()}
