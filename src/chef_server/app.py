"""The ASGI application: routing, and the request pipeline every endpoint shares.

Pipeline: API version -> body (size, content type) -> signature (unless the route is unsigned) ->
handler (pure validation and decisions, then storage) -> JSON response with the API version header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import api_version, authn
from .api import (
    acls,
    bookshelf,
    clients,
    containers,
    cookbook_artifacts,
    cookbooks,
    data_bags,
    depsolver,
    environments,
    groups,
    identifiers,
    keys,
    license,
    nodes,
    organizations,
    policies,
    principals,
    reports,
    roles,
    sandboxes,
    search,
    status,
    users,
)
from .config import Settings
from .context import Ctx
from .errors import ChefError, error_body
from .host_header import without_default_port
from .search_index import Engine, Indexer
from .storage.db import Database
from .validation import MAX_BODY, TOO_BIG, check_client_version

log = logging.getLogger(__name__)

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
Handler = Callable[[Ctx], Awaitable[tuple]]  # (status, body) or (status, body, headers)

async def _no_such_route(ctx: Ctx) -> tuple[int, object]:
    raise ChefError(404, error_body("not found"))


# The path a /validate/* request was signed for: the part after /validate (erchef's chef_wm_validate).
def _validated_path(params: dict[str, str]) -> str:
    return "/" + params["rest"]


# (path, {method: handler}, signed): signed is True, False (no signature) or the signed path from the params
ROUTES: list[tuple[str, dict[str, Handler], bool | Callable[[dict[str, str]], str]]] = [
    # --- authorization: ACLs, groups, containers (first: `…/X/_acl` would match other areas' routes) ---
    ("/users/{user}/_acl", {"GET": acls.get_acl}, True),
    ("/users/{user}/_acl/{perm}", {"PUT": acls.put_ace}, True),
    ("/organizations/{org}/organizations/_acl", {"GET": acls.get_acl}, True),
    ("/organizations/{org}/organizations/_acl/{perm}", {"PUT": acls.put_ace}, True),
    ("/organizations/{org}/{type}/{name}/_acl", {"GET": acls.get_acl}, True),
    ("/organizations/{org}/{type}/{name}/_acl/{perm}", {"PUT": acls.put_ace}, True),
    ("/organizations/{org}/groups", {"GET": groups.list_groups, "POST": groups.create_group}, True),
    ("/organizations/{org}/groups/{group}", {"GET": groups.get_group, "PUT": groups.update_group,
                                             "DELETE": groups.delete_group}, True),
    ("/organizations/{org}/containers", {"GET": containers.list_containers,
                                         "POST": containers.create_container}, True),
    ("/organizations/{org}/containers/{container}", {"GET": containers.get_container,
                                                     "DELETE": containers.delete_container}, True),
    # --- end of authorization ---
    ("/_status", {"GET": status.get_status}, False),
    ("/license", {"GET": license.get_license}, True),
    ("/server_api_version", {"GET": status.get_server_api_version}, True),
    ("/authenticate_user", {"POST": users.authenticate_user}, True),
    ("/users", {"GET": users.list_users, "POST": users.create_user}, True),
    ("/users/{user}", {"GET": users.get_user, "PUT": users.update_user, "DELETE": users.delete_user}, True),
    ("/users/{user}/organizations", {"GET": users.user_orgs}, True),
    ("/users/{user}/association_requests", {"GET": organizations.user_invites}, True),
    ("/users/{user}/association_requests/count", {"GET": organizations.user_invite_count}, True),
    ("/users/{user}/association_requests/{invite}", {"PUT": organizations.answer_invite}, True),
    ("/users/{user}/keys", {"GET": keys.list_user_keys, "POST": keys.create_user_key}, True),
    ("/users/{user}/keys/{key}", {"GET": keys.get_user_key, "PUT": keys.update_user_key,
                                  "DELETE": keys.delete_user_key}, True),
    ("/organizations", {"GET": organizations.list_orgs, "POST": organizations.create_org}, True),
    ("/organizations/{org}", {"GET": organizations.get_org, "PUT": organizations.update_org,
                              "DELETE": organizations.delete_org}, True),
    ("/organizations/{org}/users", {"GET": organizations.list_members, "POST": organizations.add_member}, True),
    ("/organizations/{org}/users/{user}", {"GET": organizations.get_member,
                                           "DELETE": organizations.remove_member}, True),
    ("/organizations/{org}/users/{user}/keys", {"GET": keys.list_user_keys}, True),
    ("/organizations/{org}/users/{user}/keys/{key}", {"GET": keys.get_user_key}, True),
    ("/organizations/{org}/association_requests", {"GET": organizations.org_invites,
                                                   "POST": organizations.invite}, True),
    ("/organizations/{org}/association_requests/{invite}", {"DELETE": organizations.cancel_invite}, True),
    ("/organizations/{org}/clients", {"GET": clients.list_clients, "POST": clients.create_client}, True),
    ("/organizations/{org}/clients/{client}", {"GET": clients.get_client, "PUT": clients.update_client,
                                               "DELETE": clients.delete_client}, True),
    ("/organizations/{org}/clients/{client}/keys", {"GET": keys.list_client_keys,
                                                    "POST": keys.create_client_key}, True),
    ("/organizations/{org}/clients/{client}/keys/{key}", {"GET": keys.get_client_key,
                                                          "PUT": keys.update_client_key,
                                                          "DELETE": keys.delete_client_key}, True),
    ("/organizations/{org}/principals", {"GET": _no_such_route}, False),  # erchef routes no principal list
    ("/organizations/{org}/principals/{name}", {"GET": principals.get_principal}, False),
    ("/organizations/{org}/validate/{rest:path}", dict.fromkeys(("GET", "PUT", "POST", "DELETE"), status.validate),
     _validated_path),
    ("/system_recovery", {"POST": users.system_recovery}, True),
    # -- cookbooks area: sandboxes, cookbooks, cookbook artifacts, universe, depsolver, policies, reports --
    ("/organizations/{org}/sandboxes", {"POST": sandboxes.create_sandbox}, True),
    ("/organizations/{org}/sandboxes/{sandbox}", {"PUT": sandboxes.commit_sandbox}, True),
    ("/organizations/{org}/cookbooks", {"GET": cookbooks.list_cookbooks}, True),
    ("/organizations/{org}/cookbooks/{cookbook}", {"GET": cookbooks.get_cookbook}, True),
    ("/organizations/{org}/cookbooks/{cookbook}/{version}", {"GET": cookbooks.get_version,
                                                            "PUT": cookbooks.put_version,
                                                            "DELETE": cookbooks.delete_version}, True),
    ("/organizations/{org}/universe", {"GET": cookbooks.universe}, True),
    ("/organizations/{org}/environments/{environment}/cookbooks", {"GET": cookbooks.environment_cookbooks}, True),
    ("/organizations/{org}/environments/{environment}/cookbooks/{cookbook}",
     {"GET": cookbooks.environment_cookbooks}, True),
    ("/organizations/{org}/environments/{environment}/recipes", {"GET": cookbooks.environment_recipes}, True),
    ("/organizations/{org}/environments/{environment}/cookbook_versions", {"POST": depsolver.solve_run_list}, True),
    ("/organizations/{org}/cookbook_artifacts", {"GET": cookbook_artifacts.list_artifacts}, True),
    ("/organizations/{org}/cookbook_artifacts/{name}", {"GET": cookbook_artifacts.get_artifact}, True),
    ("/organizations/{org}/cookbook_artifacts/{name}/{identifier}", {"GET": cookbook_artifacts.get_version,
                                                                    "PUT": cookbook_artifacts.put_version,
                                                                    "DELETE": cookbook_artifacts.delete_version}, True),
    ("/organizations/{org}/policies", {"GET": policies.list_policies}, True),
    ("/organizations/{org}/policies/{policy}", {"GET": policies.get_policy, "DELETE": policies.delete_policy}, True),
    ("/organizations/{org}/policies/{policy}/revisions", {"POST": policies.create_revision}, True),
    ("/organizations/{org}/policies/{policy}/revisions/{revision}", {"GET": policies.get_revision,
                                                                   "DELETE": policies.delete_revision}, True),
    ("/organizations/{org}/policy_groups", {"GET": policies.list_groups}, True),
    ("/organizations/{org}/policy_groups/{group}", {"GET": policies.get_group, "DELETE": policies.delete_group},
     True),
    ("/organizations/{org}/policy_groups/{group}/policies/{policy}", {"GET": policies.get_group_policy,
                                                                     "PUT": policies.put_group_policy,
                                                                     "DELETE": policies.delete_group_policy}, True),
    ("/organizations/{org}/required_recipe", {"GET": reports.required_recipe}, True),
    ("/organizations/{org}/data-collector", dict.fromkeys(("GET", "POST"), reports.not_served), True),
    ("/organizations/{org}/reports/{rest:path}", dict.fromkeys(("GET", "POST", "PUT"), reports.not_served), True),
    ("/reports/{rest:path}", dict.fromkeys(("GET", "POST", "PUT"), reports.not_served), True),
    ("/organizations/{org}/controls", dict.fromkeys(_ALL_METHODS, reports.controls_gone), False),
    # -- end of cookbooks area --
    # --- objects: nodes, roles, environments, data bags, search ---
    ("/organizations/{org}/nodes", {"GET": nodes.list_nodes, "POST": nodes.create_node}, True),
    ("/organizations/{org}/nodes/{node}", {"GET": nodes.get_node, "PUT": nodes.update_node,
                                           "DELETE": nodes.delete_node}, True),
    ("/organizations/{org}/roles", {"GET": roles.list_roles, "POST": roles.create_role}, True),
    ("/organizations/{org}/roles/{role}", {"GET": roles.get_role, "PUT": roles.update_role,
                                           "DELETE": roles.delete_role}, True),
    ("/organizations/{org}/roles/{role}/environments", {"GET": roles.role_env_names}, True),
    ("/organizations/{org}/roles/{role}/environments/{environment}", {"GET": roles.role_env_run_list}, True),
    ("/organizations/{org}/environments", {"GET": environments.list_environments,
                                           "POST": environments.create_environment}, True),
    ("/organizations/{org}/environments/{environment}", {"GET": environments.get_environment,
                                                         "PUT": environments.update_environment,
                                                         "DELETE": environments.delete_environment}, True),
    ("/organizations/{org}/environments/{environment}/nodes", {"GET": nodes.environment_nodes}, True),
    ("/organizations/{org}/environments/{environment}/roles/{role}", {"GET": roles.role_env_run_list}, True),
    ("/organizations/{org}/data", {"GET": data_bags.list_bags, "POST": data_bags.create_bag}, True),
    ("/organizations/{org}/data/{bag}", {"GET": data_bags.list_items, "POST": data_bags.create_item,
                                         "DELETE": data_bags.delete_bag}, True),
    ("/organizations/{org}/data/{bag}/{item}", {"GET": data_bags.get_item, "PUT": data_bags.update_item,
                                                "DELETE": data_bags.delete_item}, True),
    ("/organizations/{org}/search", {"GET": search.list_indexes}, True),
    ("/organizations/{org}/search/{index}", {"GET": search.search, "POST": search.partial_search}, True),
    ("/_search_flush", {"POST": search.flush}, False),
    ("/organizations/{org}/{type}/{name}/_identifiers", {"GET": identifiers.get_identifiers}, False),
    # --- end of objects ---
]


# POSTs that only read. They must not wait to drain the search outbox: that waits for the cluster-wide
# drain lock, i.e. behind every other request's indexing (a partial search and a run list's solve would).
_READ_ONLY_POSTS = frozenset({search.partial_search, depsolver.solve_run_list, users.authenticate_user,
                              status.validate})

# Paths no route matches still authenticate first: a bad signature is a 401 whatever the path.
_ANY_METHOD = dict.fromkeys(_ALL_METHODS, _no_such_route)
ROUTES += [("/organizations/{org}/{rest:path}", _ANY_METHOD, True), ("/{rest:path}", _ANY_METHOD, True)]


def _json(status: int, body: object, headers: dict[str, str]) -> Response:
    if status == 204 or body is None:
        return Response(status_code=status, headers=headers)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _base_url(request: Request) -> str:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{proto}://{without_default_port(host)}"


async def _read_body(request: Request) -> bytes:
    """The body, refusing more than MAX_BODY bytes without keeping them."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
    # Read to the end even when refusing: a server that answers before the body is in closes the
    # connection, and nginx, still sending it, turns the 413 into a 502.
    if size > MAX_BODY:
        raise ChefError(413, {"error": TOO_BIG})
    return b"".join(chunks)


