"""elasticsearch.distribution_dir: an operator-installed OpenSearch distribution (here the real
2.19.6 distribution OpenSearch publishes to Maven Central, unpacked with Maven) configured and
supervised like the embedded node."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from tests.integration.harness import Cluster
from tests.search.test_search import wait_green

pytestmark = pytest.mark.integration

ARTIFACT = "org.opensearch.distribution.integ-test-zip:opensearch:2.19.6:zip"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster.fresh("search-distribution")
    unpacked = c.base / "opensearch-dist"
    # (Unpack again even if Maven's markers say an earlier run did: the output directory is new.)
    subprocess.run(["mvn", "-B", "-q", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:unpack",
                    f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={unpacked}", "-Dmdep.overWriteReleases=true"],
                   check=True, capture_output=True, text=True, timeout=600, cwd=c.base)
    home = next(unpacked.glob("opensearch-*"))
    subprocess.run(["chmod", "-R", "a+rX", str(c.base)], check=True)
    config = (f"elasticsearch.enable = true\nelasticsearch.heap_size = 256\n"
              f"elasticsearch.distribution_dir = '{home}'\n")
    for node in c.nodes:
        node.extra_config = config
        node.write_config()
    try:
        c.create()
        c.wait_healthy(180)
        yield c
    finally:
        c.teardown()


def test_an_operator_installed_distribution_forms_the_search_cluster(cluster: Cluster) -> None:
    wait_green(cluster.nodes[0].address, 3)
    with urllib.request.urlopen(f"http://{cluster.nodes[0].address}:9200/", timeout=10) as resp:
        assert json.loads(resp.read())["version"]["number"] == "7.10.2"
    row = next(line for line in cluster.nodes[0].ctl("status").stdout.splitlines() if line.startswith("elasticsearch"))
    assert row.endswith("state: green; nodes online: 3/3")
    run = (cluster.nodes[0].root / "opt/chef-backend/sv/elasticsearch/run").read_text()
    assert "/bin/opensearch" in run
