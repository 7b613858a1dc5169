"""reconfigure applies chef-backend.rb to a running node with the least disruption, says what
changed without showing secrets, widens client networks node by node without refusing anyone, and
refuses only a client list that would shut out the cluster's own members."""

from __future__ import annotations

import json
import threading

import psycopg
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


def test_a_client_list_that_shuts_out_the_members_is_refused_with_why(cluster: Cluster) -> None:
    node = cluster.nodes[2]
    hba = next((node.root / "var/opt/chef-backend/postgresql").glob("*/pg_hba.conf"))
    before = hba.read_text()
    set_config(node, 'postgresql.md5_auth_cidr_addresses = ["10.99.0.0/24"]\n')
    result = node.ctl("reconfigure", check=False)
    assert result.returncode == 1
    assert ("does not let in the cluster's own members 127.0.0.11, 127.0.0.12, 127.0.0.13: replication to "
            "this node when it leads") in result.stderr
    assert hba.read_text() == before
    set_config(node, "")


def test_the_password_form_is_a_setting_applied_by_the_leader(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    query = ("SELECT rolname, left(rolpassword, 3) FROM pg_authid WHERE rolname IN ('chef_pgsql', 'replicator') "
             "ORDER BY 1")
    set_config(follower, "postgresql.password_encryption = 'scram-sha-256'\n")
    assert "stored the passwords" not in follower.ctl("reconfigure").stdout  # a follower gets them by replication
    set_config(leader, "postgresql.password_encryption = 'scram-sha-256'\n")
    assert "stored the passwords of chef_pgsql, replicator as scram-sha-256" in leader.ctl("reconfigure").stdout
    cluster.wait_for(lambda: _rows(follower, cluster, query) == [("chef_pgsql", "SCR"), ("replicator", "SCR")],
                     30, "the SCRAM hashes on a follower")
    for node in (follower, leader):
        set_config(node, "")
        node.ctl("reconfigure")
    assert _rows(leader, cluster, query) == [("chef_pgsql", "md5"), ("replicator", "md5")]
    cluster.wait_healthy()


def _rows(node: Node, cluster: Cluster, query: str) -> list[tuple]:
    with node.connect(cluster.password()) as conn:
        return conn.execute(query).fetchall()


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


def test_the_seeds_client_network_procedure_node_by_node_never_refuses_a_client(cluster: Cluster) -> None:
    """The seed: widen postgresql.md5_auth_cidr_addresses on every backend, reconfigure each. A
    client keeps connecting to every node throughout; none is ever refused."""
    cluster.wait_healthy()
    wider = 'postgresql.md5_auth_cidr_addresses = ["samehost", "samenet", "10.99.0.0/24"]\n'
    stop, refused, accepted = threading.Event(), [], [0]

    def client() -> None:
        while not stop.is_set():
            for node in cluster.nodes:
                try:
                    with node.connect(cluster.password(), timeout=3):
                        accepted[0] += 1
                except psycopg.OperationalError as exc:
                    refused.append(f"{node.address}: {exc}")

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        for node in cluster.nodes:
            set_config(node, wider)
            result = node.ctl("reconfigure")
            assert "reloaded PostgreSQL" in result.stdout and "WARNING" not in result.stderr
            with node.connect(cluster.password()) as conn:
                rules = conn.execute("SELECT address FROM pg_hba_file_rules WHERE address = '10.99.0.0'").fetchall()
            assert len(rules) == 2  # host all all, hostssl replication replicator
    finally:
        stop.set()
        thread.join(10)
    assert refused == [] and accepted[0] > 0
    doc = json.loads(cluster.nodes[0].ctl("cluster-status", "--json").stdout)
    assert sorted(n["pg"] for n in doc["nodes"]) == ["leader", "synced", "synced"]
    # Narrowing again is the operator's choice: applied, with a warning naming what is dropped.
    set_config(cluster.nodes[0], "")
    assert "no longer has 10.99.0.0/24" in cluster.nodes[0].ctl("reconfigure").stderr
