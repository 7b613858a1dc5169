"""A frontend on a cluster whose every port is moved: gen-server-config carries the ports, and
chef-backend-frontend's HAProxy reaches PostgreSQL and search through them."""

from __future__ import annotations

import json
import re
import urllib.request

import psycopg
import pytest

from tests.frontend.test_frontends import frontend
from tests.support.harness import Cluster

pytestmark = pytest.mark.integration

FRONTEND = "127.0.0.23"
PORTS = ("postgresql.port = 5442\nelasticsearch.enable = true\nelasticsearch.heap_size = 256\n"
         "elasticsearch.port = 9201\nleaderl.http_port = 7341\netcd.client_port = 2479\netcd.peer_port = 2490\n")


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("frontend-ports", extra_config=PORTS, timeout=180) as c:
        try:
            yield c
        finally:
            frontend("stop", "--dir", str(c.base / "fe"), check=False)


def test_a_frontend_reaches_postgresql_and_search_on_non_default_ports(cluster: Cluster) -> None:
    server_rb = cluster.base / "chef-server.rb"
    cluster.nodes[1].ctl("gen-server-config", "fe.example.com", "-f", str(server_rb))
    text = server_rb.read_text()
    for line in ("haproxy['remote_postgresql_port'] = 5442", "haproxy['remote_elasticsearch_port'] = 9201",
                 "haproxy['leaderl_healthcheck_port'] = 7341", "haproxy['etcd_port'] = 2479"):
        assert line in text
    result = frontend("reconfigure", "--config", str(server_rb), "--listen", FRONTEND,
                      "--dir", str(cluster.base / "fe"))
    assert "WARNING" not in result.stderr  # etcd discovery answered on 2479
    leader = next(n["ip"] for n in cluster.cluster_status()["nodes"] if n["role"] == "leader")
    assert f"({leader})" in result.stdout

    # What erchef does: PostgreSQL at postgresql['vip'] on Chef's port, through HAProxy to the leader.
    with psycopg.connect(host=FRONTEND, port=5432, user="chef_pgsql", password=cluster.password(),
                         dbname="postgres", connect_timeout=5, autocommit=True) as conn:
        assert conn.execute("SELECT NOT pg_is_in_recovery(), host(inet_server_addr())").fetchone() == (True, leader)
        # Stored as MD5, which every Chef Infra Server frontend's PostgreSQL clients speak.
        assert conn.execute("SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'chef_pgsql'").fetchone()[0]

    # What erchef does for search: opscode_solr4['external_url'], on this frontend's address.
    url = re.search(r"opscode_solr4\['external_url'\] = '([^']+)'", text).group(1).replace("127.0.0.1", FRONTEND)

    def search_answers() -> dict | None:
        with urllib.request.urlopen(url + "/", timeout=3) as resp:
            return json.loads(resp.read())

    doc = cluster.wait_for(search_answers, 180, "search through the frontend's HAProxy", interval=2)
    assert doc["version"]["number"] == "7.10.2"
