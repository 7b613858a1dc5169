"""Network faults between backend hosts (network namespaces), under load from a client host.

Checkers: every acknowledged row survives on every node; never two nodes answering 200 (a prober
on the client host asks every /leader every 100 ms); the cluster recovers by itself after the fault
heals, and writes resume while a working majority exists, each within a stated bound.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.hosts import FAULT_CONFIG, client_workload, ns_cluster, setup_network, teardown_network
from tests.integration.workload import assert_nothing_lost

pytestmark = pytest.mark.faults

RESUME_BOUND_S = 45  # writes resume within this after a cut that leaves a working majority
RECOVERY_BOUND_S = 120  # one leader and two synced followers again after the fault heals


@pytest.fixture(scope="module")
def env():
    setup_network(3)
    cluster = ns_cluster("faults", extra_config=FAULT_CONFIG)
    try:
        cluster.create()
        cluster.wait_healthy()
        with client_workload(cluster) as (writer, prober):
            yield cluster, writer, prober
    finally:
        cluster.teardown()
        teardown_network()


def test_leader_cut_off_from_both_followers(env) -> None:
    """The leader keeps its own etcd member (a minority) and its clients; the majority moves on."""
    cluster, writer, prober = env
    cluster.wait_healthy()
    writer.wait_acks(30)
    old = cluster.wait_leader()
    others = [n for n in cluster.nodes if n is not old]
    old.cut_from(*others)
    cut_at = time.monotonic()
    try:
        new = cluster.wait_for(
            lambda: (ls := [n for n in others if n.leader_code() == 200]) and ls[0], RESUME_BOUND_S, "a new leader"
        )
        writer.wait_acks(20, timeout=RESUME_BOUND_S)
        assert old.leader_code() != 200
        print(f"cut: {new.name} leads after {time.monotonic() - cut_at:.1f}s")
    finally:
        old.heal()
    cluster.wait_healthy(RECOVERY_BOUND_S)
    assert_nothing_lost(cluster, writer)
    assert prober.overlaps == [], prober.overlaps


def test_one_follower_cut_off(env) -> None:
    cluster, writer, prober = env
    cluster.wait_healthy()
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    follower.cut_from(*[n for n in cluster.nodes if n is not follower])
    try:
        writer.wait_acks(50, timeout=RESUME_BOUND_S)
        assert cluster.wait_leader() is leader
    finally:
        follower.heal()
    cluster.wait_healthy(RECOVERY_BOUND_S)
    assert_nothing_lost(cluster, writer)
    assert prober.overlaps == [], prober.overlaps


def test_asymmetric_cut_leader_sends_but_cannot_receive(env) -> None:
    cluster, writer, prober = env
    cluster.wait_healthy()
    writer.wait_acks(30)
    old = cluster.wait_leader()
    others = [n for n in cluster.nodes if n is not old]
    old.cut_from(*others, direction="input")
    try:
        cluster.wait_for(lambda: any(n.leader_code() == 200 for n in others), RESUME_BOUND_S, "a new leader")
        writer.wait_acks(20, timeout=RESUME_BOUND_S)
    finally:
        old.heal()
    cluster.wait_healthy(RECOVERY_BOUND_S)
    assert_nothing_lost(cluster, writer)
    assert prober.overlaps == [], prober.overlaps


def test_packet_loss_on_the_leader(env) -> None:
    """30 % of the leader's packets dropped for 10 s: maybe a failover, never a lost write."""
    cluster, writer, prober = env
    cluster.wait_healthy()
    leader = cluster.wait_leader()
    leader.drop_randomly(percent=30)
    try:
        time.sleep(10)
    finally:
        leader.heal()
    writer.wait_acks(20, timeout=RESUME_BOUND_S)
    cluster.wait_healthy(RECOVERY_BOUND_S)
    assert_nothing_lost(cluster, writer)
    assert prober.overlaps == [], prober.overlaps


def test_full_etcd_outage(env) -> None:
    """Every etcd member frozen for 30 s: the leader fences at its deadline; nothing is lost and the
    cluster elects a leader again by itself afterwards (writes may stop meanwhile: safety first)."""
    cluster, writer, prober = env
    cluster.wait_healthy()
    writer.wait_acks(30)
    pids = [pid for n in cluster.nodes for pid in n.processes() if _is_etcd(pid)]
    assert len(pids) == 3
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(30)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    cluster.wait_leader(RECOVERY_BOUND_S)
    writer.wait_acks(20, timeout=RECOVERY_BOUND_S)
    cluster.wait_healthy(RECOVERY_BOUND_S)
    assert_nothing_lost(cluster, writer)
    assert prober.overlaps == [], prober.overlaps


def _is_etcd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"/etcd")
    except OSError:
        return False
