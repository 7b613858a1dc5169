"""/organizations/O/cookbooks..., /universe and /environments/E/cookbooks|recipes (API v0-v2 shapes)."""

from __future__ import annotations

import psycopg

from .. import authz, presign
from .. import cookbook_version as cbv
from ..context import Ctx
from ..depsolver import parse_constraint, parse_version
from ..errors import ChefError, bad_request, conflict, error_body
from ..storage import cookbooks as store
from ..storage import environment_pins, files
from .bookshelf import file_path, signing_key

GET_URL_TTL = 900  # seconds a download URL stays valid, as erchef's s3_url_ttl


def num_versions(query: dict[str, str], default: int | None) -> int | None:
    """The num_versions parameter: a count, or None for all; erchef's 400 otherwise (pure)."""
    value = query.get("num_versions")
    if value is None:
        return default
    if value == "all":
        return None
    if not value.isdigit() or not value.isascii():
        raise bad_request("You have requested an invalid number of versions (x >= 0 || 'all')")
    return int(value)


def _vstr(row: dict) -> str:
    return f"{row['major']}.{row['minor']}.{row['patch']}"


def version_listing(ctx: Ctx, rows: list[dict], count: int | None) -> dict:
    """{name: {url, versions: [{version, url}]}} from rows by name, newest first."""
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(row["name"], {"url": ctx.org_url("cookbooks", row["name"]), "versions": []})
        if count is None or len(entry["versions"]) < count:
            version = _vstr(row)
            entry["versions"].append({"version": version, "url": ctx.org_url("cookbooks", row["name"], version)})
    return out


async def url_maker(ctx: Ctx, conn):
    """checksum -> signed download URL for this org, from this request's host."""
    key = await signing_key(conn)
    return lambda checksum: presign.presign(key, "GET", ctx.base_url, file_path(ctx.org_id, checksum), GET_URL_TTL)


async def list_cookbooks(ctx: Ctx) -> tuple[int, object]:
    count = num_versions(ctx.query, 1)
    await authz.require_container(ctx, "cookbooks", "read")
    async with ctx.db.connection() as conn:
        rows = await store.versions(conn, ctx.org_id)
    return 200, version_listing(ctx, rows, count)


async def latest_cookbooks(ctx: Ctx) -> tuple[int, object]:
    await authz.require_container(ctx, "cookbooks", "read")
    async with ctx.db.connection() as conn:
        rows = await store.latest(conn, ctx.org_id)
    return 200, {row["name"]: ctx.org_url("cookbooks", row["name"], _vstr(row)) for row in rows}


async def latest_recipes(ctx: Ctx) -> tuple[int, object]:
    await authz.require_container(ctx, "cookbooks", "read")
    async with ctx.db.connection() as conn:
        rows = await store.latest(conn, ctx.org_id)
    return 200, sorted(recipe for row in rows for recipe in row["recipes"])


async def get_cookbook(ctx: Ctx) -> tuple[int, object]:
    name = ctx.params["cookbook"]
    if name == "_latest":
        return await latest_cookbooks(ctx)
    if name == "_recipes":
        return await latest_recipes(ctx)
    count = num_versions(ctx.query, None)
    async with ctx.db.connection() as conn:
        rows = await store.versions(conn, ctx.org_id, name)
        if not rows:
            raise ChefError(404, error_body(f"Cannot find a cookbook named {name}"))
        await authz.require_named(ctx, "cookbooks", name, "read", conn)
    return 200, version_listing(ctx, rows, count)


def _url_version(ctx: Ctx) -> tuple[str, tuple[int, int, int] | None]:
    name, version = ctx.params["cookbook"], ctx.params["version"]
    if ctx.method in ("GET", "HEAD", "DELETE") and version in ("_latest", "latest"):
        cbv.check_url(name, "0")
        return name, None
    return name, cbv.check_url(name, version)


def _not_found(ctx: Ctx) -> ChefError:
    return ChefError(404, error_body(f"Cannot find a cookbook named {ctx.params['cookbook']} "
                                     f"with version {ctx.params['version']}"))


async def get_version(ctx: Ctx) -> tuple[int, object]:
    name, version = _url_version(ctx)
    async with ctx.db.connection() as conn:
        row = await store.get_version(conn, ctx.org_id, name, version)
        if row is None:
            raise _not_found(ctx)
        await authz.require_named(ctx, "cookbooks", name, "read", conn)
        url_for = await url_maker(ctx, conn)
    return 200, cbv.for_client(row["doc"], row["frozen"], ctx.api_version >= 2, url_for)


