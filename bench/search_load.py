"""Search at scale: our Chef server against Debian's goiardi with pg-search, same data, same run (issue 18).

    python bench/search_load.py --nodes 10000 --queries 10

As root (it starts PostgreSQL as the postgres user). Starts (bench/chef_servers.py) a throw-away PostgreSQL
(127.0.0.43) and OpenSearch (127.0.0.44), our `chef-server-api` with its default settings on 127.0.0.45:8000
and goiardi with pg-search on 127.0.0.46 (database `goiardi` in the same PostgreSQL). Both get roles web and
db, environments prod and staging, and `--nodes` nodes node-0 .. node-N-1: each has this machine's `ohai`
output padded to `--attr-kb` as its automatic attributes, with its own platform (debian, ubuntu or centos,
with family and version), chef_environment (prod or staging), run list (role[web] or role[db]), ipaddress,
hostname and fqdn, drawn from a seeded random generator so that every query selects a subset.

Indexing: one server at a time while the other idles, the nodes are created (`POST /nodes` as the admin,
`--concurrency` at a time); the clock runs from the first write to the start of the first search that finds
every node (`q=*:*`, paged, a partial search of the names: goiardi's `total` counts only the page). Ours
writes each node's row to a search outbox in PostgreSQL and drains it into OpenSearch before answering
(src/chef_server/search_index.py), made visible by the engine's refresh; goiardi's pg-search writes its
own search rows in PostgreSQL synchronously. Printed: nodes per second, write latencies, the servers'
CPU seconds.

Queries (what knife and chef-client send), each `--queries` times per server, one at a time, the two
servers taking turns request by request (both see the same machine load), after one unmeasured warm-up:
`GET /search/node` for platform:debian (rows=1000 as knife pages, and the server's default rows),
role:web AND chef_environment:prod, name:node-1*, a range on name, a NOT, and a partial search (`POST`
with attribute paths, as `knife search node platform:debian -a ipaddress`). Latency runs to the answer's
last byte. Printed per query: p50/p95/p99 (ms), the `total` each server answered, the total the data
implies, and whether they agree; `totals_agree` and `mismatches` sum it up.

`--attr-kb` defaults to 16, not ohai's real 120: at 120 KB goiardi wrote 2.9 nodes/s on this 2-core machine
(ours 7.6), so 10 000 nodes would take it about an hour. At 16 KB (ohai's output with a short package list and
without its filesystem and sysconf sections: bench/chef_servers.py ohai_tree) the full 10 000-node run fits in about
half an hour. `--queries` defaults to 10 for the same reason (goiardi answers 1000 rows in seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from chef_servers import (
    Hosts,
    Side,
    call,
    cpu_seconds,
    load_average,
    node_body,
    ohai_tree,
    percentiles,
    run_benchmark,
    running,
    signed,
)

HOSTS = Hosts(postgresql="127.0.0.43", opensearch="127.0.0.44", api="127.0.0.45", goiardi="127.0.0.46")
ORG = "searchbench"
PLATFORMS = {"debian": ("debian", "12.8"), "ubuntu": ("debian", "22.04"), "centos": ("rhel", "7.9.2009")}
ENVIRONMENTS = ("prod", "staging")
ROLES = ("web", "db")
EVERYTHING = "*:*"
PAGE = 1000
PARTIAL = {"__display_name": ["name"], "ipaddress": ["ipaddress"]}  # what knife search -a ipaddress sends


@dataclass(frozen=True)
class Facts:
    """What varies from node to node (and what the queries select on)."""

    number: int
    platform: str
    environment: str
    role: str

    @property
    def name(self) -> str:
        return f"node-{self.number}"


@dataclass(frozen=True)
class Query:
    label: str
    q: str
    rows: int | None  # None: the server's default
    expected: Callable[[Facts], bool]  # which nodes the query should count
    partial: dict[str, list[str]] | None = None


QUERIES = [
    Query("platform:debian rows=1000", "platform:debian", 1000, lambda f: f.platform == "debian"),
    Query("platform:debian default rows", "platform:debian", None, lambda f: f.platform == "debian"),
    Query("role:web AND chef_environment:prod", "role:web AND chef_environment:prod", 1000,
          lambda f: f.role == "web" and f.environment == "prod"),
    Query("name:node-1*", "name:node-1*", 1000, lambda f: f.name.startswith("node-1")),
    Query("name:[node-2000 TO node-2999]", "name:[node-2000 TO node-2999]", 1000,
          lambda f: "node-2000" <= f.name <= "node-2999"),
    Query("platform:ubuntu AND NOT chef_environment:prod", "platform:ubuntu AND NOT chef_environment:prod", 1000,
          lambda f: f.platform == "ubuntu" and f.environment != "prod"),
    Query("partial platform:debian -a ipaddress", "platform:debian", 1000, lambda f: f.platform == "debian",
          PARTIAL),
]


def progress(message: str) -> None:
    print(f"search_load: {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def facts(count: int, seed: int) -> list[Facts]:
    rng = random.Random(seed)
    return [Facts(i, rng.choice(list(PLATFORMS)), rng.choice(ENVIRONMENTS), rng.choice(ROLES)) for i in range(count)]


def node(fact: Facts, base: dict[str, Any]) -> dict[str, Any]:
    """The node as chef-client saves it after its first run (the shared ohai tree, this node's facts on top)."""
    family, version = PLATFORMS[fact.platform]
    n = fact.number
    automatic = dict(base, platform=fact.platform, platform_family=family, platform_version=version,
                     hostname=fact.name, fqdn=f"{fact.name}.example.com", ohai_time=time.time(),
                     ipaddress=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    return node_body(fact.name, automatic, [f"role[{fact.role}]"], fact.environment)


def setup(side: Side) -> None:
    """The roles and environments the nodes name."""
    server = side.server
    for role in ROLES:
        call(server, side.admin, side.admin_key, "POST", server.url("/roles"),
             {"name": role, "json_class": "Chef::Role", "chef_type": "role", "description": "",
              "run_list": [], "default_attributes": {}, "override_attributes": {}, "env_run_lists": {}})
    for env in ENVIRONMENTS:
        call(server, side.admin, side.admin_key, "POST", server.url("/environments"),
             {"name": env, "json_class": "Chef::Environment", "chef_type": "environment", "description": "",
              "cookbook_versions": {}, "default_attributes": {}, "override_attributes": {}})


def search_url(side: Side, q: str, rows: int | None) -> str:
    params = {"q": q} if rows is None else {"q": q, "rows": rows}
    return side.server.url(f"/search/node?{httpx.QueryParams(params)}")


def findable(side: Side, wanted: int) -> int:
    """How many distinct nodes a search for everything finds, up to `wanted`, page by page with a partial search
    of their names (goiardi's `total` counts only the page it answers; ours, as erchef on Elasticsearch, refuses
    a page past the engine's 10 000 results, so it stops once it has all)."""
    names: set[str] = set()
    start = 0
    while True:
        url = side.server.url(f"/search/node?{httpx.QueryParams({'q': EVERYTHING, 'start': start, 'rows': PAGE})}")
        page = call(side.server, side.admin, side.admin_key, "POST", url, {"name": ["name"]})["rows"]
        names.update(row["data"]["name"] for row in page)
        if len(page) < PAGE or len(names) >= wanted:
            return len(names)
        start += PAGE


async def write_all(side: Side, nodes: list[Facts], base: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """POST every node, `concurrency` at a time: write latencies and errors."""
    server = side.server
    latencies: list[float] = []
    errors: dict[str, int] = {}
    todo = iter(nodes)

    async def worker(client: httpx.AsyncClient) -> None:
        url = server.url("/nodes")
        for fact in todo:  # the iterator is shared: each node is written once
            body = orjson.dumps(node(fact, base))
            headers = signed(server, side.admin, side.admin_key, "POST", url, body)
            start = time.perf_counter()
            try:
                resp = await client.post(url, content=body, headers=headers)
                error = None if resp.status_code == 201 else f"{resp.status_code} {resp.text[:120]}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            latencies.append(time.perf_counter() - start)
            if error:
                errors[error] = errors.get(error, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return {"write": percentiles(latencies), "errors": errors}


def index(side: Side, nodes: list[Facts], base: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Indexing throughput: from the first write until a search counts every node."""
    progress(f"{side.server.name}: writing {len(nodes)} nodes, {args.concurrency} at a time")
    load_before = load_average()
    cpu0 = {name: cpu_seconds([pid]) for name, pid in side.pids.items()}
    began = time.monotonic()
    written = asyncio.run(write_all(side, nodes, base, args.concurrency))
    acknowledged = time.monotonic()
    wanted = len(nodes) - sum(written["errors"].values())
    while True:  # findable since the start of the search that finds them all
        findable_at = time.monotonic()
        found = findable(side, wanted)
        if found >= wanted or findable_at - acknowledged > args.settle_timeout:
            break
        time.sleep(0.2)
    cpu = {name: round(cpu_seconds([pid]) - cpu0[name], 1) for name, pid in side.pids.items()}
    progress(f"{side.server.name}: {found} of {wanted} findable after {findable_at - began:.1f} s")
    return {"nodes_per_second": round(len(nodes) / (findable_at - began), 1) if found >= wanted else None,
            "seconds_to_findable": round(findable_at - began, 1), "seconds_writing": round(acknowledged - began, 1),
            "findable": found, "acknowledged": wanted, **written,
            "server_cpu_seconds_by_process": cpu, "loadavg_before": load_before, "loadavg_after": load_average()}


def ask(client: httpx.Client, side: Side, query: Query) -> tuple[float, int | None, int | None, str | None]:
    """One search: (seconds to the answer's last byte, its total, rows in it, error)."""
    url = search_url(side, query.q, query.rows)
    method, body = ("POST", orjson.dumps(query.partial)) if query.partial else ("GET", b"")
    headers = signed(side.server, side.admin, side.admin_key, method, url, body)
    start = time.perf_counter()
    resp = client.request(method, url, content=body or None, headers=headers)
    seconds = time.perf_counter() - start
    if resp.status_code != 200:
        return seconds, None, None, f"{resp.status_code} {resp.text[:120]}"
    answer = orjson.loads(resp.content)  # parsed after the clock stops: the client's work is not the server's
    return seconds, answer.get("total"), len(answer.get("rows", [])), None


def latencies(sides: list[Side], nodes: list[Facts], repetitions: int) -> dict[str, Any]:
    """Every query against both servers, taking turns; totals compared with what the data implies."""
    results: dict[str, Any] = {}
    with httpx.Client(timeout=300) as client:
        for query in QUERIES:
            progress(f"{query.label}: {repetitions} times per server")
            seen: dict[str, dict[str, Any]] = {s.server.name: {"times": [], "totals": set(), "rows": set(),
                                                                "errors": {}} for s in sides}
            for rep in range(repetitions + 1):
                for side in sides:
                    seconds, found, rows, error = ask(client, side, query)
                    mine = seen[side.server.name]
                    if error:
                        mine["errors"][error] = mine["errors"].get(error, 0) + 1
                        continue
                    mine["totals"].add(found)
                    mine["rows"].add(rows)
                    if rep:  # the first is the warm-up
                        mine["times"].append(seconds)
            expected = sum(1 for f in nodes if query.expected(f))
            entry: dict[str, Any] = {"q": query.q, "rows_param": query.rows, "partial": query.partial,
                                     "expected_total": expected}
            for name, mine in seen.items():
                totals = sorted(mine["totals"])
                entry[name] = {**percentiles(mine["times"]), "total": totals[0] if len(totals) == 1 else totals,
                               "rows_returned": sorted(mine["rows"]), "errors": mine["errors"]}
            answered = [entry[s.server.name]["total"] for s in sides]
            entry["totals_agree"] = all(t == answered[0] for t in answered)
            entry["totals_as_expected"] = {s.server.name: entry[s.server.name]["total"] == expected for s in sides}
            results[query.label] = entry
    return results


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    base = ohai_tree(args.attr_kb)
    nodes = facts(args.nodes, args.seed)
    result: dict[str, Any] = {"settings": {
        "nodes": args.nodes, "automatic_kb": round(len(json.dumps(base)) / 1024, 1), "queries": args.queries,
        "concurrency": args.concurrency, "seed": args.seed, "cpus": os.cpu_count(),
        "data": {"platform": {p: sum(f.platform == p for f in nodes) for p in PLATFORMS},
                 "chef_environment": {e: sum(f.environment == e for f in nodes) for e in ENVIRONMENTS},
                 "role": {r: sum(f.role == r for f in nodes) for r in ROLES}}}}
    with running(HOSTS, work, ORG, progress) as sides:
        for side in sides:
            setup(side)
        result["indexing"] = {side.server.name: index(side, nodes, base, args) for side in sides}
        load_before = load_average()
        queries = latencies(list(sides), nodes, args.queries)
        result["queries"] = queries
        result["queries_loadavg"] = f"{load_before} -> {load_average()}"
        result["mismatches"] = [label for label, entry in queries.items() if not entry["totals_agree"]]
        result["totals_agree"] = not result["mismatches"]
        result["not_as_expected"] = {
            label: wrong for label, entry in queries.items()
            if (wrong := [name for name, ok in entry["totals_as_expected"].items() if not ok])}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--attr-kb", type=int, default=16, help="size of each node's automatic attribute tree")
    parser.add_argument("--queries", type=int, default=10, help="measured repetitions of each query per server")
    parser.add_argument("--concurrency", type=int, default=4, help="node writes in flight during the indexing load")
    parser.add_argument("--settle-timeout", type=float, default=600,
                        help="longest wait, after the last write, for every node to be findable")
    parser.add_argument("--seed", type=int, default=1)
    return run_benchmark(parser, run, "search-load-", progress)


if __name__ == "__main__":
    sys.exit(main())
