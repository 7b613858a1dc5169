"""Simulated chef-client runs against our Chef server and goiardi, side by side in one run (issue 20).

    python bench/chef_load.py --nodes 200 --runs-per-minute 600 --seconds 60

As root (it starts PostgreSQL as the postgres user). Starts a throw-away PostgreSQL (127.0.0.37) and
OpenSearch (127.0.0.38), our `chef-server-api` with its default settings on 127.0.0.39:8000, and
Debian's goiardi with pg-search on 127.0.0.40 (database `goiardi` in the same PostgreSQL). Uploads the
same cookbooks and a role to both, registers every node through the validator as chef-client does
(its own key pair, POST /clients, then POST /nodes as the new client), then, one server at a time
while the other idles, runs the same workload for `--seconds`: each node runs at its share of
`--runs-per-minute` (GET node, GET role, POST cookbook_versions, GET a share of the files, PUT node
with an ohai attribute tree of about 120 KB, one partial search). Prints JSON: per server, completed
runs per minute (runs still going at the end are stopped and not counted; `late_starts` are runs that
began over 1 s behind their node's schedule), p50/p95/p99 (ms) per request type, errors, the servers'
CPU seconds per run, the load average; and our API's worker count, RSS per process and total memory at
idle. Latencies are measured by the load generator, which shares the machine's CPUs with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from chef_servers import (
    Hosts,
    Server,
    Side,
    call,
    cpu_seconds,
    load_average,
    load_key,
    node_body,
    ohai_tree,
    percentiles,
    run_benchmark,
    running,
    signed,
    tree,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chef_server import config

HOSTS = Hosts(postgresql="127.0.0.37", opensearch="127.0.0.38", api="127.0.0.39", goiardi="127.0.0.40")
ORG = "loadbench"
RUN_LIST = ["role[web]"]
ROLE = {"name": "web", "json_class": "Chef::Role", "chef_type": "role", "description": "web servers",
        "run_list": [f"recipe[cb{i}]" for i in range(5)], "default_attributes": {"nginx": {"port": 80}},
        "override_attributes": {}, "env_run_lists": {}}
SEARCH_QUERY = "role:web AND chef_environment:_default"
SEARCH_FILTER = {"name": ["name"], "ip": ["ipaddress"], "platform": ["platform"]}


def progress(message: str) -> None:
    print(f"chef_load: {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# ---- the data both servers get -------------------------------------------------------------------------------

def cookbooks(count: int, files_per_cookbook: int) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """`count` cookbooks (two versions each); cb0..cb4 (the role's recipes) depend on three others each."""
    rng = random.Random(7)
    result = []
    for i in range(count):
        deps = sorted({f"cb{rng.randrange(5, count)}" for _ in range(3)}) if i < 5 and count > 5 else []
        for version in ("1.0.0", "1.1.0"):
            files: dict[str, bytes] = {}
            segments: dict[str, list[dict[str, str]]] = {"recipes": [], "attributes": [], "templates": [],
                                                         "files": []}
            for j in range(files_per_cookbook):
                segment, name = [("recipes", f"r{j}.rb"), ("attributes", f"a{j}.rb"),
                                 ("templates", f"t{j}.erb"), ("files", f"f{j}.conf")][j % 4]
                if j == 0:
                    segment, name = "recipes", "default.rb"
                content = f"# cb{i} {version if j == 0 else ''} {name}\n".encode() + rng.randbytes(1500).hex().encode()
                checksum = hashlib.md5(content).hexdigest()
                files[checksum] = content
                path = f"{segment}/{name}" if segment in ("recipes", "attributes") else f"{segment}/default/{name}"
                segments[segment].append({"name": name, "path": path, "checksum": checksum,
                                          "specificity": "default"})
            manifest = {"name": f"cb{i}-{version}", "cookbook_name": f"cb{i}", "version": version,
                        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version", "frozen?": False,
                        "metadata": {"name": f"cb{i}", "version": version, "description": "", "long_description": "",
                                     "maintainer": "", "maintainer_email": "", "license": "Apache-2.0",
                                     "platforms": {}, "dependencies": {d: ">= 0.0.0" for d in deps},
                                     "recipes": {f"cb{i}::default": ""}},
                        **segments}
            result.append((manifest, files))
    return result


# ---- setup of one server ---------------------------------------------------------------------------------------

def upload(server: Server, user: str, key: Any, books: list[tuple[dict[str, Any], dict[str, bytes]]]) -> None:
    """knife upload: one sandbox with every file, the PUTs it asks for, the commit, then each version."""
    every = {c: f for _, files in books for c, f in files.items()}
    box = call(server, user, key, "POST", server.url("/sandboxes"), {"checksums": dict.fromkeys(every)})
    for checksum, item in box["checksums"].items():
        if item.get("needs_upload"):
            content = every[checksum]
            headers = signed(server, user, key, "PUT", item["url"], content)
            headers.update({"Content-Type": "application/x-binary",
                            "Content-MD5": base64.b64encode(hashlib.md5(content).digest()).decode()})
            resp = httpx.put(item["url"], content=content, headers=headers, timeout=60)
            if resp.status_code not in (200, 201, 204):
                raise RuntimeError(f"{server.name}: file upload -> {resp.status_code} {resp.text[:300]}")
    call(server, user, key, "PUT", server.url(f"/sandboxes/{box['sandbox_id']}"), {"is_completed": True})
    for manifest, _ in books:
        call(server, user, key, "PUT", server.url(f"/cookbooks/{manifest['cookbook_name']}/{manifest['version']}"),
             manifest)


def register(server: Server, validator: str, validator_key: Any, name: str) -> tuple[str, str]:
    """chef-client's first run: its own key pair, POST /clients as the validator, POST /nodes as itself."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    answer = call(server, validator, validator_key, "POST", server.url("/clients"),
                  {"name": name, "admin": False, "public_key": public_pem})
    # A server that ignores the public key sends the private key it made (goiardi does).
    pem = answer.get("private_key") or (answer.get("chef_key") or {}).get("private_key")
    if not isinstance(pem, str):
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    call(server, name, load_key(pem), "POST", server.url("/nodes"), node_body(name, None, RUN_LIST))
    return name, pem


# ---- the workload (in load processes) --------------------------------------------------------------------------

@dataclass
class Plan:
    server: Server
    nodes: list[tuple[str, str]]  # (name, private key PEM)
    interval: float  # seconds between two runs of one node
    start: float  # time.time() when measuring begins (after the warm-up)
    end: float
    file_share: float
    automatic: dict[str, Any]
    seed: int


async def one_run(client: httpx.AsyncClient, plan: Plan, name: str, key: Any, rng: random.Random,
                  record: Any) -> bool:
    server = plan.server

    async def request(kind: str, method: str, url: str, doc: Any = None) -> Any:
        body = json.dumps(doc).encode() if doc is not None else b""
        headers = signed(server, name, key, method, url, body)
        start = time.perf_counter()
        try:
            resp = await client.request(method, url, content=body or None, headers=headers)
        except httpx.HTTPError as exc:
            record(kind, time.perf_counter() - start, type(exc).__name__)
            return None
        record(kind, time.perf_counter() - start,
               None if resp.status_code < 300 else f"{resp.status_code} {resp.text[:120]}")
        if resp.status_code >= 300:
            return None
        return resp.json() if kind != "get_file" else resp.content

    node = await request("get_node", "GET", server.url(f"/nodes/{name}"))
    if node is None:
        return False
    role = await request("get_role", "GET", server.url("/roles/web"))
    if role is None:
        return False
    # chef-client expands the roles itself and sends the recipes' names ("cb0", not "recipe[cb0]")
    recipes = [item.removeprefix("recipe[").removesuffix("]") for item in role["run_list"]]
    books = await request("cookbook_versions", "POST", server.url("/environments/_default/cookbook_versions"),
                          {"run_list": recipes})
    if books is None:
        return False
    urls = [f["url"] for book in books.values() for seg in ("recipes", "attributes", "templates", "files")
            for f in book.get(seg) or []]
    # chef-client keeps files by checksum and fetches only what changed: a share of them per run
    for url in rng.sample(urls, max(1, round(len(urls) * plan.file_share))):
        if await request("get_file", "GET", url) is None:
            return False
    automatic = dict(plan.automatic, hostname=name, fqdn=f"{name}.example.com", ohai_time=time.time(),
                     ipaddress=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    node.update(automatic=automatic, run_list=RUN_LIST)
    if await request("put_node", "PUT", server.url(f"/nodes/{name}"), node) is None:
        return False
    query = httpx.QueryParams({"q": SEARCH_QUERY, "rows": 1000})
    return await request("search", "POST", server.url(f"/search/node?{query}"), SEARCH_FILTER) is not None


async def drive(plan: Plan) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[str, int]] = {}
    runs = {"completed": 0, "failed": 0, "late_starts": 0}
    measuring = [False]

    def record(kind: str, seconds: float, error: str | None) -> None:
        if not measuring[0]:
            return
        latencies.setdefault(kind, []).append(seconds)
        if error:
            errors.setdefault(kind, {}).setdefault(error, 0)
            errors[kind][error] += 1

    async def node_loop(client: httpx.AsyncClient, name: str, pem: str, offset: float) -> None:
        key, rng = load_key(pem), random.Random(f"{plan.seed}{name}")
        due = time.time() + offset
        while due < plan.end and time.time() < plan.end:  # a node behind schedule stops at the end too
            await asyncio.sleep(max(0.0, due - time.time()))
            began = time.time()
            if began - due > 1.0 and began >= plan.start:
                runs["late_starts"] += 1
            ok = await one_run(client, plan, name, key, rng, record)
            if began >= plan.start and time.time() <= plan.end:
                runs["completed" if ok else "failed"] += 1
            due += plan.interval

    limits = httpx.Limits(max_connections=len(plan.nodes), max_keepalive_connections=len(plan.nodes))
    rng = random.Random(plan.seed)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        loops = [asyncio.create_task(node_loop(client, name, pem, rng.uniform(0, plan.interval)))
                 for name, pem in plan.nodes]
        await asyncio.sleep(max(0.0, plan.start - time.time()))
        measuring[0] = True
        await asyncio.sleep(max(0.0, plan.end - time.time()))
        measuring[0] = False
        for loop in loops:  # runs still going at the end do not count: stop them rather than wait
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    return {"latencies": latencies, "errors": errors, "runs": runs}


def drive_in_process(plan: Plan) -> dict[str, Any]:
    return asyncio.run(drive(plan))


# ---- measuring processes ---------------------------------------------------------------------------------------

def memory_kb(pid: int) -> dict[str, int]:
    """RSS and PSS (shared pages split among the processes sharing them) of one process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name.lower() + "_kb"] = int(rest.split()[0])
    return values