async def put_version(ctx: Ctx) -> tuple[int, object]:
    name, version = _url_version(ctx)
    doc = cbv.validate(ctx.json(), name, ctx.params["version"], ctx.api_version >= 2)
    forced = ctx.query.get("force") not in (None, "false")
    async with ctx.transaction() as conn:
        existing = await store.get_version(conn, ctx.org_id, name, version, lock=True)
        await authz.require_named(ctx, "cookbooks", name, "update", conn)  # a new cookbook: create on the container
        if existing is not None and existing["frozen"] and not forced:
            raise conflict(f"The cookbook {name} at version {cbv.version_string(version)} is frozen. "
                           "Use the 'force' option to override.")
        frozen = bool(doc["frozen?"]) or (existing is not None and existing["frozen"])
        doc = {**doc, "frozen?": frozen}
        try:
            unused = await store.put_version(conn, ctx.org_id, name, version, doc, frozen,
                                             cbv.qualified_recipes(name, doc), cbv.checksums(doc),
                                             ctx.requestor.name, existing)
        except store.MissingChecksum as exc:
            if existing is None:
                raise bad_request("Manifest has a checksum that hasn't been uploaded.") from None
            raise bad_request(f"Manifest has checksum {exc.checksum} but it hasn't yet been uploaded") from None
        except psycopg.errors.UniqueViolation:
            raise conflict("Cookbook already exists") from None  # created by a concurrent request
        await files.collect(conn, ctx.org_id, unused)
    return (201 if existing is None else 200), doc


async def delete_version(ctx: Ctx) -> tuple[int, object]:
    name, version = _url_version(ctx)
    async with ctx.transaction() as conn:
        row = await store.get_version(conn, ctx.org_id, name, version, lock=True)
        if row is None:
            raise _not_found(ctx)
        await authz.require_named(ctx, "cookbooks", name, "delete", conn)
        sums = await store.delete_version(conn, row)
        await files.collect(conn, ctx.org_id, sums)
        url_for = await url_maker(ctx, conn)
    return 200, cbv.for_client(row["doc"], row["frozen"], False, url_for)


def dependency_spec(constraint: str) -> str:
    """A metadata constraint as /universe writes it: `OP VERSION` (a bare version is `= VERSION`)."""
    op = parse_constraint(constraint).op
    text = constraint.strip()
    return f"{op} {text[len(op):].strip() if text.startswith(op) else text}"


async def universe(ctx: Ctx) -> tuple[int, object]:
    await authz.require_container(ctx, "cookbooks", "read")
    async with ctx.db.connection() as conn:
        rows = await store.universe(conn, ctx.org_id)
    out: dict[str, dict] = {}
    for row in rows:
        version = _vstr(row)
        out.setdefault(row["name"], {})[version] = {
            "location_path": ctx.org_url("cookbooks", row["name"], version), "location_type": "chef_server",
            "dependencies": {dep: dependency_spec(c) for dep, c in row["dependencies"].items()}}
    return 200, out


def allowed(pins: dict[str, str], name: str, row: dict) -> bool:
    """Whether the environment's pin on `name` (if any) allows this version (pure)."""
    pin = pins.get(name)
    return pin is None or parse_constraint(pin).matches(parse_version(_vstr(row)))


async def _environment(ctx: Ctx, conn) -> dict[str, str]:
    name = ctx.params["environment"]
    pins = await environment_pins.pins(conn, ctx.org_id, name)
    if pins is None:
        raise ChefError(404, error_body(f"Cannot load environment {name}"))
    return pins


async def environment_cookbooks(ctx: Ctx) -> tuple[int, object]:
    cookbook = ctx.params.get("cookbook")
    count = num_versions(ctx.query, 1 if cookbook is None else None)
    async with ctx.db.connection() as conn:
        pins = await _environment(ctx, conn)
        rows = await store.versions(conn, ctx.org_id, cookbook)
    if cookbook is not None and not rows:
        raise ChefError(404, error_body(f"Cannot find a cookbook named {cookbook}"))
    await authz.require_container(ctx, "environments", "read")
    listing = version_listing(ctx, [r for r in rows if allowed(pins, r["name"], r)], count)
    if cookbook is not None and cookbook not in listing:
        listing[cookbook] = {"url": ctx.org_url("cookbooks", cookbook), "versions": []}
    for name in {r["name"] for r in rows} - set(listing):
        listing[name] = {"url": ctx.org_url("cookbooks", name), "versions": []}
    return 200, listing


async def environment_recipes(ctx: Ctx) -> tuple[int, object]:
    async with ctx.db.connection() as conn:
        pins = await _environment(ctx, conn)
        rows = await store.versions(conn, ctx.org_id)
        await authz.require_container(ctx, "environments", "read", conn=conn)
        newest: dict[str, dict] = {}
        for row in rows:
            if row["name"] not in newest and allowed(pins, row["name"], row):
                newest[row["name"]] = row
        found = await store.docs(conn, ctx.org_id, {n: (r["major"], r["minor"], r["patch"]) for n, r in newest.items()})
    return 200, sorted(recipe for name, (_, doc) in found.items() for recipe in cbv.qualified_recipes(name, doc))
