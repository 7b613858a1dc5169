"""The search service as unmodified Chef Infra Server frontends use it: three OpenSearch nodes on
the backends, reached through a frontend's HAProxy (which follows the leader), with the requests a
Chef frontend sends (search-facts §2.2-2.5) replayed verbatim, through a kill -9 of the leader."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Cluster

pytestmark = pytest.mark.integration

FRONTEND_CMD = "/opt/chef-backend/embedded/bin/chef-backend-frontend"
FRONTEND = "127.0.0.26"
SEARCH_CONFIG = ("elasticsearch.enable = true\nelasticsearch.heap_size = 256\n"
                 "leaderl.health_check.interval_seconds = 1\nleaderl.health_check.max_elasticsearch_failures = 3\n")
ORG = "chef_0123456789abcdef0123456789abcdef"

ES7_INDEX = {
    "settings": {"analysis": {"analyzer": {"default": {"type": "whitespace"}}},
                 "number_of_shards": 5, "number_of_replicas": 1},
    "mappings": {"_source": {"enabled": False}, "properties": {
        "X_CHEF_database_CHEF_X": {"type": "keyword", "index": True, "norms": False},
        "X_CHEF_type_CHEF_X": {"type": "keyword", "index": True, "norms": False},
        "X_CHEF_id_CHEF_X": {"type": "keyword", "index": True, "norms": False},
        "data_bag": {"type": "keyword", "index": True, "norms": False},
        "content": {"type": "text", "index": True, "norms": False}}},
}


ES6_INDEX = {
    "settings": ES7_INDEX["settings"],
    "mappings": {"object": {"_source": {"enabled": False}, "_all": {"enabled": False},
                            "properties": ES7_INDEX["mappings"]["properties"]}},
}


def call(method: str, path: str, body: Any = None, raw: bytes | None = None, timeout: float = 30,
         host: str = FRONTEND) -> tuple[int, Any]:
    """A request as a Chef frontend sends it, through its HAProxy unless `host` says otherwise."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://{host}:9200{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def doc_id(n: int) -> str:
    return f"{n:032x}"


def bulk_adds(count: int, typed: bool = False) -> bytes:
    """Chef's bulk additions; `typed` (Elasticsearch 6) adds `_type: object`."""
    lines = []
    for n in range(count):
        kind = "node" if n % 2 == 0 else "data_bag_item"
        content = f"name__=__web{n} role__=__{'base' if n % 3 else 'db'} ram__=__{1000 + n * 100} " \
                  f"desc__=__hello world{n}"
        doc = {"content": content, "X_CHEF_id_CHEF_X": doc_id(n), "X_CHEF_database_CHEF_X": ORG,
               "X_CHEF_type_CHEF_X": kind}
        if kind == "data_bag_item":
            doc["data_bag"] = "items"
        action = {"_index": "chef", "_id": doc_id(n), **({"_type": "object"} if typed else {})}
        lines += [json.dumps({"index": action}), json.dumps(doc)]
    return ("\n".join(lines) + "\n").encode()


def search(query: str, kind: str = "node", host: str = FRONTEND, major: int = 7) -> set[int]:
    """Chef's GET-with-body search: a bool of the user's query and the org/type filter, as erchef
    builds it for the engine's major version."""
    fq = f"+X_CHEF_database_CHEF_X:{ORG} +X_CHEF_type_CHEF_X:{kind}"
    if kind == "data_bag_item":
        fq += " +data_bag:items"
    extra = {} if major == 7 else {"lowercase_expanded_terms": False}
    body = {"stored_fields": "_id", "from": 0, "size": 1000, "sort": [{"X_CHEF_id_CHEF_X": {"order": "asc"}}],
            "query": {"bool": {"must": {"query_string": {"query": query, **extra}},
                               "filter": {"query_string": {"query": fq, **extra}}}}}
    status, answer = call("GET", "/chef/_search", body, host=host)
    assert status == 200, answer
    total = answer["hits"]["total"]
    assert isinstance(total["value"] if major == 7 else total, int)  # what erchef reads
    return {int(h["_id"], 16) for h in answer["hits"]["hits"]}


NODES = set(range(0, 20, 2))


def check_searches(host: str = FRONTEND, major: int = 7) -> None:
    def found(query: str, kind: str = "node") -> set[int]:
        return search(query, kind, host, major)

    assert found("content:name__=__web*") == NODES
    assert found("content:name__=__web1*") == {10, 12, 14, 16, 18}
    assert found("content:[ram__=__1000 TO ram__=__1600]") == {0, 2, 4, 6}
    assert found("content:role__=__db AND NOT content:name__=__web0") == {6, 12, 18}
    assert found('content:"desc__=__hello world4"') == {4}
    assert found("content:name__=__web12~") >= {12, 2, 10, 14, 16, 18}  # fuzzy: one edit away
    assert found("content:name__=__web12~0.5") >= {12}
    assert found("*:*", "data_bag_item") == set(range(1, 20, 2))


def wait_green(address: str, nodes: int, timeout: float = 180) -> float:
    started = time.monotonic()
    url = (f"http://{address}:9200/_cluster/health?wait_for_status=green&wait_for_nodes={nodes}"
           f"&wait_for_events=languid&timeout=10s")
    ok = 0
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=15) as resp:
                doc = json.loads(resp.read())
            ok = ok + 1 if doc["status"] == "green" and doc["number_of_nodes"] == nodes else 0
            if ok >= 3:  # three polls in a row: a stable cluster manager (2 cores are slow)
                return time.monotonic() - started
        except (OSError, ValueError, urllib.error.URLError):
            ok = 0
        time.sleep(1)
    raise AssertionError(f"the search cluster did not turn green with {nodes} nodes within {timeout}s")


