"""The faults that broke other PostgreSQL HA managers, between backend hosts (network namespaces),
under load from a client host.

Checkers, after every fault: every acknowledged row (the workload's through HAProxy, and the
prober's direct writes) is on every node; never two nodes answering 200, never two nodes accepting
writes at once (the prober asks every /leader and writes on every node every 100 ms); the cluster
recovers by itself after the fault heals, and writes resume while a working majority exists, each
within a stated bound. Every fault runs twice: at the shipped defaults (TTL 30, etcd's and the
health check's default timings) and at TTL 10 with fast checks. The history of a run
(workload.log, prober.log, haproxy/, each node's logs) is kept in
/tmp/chef-backend-test-logs/faults-ttl<N>/.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest

from tests.support.harness import Cluster
from tests.support.hosts import (
    DEFAULTS_CONFIG,
    FAULT_CONFIG,
    PG_DISK_MB,
    NsNode,
    client_workload,
    ns_cluster,
    setup_network,
    teardown_network,
)
from tests.support.workload import LeaderProber, Writer, assert_nothing_lost

pytestmark = pytest.mark.faults

RESUME_BOUND_S = 60  # writes resume within this after a fault that leaves a working majority (TTL 30 + margin)
RECOVERY_BOUND_S = 120  # one leader and two synced followers again after the fault heals
CONFIGS = {30: DEFAULTS_CONFIG, 10: FAULT_CONFIG}


@dataclass
class FaultEnv:
    cluster: Cluster
    writer: Writer
    prober: LeaderProber
    ttl: int  # leaderl.leader_ttl_seconds of this run


@pytest.fixture(scope="module", params=list(CONFIGS), ids=lambda ttl: f"ttl{ttl}")
def env(request: pytest.FixtureRequest):
    ttl = request.param
    setup_network(3)
    cluster = ns_cluster(f"faults-ttl{ttl}", extra_config=CONFIGS[ttl], pg_disk_mb=PG_DISK_MB)
    try:
        cluster.create()
        cluster.wait_healthy()
        with client_workload(cluster) as (writer, prober):
            yield FaultEnv(cluster, writer, prober, ttl)
    finally:
        cluster.teardown()
        teardown_network()


def healthy_under_load(cluster: Cluster, writer: Writer) -> tuple[NsNode, list[NsNode]]:
    """Start from a healthy cluster taking writes; returns (leader, followers)."""
    cluster.wait_healthy(RECOVERY_BOUND_S)
    writer.wait_acks(30)
    leader = cluster.wait_leader()
    return leader, [n for n in cluster.nodes if n is not leader]


def new_leader_among(cluster: Cluster, nodes: list[NsNode]) -> NsNode:
    return cluster.wait_for(lambda: (ls := [n for n in nodes if n.leader_code() == 200]) and ls[0],
                            RESUME_BOUND_S, "a new leader")


def recovered(cluster: Cluster, writer: Writer, prober: LeaderProber) -> None:
    """The recovery, lost-write and one-leader checkers."""
    cluster.wait_healthy(RECOVERY_BOUND_S)
    writer.wait_acks(20, timeout=RESUME_BOUND_S)
    assert_nothing_lost(cluster, writer, prober)
    prober.assert_one_leader()


def test_leader_cut_off_from_both_followers(env) -> None:
    """The leader keeps its own etcd member (a minority) and its clients; the majority moves on."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, others = healthy_under_load(cluster, writer)
    old.cut_from(*others)
    try:
        new_leader_among(cluster, others)
        writer.wait_acks(20, timeout=RESUME_BOUND_S)
        assert old.leader_code() != 200
    finally:
        old.heal()
    recovered(cluster, writer, prober)


def test_one_follower_cut_off(env) -> None:
    cluster, writer, prober = env.cluster, env.writer, env.prober
    leader, (follower, _) = healthy_under_load(cluster, writer)
    follower.cut_from(*[n for n in cluster.nodes if n is not follower])
    try:
        writer.wait_acks(50, timeout=RESUME_BOUND_S)
        assert cluster.wait_leader() is leader
    finally:
        follower.heal()
    recovered(cluster, writer, prober)


def test_asymmetric_cut_leader_sends_but_cannot_receive(env) -> None:
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, others = healthy_under_load(cluster, writer)
    old.cut_from(*others, direction="input")
    try:
        new_leader_among(cluster, others)
        writer.wait_acks(20, timeout=RESUME_BOUND_S)
    finally:
        old.heal()
    recovered(cluster, writer, prober)


