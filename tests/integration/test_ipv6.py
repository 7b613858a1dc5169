"""A three-node cluster on IPv6 only (issue 15, ip_version 'ipv6'): each node on its own host with
nothing but an IPv6 address, formed by create-cluster/join-cluster on those publish addresses,
with search on and pg_hba listing single IPv6 addresses. One leader, a write read back on the
followers, a Chef frontend's HAProxy (chef-backend-frontend, from gen-server-config) routing
PostgreSQL and search to the leader over IPv6, and a failover that keeps the write."""

from __future__ import annotations

import json
import urllib.request

import psycopg
import pytest

from chef_backend.host.netloc import host_port
from tests.frontend.test_frontends import frontend
from tests.support.harness import Cluster, Node
from tests.support.hosts import NET6, V6NsNode, ns_cluster, setup_network, teardown_network

pytestmark = pytest.mark.integration

CLIENT = f"{NET6}1"  # this side of the bridge: the test and the frontend
NODES = [f"{NET6}{10 + i}" for i in (1, 2, 3)]
SETTINGS = (
    "ip_version 'ipv6'\n"
    f"postgresql.md5_auth_cidr_addresses = {json.dumps([*NODES, CLIENT])}\n"
    "elasticsearch.enable = true\nelasticsearch.heap_size = 256\n"
)
RECOVERY_BOUND_S = 180  # three search nodes on a shared two-core host


@pytest.fixture(scope="module")
def cluster():
    setup_network(3, ipv6=True)
    c = ns_cluster("ipv6", extra_config=SETTINGS, node=V6NsNode)
    try:
        c.create()
        c.wait_healthy(RECOVERY_BOUND_S)
        yield c
    finally:
        frontend("stop", "--dir", str(c.base / "fe"), check=False)
        c.teardown()
        teardown_network()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read())


def rows(node: Node, password: str) -> list[int]:
    with node.connect(password) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM v6_probe ORDER BY id").fetchall()]


def test_the_cluster_forms_on_ipv6_publish_addresses(cluster: Cluster) -> None:
    doc = cluster.cluster_status()
    assert sorted(n["ip"] for n in doc["nodes"]) == NODES
    assert len(cluster.leaders()) == 1
    # etcd's peer URLs, which frontends read, carry the addresses in brackets.
    members = get_json(f"http://{host_port(NODES[0], 2379)}/v2/members")["members"]
    assert sorted(m["peerURLs"][0] for m in members) == [f"http://[{a}]:2380" for a in NODES]
    # Each single address in md5_auth_cidr_addresses is a /128 in pg_hba.conf.
    hba = (cluster.nodes[0].root / "var/opt/chef-backend/postgresql/15/pg_hba.conf").read_text()
    assert f"{CLIENT}/128" in hba
    for node in cluster.nodes:
        status = node.ctl("status")
        assert "leaderl" in status.stdout and "postgresql" in status.stdout
        text = node.ctl("cluster-status").stdout
        assert all(address in text for address in NODES)


def test_a_write_on_the_leader_is_read_on_the_followers(cluster: Cluster) -> None:
    password = cluster.password()
    leader = cluster.wait_leader()
    with leader.connect(password) as conn:
        conn.execute("CREATE TABLE v6_probe (id int PRIMARY KEY)")
        conn.execute("INSERT INTO v6_probe VALUES (1)")
    for node in cluster.nodes:
        cluster.wait_for(lambda node=node: rows(node, password) == [1], 30, f"the row on {node.name}")


def test_search_forms_one_cluster_over_ipv6(cluster: Cluster) -> None:
    def three_nodes() -> dict | None:
        health = get_json(f"http://{host_port(NODES[0], 9200)}/_cluster/health")
        return health if health["number_of_nodes"] == 3 else None

    cluster.wait_for(three_nodes, RECOVERY_BOUND_S, "three search nodes in one cluster", interval=2)


def test_a_frontend_reaches_the_leader_over_ipv6(cluster: Cluster) -> None:
    server_rb = cluster.base / "chef-server.rb"
    cluster.nodes[1].ctl("gen-server-config", "fe.example.com", "-f", str(server_rb))
    text = server_rb.read_text()
    assert "chef_backend_members [" + ", ".join(f'"[{a}]"' for a in NODES) + "]" in text
    result = frontend("reconfigure", "--config", str(server_rb), "--listen", CLIENT, "--dir", str(cluster.base / "fe"))
    assert "WARNING" not in result.stderr  # etcd discovery answered over IPv6
    leader = cluster.wait_leader()
    assert f"({leader.address})" in result.stdout
    assert leader_through_frontend(cluster.password()) == leader.address

    def search_answers() -> dict | None:
        return get_json(f"http://{host_port(CLIENT, 9200)}/")

    assert cluster.wait_for(search_answers, RECOVERY_BOUND_S, "search through the frontend", interval=2)["version"]


def leader_through_frontend(password: str) -> str:
    """The address of the primary that the frontend's HAProxy routes PostgreSQL to."""
    with psycopg.connect(host=CLIENT, port=5432, user="chef_pgsql", password=password, dbname="postgres",
                         connect_timeout=3, autocommit=True) as conn:
        primary, address = conn.execute("SELECT NOT pg_is_in_recovery(), host(inet_server_addr())").fetchone()
        return address if primary else ""


def test_failover_on_ipv6_keeps_the_write(cluster: Cluster) -> None:
    password = cluster.password()
    cluster.wait_healthy(RECOVERY_BOUND_S)
    old = cluster.wait_leader()
    old.crash()
    new = cluster.wait_for(lambda: (ls := [n for n in cluster.nodes if n is not old and n.leader_code() == 200])
                           and ls[0], 60, "a new leader")
    assert rows(new, password) == [1]
    with new.connect(password) as conn:
        conn.execute("INSERT INTO v6_probe VALUES (2)")
    cluster.wait_for(lambda: leader_through_frontend(password) == new.address, 30,
                     "the frontend's HAProxy to route to the new leader")
    old.ctl("start")
    cluster.wait_healthy(RECOVERY_BOUND_S)
    assert [n for n in cluster.nodes if n.leader_code() == 200] == [new]
    for node in cluster.nodes:
        cluster.wait_for(lambda node=node: rows(node, password) == [1, 2], 30, f"both rows on {node.name}")