def _accepts_json(accept: str | None) -> bool:
    """Whether an Accept header allows a JSON answer (webmachine answers 406 otherwise, after authentication)."""
    if not accept or not accept.strip():
        return True
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(types & {"application/json", "application/*", "*/*"})


def _endpoint(methods: dict[str, Handler], signed: bool | Callable[[dict[str, str]], str]):
    allowed = ", ".join(methods)  # in the route's order, as erchef lists them
    json_body = signed is True  # POST/PUT bodies are JSON objects, refused (400) before authentication as erchef does

    async def endpoint(request: Request) -> Response:
        state = request.app.state
        requested = request.headers.get(api_version.HEADER)
        served = None
        try:
            served = api_version.parse(requested)
            handler = methods.get(request.method)
            if handler is None and request.method == "HEAD" and "GET" in methods:
                handler = methods["GET"]
            if handler is None:
                raise ChefError(405, error_body(f"Method {request.method} not allowed"), headers={"Allow": allowed})
            if any("\x00" in value for value in request.path_params.values()):
                raise ChefError(404, error_body("not found"))  # no name holds a NUL
            body = await _read_body(request)
            if request.method in ("POST", "PUT") and body:
                ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
                if ctype not in ("application/json", ""):
                    raise ChefError(415, error_body(f"Unsupported Content-Type {ctype}"))
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
            check_client_version(headers.get("x-chef-version"))
            raw_path = request.scope.get("raw_path") or request.url.path.encode()
            ctx = Ctx(method=request.method, path=raw_path.decode("latin-1"), params=dict(request.path_params),
                      query=dict(request.query_params), headers=headers, body=body, api_version=served,
                      base_url=_base_url(request), db=state.db, settings=state.settings,
                      org_name=request.path_params.get("org"), search=state.indexer)
            if json_body and request.method in ("POST", "PUT"):
                ctx.json()
            if signed:
                signed_path = ctx.path if signed is True else signed(ctx.params)
                ctx.requestor, ctx.org_id = await authn.authenticate(
                    state.db, state.key_cache, request.method, signed_path, headers, body, ctx.org_name,
                    ctx.settings.superuser_name)
            if not _accepts_json(headers.get("accept")):
                raise ChefError(406, error_body("Not Acceptable"))
            status, reply, *extra = await handler(ctx)  # a handler may add response headers
            if request.method in ("POST", "PUT", "DELETE") and status < 300 and handler not in _READ_ONLY_POSTS:
                # writes queue their searchable objects in the outbox (triggers): index them before answering
                await state.indexer.index_now()
            if isinstance(reply, Response):  # not JSON (required_recipe's text)
                response = reply
            else:
                response = _json(status, None if request.method == "HEAD" else reply, extra[0] if extra else {})
        except ChefError as exc:
            response = _json(exc.status, exc.body, exc.headers)
        except Exception:
            log.exception("internal error on %s %s", request.method, request.url.path)
            response = _json(500, error_body("internal service error"), {})
        if "x-ops-server-api-version" not in response.headers:
            response.headers["X-Ops-Server-API-Version"] = api_version.response_header(
                served if requested is None else requested, served)
        return response

    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    return _json(404, error_body("not found"), {
        "X-Ops-Server-API-Version": api_version.response_header(request.headers.get(api_version.HEADER), 0)})


