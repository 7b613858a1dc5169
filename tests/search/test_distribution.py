"""elasticsearch.distribution_dir: an operator-installed distribution, configured and supervised like
the embedded node. Each is the real distribution its project published to Maven Central, unpacked
with Maven: Elasticsearch 7.10.2 and Elasticsearch OSS 6.8.23 (the engine Chef Backend 3.x shipped,
with Zen discovery). OpenSearch 2.19.6's own distribution is not run here:
its path differs from Elasticsearch 7.10.2's only in the product's name (tests/unit/test_search_engine.py
recognises it and renders its configuration), it is the engine every other search test runs
embedded, and a third three-node search cluster cost 37 s of the suite's 30-minute budget."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass

import pytest

from tests.search.test_search import (
    ES6_INDEX,
    ES7_INDEX,
    ORG,
    bulk_adds,
    call,
    check_searches,
    doc_id,
    wait_green,
)
from tests.support.harness import Cluster

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Distribution:
    short: str  # the test cluster's name (PostgreSQL's socket path must stay under 108 bytes)
    artifact: str
    product: str
    reports: str  # what GET / answers
    reindex: bool  # has the reindex module (`_delete_by_query`); the integ-test zips do not

    @property
    def major(self) -> int:
        return int(self.reports.split(".")[0])


DISTRIBUTIONS = {
    "elasticsearch-7.10.2": Distribution(
        "es7", "org.elasticsearch.distribution.integ-test-zip:elasticsearch:7.10.2:zip", "elasticsearch", "7.10.2",
        False),
    "elasticsearch-oss-6.8.23": Distribution("es6", "org.elasticsearch.distribution.zip:elasticsearch-oss:6.8.23:zip",
                                             "elasticsearch", "6.8.23", True),
}


@pytest.fixture(scope="module", params=list(DISTRIBUTIONS))
def deployed(request: pytest.FixtureRequest):
    dist = DISTRIBUTIONS[request.param]
    c = Cluster.fresh(f"search-{dist.short}")
    unpacked = c.base / "dist"
    # (Unpack again even if Maven's markers say an earlier run did: the output directory is new.)
    subprocess.run(["mvn", "-B", "-q", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:unpack",
                    f"-Dartifact={dist.artifact}", f"-DoutputDirectory={unpacked}", "-Dmdep.overWriteReleases=true",
                    f"-DmarkersDirectory={c.base / 'markers'}"],
                   check=True, capture_output=True, text=True, timeout=600, cwd=c.base)
    home = next(unpacked.glob(f"{dist.product}-*"))
    subprocess.run(["chmod", "-R", "a+rX", str(c.base)], check=True)
    config = (f"elasticsearch.enable = true\nelasticsearch.heap_size = 256\n"
              f"elasticsearch.distribution_dir = '{home}'\n")
    for node in c.nodes:
        node.extra_config = config
        node.write_config()
    try:
        c.create()
        c.wait_healthy(180)
        wait_green(c.nodes[0].address, 3)
        yield c, dist
    finally:
        c.teardown()


def test_the_distribution_forms_the_search_cluster(deployed: tuple[Cluster, Distribution]) -> None:
    cluster, dist = deployed
    with urllib.request.urlopen(f"http://{cluster.nodes[0].address}:9200/", timeout=10) as resp:
        assert json.loads(resp.read())["version"]["number"] == dist.reports
    row = next(line for line in cluster.nodes[0].ctl("status").stdout.splitlines() if line.startswith("elasticsearch"))
    assert row.endswith("state: green; nodes online: 3/3")
    assert sorted(n["es"] for n in cluster.cluster_status()["nodes"]) == ["master", "not_master", "not_master"]
    run = (cluster.nodes[0].root / "opt/chef-backend/sv/elasticsearch/run").read_text()
    assert f"/bin/{dist.product}" in run
    manifest = json.loads((cluster.nodes[0].root / "opt/chef-backend/version-manifest.json").read_text())
    assert manifest["software"]["search"].startswith(dist.product + " ")


def test_a_chef_frontends_requests_for_that_version(deployed: tuple[Cluster, Distribution]) -> None:
    cluster, dist = deployed
    host = cluster.wait_leader().address
    typed = dist.major == 6
    status, answer = call("PUT", "/chef", ES6_INDEX if typed else ES7_INDEX, host=host)
    assert status == 200 and answer["acknowledged"], answer
    status, answer = call("POST", "/_bulk", raw=bulk_adds(21, typed), host=host)
    assert status == 200 and not answer["errors"], answer
    action = {"_index": "chef", "_id": doc_id(20), **({"_type": "object"} if typed else {})}
    status, answer = call("POST", "/_bulk", raw=(json.dumps({"delete": action}) + "\n").encode(), host=host)
    assert status == 200 and answer["items"][0]["delete"]["result"] == "deleted"
    assert call("POST", "/_refresh", host=host)[0] == 200
    check_searches(host, dist.major)
    if dist.reindex:
        status, answer = call("POST", "/chef/_delete_by_query",
                              {"query": {"query_string": {"query": f"X_CHEF_database_CHEF_X:{ORG} AND "
                                                                   "content:name__=__web0"}}}, host=host)
        assert status == 200 and answer["deleted"] == 1, answer
        status, answer = call("POST", "/_bulk", raw=bulk_adds(1, typed), host=host)  # put it back
        assert status == 200 and not answer["errors"] and call("POST", "/_refresh", host=host)[0] == 200
    assert call("GET", "/chef", host=host)[0] == 200


def test_elasticsearch_6_keeps_a_majority_quorum(deployed: tuple[Cluster, Distribution]) -> None:
    """Zen discovery needs minimum_master_nodes at a majority of the members, or a partition gives
    two search masters; the leader manager sets it cluster-wide once the members are in."""
    cluster, dist = deployed
    if dist.major != 6:
        pytest.skip("Zen discovery is Elasticsearch 6's")

    def quorum() -> str | None:
        with urllib.request.urlopen(f"http://{cluster.nodes[1].address}:9200/_cluster/settings?flat_settings=true",
                                    timeout=10) as resp:
            return json.loads(resp.read())["persistent"].get("discovery.zen.minimum_master_nodes")

    assert cluster.wait_for(quorum, 60, "minimum_master_nodes to be set") == "2"
    # ...and in every node's own configuration, which a restarted node goes by until it has joined.
    for node in cluster.nodes:
        yml = node.root / "var/opt/chef-backend/elasticsearch/config/elasticsearch.yml"
        cluster.wait_for(lambda yml=yml: json.loads(yml.read_text())["discovery.zen.minimum_master_nodes"] == 2,
                         30, f"{node.name}'s minimum_master_nodes")
    old = cluster.wait_leader()
    old.crash()
    others = [n for n in cluster.nodes if n is not old]
    new = cluster.wait_for(lambda: next((n for n in others if n.leader_code() == 200), None), 60, "a new leader")
    cluster.wait_for(lambda: check_searches(new.address, 6) is None, 90, "complete searches on the new leader")
    old.ctl("start")
    cluster.wait_healthy(180)
    wait_green(old.address, 3)