def search_rss_mb(cluster: Cluster) -> dict[str, float]:
    rss = {}
    for node in cluster.nodes:
        for pid in node.pids_of("java"):
            status = Path(f"/proc/{pid}/status").read_text()
            kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
            rss[node.name] = round(kb / 1024, 1)
    return rss


@pytest.fixture(scope="module")
def cluster():
    c = Cluster.fresh("search", extra_config=SEARCH_CONFIG)
    try:
        started = time.monotonic()
        c.create()
        c.wait_healthy(180)
        took = time.monotonic() - started
        green = wait_green(c.nodes[0].address, 3)
        c.startup = (took, green)  # type: ignore[attr-defined]
        subprocess.run([FRONTEND_CMD, "reconfigure", "--members", c.nodes[0].address, "--listen", FRONTEND,
                        "--dir", str(c.base / "fe")], check=True, capture_output=True, text=True, timeout=120)
        yield c
    finally:
        subprocess.run([FRONTEND_CMD, "stop", "--dir", str(c.base / "fe")], capture_output=True, timeout=60)
        c.teardown()


def test_status_shows_a_green_search_cluster(cluster: Cluster, capsys) -> None:
    out = cluster.nodes[0].ctl("status").stdout
    row = next(line for line in out.splitlines() if line.startswith("elasticsearch"))
    assert "running (pid" in row and row.endswith("state: green; nodes online: 3/3")
    roles = sorted(n["es"] for n in cluster.cluster_status()["nodes"])
    assert roles == ["master", "not_master", "not_master"]
    with capsys.disabled():
        took, green = cluster.startup  # type: ignore[attr-defined]
        print(f"\nsearch: cluster of 3 formed in {took:.1f}s, green {green:.1f}s later; "
              f"JVM RSS MB {search_rss_mb(cluster)}")


def test_what_a_chef_frontend_sends(cluster: Cluster) -> None:
    status, root = call("GET", "/")
    assert status == 200 and root["version"]["number"] == "7.10.2"
    assert call("GET", "/chef")[0] == 404
    status, answer = call("PUT", "/chef", ES7_INDEX)
    assert status == 200 and answer["acknowledged"], answer
    status, answer = call("POST", "/_bulk", raw=bulk_adds(21))
    assert status == 200 and not answer["errors"], answer
    deletion = json.dumps({"delete": {"_index": "chef", "_id": doc_id(20)}}) + "\n"
    status, answer = call("POST", "/_bulk", raw=deletion.encode())
    assert status == 200 and answer["items"][0]["delete"]["result"] == "deleted"
    assert call("POST", "/_refresh")[0] == 200
    check_searches()
    # By-type deletion as erchef builds it (no spaces or colon: it matches nothing, and must be accepted).
    by_type = f"X_CHEF_database_CHEF_X:{ORG}ANDX_CHEF_type_CHEF_Xnode"
    status, answer = call("POST", "/chef/_delete_by_query", {"query": {"query_string": {"query": by_type}}})
    assert status == 200 and answer["deleted"] == 0
    assert call("GET", "/chef")[0] == 200
    wait_green(cluster.nodes[0].address, 3)


def test_kill_9_of_the_leader_node_keeps_the_index_whole(cluster: Cluster) -> None:
    old = cluster.wait_leader()
    old.crash()
    others = [n for n in cluster.nodes if n is not old]
    cluster.wait_for(lambda: any(n.leader_code() == 200 for n in others), 60, "a new leader")

    cluster.wait_for(lambda: check_searches() is None, 90, "complete search answers through the new leader")
    status, answer = call("POST", "/chef/_delete_by_query",
                          {"query": {"query_string": {"query": "content:name__=__web0"}}})
    assert status == 200 and answer["deleted"] == 1
    status, answer = call("POST", "/_bulk", raw=bulk_adds(1))  # put it back for the next test
    assert status == 200 and not answer["errors"] and call("POST", "/_refresh")[0] == 200
    old.ctl("start")
    cluster.wait_healthy(180)
    wait_green(old.address, 3)


def test_a_leader_whose_search_node_hangs_hands_leadership_over(cluster: Cluster) -> None:
    """Chef frontends reach search on the leader only: a leader whose search node stops answering
    (here frozen with SIGSTOP) fails max_elasticsearch_failures checks and steps down."""
    import signal

    old = cluster.wait_leader()
    assert old.signal("java", signal.SIGSTOP)
    try:
        new = cluster.wait_for(lambda: (ls := [n for n in cluster.nodes if n is not old and n.leader_code() == 200])
                               and ls[0], 90, "a leader whose search answers")
        reasons = next(n for n in cluster.cluster_status(new)["nodes"] if n["ip"] == old.address)
        assert "search service failed" in " ".join(reasons["ineligible_reasons"]), reasons
        # Searches go through the new leader once HAProxy's next check saw it (GET /chef would wait
        # for the search cluster to drop a frozen cluster manager: OpenSearch's leader checks, ~30 s,
        # then its election; on a loaded 2-core host that took over 60 s once).
        cluster.wait_for(lambda: check_searches() is None, 150, "searches through the new leader")
    finally:
        old.signal("java", signal.SIGCONT)
    cluster.wait_healthy(120)
    assert cluster.wait_leader() is new