class CanonicalPaths:
    """Route `/a//b/` as `/a/b`, as Chef's signing canonicalises paths (the signature still uses the raw path)."""

    def __init__(self, app: Starlette):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = re.sub(r"/+", "/", scope["path"])
            path = path.rstrip("/") or "/"
            if path != scope["path"]:
                scope = {**scope, "path": path}
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> CanonicalPaths:
    """The API as an ASGI app; its pool opens at startup and a listener keeps the key cache honest."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        app.state.settings = settings
        app.state.db = Database(settings.db_conninfo, max_size=settings.db_pool_size)
        app.state.key_cache = authn.KeyCache(ttl=settings.key_cache_ttl)
        await app.state.db.open()
        db = app.state.db
        listener = asyncio.create_task(app.state.key_cache.listen(settings.db_conninfo, on_disconnect=db.check_soon,
                                                                  on_heartbeat=db.check_soon))
        engine = Engine(settings.search_url)
        app.state.indexer = Indexer(app.state.db, engine, settings.search_poll, settings.search_sync_timeout)
        indexing = asyncio.create_task(app.state.indexer.run())
        try:
            yield
        finally:
            indexing.cancel()
            listener.cancel()
            await engine.close()
            await app.state.db.close()

    routes = bookshelf.routes()  # signed URLs, not Chef-signed requests
    if not settings.required_recipe_path:  # disabled: 404 to everyone, signed or not, as Chef's nginx
        routes.append(Route("/organizations/{org}/required_recipe", _endpoint(_ANY_METHOD, False),
                            methods=_ALL_METHODS))
    routes += [Route(path, _endpoint(methods, signed), methods=_ALL_METHODS) for path, methods, signed in ROUTES]
    return CanonicalPaths(Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _not_found}))
