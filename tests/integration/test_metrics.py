"""GET :7331/metrics on real nodes: scraped through a failover, its counters move; the leader
manager stays small with it."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness import Cluster, Node, node_pids

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("metrics") as c:
        yield c


def scrape(node: Node) -> dict[tuple, float]:
    with urllib.request.urlopen(f"http://{node.address}:7331/metrics", timeout=3) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict[tuple, float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def manager_rss_mb(node: Node) -> float:
    for pid in node_pids(node.root):
        try:
            if b"chef-backend-leaderl" in Path(f"/proc/{pid}/cmdline").read_bytes():
                status = Path(f"/proc/{pid}/status").read_text()
                return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024
        except OSError:
            continue
    raise AssertionError(f"no leader manager process on {node.name}")


def test_metrics_describe_the_leader_and_its_standbys(cluster: Cluster) -> None:
    leader = cluster.wait_leader()

    def replication_seen() -> dict | None:
        got = scrape(leader)
        lag = {k: v for k, v in got.items() if k[0] == "chef_backend_replication_lag_bytes"}
        return got if len(lag) == 2 else None

    got = cluster.wait_for(replication_seen, 30, "both standbys in the leader's metrics", interval=1)
    assert got[("chef_backend_role", (("role", "leader"),))] == 1 and got[("chef_backend_leader", ())] == 1
    assert 0 < got[("chef_backend_lease_remaining_seconds", ())] <= 10
    assert total(got, "chef_backend_standby_synchronous") >= 1  # synchronous replication: the set
    assert got[("chef_backend_etcd_healthy", ())] == 1
    assert all(v == 1 for (n, _), v in got.items() if n == "chef_backend_disk_healthy")
    follower = next(n for n in cluster.nodes if n is not leader)
    assert scrape(follower)[("chef_backend_role", (("role", "follower"),))] == 1


def test_counters_move_through_a_failover(cluster: Cluster) -> None:
    old = cluster.wait_leader()
    survivors = [n for n in cluster.nodes if n is not old]
    before = {n.name: scrape(n) for n in survivors}
    old.crash()
    new = cluster.wait_for(lambda: (ls := [n for n in survivors if n.leader_code() == 200]) and ls[0], 60,
                           "a new leader")
    after = cluster.wait_for(lambda: (got := scrape(new)) and got[("chef_backend_leader", ())] == 1 and got, 10,
                             "the new leader's metrics")
    assert (total(after, "chef_backend_leadership_acquired_total")
            == total(before[new.name], "chef_backend_leadership_acquired_total") + 1)
    assert after[("chef_backend_leader_changes_total", ())] == before[new.name][
        ("chef_backend_leader_changes_total", ())] + 1
    other = next(n for n in survivors if n is not new)
    seen = cluster.wait_for(lambda: (got := scrape(other))[("chef_backend_leader_changes_total", ())]
                            > before[other.name][("chef_backend_leader_changes_total", ())] and got, 30,
                            "the failover counted on the other survivor")
    assert seen[("chef_backend_role", (("role", "follower"),))] == 1
    old.ctl("start")
    cluster.wait_healthy(120)


def test_the_leader_manager_stays_under_80_mb(cluster: Cluster) -> None:
    cluster.wait_healthy(120)
    for node in cluster.nodes:
        for _ in range(20):
            scrape(node)
        rss = manager_rss_mb(node)
        print(f"{node.name}: leader manager RSS {rss:.1f} MB")
        assert rss < 80
