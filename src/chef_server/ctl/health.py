"""`chef-server-ctl status`'s health lines beyond runit: the API's own `/_status`, the backend leader HAProxy
routes to, and the search cluster's health through HAProxy's search port. Each judge is pure: (ok, line)."""

from __future__ import annotations

from typing import Any

import httpx

from chef_backend.frontend.haproxy import BACKENDS

from .api_service import local_address

TIMEOUT = 5.0


def judge_api(code: int | None, body: Any, error: str = "") -> tuple[bool, str]:
    """Healthy when `/_status` answers 200 "pong" (which means the API reached PostgreSQL)."""
    if code is None:
        return False, f"chef-server-api: unreachable ({error})"
    upstreams = body.get("upstreams", {}) if isinstance(body, dict) else {}
    detail = ", ".join(f"{name} {state}" for name, state in sorted(upstreams.items()))
    status = body.get("status") if isinstance(body, dict) else None
    if code == 200 and status == "pong":
        return True, f"chef-server-api: ok ({detail or 'pong'})"
    words = [f"HTTP {code}", *([status] if status else []), *([f"({detail})"] if detail else [])]
    return False, f"chef-server-api: {' '.join(words)}"


def judge_leader(up: dict[str, list[str]]) -> tuple[bool, str]:
    """The leader is the one PostgreSQL server HAProxy marks UP (its /leader check); none or two is bad."""
    servers = up.get(BACKENDS[0], [])
    if len(servers) == 1:
        return True, f"leader: {servers[0]}"
    if not servers:
        return False, "leader: none (no backend UP in HAProxy)"
    return False, f"leader: several backends UP ({', '.join(servers)})"


def judge_search(code: int | None, body: Any, error: str = "") -> tuple[bool, str]:
    """green or yellow (every primary shard assigned, so search serves) is healthy; red or no answer is not."""
    if code is None:
        return False, f"search: unreachable ({error})"
    if code != 200 or not isinstance(body, dict) or "status" not in body:
        return False, f"search: HTTP {code} from _cluster/health"
    line = f"search: {body['status']} ({body.get('number_of_nodes', '?')} nodes)"
    return body["status"] in ("green", "yellow"), line


def get_json(url: str) -> tuple[int | None, Any, str]:
    """(HTTP code, JSON body or None, error) of a GET; code None when nothing answered."""
    try:
        r = httpx.get(url, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        return None, None, str(exc) or type(exc).__name__
    try:
        return r.status_code, r.json(), ""
    except ValueError:
        return r.status_code, None, ""


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def api_health(listen_host: str, port: int) -> tuple[bool, str]:
    return judge_api(*get_json(f"http://{url_host(local_address(listen_host))}:{port}/_status"))


def search_health(search_url: str) -> tuple[bool, str]:
    return judge_search(*get_json(search_url.rstrip("/") + "/_cluster/health"))
