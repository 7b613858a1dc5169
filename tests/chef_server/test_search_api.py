"""Search through the real API server, PostgreSQL and a real single-node OpenSearch: indexing on every
write, knife's and chef-client's queries, partial search, and durability when the engine or the
frontend dies right after a write was acknowledged."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

import psycopg
import pytest

from chef_server.search_index import DRAIN_LOCK

from . import opensearch
from .conftest import API_PORT, start_frontend, stop_frontend
from .test_api import name, session

pytestmark = pytest.mark.integration

SEARCH_HOST = os.environ.get("CHEF_FE_TEST_SEARCH_HOST", "127.0.0.42")


@pytest.fixture(scope="module")
def engine(postgres):
    with opensearch.running(SEARCH_HOST, "chef-fe-search-") as node:
        yield node


def search_frontend(postgres, engine, port: int):
    workdir = tempfile.mkdtemp(prefix="chef-fe-search-api-")
    return start_frontend(postgres, workdir, port=port, search_url=engine.url, search_test_flush="1",
                          search_poll="0.2", search_sync_timeout="2")


@pytest.fixture(scope="module")
def fe(postgres, engine):
    frontend = search_frontend(postgres, engine, API_PORT + 10)
    yield frontend
    stop_frontend(frontend)
    shutil.rmtree(os.path.dirname(frontend.pivotal_key_path), ignore_errors=True)


@pytest.fixture(scope="module")
def pivotal(fe):
    return session(fe.pivotal_key)


def new_org(fe, pivotal) -> str:
    org = name("org")
    assert pivotal.post(fe.url + "/organizations", json={"name": org, "full_name": "Search"}).status_code == 201
    return f"{fe.url}/organizations/{org}"


def flush(fe) -> None:
    assert urllib.request.urlopen(urllib.request.Request(fe.url + "/_search_flush", method="POST"),
                                  timeout=120).status == 200


def ohai_like(n: int) -> dict:
    """An `automatic` tree shaped like ohai's output on a Debian machine."""
    return {"platform": "debian", "platform_family": "debian", "platform_version": "12.8", "hostname": f"web{n}",
            "fqdn": f"web{n}.example.com", "ipaddress": f"10.0.0.{n}", "os": "linux",
            "kernel": {"name": "Linux", "release": "6.1.0-28-amd64", "machine": "x86_64",
                       "modules": {f"mod{i}": {"size": str(i * 1024), "refcount": "1"} for i in range(50)}},
            "network": {"interfaces": {"eth0": {"addresses": {f"10.0.0.{n}": {"family": "inet", "prefixlen": "24"}},
                                                "flags": ["UP", "BROADCAST"], "mtu": "1500"}}},
            "memory": {"total": "16384kB", "free": "8192kB"}, "cpu": {"total": 4, "real": 1},
            "packages": {f"pkg{i}": {"version": f"1.{i}", "arch": "amd64"} for i in range(100)}}


