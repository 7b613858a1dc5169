"""reconfigure applies chef-backend.rb to a running node with the least disruption, says what
changed without showing secrets, and refuses a node whose client networks differ."""

from __future__ import annotations

import json

import pytest

from tests.support.harness import Cluster, Node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("reconfigure") as c:
        yield c


def set_config(node: Node, extra: str) -> None:
    node.extra_config = extra
    node.write_config()


def secrets_of(node: Node) -> list[str]:
    doc = json.loads(node.secrets_file.read_text())
    return [v for section in doc.values() for v in section.values() if len(v) > 20]


def history_length(cluster: Cluster) -> int:
    return len(cluster.nodes[0].ctl("history").stdout.splitlines())


def test_reload_only_changes_keep_the_leader(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    elections = history_length(cluster)
    set_config(leader, "postgresql.work_mem = '16MB'\nleaderl.health_check.interval_seconds = 2\n")
    out = leader.ctl("reconfigure").stdout
    assert "-work_mem = '8MB'\n+work_mem = '16MB'" in out
    assert "reloaded PostgreSQL" in out and "leaderl re-read its settings" in out
    assert not any(secret in out for secret in secrets_of(leader))
    with leader.connect(cluster.password()) as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "16MB"
    assert cluster.wait_leader() is leader and history_length(cluster) == elections
    assert "Nothing changed." in leader.ctl("reconfigure").stdout


def test_a_setting_that_needs_a_restart_restarts_postgresql(cluster: Cluster) -> None:
    follower = next(n for n in cluster.nodes if n is not cluster.wait_leader())
    set_config(follower, "postgresql.max_connections = 70\n")
    out = follower.ctl("reconfigure").stdout
    assert "restarted PostgreSQL (max_connections needs a restart)" in out
    cluster.wait_healthy()
    with follower.connect(cluster.password()) as conn:
        assert conn.execute("SHOW max_connections").fetchone()[0] == "70"


def test_different_client_networks_are_refused(cluster: Cluster) -> None:
    node = cluster.nodes[2]
    hba = next((node.root / "var/opt/chef-backend/postgresql").glob("*/pg_hba.conf"))
    before = hba.read_text()
    set_config(node, 'postgresql.md5_auth_cidr_addresses = ["samehost"]\n')
    result = node.ctl("reconfigure", check=False)
    assert result.returncode == 1
    assert ("md5_auth_cidr_addresses differs from the cluster's: this node has ['samehost'], "
            "the cluster has ['samehost', 'samenet']") in result.stderr
    assert hba.read_text() == before
    set_config(node, "")


def test_uninstall_then_reconfigure_and_loosened_modes_restored(cluster: Cluster) -> None:
    node = cluster.nodes[2]
    node.ctl("uninstall")
    assert node.processes() == set()
    node.secrets_file.chmod(0o644)
    out = node.ctl("reconfigure").stdout
    assert "started the node's services" in out
    assert node.secrets_file.stat().st_mode & 0o777 == 0o640
    cluster.wait_healthy()


def test_gather_logs_has_status_logs_and_config_without_secrets(cluster: Cluster) -> None:
    import tarfile

    node = cluster.nodes[0]
    out = node.ctl("gather-logs", "-o", str(cluster.base)).stdout
    archive = next(cluster.base.glob("chef-backend-logs-*.tar.gz"))
    assert str(archive) in out and archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        names = [m.name.split("/", 1)[1] for m in tar.getmembers()]
        data = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert {"chef-backend-ctl-status.txt", "cluster-status.json", "config/chef-backend.rb"} <= set(names)
    assert any(n.startswith("logs/leaderl/") for n in names) and any(n.startswith("logs/postgresql/") for n in names)
    assert b"Distributed Node Status" in data
    assert not any(secret.encode() in data for secret in secrets_of(node))
