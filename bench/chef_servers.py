"""What the frontend's comparison benchmarks share (bench/chef_load.py, bench/search_load.py): our Chef server
and Debian's goiardi with pg-search started throw-away side by side, signed requests to either, the data both
get (ohai's attribute tree, node bodies), and the figures they print.

Not a benchmark itself: the two scripts import it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from cryptography.hazmat.primitives import serialization

from chef_server import config
from tests.chef_server.conftest import start_frontend, stop_frontend
from tests.chef_server.opensearch import OpenSearch
from tests.chef_server.pg import Postgres
from tests.chef_server.signer import sign
from tests.support.goiardi import Goiardi, load_schema

API_PORT = 8000
OHAI = "/usr/bin/ohai"
OHAI_IDENTITY = {"packages", "platform", "platform_family", "platform_version", "hostname", "fqdn", "ipaddress",
                 "macaddress", "os", "os_version", "kernel", "machine_id", "network", "memory", "cpu", "ohai_time"}


@dataclass(frozen=True)
class Server:
    """Where one server's objects live and how it wants to be signed: the one place the two differ."""

    name: str
    root: str  # scheme://host:port
    prefix: str  # "/organizations/ORG" for ours, "" for goiardi (Chef 11: no organizations)
    api_version: str  # X-Ops-Server-API-Version: ours speaks 1, goiardi 0

    def url(self, path: str) -> str:
        return f"{self.root}{self.prefix}{path}"


@dataclass(frozen=True)
class Side:
    """One running server: where it is, its admin and validator, and the processes that serve it."""

    server: Server
    admin: str
    admin_key: Any
    validator: str
    validator_key: Any
    pids: dict[str, int]  # name -> root pid: ours "api", "postgresql", "opensearch"; goiardi "goiardi", "postgresql"


class Hosts(NamedTuple):
    """The loopback addresses of one run (each benchmark has its own, so runs do not collide)."""

    postgresql: str
    opensearch: str
    api: str
    goiardi: str


def signed(server: Server, user: str, key: Any, method: str, url: str, body: bytes = b"") -> dict[str, str]:
    """Chef headers for `url`, unless it is a pre-signed bookshelf URL (S3 signature in its query)."""
    if "X-Amz-Signature" in url:
        return {}
    path = httpx.URL(url).path
    headers = sign(key, user, method, path, body, version="1.3", api_version=server.api_version)
    if body:
        headers["Content-Type"] = "application/json"
    return headers


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


def ohai_tree(target_kb: int) -> dict[str, Any]:
    """ohai's real output on this machine (Debian's ohai), padded with packages to about `target_kb`, or, when
    that is smaller than ohai's output, a smaller machine's: fewer packages, then without ohai's largest other
    sections (the ones that say which machine it is stay)."""
    if Path(OHAI).exists():
        tree = json.loads(subprocess.run([OHAI], capture_output=True, text=True, timeout=300, check=True).stdout)
    else:
        from tests.chef_server.test_search_api import ohai_like  # the search tests' ohai-shaped tree
        tree = ohai_like(1)
    limit = target_kb * 1024
    packages = tree.setdefault("packages", {})
    while len(json.dumps(tree)) > limit and packages:
        for name in list(packages)[-20:]:
            del packages[name]
    for key in sorted(tree, key=lambda k: -len(json.dumps(tree[k]))):
        if len(json.dumps(tree)) <= limit:
            break
        if key not in OHAI_IDENTITY:
            del tree[key]
    i = 0
    while len(json.dumps(tree)) < limit:
        packages[f"lib-bench-{i}"] = {"version": f"2.{i}.0-1", "arch": "amd64", "publisher": "Debian"}
        i += 1
    return tree


def node_body(name: str, automatic: dict[str, Any] | None, run_list: list[str],
              environment: str = "_default") -> dict[str, Any]:
    return {"name": name, "chef_environment": environment, "json_class": "Chef::Node", "chef_type": "node",
            "run_list": run_list, "normal": {"tags": []}, "default": {}, "override": {},
            "automatic": automatic or {}}


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


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as uptime prints them: the machine is shared."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"count": len(values)}
    q = statistics.quantiles(values, n=100)
    return {"count": len(values), "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
            "p99_ms": round(q[98] * 1000, 1)}


@contextmanager
def running(hosts: Hosts, work: Path, org: str, say: Callable[[str], None]) -> Iterator[tuple[Side, Side]]:
    """(ours, goiardi) for the block: a throw-away PostgreSQL and OpenSearch, our API with its default settings
    and organization `org`, and goiardi with pg-search (database `goiardi` in the same PostgreSQL)."""
    started: list[Callable[[], None]] = []
    say("starting PostgreSQL, OpenSearch, our API and goiardi")
    pg = Postgres(host=hosts.postgresql)
    pg.start()
    started.append(pg.stop)
    try:
        search = OpenSearch(hosts.opensearch, work / "opensearch")
        search.start()
        started.append(search.stop)
        defaults = config.Settings()
        fe = start_frontend(pg, str(work), port=API_PORT, workers=defaults.workers, search_url=search.url,
                            host=hosts.api, db_pool_size=str(defaults.db_pool_size))
        started.append(lambda: stop_frontend(fe))
        load_schema(hosts.postgresql, "postgres", "")
        shared = work / "goiardi-shared"
        goiardi = Goiardi("bench", hosts.goiardi, work / "goiardi", shared, "postgres", "", db_host=hosts.postgresql)
        goiardi.start()
        started.append(goiardi.stop)

        pivotal = load_key(fe.pivotal_key)
        created = call(Server("ours", fe.url, "", "1"), "pivotal", pivotal, "POST", fe.url + "/organizations",
                       {"name": org, "full_name": "Benchmark"})
        ours = Side(Server("ours", fe.url, f"/organizations/{org}", "1"), "pivotal", pivotal, f"{org}-validator",
                    load_key(created["private_key"]),
                    {"api": fe.proc.pid, "postgresql": pg.proc.pid, "opensearch": search.proc.pid})
        theirs = Side(Server("goiardi", goiardi.url, "", "0"), "admin", load_key((shared / "admin.pem").read_text()),
                      "chef-validator", load_key((shared / "chef-validator.pem").read_text()),
                      {"goiardi": goiardi.proc.pid, "postgresql": pg.proc.pid})
        yield ours, theirs
    finally:
        for stop in reversed(started):
            try:
                stop()
            except Exception as exc:  # keep stopping the others
                print(f"stopping failed: {exc}", file=sys.stderr)


def run_benchmark(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace, Path], dict[str, Any]],
                  prefix: str, say: Callable[[str], None]) -> int:
    """Parse the command line (adding --keep), then print as JSON what `run(args, work)` returns, `work` a fresh
    directory removed afterwards unless --keep."""
    parser.add_argument("--keep", action="store_true", help="keep the work directory (the servers' logs)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: PostgreSQL is started as the postgres user")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        print(json.dumps(run(args, work), indent=1))
    finally:
        if args.keep:
            say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0