def test_knife_and_chef_client_queries(fe, pivotal):
    org = new_org(fe, pivotal)
    assert pivotal.post(org + "/roles", json={"name": "web"}).status_code == 201
    assert pivotal.post(org + "/environments", json={"name": "prod"}).status_code == 201
    for n in range(1, 5):
        node = {"name": f"web{n}", "chef_environment": "prod" if n % 2 else "_default",
                "run_list": ["role[web]", "recipe[nginx::default]"] if n < 4 else ["recipe[base]"],
                "automatic": ohai_like(n), "normal": {"tags": ["frontend"]}}
        assert pivotal.post(org + "/nodes", json=node).status_code == 201
    assert pivotal.post(org + "/data", json={"name": "users"}).status_code == 201
    for user, shell in (("alice", "/bin/bash"), ("bob", "/bin/zsh")):
        assert pivotal.post(org + "/data/users", json={"id": user, "shell": shell}).status_code == 201
    # no flush: writes are indexed before they are answered; the engine's refresh makes them visible
    flush(fe)

    def names(r):
        assert r.status_code == 200, r.text
        return sorted(row["name"] for row in r.json()["rows"])

    assert names(pivotal.get(org + "/search/node", params={"q": "platform:debian"})) == ["web1", "web2", "web3",
                                                                                          "web4"]
    assert names(pivotal.get(org + "/search/node", params={"q": "role:web AND chef_environment:prod"})) == \
        ["web1", "web3"]
    assert names(pivotal.get(org + "/search/node", params={"q": "recipe:nginx\\:\\:default"})) == \
        ["web1", "web2", "web3"]
    assert names(pivotal.get(org + "/search/node", params={"q": "kernel_machine:x86_64 AND NOT hostname:web1"})) \
        == ["web2", "web3", "web4"]
    # knife search node 'platform:debian' -a ipaddress
    r = pivotal.post(org + "/search/node", params={"q": "platform:debian"}, json={"ipaddress": ["ipaddress"]})
    assert sorted(row["data"]["ipaddress"] for row in r.json()["rows"]) == [f"10.0.0.{n}" for n in range(1, 5)]
    assert r.json()["rows"][0]["url"].startswith(org + "/nodes/")
    # pagination as Chef::Search::Query does it
    page = pivotal.get(org + "/search/node", params={"q": "*:*", "start": 1, "rows": 2}).json()
    assert (page["total"], page["start"], len(page["rows"])) == (4, 1, 2)
    r = pivotal.get(org + "/search/users", params={"q": "shell:/bin/zsh".replace("/", "\\/")})
    rows = r.json()["rows"]
    assert [row["raw_data"]["id"] for row in rows] == ["bob"] and rows[0]["data_bag"] == "users"
    assert set(pivotal.get(org + "/search").json()) == {"node", "role", "client", "environment", "users"}
    assert names(pivotal.get(org + "/search/environment", params={"q": "*:*"})) == ["_default", "prod"]
    assert names(pivotal.get(org + "/search/client", params={"q": "validator:true"})) == \
        [f"{org.rsplit('/', 1)[1]}-validator"]
    r = pivotal.get(org + "/search/node", params={"q": "name:(web1"})
    assert r.status_code == 400 and r.json()["error"][0].startswith("invalid search query")
    r = pivotal.get(org + "/search/nosuchbag", params={"q": "*:*"})
    assert (r.status_code, r.json()) == (404, {"error": ["I don't know how to search for nosuchbag data objects."]})
    # results are the objects as stored now
    node = pivotal.get(org + "/nodes/web4").json()
    assert pivotal.put(org + "/nodes/web4", json={**node, "normal": {"tags": ["backend"]}}).status_code == 200
    flush(fe)
    assert names(pivotal.get(org + "/search/node", params={"q": "tags:backend"})) == ["web4"]
    assert names(pivotal.get(org + "/search/node", params={"q": "tags:frontend"})) == ["web1", "web2", "web3"]


def test_partial_search_reads_merged_attributes(fe, pivotal):
    """Partial search loads only the asked keys of each attribute level: the merge of those keys, the
    node's own keys and missing paths come out as from the whole node."""
    org = new_org(fe, pivotal)
    node = {"name": "n1", "run_list": ["role[web]", "recipe[base]"], "default": {"app": {"port": 80, "user": "www"}},
            "normal": {"app": {"port": 81}, "tags": ["x"]}, "override": {"app": {"port": 82, "list": [1]}},
            "automatic": {**ohai_like(1), "app": {"list": [2, 3]}}}
    assert pivotal.post(org + "/nodes", json=node).status_code == 201
    flush(fe)
    paths = {"port": ["app", "port"], "user": ["app", "user"], "list": ["app", "list"], "app": ["app"],
             "name": ["name"], "role": ["role"], "env": ["chef_environment"], "none": ["nothing", "here"],
             "through_string": ["platform", "x"], "empty": [], "kernel": ["kernel", "machine"]}
    r = pivotal.post(org + "/search/node", params={"q": "name:n1"}, json=paths)
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0]["data"] == {
        "port": 82, "user": "www", "list": [2, 3], "app": {"port": 82, "user": "www", "list": [2, 3]},
        "name": "n1", "role": ["web"], "env": "_default", "none": None,
        "through_string": "ERROR - Attribute does not exist", "empty": None, "kernel": "x86_64"}


