"""Chef server frontends on the cluster: etcd discovery as frontends do it, Chef's HAProxy from
chef-backend-frontend, and two real Chef servers (goiardi) kept working through a kill -9 of the
leader node, driven by a signed Chef API client."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from chef_backend.frontend.discovery import discover
from tests.support.goiardi import ChefClient, Goiardi, load_schema
from tests.support.harness import Cluster

FRONTEND_CMD = os.environ.get("CHEF_BACKEND_FRONTEND", "/opt/chef-backend/embedded/bin/chef-backend-frontend")
FRONTENDS = ("127.0.0.21", "127.0.0.22")
OUTAGE_BOUND_S = 60  # the Chef client's writes resume within this after the leader node dies
RECOVERY_BOUND_S = 120


def frontend(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([FRONTEND_CMD, *args], text=True, capture_output=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"chef-backend-frontend {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("frontends") as c:
        try:
            yield c
        finally:
            for address in FRONTENDS:
                frontend("stop", "--dir", str(c.base / f"fe-{address}"), check=False)


def guids(cluster: Cluster) -> dict[str, str]:
    return {n["guid"]: n["ip"] for n in cluster.cluster_status()["nodes"]}


def test_every_etcd_member_answers_v2_members_as_chef_frontends_read_it(cluster: Cluster) -> None:
    """Names are node GUIDs and the first peer URL's host is the node's address, on every member."""
    want = guids(cluster)
    for node in cluster.nodes:
        found = discover([node.address])
        assert found.source == node.address and found.warnings == []
        assert {b.name: b.address for b in found.backends} == want


def test_discovery_falls_back_to_the_static_list(cluster: Cluster) -> None:
    found = discover(["127.0.0.99", "127.0.0.98"], timeout=1)
    assert found.source == "static" and len(found.warnings) == 2
    assert [(b.name, b.address) for b in found.backends] == [("backend0", "127.0.0.99"), ("backend1", "127.0.0.98")]


def reconfigure_frontend(cluster: Cluster, address: str) -> subprocess.CompletedProcess[str]:
    """What an operator does on a frontend: gen-server-config on a backend, then reconfigure."""
    server_rb = cluster.base / f"chef-server-{address}.rb"
    cluster.nodes[1].ctl("gen-server-config", f"fe-{address}.example.com", "-f", str(server_rb))
    return frontend("reconfigure", "--config", str(server_rb), "--listen", address,
                    "--dir", str(cluster.base / f"fe-{address}"))


def test_frontend_haproxy_routes_to_the_leader(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    guid = next(g for g, a in guids(cluster).items() if a == leader.address)
    out = reconfigure_frontend(cluster, FRONTENDS[0]).stdout
    assert f"to the leader: {guid} ({leader.address})" in out
    cfg = (cluster.base / f"fe-{FRONTENDS[0]}/haproxy/haproxy.cfg").read_text()
    assert f"bind {FRONTENDS[0]}:5432" in cfg and f"bind {FRONTENDS[0]}:9200" in cfg
    assert "http-check send meth GET uri /leader ver HTTP/1.1 hdr Host localhost:7331" in cfg
    assert "default-server inter 2s downinter 250ms rise 1 fall 1 on-marked-down shutdown-sessions" in cfg
    assert "timeout check 1s" in cfg  # a frozen leader manager is out within inter + 1 s (timing.py)
    assert all(f"server {g} {a}:5432 check port 7331" in cfg for g, a in guids(cluster).items())
    status = frontend("status", "--dir", str(cluster.base / f"fe-{FRONTENDS[0]}"))
    assert f"chef_backend_postgresql: UP {guid}" in status.stdout
    # Unchanged members: a second reconfigure changes nothing and still finds the leader.
    assert "reloaded" not in reconfigure_frontend(cluster, FRONTENDS[0]).stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--members", "127.0.0.99", "--tries", "2"], "no backend answers 200 on /leader"),
    (["--members", ","], "--members must be a non-empty list"),
    (["--config", "/nonexistent/chef-server.rb"], "cannot read /nonexistent/chef-server.rb"),
    (["--members", "127.0.0.11", "--listen", "a b"], "haproxy['listen'] must be an address"),
    (["--members", "127.0.0.11", "--user", "no-such-user"], "user 'no-such-user' does not exist"),
])
def test_frontend_refusals(cluster: Cluster, args: list[str], message: str) -> None:
    fe = cluster.base / "fe-refused"
    result = frontend("reconfigure", "--listen", "127.0.0.29", "--dir", str(fe), *args, check=False)
    frontend("stop", "--dir", str(fe), check=False)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ERROR: ")


def test_frontend_refuses_a_dir_haproxy_cannot_reach(tmp_path: Path) -> None:
    # pytest's tmp_path is under a 0700 directory of root's
    result = frontend("reconfigure", "--members", "127.0.0.11", "--dir", str(tmp_path / "fe"), check=False)
    assert result.returncode == 1 and "HAProxy runs as haproxy, which cannot enter" in result.stderr


def test_frontend_refuses_a_chef_server_rb_that_is_not_for_chef_backend(tmp_path: Path) -> None:
    rb = tmp_path / "chef-server.rb"
    rb.write_text("fqdn 'x'\nhaproxy['remote_postgresql_port'] = 'five'\n")
    result = frontend("reconfigure", "--config", str(rb), "--dir", str(tmp_path / "fe"), check=False)
    assert result.returncode == 1 and "use_chef_backend true" in result.stderr
    rb.write_text("use_chef_backend true\nchef_backend_members ['10.0.0.1']\nhaproxy['remote_postgresql_port'] = 'x'\n")
    result = frontend("reconfigure", "--config", str(rb), "--dir", str(tmp_path / "fe"), check=False)
    assert result.returncode == 1 and "remote_postgresql_port'] must be a port number" in result.stderr


def test_two_chef_servers_survive_kill_9_of_the_leader_node(cluster: Cluster, capsys) -> None:
    for address in FRONTENDS:
        reconfigure_frontend(cluster, address)
    # The frontends get only what gen-server-config prints: the superuser and its password.
    server_rb = (cluster.base / f"chef-server-{FRONTENDS[0]}.rb").read_text()
    password = next(line.split("'")[-2] for line in server_rb.splitlines() if "db_superuser_password" in line)
    load_schema(FRONTENDS[0], "chef_pgsql", password)
    shared = cluster.base / "goiardi-shared"
    servers = [Goiardi(f"fe{i}", a, cluster.logs / f"goiardi-{a}", shared, "chef_pgsql", password)
               for i, a in enumerate(FRONTENDS, 1)]
    client = None
    try:
        for server in servers:
            server.start()
        client = ChefClient([s.url for s in servers], (shared / "admin.pem").read_text())
        client.setup()
        client.upload_cookbook(servers[0].url, "0.0.1")
        client.start()
        client.wait_acks(40)

        old = cluster.wait_leader()
        killed_at = time.monotonic()
        old.crash()
        client.wait_acks(40, timeout=OUTAGE_BOUND_S + 60)
        outage = client.longest_gap(killed_at)
        with capsys.disabled():  # shown in every run, not only failed ones
            print(f"\nChef client outage after kill -9 of {old.name}: {outage:.1f}s "
                  f"({client.retries} retried calls, {len(client.acked)} objects acknowledged)")
        assert outage < OUTAGE_BOUND_S
        client.stop()

        for server in servers:
            missing = client.missing_through(server.url)
            assert missing == [], f"{missing}; attempts: {[client.attempts.get(m.split(':')[0]) for m in missing]}; " \
                                  f"killed at {killed_at:.2f}"
        # goiardi indexes asynchronously, in a transaction of its own that it does not retry: an
        # object created just before the kill can be stored (and acknowledged) but not indexed, as
        # with erchef's batch indexing. The operator's remedy is a reindex (chef-server-ctl reindex).
        unsearchable = wait_searchable(client, servers[0].url)
        if unsearchable:
            with capsys.disabled():
                print(f"goiardi left {len(unsearchable)} acknowledged objects unindexed at the outage "
                      f"({unsearchable[:5]}); reindexing")
            assert client.call("POST", f"{servers[0].url}/search/reindex", {}).status_code in (200, 202, 204)
        for server in servers:
            unsearchable = wait_searchable(client, server.url)
            assert unsearchable == [], f"not searchable through {server.name}: {unsearchable[:20]}"
        old.ctl("start")
        cluster.wait_healthy(RECOVERY_BOUND_S)
    finally:
        if client is not None:
            client.stop()
        for server in servers:
            server.stop()
    assert_secrets_stay_on_backends(cluster, password)


def wait_searchable(client: ChefClient, url: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (unsearchable := client.unsearchable_through(url)) and time.monotonic() < deadline:
        time.sleep(1)
    return unsearchable


def assert_secrets_stay_on_backends(cluster: Cluster, password: str) -> None:
    """No frontend file holds a backend secret other than the superuser password it was given."""
    secrets = json.loads(cluster.nodes[0].secrets_file.read_text())
    values = [v for section in secrets.values() if isinstance(section, dict) for v in section.values()
              if isinstance(v, str) and len(v) >= 16 and v != password]
    assert values
    frontend_dirs = [cluster.base / f"fe-{a}" for a in FRONTENDS] + [cluster.logs / f"goiardi-{a}" for a in FRONTENDS]
    frontend_dirs.append(cluster.base / "goiardi-shared")
    for directory in frontend_dirs:
        for path in directory.rglob("*"):
            if path.is_file() and not path.is_socket():
                data = path.read_bytes()
                leaked = [v[:6] + "…" for v in values if v.encode() in data]
                assert not leaked, f"{path} holds backend secrets {leaked}"