def api_memory(root: int) -> dict[str, Any]:
    pids = tree(root)
    per = {pid: memory_kb(pid) for pid in pids}
    workers = [pid for pid in pids if pid != root]
    return {"processes": len(pids), "workers": len(workers),
            "main_rss_mb": round(per[root]["rss_kb"] / 1024, 1),
            "worker_rss_mb": [round(per[p]["rss_kb"] / 1024, 1) for p in workers],
            "total_rss_mb": round(sum(v["rss_kb"] for v in per.values()) / 1024, 1),
            "total_pss_mb": round(sum(v["pss_kb"] for v in per.values()) / 1024, 1)}


# ---- the benchmark ---------------------------------------------------------------------------------------------

def measure(server: Server, nodes: list[tuple[str, str]], roots: dict[str, int], args: argparse.Namespace,
            automatic: dict[str, Any]) -> dict[str, Any]:
    """The workload against one server for --warmup + --seconds, in --procs load processes."""
    progress(f"{server.name}: {args.runs_per_minute} runs/min for {args.warmup} + {args.seconds} s")
    interval = len(nodes) * 60.0 / args.runs_per_minute
    start = time.time() + args.warmup
    end = start + args.seconds
    plans = [Plan(server, nodes[i::args.procs], interval, start, end, args.file_share, automatic, args.seed + i)
             for i in range(args.procs)]
    load_before = load_average()
    with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
        pending = pool.map_async(drive_in_process, plans)
        time.sleep(max(0.0, start - time.time()))
        cpu0 = {name: cpu_seconds([pid]) for name, pid in roots.items()}
        time.sleep(max(0.0, end - time.time()))
        cpu1 = {name: cpu_seconds([pid]) for name, pid in roots.items()}
        parts = pending.get()
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[str, int]] = {}
    runs = {"completed": 0, "failed": 0, "late_starts": 0}
    for part in parts:
        for kind, values in part["latencies"].items():
            latencies.setdefault(kind, []).extend(values)
        for kind, counts in part["errors"].items():
            for err, n in counts.items():
                errors.setdefault(kind, {}).setdefault(err, 0)
                errors[kind][err] += n
        for k, v in part["runs"].items():
            runs[k] += v
    server_cpu = sum(cpu1.values()) - sum(cpu0.values())
    return {"completed_runs_per_minute": round(runs["completed"] * 60 / args.seconds, 1),
            "offered_runs_per_minute": args.runs_per_minute, **runs,
            "server_cpu_seconds": round(server_cpu, 1),
            "server_cpu_seconds_by_process": {name: round(cpu1[name] - cpu0[name], 1) for name in roots},
            "server_cpu_ms_per_run": round(server_cpu * 1000 / runs["completed"], 1) if runs["completed"] else None,
            "requests": {kind: percentiles(values) for kind, values in sorted(latencies.items())},
            "errors": errors, "loadavg_before": load_before, "loadavg_after": load_average()}