def test_reads_sent_as_post_do_not_wait_for_indexing(postgres, engine, pivotal):
    """A partial search and a run list's solve are POSTs that write nothing: they answer while another
    frontend holds the search outbox's drain lock (a write waits for it, up to the sync timeout)."""
    patient = start_frontend(postgres, tempfile.mkdtemp(prefix="chef-fe-search-api-"), port=API_PORT + 12,
                             search_url=engine.url, search_sync_timeout="600")
    try:
        org = new_org(patient, pivotal)
        assert pivotal.post(org + "/nodes", json={"name": "n1", "automatic": ohai_like(1)}).status_code == 201
        with psycopg.connect(postgres.dsn(), autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (DRAIN_LOCK,))  # a drain under way elsewhere
            r = pivotal.post(org + "/search/node", params={"q": "*:*"}, json={"name": ["name"]}, timeout=60)
            assert r.status_code == 200, r.text
            r = pivotal.post(org + "/environments/_default/cookbook_versions", json={"run_list": []}, timeout=60)
            assert r.status_code == 200 and r.json() == {}
    finally:
        stop_frontend(patient)
        shutil.rmtree(os.path.dirname(patient.pivotal_key_path), ignore_errors=True)


def engine_count(engine, query: str) -> int:
    body = json.dumps({"query": {"query_string": {"query": query}}}).encode()
    req = urllib.request.Request(engine.url + "/chef/_count", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["count"]


def test_deletes_and_org_deletion_remove_documents(fe, pivotal, engine):
    org = new_org(fe, pivotal)
    assert pivotal.post(org + "/nodes", json={"name": "gone"}).status_code == 201
    assert pivotal.post(org + "/nodes", json={"name": "stays"}).status_code == 201
    assert pivotal.delete(org + "/nodes/gone").status_code == 200
    flush(fe)
    assert engine_count(engine, "content:name__=__gone") == 0
    assert engine_count(engine, "content:name__=__stays") >= 1
    before = engine_count(engine, "content:name__=__stays")
    assert pivotal.delete(org).status_code == 200
    flush(fe)
    assert engine_count(engine, "content:name__=__stays") == before - 1


def test_acknowledged_writes_survive_the_engine_and_the_frontend_dying(postgres, engine, fe, pivotal):
    """The engine is down when a node is written: the write is acknowledged (the outbox holds it), the
    frontend that took it is killed -9, the engine comes back, and another frontend makes it searchable."""
    org = new_org(fe, pivotal)
    engine.stop()
    doomed = search_frontend(postgres, engine, API_PORT + 11)
    try:
        writer = session(doomed.pivotal_key)
        for n in range(5):
            assert writer.post(org.replace(fe.url, doomed.url) + "/nodes",
                               json={"name": f"acked{n}", "normal": {"batch": "outage"}}).status_code == 201
        os.killpg(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait()
    finally:
        stop_frontend(doomed)
        shutil.rmtree(os.path.dirname(doomed.pivotal_key_path), ignore_errors=True)
        engine.start()
    flush(fe)
    r = pivotal.get(org + "/search/node", params={"q": "batch:outage"})
    assert sorted(row["name"] for row in r.json()["rows"]) == [f"acked{n}" for n in range(5)]


def test_reindex_rebuilds_a_lost_index_while_serving(fe, pivotal, engine):
    """After a restore the engine lacks documents: `chef-server-ctl reindex ORG` queues every object again."""
    org = new_org(fe, pivotal)
    for n in range(3):
        assert pivotal.post(org + "/nodes", json={"name": f"r{n}", "normal": {"rebuilt": "yes"}}).status_code == 201
    flush(fe)
    wipe = json.dumps({"query": {"match_all": {}}}).encode()
    req = urllib.request.Request(engine.url + "/chef/_delete_by_query?refresh=true", data=wipe, method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60)
    assert pivotal.get(org + "/search/node", params={"q": "rebuilt:yes"}).json()["total"] == 0
    out = subprocess.run([sys.executable, "-m", "chef_server.ctl.main", "reindex", org.rsplit("/", 1)[1]],
                         env=fe.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert ": 5 objects queued" in out.stdout and "indexed 6/6" in out.stdout  # 3 nodes, _default, the validator
    flush(fe)
    r = pivotal.get(org + "/search/node", params={"q": "rebuilt:yes"})
    assert sorted(row["name"] for row in r.json()["rows"]) == ["r0", "r1", "r2"]
    assert pivotal.get(org + "/search/client", params={"q": "*:*"}).json()["total"] == 1
