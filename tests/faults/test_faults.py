"""The faults that broke other PostgreSQL HA managers, between backend hosts (network namespaces),
under load from a client host.

Checkers, after every fault: every acknowledged row (the workload's through HAProxy, and the
prober's direct writes) is on every node; never two nodes answering 200, never two nodes accepting
writes at once (the prober asks every /leader and writes on every node every 100 ms); the cluster
recovers by itself after the fault heals, and writes resume while a working majority exists, each
within a stated bound. Every fault runs twice: at the shipped defaults (TTL 30, etcd's and the
health check's default timings) and at TTL 10 with fast checks; the schedules that reach issue 14's
paths 3 and 6 run at TTL 10 only (what they guard does not depend on the TTL). The history of a run
(workload.log, prober.log, haproxy/, each node's logs) is kept in
/tmp/chef-backend-test-logs/faults-ttl<N>/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.looks import Sampler, etcd, guid_of, look_at_sync, posted_status, receiver_runs
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
    setup_network(4)  # the fourth host is for a node that joins and leaves (issue 14, path 6)
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


@pytest.mark.parametrize("direction", ["input", "output"])
def test_asymmetric_cut_of_the_leader(env, direction: str) -> None:
    """The leader hears nothing from its followers ("input"), or they hear nothing from it ("output")
    while it still hears them; the clients still reach it. Its commits wait for standbys that do not
    answer or cannot receive them; a client that gives up on one leaves the row visible there (the
    cancel hole). The leader must stop answering 200 as soon as its standbys stop receiving, so that
    no client reads such a row through HAProxy (the checkers count every row read there as
    acknowledged)."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, others = healthy_under_load(cluster, writer)
    old.cut_from(*others, direction=direction)
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
    """Every etcd member frozen for the TTL and 2 s more: the leader's lease deadline passes during the
    outage (its last renewal came before it), so it fences; nothing is lost and the cluster elects a
    leader again by itself afterwards (writes may stop meanwhile: safety first)."""
    cluster, writer, prober = env.cluster, env.writer, env.prober
    healthy_under_load(cluster, writer)
    frozen = [pid for n in cluster.nodes for pid in n.signal("etcd", signal.SIGSTOP)]
    try:
        assert len(frozen) == 3
        time.sleep(env.ttl + 2)
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
    store = etcd(cluster)
    guid = guid_of(store, other)
    pids = frozen.postgresql_pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        old.crash()
        _neither_leads([other], lambda: bool(posted_status(store, guid).get("final")), writer, cluster.password(),
                       f"while {frozen.name}'s PostgreSQL was frozen")
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


def only_at_ttl10(env: FaultEnv) -> None:
    if env.ttl != 10:
        pytest.skip("run at one TTL: the suite's time budget (what it guards does not depend on the TTL)")


def test_path3_a_receiver_held_by_a_replay_conflict_outlives_the_detachment(env) -> None:
    """Issue 14, path 3. A follower's replay is held by a lock conflict (a REPEATABLE READ
    transaction on it reads a table the leader drops; max_standby_streaming_delay = -1 there), then
    the leader's manager freezes with its PostgreSQL alive. Once the key expires the follower
    detaches, but its WAL receiver (restarted by PostgreSQL only when replay next needs WAL) keeps
    receiving and acknowledging the old leader's commits. Its posted status must never be final
    while that receiver runs (it is restarted instead), a new leader is elected, and nothing the
    old leader acknowledged through it is lost."""
    only_at_ttl10(env)
    cluster, writer, prober = env.cluster, env.writer, env.prober
    old, (held, other) = healthy_under_load(cluster, writer)
    password = cluster.password()
    store = etcd(cluster)
    guid = guid_of(store, held)
    with old.connect(password) as conn:
        conn.execute("DROP TABLE IF EXISTS replay_conflict")
        conn.execute("CREATE TABLE replay_conflict AS SELECT 1 AS id")
    with held.connect(password) as conn:
        conn.execute("ALTER SYSTEM SET max_standby_streaming_delay = -1")
        conn.execute("SELECT pg_reload_conf()")
    reader = held.connect(password)
    try:
        cluster.wait_for(lambda: reader.execute("SELECT to_regclass('replay_conflict') IS NOT NULL").fetchone()[0],
                         30, f"the table on {held.name}")
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM replay_conflict")
        with old.connect(password) as conn:
            conn.execute("DROP TABLE replay_conflict")  # its AccessExclusiveLock waits for the reader on replay
            dropped_at = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]

        def held_back() -> bool:
            with held.connect(password) as conn:
                row = conn.execute("SELECT pg_last_wal_receive_lsn() >= %s"
                                   " AND to_regclass('replay_conflict') IS NOT NULL", (dropped_at,)).fetchone()
                return bool(row and row[0])
        cluster.wait_for(held_back, 30, f"replay held back on {held.name}")

        def look() -> tuple[bool, dict, bool]:
            before = receiver_runs(held, password)
            status = posted_status(store, guid)
            return before, status, receiver_runs(held, password)

        with Sampler(look) as sampler:
            assert old.signal("chef-backend-leaderl", signal.SIGSTOP)
            frozen_at = time.monotonic()
            try:
                new_leader_among(cluster, [held, other])
                writer.wait_acks(20, timeout=RESUME_BOUND_S)
            finally:
                time.sleep(max(0.0, frozen_at + env.ttl + 5 - time.monotonic()))
                # Before the old leader re-syncs: pg_rewind would copy the setting there from a new leader.
                _reset_standby_delay(cluster, held, password)
                old.signal("chef-backend-leaderl", signal.SIGCONT)
    finally:
        reader.close()
        _reset_standby_delay(cluster, held, password)
    outlived = [s for before, s, after in sampler.seen if before and after and s.get("detached")]
    final = [s for before, s, after in sampler.seen if before and after and s.get("final")]
    assert outlived, f"{held.name}'s receiver never outlived its detachment: the schedule missed path 3"
    assert final == [], f"{held.name} posted a final position while its WAL receiver ran: {final[:3]}"
    recovered(cluster, writer, prober)


