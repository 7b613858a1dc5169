"""Kill anything, keep serving: the whole system of the README's first command (three backends with search, two
frontends from `chef-server-ctl reconfigure`, the load balancer in front of them), under a continuous
chef-client-like workload through the load balancer, survives in turn a kill -9 of one frontend's API service,
a kill -9 of the backend leader node, and a kill -9 of a frontend's HAProxy (its backend connection lost).

Afterwards every acknowledged write is readable and searchable through the load balancer, no request got an
answer other than the step's own or a 503 / no answer (which the workload retries), and the workload resumed
after each fault."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from chef_backend.supervision.runit import Supervisor
from chef_server.ctl import certificate, load_balancer
from chef_server.ctl.client import ChefClient
from chef_server.ctl.layout import Layout
from tests.ha.workload import Actor, ChefRuns
from tests.support.harness import Cluster, _proc_children

CTL = os.environ.get("CHEF_SERVER_CTL", "/opt/chef-backend/embedded/bin/chef-server-ctl")
# Addresses of their own (the local cluster and other frontend tests use .21, .22 and .30).
FRONTENDS = (("fe-1", "127.0.0.23"), ("fe-2", "127.0.0.24"))
LB_ADDRESS = "127.0.0.29"
SERVER_NAME = "chef-ha.example.com"
SEARCH_CONFIG = ("elasticsearch.enable = true\nelasticsearch.heap_size = 256\n"
                 "leaderl.health_check.interval_seconds = 1\nleaderl.health_check.max_elasticsearch_failures = 3\n")
ORG = "ha"
COOKBOOK = "base"
RECIPE = b"log 'a chef-client run through the load balancer'\n"
RUNS_AFTER_EACH_FAULT = 6  # completed runs that show the workload resumed
SEARCH_CATCH_UP_S = 120  # the search outbox drains within this after the last fault


@dataclass
class Frontend:
    name: str
    address: str
    root: Path

    @property
    def dir(self) -> Path:
        return self.root / "var/opt/opscode"

    @property
    def server_rb(self) -> Path:
        return self.root / "etc/opscode/chef-server.rb"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([CTL, *args], text=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"chef-server-ctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def supervisor(self) -> Supervisor:
        return Supervisor(Layout(self.dir, self.server_rb.parent).runit)

    def kill_service(self, service: str) -> list[int]:
        """kill -9 of a runit service's process and all its children (the API's granian workers); runsv
        starts it again."""
        pid = self.supervisor().status(service).pid
        assert pid, f"{service} of {self.name} is not running"
        tree, pids, stack = _proc_children(), [pid], [pid]
        while stack:
            for child in tree.get(stack.pop(), []):
                pids.append(child)
                stack.append(child)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids


@dataclass
class System:
    cluster: Cluster
    frontends: list[Frontend]
    lb: load_balancer.LoadBalancer
    certificate: Path

    def pivotal(self) -> ChefClient:
        key = (self.frontends[0].server_rb.parent / "pivotal.pem").read_text()
        return ChefClient(self.lb.url, "pivotal", key, verify=str(self.certificate))


@pytest.fixture(scope="module")
def system() -> Iterator[System]:
    with Cluster.running("ha", extra_config=SEARCH_CONFIG, timeout=180) as cluster:
        cert, key = cluster.base / "ssl/chef.crt", cluster.base / "ssl/chef.key"
        certificate.ensure(cert, key, SERVER_NAME, LB_ADDRESS, *(address for _, address in FRONTENDS))
        frontends = [Frontend(name, address, cluster.base / name) for name, address in FRONTENDS]
        lb = load_balancer.LoadBalancer(dir=cluster.base / "lb", address=LB_ADDRESS, port=443, frontends=FRONTENDS)
        try:
            for fe in frontends:
                fe.server_rb.parent.mkdir(parents=True)
                cluster.nodes[0].ctl("gen-server-config", fe.name, "-f", str(fe.server_rb))
                with fe.server_rb.open("a") as f:
                    f.write(f"nginx['ssl_certificate'] = '{cert}'\nnginx['ssl_certificate_key'] = '{key}'\n")
                fe.ctl("reconfigure", "--config", str(fe.server_rb), "--dir", str(fe.dir), "--listen", fe.address)
            assert sorted(load_balancer.configure(lb)) == [name for name, _ in FRONTENDS]
            yield System(cluster, frontends, lb, cert)
        finally:
            load_balancer.stop(lb.dir)
            for fe in frontends:
                fe.ctl("stop", "--dir", str(fe.dir), check=False)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class Org:
    admin: ChefClient  # through the load balancer
    validator: Actor


@pytest.fixture(scope="module")
def org(system: System) -> Org:
    """The org with its validator, an admin user, and the cookbook the nodes' run list names (knife's upload)."""
    api = system.pivotal()
    admin = api.post("/users", {"username": "admin", "first_name": "A", "last_name": "D", "display_name": "A D",
                                "email": "admin@example.com", "password": "p4ssw0rd!", "create_key": True})
    org = api.post("/organizations", {"name": ORG, "full_name": "HA"})
    api.post(f"/organizations/{ORG}/users", {"username": "admin"})
    group = api.get(f"/organizations/{ORG}/groups/admins")
    api.put(f"/organizations/{ORG}/groups/admins", {"groupname": "admins", "actors": {
        "users": ["admin", *group["users"]], "clients": group["clients"], "groups": group["groups"]}})
    knife = ChefClient(system.lb.url, "admin", admin["chef_key"]["private_key"], verify=str(system.certificate))
    sandbox = knife.post(f"/organizations/{ORG}/sandboxes", {"checksums": {md5(RECIPE): None}})
    upload = sandbox["checksums"][md5(RECIPE)]
    put = requests.put(upload["url"], data=RECIPE, timeout=30, verify=str(system.certificate), headers={
        "Content-Type": "application/x-binary", "Content-MD5": base64.b64encode(hashlib.md5(RECIPE).digest()).decode()})
    assert put.status_code == 200, put.text
    knife.put(f"/organizations/{ORG}/sandboxes/{sandbox['sandbox_id']}", {"is_completed": True})
    knife.put(f"/organizations/{ORG}/cookbooks/{COOKBOOK}/1.0.0", {
        "name": f"{COOKBOOK}-1.0.0", "cookbook_name": COOKBOOK, "version": "1.0.0",
        "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version",
        "metadata": {"name": COOKBOOK, "version": "1.0.0", "dependencies": {}},
        "recipes": [{"name": "default.rb", "path": "recipes/default.rb", "checksum": md5(RECIPE),
                     "specificity": "default"}]})
    return Org(knife, Actor.of(f"{ORG}-validator", org["private_key"]))


def wait_status_200(url: str, verify: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/_status", verify=verify, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"{url}/_status never answered 200 again"
        time.sleep(0.5)


def test_kill_anything_keep_serving(system: System, org: Org) -> None:
    workload = ChefRuns(url=system.lb.url, org=ORG, validator=org.validator, verify=str(system.certificate),
                        cookbook=COOKBOOK, recipe=RECIPE)
    workload.start()
    try:
        workload.wait_runs(RUNS_AFTER_EACH_FAULT)
        fe1, fe2 = system.frontends

        # 1. One frontend's API service dies (runit restarts it; meanwhile the LB sends everything to the other).
        assert fe1.kill_service("chef-server-api")
        workload.wait_runs(RUNS_AFTER_EACH_FAULT)
        wait_status_200(f"https://{fe1.address}", str(system.certificate))

        # 2. The backend leader node dies (every process of it, kill -9); a follower takes over.
        old = system.cluster.wait_leader()
        old.crash()
        workload.wait_runs(RUNS_AFTER_EACH_FAULT)
        assert system.cluster.wait_leader(timeout=120) is not old

        # 3. A frontend loses its backend connection: its HAProxy to the leader dies (runit restarts it).
        assert fe2.kill_service("haproxy")
        workload.wait_runs(RUNS_AFTER_EACH_FAULT)
    finally:
        workload.stop()
    print(f"{workload.runs} runs, {len(workload.acked_clients)} clients registered, {workload.retried} requests "
          "retried (503 or no answer)")
    assert not workload.unexpected, workload.unexpected
    assert workload.retried > 0, "no fault was ever seen by the workload"

    # Every acknowledged write is readable through the load balancer ...
    admin = org.admin
    clients = admin.get(f"/organizations/{ORG}/clients")
    assert [c for c in workload.acked_clients if c not in clients] == []
    stale = {}
    for node, count in workload.acked_counters.items():
        runs = admin.get(f"/organizations/{ORG}/nodes/{node}")["normal"]["runs"]
        if runs < count:  # one more (unacknowledged) save may have landed, never fewer
            stale[node] = (runs, count)
    assert stale == {}

    # ... and searchable (the search outbox may still be draining what was written just before a fault).
    deadline = time.monotonic() + SEARCH_CATCH_UP_S
    while True:
        nodes = {r["name"] for r in admin.get(f"/organizations/{ORG}/search/node?q=name:ha-node-*&rows=10000")["rows"]}
        found_clients = {r["name"] for r in
                         admin.get(f"/organizations/{ORG}/search/client?q=name:ha-node-*&rows=10000")["rows"]}
        missing = sorted(set(workload.acked_counters) - nodes) + sorted(set(workload.acked_clients) - found_clients)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert missing == []
