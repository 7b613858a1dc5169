"""After a power loss: every process of every node killed, then what the boot-time unit runs."""

from __future__ import annotations

import os
import subprocess

import pytest

from chef_backend.host import boot
from tests.support.harness import Cluster, Node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("boot") as c:
        yield c


def run_boot(node: Node, *extra: str) -> subprocess.CompletedProcess[str]:
    """Exactly the command the installed unit (or init script) runs, on this node."""
    argv = boot.boot_command(boot.UNIT if boot.systemd_running() else boot.INIT)
    return subprocess.run([*argv, *extra], env=dict(os.environ, CHEF_BACKEND_ROOT=str(node.root)), text=True,
                          capture_output=True, timeout=300, stdin=subprocess.DEVNULL, check=True)


def test_a_cluster_that_lost_power_comes_back_by_what_boot_runs(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    with leader.connect(cluster.password()) as conn:
        conn.execute("CREATE TABLE before_power_loss (x int)")
        conn.execute("INSERT INTO before_power_loss VALUES (42)")  # acknowledged: must survive
    for node in cluster.nodes:
        node.crash()  # kill -9 of everything, as at power loss
    assert all(not n.processes() for n in cluster.nodes)
    for node in cluster.nodes:
        run_boot(node)
    cluster.wait_healthy(180)
    leader = cluster.wait_leader()
    with leader.connect(cluster.password()) as conn:
        assert conn.execute("SELECT x FROM before_power_loss").fetchall() == [(42,)]


def test_one_node_that_lost_power_rejoins_by_what_boot_runs(cluster: Cluster) -> None:
    cluster.wait_healthy(120)
    follower = next(n for n in cluster.nodes if n.leader_code() != 200)
    follower.crash()
    run_boot(follower)
    doc = cluster.wait_healthy(180)
    assert sorted(n["pg"] for n in doc["nodes"]) == ["leader", "synced", "synced"]


def test_a_node_stopped_on_purpose_stays_down_at_boot(cluster: Cluster) -> None:
    node = next(n for n in cluster.nodes if n.leader_code() != 200)
    node.ctl("stop")
    assert "Left stopped (chef-backend-ctl stop)" in run_boot(node).stdout
    # Processes of the stop itself may take a moment to exit; anything boot started would stay.
    cluster.wait_for(lambda: not node.processes(), 15, f"{node.name} to have no processes after boot")
    node.ctl("start")
    cluster.wait_healthy(180)
    # Once started again, a power loss brings it back as before.
    node.crash()
    run_boot(node)
    cluster.wait_healthy(180)