def _reset_standby_delay(cluster: Cluster, node: NsNode, password: str) -> None:
    def reset() -> bool:
        with node.connect(password) as conn:
            conn.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
            conn.execute("SELECT pg_reload_conf()")
        return True
    cluster.wait_for(reset, 60, f"{node.name} to reset max_standby_streaming_delay")


def _walreceivers(node: NsNode) -> list[int]:
    pids = []
    for pid in node.postgresql_pids():
        try:
            if b"walreceiver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


def test_path6_a_member_joins_and_one_leaves_without_the_quorum_outrunning_the_members_caught_up(env) -> None:
    """Issue 14, path 6, with a fourth host. A node joins under continuous writes: the leader's
    applied synchronous set never waits for more members than stream from it, and writes keep
    being acknowledged. Then the two original followers' WAL receivers freeze, so that commits are
    acknowledged by the newcomer alone; it is killed and removed (remove-node), and the set shrinks
    to the two followers, which lack those commits. The leader's host is killed and the followers
    thawed: they must not elect one of themselves (only the old leader holds those commits now),
    so the published set (what an election counts) must keep the removed member until one of them
    has flushed past its commits. The old leader, started again, leads; nothing is lost."""
    only_at_ttl10(env)
    cluster, writer, prober = env.cluster, env.writer, env.prober
    leader, followers = healthy_under_load(cluster, writer)
    password = cluster.password()
    store = etcd(cluster)
    originals = [guid_of(store, n) for n in followers]
    newcomer = NsNode(4, cluster.base, CONFIGS[env.ttl])
    newcomer.write_config()
    try:
        with Sampler(lambda: look_at_sync(store, leader, password), every=0.2) as joining:
            acked = len(writer.acked)
            newcomer.ctl("join-cluster", cluster.nodes[0].address, "-s", str(cluster.secrets_copy), "--yes")
            assert len(writer.acked) > acked, "no write was acknowledged while the node joined"
            cluster.nodes.append(newcomer)
            cluster.wait_healthy(RECOVERY_BOUND_S)
            writer.wait_acks(20, timeout=RESUME_BOUND_S)
        demanding = [s for s in joining.seen
                     if s.applied.quorum > sum(1 for g in s.applied.members
                                               if s.standbys.get(g, ("", 0))[0] == "streaming")]
        assert demanding == [], f"the leader waited for more standbys than streamed: {demanding[:3]}"
        assert cluster.wait_leader() is leader
        added = guid_of(store, newcomer)
        assert added in look_at_sync(store, leader, password).published.members

        frozen = [pid for node in followers for pid in _walreceivers(node)]
        assert len(frozen) == 2
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            writer.wait_acks(20, timeout=RESUME_BOUND_S)  # acknowledged by the newcomer alone
            alone = look_at_sync(store, leader, password).standbys[added][1]
            newcomer.crash()
            cluster.nodes.remove(newcomer)
            with Sampler(lambda: look_at_sync(store, leader, password), every=0.2) as shrinking:
                leader.ctl("remove-node", newcomer.name, "--yes")
                cluster.wait_for(lambda: added not in look_at_sync(store, leader, password).applied.members, 30,
                                 "the leader to apply the smaller set")
                time.sleep(3)  # a few of its ticks: time to publish it too, were that unsafe
            leader.crash()
        finally:
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        caught_up = [g for g in originals if any(s.standbys.get(g, ("", 0))[1] >= alone for s in shrinking.seen)]
        assert caught_up == [], "a frozen follower flushed past the newcomer's commits: the schedule missed path 6"
        _neither_leads(followers, lambda: all(posted_status(store, g).get("final") for g in originals),
                       writer, password)
        dropped = [s.published for s in shrinking.seen if added not in s.published.members]
        assert dropped == [], f"published without the removed member before its commits were elsewhere: {dropped[:3]}"
        leader.ctl("start")
        cluster.wait_for(lambda: added not in look_at_sync(store, cluster.wait_leader(), password).published.members,
                         RECOVERY_BOUND_S, "the smaller set published once the followers caught up")
    finally:
        if newcomer in cluster.nodes:
            cluster.nodes.remove(newcomer)
        newcomer.crash()
        shutil.copytree(newcomer.root / "var/log/chef-backend", cluster.logs / newcomer.name,
                        ignore_dangling_symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(newcomer.root, ignore_errors=True)
    recovered(cluster, writer, prober)


def _neither_leads(followers: list[NsNode], settled: Callable[[], bool], writer: Writer, password: str,
                   when: str = "without the commits only the removed member and the old leader held") -> None:
    """No follower answers 200 until `settled` (they report final positions) and 5 s beyond, past
    the tie grace: a follower that may lead does by then."""
    deadline, watch_until = time.monotonic() + 30, None
    while watch_until is None or time.monotonic() < watch_until:
        for node in followers:
            if node.leader_code() == 200:
                with node.connect(password) as conn:
                    lost = writer.missing_on(conn)
                raise AssertionError(f"{node.name} led {when}: {len(lost)} acknowledged rows missing there")
        if watch_until is None and settled():
            watch_until = time.monotonic() + 5
        assert time.monotonic() < deadline, "the followers did not both report final positions"
        time.sleep(0.2)
