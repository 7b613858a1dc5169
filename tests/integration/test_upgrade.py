"""The rolling upgrade of facts §7, between two builds of our own package: failover off, upgrade
each follower, upgrade --failover on the leader, failover on again; no row lost, every node runs
the new build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import at_defaults
from tests.support.harness import Cluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIP = "/opt/chef-backend/embedded/bin/pip"
NEXT = "0.1.0.post1"


def install(source: Path) -> None:
    subprocess.run([PIP, "install", "-q", "--no-deps", "--force-reinstall", str(source)], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def cluster():
    try:
        with Cluster.running("upgrade", extra_config=at_defaults(), timeout=180) as c:
            yield c
    finally:
        install(REPO)


def next_build(base: Path) -> Path:
    """This repository with another version number: the package an operator would install."""
    build = base / "next-build"
    shutil.copytree(REPO / "src", build / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, build / name)
    current = (build / "src/chef_backend/__init__.py").read_text()
    version = current.split('__version__ = "')[1].split('"')[0]
    (build / "src/chef_backend/__init__.py").write_text(current.replace(version, NEXT))
    pyproject = (build / "pyproject.toml").read_text()
    (build / "pyproject.toml").write_text(pyproject.replace(f'version = "{version}"', f'version = "{NEXT}"', 1))
    return build


def test_rolling_upgrade_between_two_builds(cluster: Cluster) -> None:
    password = cluster.password()
    leader = cluster.wait_leader()
    with leader.connect(password) as conn:
        conn.execute("CREATE TABLE upgrade_rows (id int PRIMARY KEY)")
        conn.execute("INSERT INTO upgrade_rows SELECT generate_series(1, 1000)")
    install(next_build(cluster.base))

    leader.ctl("set-cluster-failover", "off")
    followers = [n for n in cluster.nodes if n is not leader]
    for node in followers:
        out = node.ctl("upgrade").stdout
        assert f"to {NEXT}; it is a synced follower" in out
        assert cluster.wait_leader() is leader
    refused = leader.ctl("upgrade", check=False)
    assert refused.returncode == 1 and "run upgrade --failover" in refused.stderr
    refused = leader.ctl("upgrade", "--failover", check=False)
    assert refused.returncode == 1 and "failover is turned off" in refused.stderr
    leader.ctl("set-cluster-failover", "on")
    leader.ctl("upgrade", "--failover")
    leader.ctl("set-cluster-failover", "off")
    leader.ctl("set-cluster-failover", "on")
    cluster.wait_healthy()
    assert cluster.wait_leader() in followers
    for node in cluster.nodes:
        assert node.status_doc()["version"] == NEXT
        with node.connect(password) as conn:
            assert conn.execute("SELECT count(*) FROM upgrade_rows").fetchone()[0] == 1000


def test_full_downtime_upgrade(cluster: Cluster) -> None:
    """down-for-upgrade on the leader, then on the followers; upgrade the followers (no leader yet),
    then the former leader, which leads again."""
    password = cluster.password()
    leader = cluster.wait_leader()
    followers = [n for n in cluster.nodes if n is not leader]
    for node in [leader, *followers]:
        assert "PostgreSQL are stopped" in node.ctl("down-for-upgrade").stdout
    assert cluster.leaders() == []
    cluster.wait_for(lambda: cluster.cluster_status(followers[0])["leader"] is None, 60, "the leader key to expire")
    for node in followers:
        assert "the cluster has no leader yet" in node.ctl("upgrade").stdout
    leader.ctl("upgrade")
    cluster.wait_healthy(120)
    with cluster.wait_leader().connect(password) as conn:
        assert conn.execute("SELECT count(*) FROM upgrade_rows").fetchone()[0] == 1000