def prepare(side: Side, books: list[tuple[dict[str, Any], dict[str, bytes]]],
            count: int) -> tuple[list[tuple[str, str]], float]:
    server = side.server
    progress(f"{server.name}: uploading cookbooks, registering {count} nodes")
    upload(server, side.admin, side.admin_key, books)
    call(server, side.admin, side.admin_key, "POST", server.url("/roles"), ROLE)
    began = time.monotonic()
    nodes = [register(server, side.validator, side.validator_key, f"node{i:04d}") for i in range(count)]
    return nodes, time.monotonic() - began


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    books = cookbooks(args.cookbooks, args.files_per_cookbook)
    automatic = ohai_tree(args.attributes_kb)
    result: dict[str, Any] = {
        "settings": {"nodes": args.nodes, "runs_per_minute": args.runs_per_minute, "seconds": args.seconds,
                     "cookbooks": args.cookbooks, "files_per_cookbook": args.files_per_cookbook,
                     "file_share": args.file_share, "automatic_kb": round(len(json.dumps(automatic)) / 1024, 1),
                     "search": f"POST /search/node q={SEARCH_QUERY} (partial)", "load_processes": args.procs,
                     "cpus": os.cpu_count()}}
    with running(HOSTS, work, ORG, progress) as (ours, theirs):
        time.sleep(5)
        result["ours_idle_memory"] = {**api_memory(ours.pids["api"]), "default_workers": config.Settings().workers}
        ours_nodes, ours_reg = prepare(ours, books, args.nodes)
        result["registration_seconds"] = {"ours": round(ours_reg, 1)}
        if not args.only_ours:
            their_nodes, their_reg = prepare(theirs, books, args.nodes)
            result["registration_seconds"]["goiardi"] = round(their_reg, 1)
        result["ours"] = measure(ours.server, ours_nodes, ours.pids, args, automatic)
        result["ours_memory_after"] = api_memory(ours.pids["api"])
        if not args.only_ours:
            result["goiardi"] = measure(theirs.server, their_nodes, theirs.pids, args, automatic)
            result["goiardi_rss_mb_after"] = round(memory_kb(theirs.pids["goiardi"])["rss_kb"] / 1024, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200, help="simulated nodes (each registers once)")
    parser.add_argument("--runs-per-minute", type=float, default=600, help="offered chef-client runs per minute")
    parser.add_argument("--seconds", type=float, default=60, help="measured time per server")
    parser.add_argument("--warmup", type=float, default=10, help="unmeasured time before it")
    parser.add_argument("--cookbooks", type=int, default=20)
    parser.add_argument("--files-per-cookbook", type=int, default=12)
    parser.add_argument("--file-share", type=float, default=0.2, help="share of the run list's files fetched per run")
    parser.add_argument("--attributes-kb", type=int, default=120, help="size of the automatic attribute tree")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only-ours", action="store_true",
                        help="drive our server only (profiling; the comparison needs both)")
    return run_benchmark(parser, run, "chef-load-", progress)


if __name__ == "__main__":
    sys.exit(main())