def test_packet_loss_and_delay_on_the_leader(env) -> None:
    """30 % of the leader's packets dropped and the rest sent 500 ms late, for 10 s: maybe a
    failover, never a lost write."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    leader, _ = healthy_under_load(cluster, writer)
    leader.drop_randomly(percent=30)
    leader.delay_output(ms=500)
    try:
        time.sleep(10)
    finally:
        leader.heal()
    recovered(cluster, writer, prober)


def test_full_etcd_outage(env) -> None:
    """Every etcd member frozen for 30 s: the leader fences at its deadline; nothing is lost and the
    cluster elects a leader again by itself afterwards (writes may stop meanwhile: safety first)."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    healthy_under_load(cluster, writer)
    frozen = [pid for n in cluster.nodes for pid in n.signal("etcd", signal.SIGSTOP)]
    try:
        assert len(frozen) == 3
        time.sleep(30)
    finally:
        for n in cluster.nodes:
            n.signal("etcd", signal.SIGCONT)
    cluster.wait_leader(RECOVERY_BOUND_S)
    recovered(cluster, writer, prober)


def test_leader_manager_frozen_beyond_the_ttl(env) -> None:
    """SIGSTOP of the leader's manager for TTL + 5 s: its PostgreSQL still runs as a primary, but
    once the followers elect a new leader it can acknowledge nothing (its synchronous standbys
    are gone), and HAProxy no longer routes to it."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, others = healthy_under_load(cluster, writer)
    assert old.signal("chef-backend-leaderl", signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        new_leader_among(cluster, others)
        writer.wait_acks(20, timeout=RESUME_BOUND_S)
        time.sleep(max(0.0, frozen_at + env.ttl + 5 - time.monotonic()))
    finally:
        old.signal("chef-backend-leaderl", signal.SIGCONT)
    recovered(cluster, writer, prober)


def test_kill_9_of_the_leader_node(env) -> None:
    """Every process of the leader's host killed; the others take over; started again, it rejoins."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, others = healthy_under_load(cluster, writer)
    old.crash()
    new_leader_among(cluster, others)
    writer.wait_acks(20, timeout=RESUME_BOUND_S)
    old.ctl("start")
    recovered(cluster, writer, prober)


def test_kill_9_of_the_leaders_manager_and_postgresql(env) -> None:
    """Issue 14, path 4: the leader's manager and PostgreSQL killed with the host alive; runit
    restarts both at once. The restarted manager finds its previous run's key (its GUID, another
    lease) while the followers may be taking it over: exactly one of them leads, nothing is lost."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, _ = healthy_under_load(cluster, writer)
    assert old.signal("chef-backend-leaderl", signal.SIGKILL)
    assert old.signal("postgres", signal.SIGKILL)
    cluster.wait_leader(RECOVERY_BOUND_S)
    writer.wait_acks(20, timeout=RESUME_BOUND_S)
    recovered(cluster, writer, prober)


def test_a_synchronous_member_frozen_when_the_leader_dies(env) -> None:
    """Issue 14, path 1: one follower's PostgreSQL frozen (SIGSTOP, every process), then the leader's
    host killed. The frozen member may hold commits acknowledged by it alone, and its manager can
    only report a failed check, which counts for nothing: the other follower must not lead on its
    own position. Thawed, the members elect a leader with every acknowledged commit."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, (frozen, other) = healthy_under_load(cluster, writer)
    pids = frozen.postgresql_pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        old.crash()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert other.leader_code() != 200, f"{other.name} led while {frozen.name}'s PostgreSQL was frozen"
            time.sleep(0.5)
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    new_leader_among(cluster, [frozen, other])
    writer.wait_acks(20, timeout=RESUME_BOUND_S)
    old.ctl("start")
    recovered(cluster, writer, prober)


def test_leader_wal_disk_full(env) -> None:
    """The filesystem of the leader's PostgreSQL (data and WAL) full: it can take no more writes,
    so it steps down to a follower with room; freed, the node rejoins as a follower."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, others = healthy_under_load(cluster, writer)
    old.fill_pg_disk()
    try:
        new_leader_among(cluster, others)
        writer.wait_acks(20, timeout=RESUME_BOUND_S)
        assert "disk is full" in (old.status_doc()["storage_full"] or "")
    finally:
        old.free_pg_disk()
    recovered(cluster, writer, prober)
