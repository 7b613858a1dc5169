"""Backup on a follower, every node destroyed, restore into a new cluster, two nodes join:
the data is identical (facts §7)."""

from __future__ import annotations

import shutil

import pytest

from tests.integration.conftest import at_defaults
from tests.support.harness import Cluster, Node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("backup", extra_config=at_defaults(), timeout=180) as c:
        yield c


def digest(node: Node, password: str) -> tuple[int, str]:
    with node.connect(password) as conn:
        row = conn.execute("SELECT count(*), md5(string_agg(id::text || ':' || body, ',' ORDER BY id)) "
                           "FROM backup_rows").fetchone()
        return int(row[0]), str(row[1])


def test_backup_destroy_restore_join(cluster: Cluster) -> None:
    password = cluster.password()
    leader = cluster.wait_leader()
    with leader.connect(password) as conn:
        conn.execute("CREATE TABLE backup_rows (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO backup_rows SELECT i, repeat(md5(i::text), 20) FROM generate_series(1, 20000) i")
    before = digest(leader, password)

    refused = leader.ctl("backup", check=False)
    assert refused.returncode == 1 and "this node is the leader" in refused.stderr
    follower = next(n for n in cluster.nodes if n is not leader)
    cluster.wait_for(lambda: digest(follower, password) == before, 30, "the follower to catch up")
    out = follower.ctl("backup").stdout
    archives = list((follower.root / "var/opt/chef-backup").glob("chef-backend-backup-*.tar.gz"))
    assert len(archives) == 1 and f"Backup written to {archives[0]}" in out
    assert archives[0].stat().st_mode & 0o777 == 0o600
    assert "backup: done" in out  # plain progress lines when not on a terminal
    kept = cluster.base / archives[0].name
    shutil.copy(archives[0], kept)

    for node in cluster.nodes:
        node.crash()
        shutil.rmtree(node.root)
        node.write_config()

    first = cluster.nodes[0]
    corrupt = cluster.base / "corrupt.tar.gz"
    corrupt.write_bytes(kept.read_bytes()[:5000])
    result = first.ctl("restore", str(corrupt), "--yes", check=False)
    assert result.returncode == 1 and "is not a chef-backend backup archive" in result.stderr
    assert first.processes() == set() and not first.secrets_file.exists()

    first.ctl("restore", str(kept), "--yes")
    assert first.leader_code() == 200
    assert digest(first, password) == before  # the backup's passwords: frontends keep working
    shutil.copy(first.secrets_file, cluster.secrets_copy)
    for node in cluster.nodes[1:]:
        node.ctl("join-cluster", first.address, "-s", str(cluster.secrets_copy), "--yes")
    cluster.wait_healthy()
    for node in cluster.nodes:
        assert digest(node, password) == before
