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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chef_server import config
from tests.chef_server.conftest import start_frontend, stop_frontend
from tests.chef_server.opensearch import OpenSearch
from tests.chef_server.pg import Postgres
from tests.chef_server.signer import sign
from tests.support.goiardi import Goiardi, load_schema

PG_HOST, SEARCH_HOST, API_HOST, GOIARDI_HOST = "127.0.0.37", "127.0.0.38", "127.0.0.39", "127.0.0.40"
API_PORT = 8000
ORG = "loadbench"
RUN_LIST = ["role[web]"]
ROLE = {"name": "web", "json_class": "Chef::Role", "chef_type": "role", "description": "web servers",
        "run_list": [f"recipe[cb{i}]" for i in range(5)], "default_attributes": {"nginx": {"port": 80}},
        "override_attributes": {}, "env_run_lists": {}}
SEARCH_QUERY = "role:web AND chef_environment:_default"
SEARCH_FILTER = {"name": ["name"], "ip": ["ipaddress"], "platform": ["platform"]}
OHAI = "/usr/bin/ohai"


@dataclass(frozen=True)
class Server:
    """Where one server's objects live and how it wants to be signed: the one place the two differ."""

    name: str
    root: str  # scheme://host:port
    prefix: str  # "/organizations/ORG" for ours, "" for goiardi (Chef 11: no organizations)
    api_version: str  # X-Ops-Server-API-Version: ours speaks 1, goiardi 0

    def url(self, path: str) -> str:
        return f"{self.root}{self.prefix}{path}"


def signed(server: Server, user: str, key: Any, method: str, url: str, body: bytes = b"") -> dict[str, str]:
    """Chef headers for `url`, unless it is a pre-signed bookshelf URL (S3 signature in its query)."""
    if "X-Amz-Signature" in url:
        return {}
    path = httpx.URL(url).path
    headers = sign(key, user, method, path, body, version="1.3", api_version=server.api_version)
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def progress(message: str) -> None:
    print(f"chef_load: {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def load_key(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def call(server: Server, user: str, key: Any, method: str, url: str, doc: Any = None,
         ok: tuple[int, ...] = (200, 201)) -> Any:
    """One signed request during setup; anything but `ok` stops the benchmark with the server's answer."""
    body = json.dumps(doc).encode() if doc is not None else b""
    resp = httpx.request(method, url, content=body or None, headers=signed(server, user, key, method, url, body),
                         timeout=120)
    if resp.status_code not in ok:
        raise RuntimeError(f"{server.name}: {method} {url} -> {resp.status_code} {resp.text[:300]}")
    return resp.json() if resp.content else None


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


def ohai_tree(target_kb: int) -> dict[str, Any]:
    """ohai's real output on this machine (Debian's ohai), padded with packages to about `target_kb`."""
    if Path(OHAI).exists():
        tree = json.loads(subprocess.run([OHAI], capture_output=True, text=True, timeout=300, check=True).stdout)
    else:
        from tests.chef_server.test_search_api import ohai_like  # the search tests' ohai-shaped tree
        tree = ohai_like(1)
    packages = tree.setdefault("packages", {})
    i = 0
    while len(json.dumps(tree)) < target_kb * 1024:
        packages[f"lib-bench-{i}"] = {"version": f"2.{i}.0-1", "arch": "amd64", "publisher": "Debian"}
        i += 1
    return tree


def node_body(name: str, automatic: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": name, "chef_environment": "_default", "json_class": "Chef::Node", "chef_type": "node",
            "run_list": RUN_LIST, "normal": {"tags": []}, "default": {}, "override": {},
            "automatic": automatic or {}}


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
    call(server, name, load_key(pem), "POST", server.url("/nodes"), node_body(name, None))
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

