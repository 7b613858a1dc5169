"""Operator procedures on real processes (facts §5.4): re-syncing a follower by hand, replacing a
node lost for good, and rebuilding a cluster from the survivor of a two-node loss."""

from __future__ import annotations

import shutil

import pytest

from chef_backend.frontend.discovery import discover
from tests.integration.conftest import at_defaults
from tests.support.harness import Cluster, Node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("operations", extra_config=at_defaults(), timeout=180) as c:
        yield c


class Rows:
    """Rows written through the leader, checked on every node."""

    def __init__(self) -> None:
        self.written: list[int] = []

    def write(self, cluster: Cluster, count: int = 50) -> None:
        leader = cluster.wait_leader()
        with leader.connect(cluster.password()) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS ops_rows (id int PRIMARY KEY)")
            start = len(self.written)
            ids = list(range(start, start + count))
            conn.execute("INSERT INTO ops_rows SELECT generate_series(%s::int, %s::int)", (ids[0], ids[-1]))
            self.written += ids

    def assert_everywhere(self, cluster: Cluster) -> None:
        password = cluster.password()
        for node in cluster.nodes:
            def complete(node: Node = node) -> bool:
                with node.connect(password) as conn:
                    return {r[0] for r in conn.execute("SELECT id FROM ops_rows")} == set(self.written)
            cluster.wait_for(complete, 30, f"every row on {node.name}")


ROWS = Rows()


def test_the_runbooks_pgsql_follow_resyncs_a_follower_by_hand(cluster: Cluster) -> None:
    """The original's runbook: stop leaderl; pgsql-follow [--force-basebackup] LEADER; start leaderl."""
    leader = cluster.wait_leader()
    follower, other = [n for n in cluster.nodes if n is not leader]
    ROWS.write(cluster)
    assert "the leader manager is running" in follower.ctl("pgsql-follow", leader.address, check=False).stderr
    follower.ctl("stop", "leaderl")
    wrong = follower.ctl("pgsql-follow", other.address, check=False)
    assert wrong.returncode == 1
    assert f"the leader is {leader.address}: chef-backend-ctl pgsql-follow {leader.address}" in wrong.stderr
    out = follower.ctl("pgsql-follow", "--force-basebackup", "--verbose", "--accept-license", leader.address)
    assert "Copying the leader's data afresh (--force-basebackup)" in out.stdout
    follower.ctl("start", "leaderl")
    cluster.wait_healthy()
    follower.ctl("stop", "leaderl")
    assert "Rewound" in follower.ctl("pgsql-follow", leader.address).stdout
    follower.ctl("start", "leaderl")
    cluster.wait_healthy()
    ROWS.write(cluster)
    ROWS.assert_everywhere(cluster)


def test_remove_node_refuses_a_node_that_still_runs(cluster: Cluster) -> None:
    ROWS.write(cluster)
    result = cluster.nodes[0].ctl("remove-node", "backend-3", "--yes", check=False)
    assert result.returncode == 1 and "backend-3 is still running" in result.stderr
    result = cluster.nodes[0].ctl("remove-node", "backend-1", "--yes", check=False)
    assert result.returncode == 1 and "cannot remove itself" in result.stderr
    result = cluster.nodes[0].ctl("remove-node", "backend-9", "--yes", check=False)
    assert result.returncode == 1 and "no node 'backend-9'" in result.stderr
    assert len(cluster.cluster_status()["nodes"]) == 3


def test_replace_a_node_lost_for_good(cluster: Cluster) -> None:
    """remove-node on a survivor, cleanse the lost node, put its config back, join --recovery."""
    lost = cluster.nodes[2]
    lost.crash()
    ROWS.write(cluster)
    survivor = cluster.nodes[0]
    survivor.ctl("remove-node", lost.name, "--yes")
    doc = cluster.cluster_status(survivor)
    assert sorted(n["name"] for n in doc["nodes"]) == ["backend-1", "backend-2"]
    # Frontends discover the members through etcd: the removed node is gone there too.
    assert sorted(b.address for b in discover([survivor.address]).backends) == ["127.0.0.11", "127.0.0.12"]

    lost.ctl("cleanse", "--yes")
    saved = sorted(lost.root.glob("root/chef-backend-cleanse-*"))
    assert saved and (saved[-1] / "chef-backend.rb").exists() and (saved[-1] / "chef-backend-secrets.json").exists()
    assert not (lost.root / "var/opt/chef-backend").exists() and not lost.config_file.exists()
    result = lost.ctl("join-cluster", survivor.address, "--recovery", "--yes", check=False)
    assert result.returncode == 1 and "there is none at" in result.stderr
    shutil.copytree(saved[-1], lost.root / "etc/chef-backend")
    lost.ctl("join-cluster", survivor.address, "--recovery", "--yes")
    cluster.wait_healthy()
    ROWS.write(cluster)
    ROWS.assert_everywhere(cluster)
    assert len(discover([survivor.address]).backends) == 3


def test_rebuild_from_the_survivor_of_a_two_node_loss(cluster: Cluster) -> None:
    survivor = cluster.wait_leader()
    stale_secrets = cluster.base / "stale-secrets.json"
    shutil.copy(cluster.secrets_copy, stale_secrets)
    lost = cluster.lose_all_but(survivor)
    survivor.ctl("create-cluster", "--quorum-loss-recovery", "--yes")
    assert survivor.leader_code() == 200
    doc = cluster.cluster_status(survivor)
    assert [n["name"] for n in doc["nodes"]] == [survivor.name]

    # A secrets file from before the recovery is refused; the new one works.
    result = lost[0].ctl("join-cluster", survivor.address, "-s", str(stale_secrets), "--yes", check=False)
    assert result.returncode == 1 and "does not belong to this cluster" in result.stderr
    assert lost[0].processes() == set()
    shutil.copy(survivor.secrets_file, cluster.secrets_copy)
    for node in lost:
        node.ctl("join-cluster", survivor.address, "-s", str(cluster.secrets_copy), "--yes")
    cluster.wait_healthy()
    ROWS.write(cluster)
    ROWS.assert_everywhere(cluster)
