"""Issue 2's acceptance: three real nodes formed by create-cluster and join-cluster."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.support.harness import Cluster, Node

pytestmark = pytest.mark.integration

ROW_RE = re.compile(r"^(\w+)\s+(\w+)\s+\(pid (\w+)\)\s+(\d+d \d+h \d+m \d+s)\s+(.*)$")


@pytest.fixture(scope="module")
def cluster():
    c = Cluster.fresh("bootstrap")
    c.create()
    yield c
    c.teardown()


def status_rows(node: Node) -> dict[str, tuple[str, ...]]:
    out = node.ctl("status").stdout
    rows = {}
    for line in out.splitlines():
        m = ROW_RE.match(line)
        if m:
            rows[m.group(1)] = m.groups()
    return rows


def test_status_shows_a_healthy_three_node_cluster(cluster: Cluster) -> None:
    def ready() -> dict | None:
        rows = status_rows(cluster.nodes[2])
        ok = (set(rows) == {"etcd", "leaderl", "postgresql"}
              and rows["leaderl"][4] == "leader: 1; waiting: 0; follower: 2; total: 3"
              and rows["etcd"][4] == "health: green; healthy nodes: 3/3"
              and rows["postgresql"][4] == "leader: 1; offline: 0; syncing: 0; synced: 2")
        return rows if ok else None

    rows = cluster.wait_for(ready, 30, "status to show 3/3")
    assert all(r[1] == "running" for r in rows.values())


def test_writes_on_the_leader_reach_both_followers_within_a_second(cluster: Cluster) -> None:
    password = cluster.password()
    with cluster.nodes[0].connect(password) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS accept (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO accept VALUES (1, 'one')")
    deadline = time.monotonic() + 1.0
    for node in cluster.nodes[1:]:
        with node.connect(password) as conn:
            while True:
                try:
                    row = conn.execute("SELECT v FROM accept WHERE id = 1").fetchone()
                except Exception:
                    row = None
                if row or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            assert row == ("one",), f"row not on {node.name} within 1s"


def test_followers_refuse_writes(cluster: Cluster) -> None:
    with cluster.nodes[1].connect(cluster.password()) as conn, pytest.raises(Exception, match="read-only"):
        conn.execute("CREATE TABLE nope (id int)")


def test_only_the_leader_answers_200(cluster: Cluster) -> None:
    assert [n.leader_code() for n in cluster.nodes] == [200, 503, 503]


def test_an_idle_leader_stays_ready_on_its_standbys_answers_to_its_heartbeats(cluster: Cluster) -> None:
    # With no client writing, the leader's manager still writes a WAL heartbeat after each look
    # at PostgreSQL, and each standby's flush of it keeps the leader's 200 going: that is what
    # lets a leader cut off from its standbys turn 503 within timing.STANDBY_STALE_SECONDS.
    leader = cluster.nodes[0]
    with leader.connect(cluster.password()) as conn:
        start = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        codes = []
        for _ in range(40):  # five seconds of HAProxy-like checks, one every 0.125 s
            codes.append([n.leader_code() for n in cluster.nodes])
            time.sleep(0.125)
        confirmed = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE flush_lsn > %s",
                                 (start,)).fetchone()[0]
    assert all(c == [200, 503, 503] for c in codes), codes
    assert confirmed == 2, "the standbys confirmed no WAL written while no client wrote"


def test_cluster_status_lists_every_node_with_its_guid(cluster: Cluster) -> None:
    out = cluster.nodes[1].ctl("cluster-status").stdout.splitlines()
    assert out[0].split()[:6] == ["Name", "IP", "GUID", "Role", "PG", "ES"]
    rows = [line.split() for line in out[1:4]]
    assert [r[0] for r in rows] == ["backend-1", "backend-2", "backend-3"]
    assert [r[1] for r in rows] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", r[2]) for r in rows)
    assert [r[3] for r in rows] == ["leader", "follower", "follower"]
    # what chef-server's CI does to find the leader's GUID
    leader_rows = [line for line in out if re.search("leader.*leader", line)]
    assert len(leader_rows) == 1 and leader_rows[0].split()[2] == rows[0][2]


def test_etcd_members_are_named_by_guid_with_the_publish_address(cluster: Cluster) -> None:
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.12:2379/v2/members", timeout=3) as resp:
        members = json.loads(resp.read())["members"]
    status = cluster.cluster_status()
    guids = {n["guid"]: n["ip"] for n in status["nodes"]}
    assert {m["name"]: m["peerURLs"][0] for m in members} == {g: f"http://{ip}:2380" for g, ip in guids.items()}


def test_gen_server_config_has_the_frontend_shape(cluster: Cluster) -> None:
    out = cluster.nodes[0].ctl("gen-server-config", "fe1.example.com").stdout
    assert out.startswith("# This file generated by chef-backend-ctl gen-server-config\n")
    assert 'fqdn "fe1.example.com"' in out
    assert 'chef_backend_members ["127.0.0.11", "127.0.0.12", "127.0.0.13"]' in out
    assert "use_chef_backend true" in out
    assert f"postgresql['db_superuser_password'] = '{cluster.password()}'" in out
    assert "opscode_erchef['search_provider'] = 'elasticsearch'" in out
    assert "bookshelf['storage_type'] = :sql" in out


def test_secrets_file_has_the_seed_owner_and_mode(cluster: Cluster) -> None:
    import grp
    import os
    import pwd

    for node in cluster.nodes:
        st = os.stat(node.secrets_file)
        assert oct(st.st_mode & 0o777) == "0o640"
        assert pwd.getpwuid(st.st_uid).pw_name == "root"
        assert grp.getgrgid(st.st_gid).gr_name == "chef_pgsql"


def test_services_run_as_their_seed_users(cluster: Cluster) -> None:
    import pwd
    from pathlib import Path

    owners: dict[str, set[str]] = {}
    for pid in cluster.nodes[0].processes():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            uid = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
        except OSError:
            continue
        owners.setdefault(Path(cmd).name, set()).add(pwd.getpwuid(int(uid)).pw_name)
    assert owners["etcd"] == {"chef-backend"}
    assert owners["postgres"] == {"chef_pgsql"}
    assert any(k.startswith("python") or "leaderl" in k for k in owners)
    leaderl_users = {u for k, us in owners.items() if k.startswith("python") for u in us}
    assert leaderl_users == {"chef_pgsql"}


def test_stop_everything_then_start_brings_back_the_same_cluster(cluster: Cluster) -> None:
    before = cluster.cluster_status()
    leader_before = before["leader"]
    with cluster.wait_leader().connect(cluster.password()) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS restart (id int PRIMARY KEY)")
        conn.execute("INSERT INTO restart SELECT generate_series(1, 1000)")
    # Followers first, then the leader: stopping the leader first would (rightly) fail over to a
    # follower, which would then be the last leader and lead again after the restart.
    leader_node = next(n for n in cluster.nodes if n.leader_code() == 200)
    for node in [n for n in cluster.nodes if n is not leader_node] + [leader_node]:
        node.ctl("stop")
    for node in cluster.nodes:
        assert node.processes() == set(), f"{node.name} still runs processes after stop"
    for node in cluster.nodes:
        node.ctl("start")
    leader = cluster.wait_leader(90)
    after = cluster.wait_healthy()
    assert after["cluster_id"] == before["cluster_id"]
    assert {n["guid"] for n in after["nodes"]} == {n["guid"] for n in before["nodes"]}
    assert after["leader"] == leader_before
    with leader.connect(cluster.password()) as conn:
        assert conn.execute("SELECT count(*) FROM restart").fetchone() == (1000,)
        assert conn.execute("SELECT v FROM accept WHERE id = 1").fetchone() == ("one",)