def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree(root: int) -> list[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_seconds(roots: list[int]) -> float:
    """CPU time of the process trees (the roots' reaped children included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for root in roots:
        for pid in tree(root):
            fields = _stat(pid)
            if fields:
                total += sum(int(x) for x in fields[11:13]) + (sum(int(x) for x in fields[13:15]) if pid == root else 0)
    return total / ticks


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


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as uptime prints them: the machine is shared."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"count": len(values)}
    q = statistics.quantiles(values, n=100)
    return {"count": len(values), "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
            "p99_ms": round(q[98] * 1000, 1)}


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


def prepare(server: Server, admin: str, admin_key: Any, validator: str, validator_key: Any,
            books: list[tuple[dict[str, Any], dict[str, bytes]]], count: int) -> tuple[list[tuple[str, str]], float]:
    progress(f"{server.name}: uploading cookbooks, registering {count} nodes")
    upload(server, admin, admin_key, books)
    call(server, admin, admin_key, "POST", server.url("/roles"), ROLE)
    began = time.monotonic()
    nodes = [register(server, validator, validator_key, f"node{i:04d}") for i in range(count)]
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
    started: list[Any] = []
    progress("starting PostgreSQL, OpenSearch, our API and goiardi")
    pg = Postgres(host=PG_HOST)
    pg.start()
    started.append(pg.stop)
    try:
        search = OpenSearch(SEARCH_HOST, work / "opensearch")
        search.start()
        started.append(search.stop)
        defaults = config.Settings()
        fe = start_frontend(pg, str(work), port=API_PORT, workers=defaults.workers, search_url=search.url,
                            host=API_HOST, db_pool_size=str(defaults.db_pool_size))
        started.append(lambda: stop_frontend(fe))
        load_schema(PG_HOST, "postgres", "")
        goiardi = Goiardi("bench", GOIARDI_HOST, work / "goiardi", work / "goiardi-shared", "postgres", "",
                          db_host=PG_HOST)
        goiardi.start()
        started.append(goiardi.stop)
        time.sleep(5)
        result["ours_idle_memory"] = {**api_memory(fe.proc.pid), "default_workers": defaults.workers}

        ours = Server("ours", fe.url, f"/organizations/{ORG}", "1")
        pivotal = load_key(fe.pivotal_key)
        org = call(Server("ours", fe.url, "", "1"), "pivotal", pivotal, "POST", fe.url + "/organizations",
                   {"name": ORG, "full_name": "Load benchmark"})
        ours_nodes, ours_reg = prepare(ours, "pivotal", pivotal, f"{ORG}-validator", load_key(org["private_key"]),
                                       books, args.nodes)
        theirs = Server("goiardi", goiardi.url, "", "0")
        shared = work / "goiardi-shared"
        their_nodes, their_reg = prepare(theirs, "admin", load_key((shared / "admin.pem").read_text()),
                                         "chef-validator", load_key((shared / "chef-validator.pem").read_text()),
                                         books, args.nodes)
        result["registration_seconds"] = {"ours": round(ours_reg, 1), "goiardi": round(their_reg, 1)}
        pg_pid = pg.proc.pid
        result["ours"] = measure(ours, ours_nodes, {"api": fe.proc.pid, "postgresql": pg_pid,
                                                                "opensearch": search.proc.pid}, args, automatic)
        result["ours_memory_after"] = api_memory(fe.proc.pid)
        result["goiardi"] = measure(theirs, their_nodes, {"goiardi": goiardi.proc.pid, "postgresql": pg_pid}, args,
                                    automatic)
        result["goiardi_rss_mb_after"] = round(memory_kb(goiardi.proc.pid)["rss_kb"] / 1024, 1)
    finally:
        for stop in reversed(started):
            try:
                stop()
            except Exception as exc:  # keep stopping the others
                print(f"chef_load: stopping failed: {exc}", file=sys.stderr)
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
    parser.add_argument("--keep", action="store_true", help="keep the work directory (the servers' logs)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: PostgreSQL is started as the postgres user")
    work = Path(tempfile.mkdtemp(prefix="chef-load-"))
    try:
        print(json.dumps(run(args, work), indent=1))
    finally:
        if args.keep:
            progress(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
