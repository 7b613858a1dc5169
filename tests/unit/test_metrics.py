"""The leader manager's Prometheus metrics: counters move with what the control loop publishes."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chef_backend.leader.http import HttpServer, Published
from chef_backend.metrics import Metrics


def scrape(metrics: Metrics, is_leader: bool = False, lease_deadline: float = 0.0) -> dict[tuple, float]:
    text = metrics.render(is_leader, lease_deadline).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def doc(role: str, leader: str | None, reason: str = "", failures: dict | None = None, cause: str = "",
        **extra: object) -> dict:
    return {"role": role, "leader": leader, "reason": reason, "cause": cause, "ready": role == "leader",
            "eligible": True,
            "failures": failures or {"pgsql": 0, "etcd": 0, "search": 0}, **extra}


def test_a_failover_seen_from_a_follower_that_takes_over() -> None:
    m = Metrics()
    m.observe(doc("follower", "a" * 32, "following a"))
    m.observe(doc("follower", "a" * 32, "following a", failures={"pgsql": 0, "etcd": 0, "search": 0}))
    m.observe(doc("waiting_for_leader", None, "no leader: detaching"))
    m.observe(doc("promoting", "b" * 32, f"leader {'a' * 32} looks dead: taking over", cause="leader_dead"))
    m.observe(doc("promoting", "b" * 32, "promoting PostgreSQL"))
    m.observe(doc("leader", "b" * 32, "leader"))
    got = scrape(m, is_leader=True, lease_deadline=time.monotonic() + 8)
    assert got[("chef_backend_leader_changes_total", ())] == 1
    assert got[("chef_backend_leadership_acquired_total", (("reason", "leader_dead"),))] == 1
    assert got[("chef_backend_role", (("role", "leader"),))] == 1
    assert got[("chef_backend_role", (("role", "follower"),))] == 0
    assert got[("chef_backend_leader", ())] == 1 and got[("chef_backend_ready", ())] == 1
    assert 7 < got[("chef_backend_lease_remaining_seconds", ())] <= 8


def test_stepping_down_and_health_check_failures_are_counted_by_kind() -> None:
    m = Metrics()
    m.observe(doc("leader", "b" * 32, "leader"))
    for n in (1, 2, 3):
        m.observe(doc("leader", "b" * 32, "leader", failures={"pgsql": 0, "etcd": 0, "search": n},
                      search={"status": "red", "nodes": 2}))
    m.observe(doc("waiting_for_leader", "b" * 32, "stepping down: search failed 5 checks", cause="search_unhealthy",
                  failures={"pgsql": 0, "etcd": 0, "search": 0}, search={"status": "red", "nodes": 2}))
    got = scrape(m)
    assert got[("chef_backend_health_check_failures_total", (("kind", "search"),))] == 3
    assert got[("chef_backend_health_check_failures_total", (("kind", "pgsql"),))] == 0
    assert got[("chef_backend_health_check_consecutive_failures", (("kind", "search"),))] == 0
    assert got[("chef_backend_leadership_lost_total", (("reason", "search_unhealthy"),))] == 1
    assert got[("chef_backend_search_healthy", ())] == 0 and got[("chef_backend_search_nodes", ())] == 2
    assert got[("chef_backend_lease_remaining_seconds", ())] == 0


def test_replication_and_disks_per_label() -> None:
    m = Metrics()
    m.set_replication([("b" * 32, 1024, 0.25, "quorum"), ("c" * 32, 0, None, "async")])
    m.set_disks({"/var/opt/chef-backend": 10 * 2**20, "/var/log/chef-backend": 900 * 2**20}, 250 * 2**20)
    got = scrape(m)
    assert got[("chef_backend_replication_lag_bytes", (("standby", "b" * 32),))] == 1024
    assert got[("chef_backend_replication_lag_seconds", (("standby", "b" * 32),))] == 0.25
    assert got[("chef_backend_standby_synchronous", (("standby", "b" * 32),))] == 1
    assert got[("chef_backend_standby_synchronous", (("standby", "c" * 32),))] == 0
    assert got[("chef_backend_disk_healthy", (("path", "/var/opt/chef-backend"),))] == 0
    assert got[("chef_backend_disk_healthy", (("path", "/var/log/chef-backend"),))] == 1
    m.set_replication([])  # no longer leader: the standbys' series go away
    assert not any(name == "chef_backend_replication_lag_bytes" for name, _ in scrape(m))


def test_a_change_without_a_cause_counts_as_other() -> None:
    m = Metrics()
    m.observe(doc("leader", "b" * 32, "leader"))
    m.observe(doc("waiting_for_leader", "b" * 32, "something new"))
    assert scrape(m)[("chef_backend_leadership_lost_total", (("reason", "other"),))] == 1


def test_metrics_are_served_read_only_on_the_leader_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    published = Published()
    HttpServer(published, "127.0.0.1", port).start()
    published.status = doc("follower", "a" * 32)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=")
        assert b'chef_backend_role{role="follower"} 1.0' in resp.read()
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x"), timeout=3)
    assert exc.value.code == 405
