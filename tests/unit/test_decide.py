"""Table tests of the failover decision (chef_backend.leader.decide)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chef_backend.leader.decide import TIE_GRACE_SECONDS, decide, desired_sync_set
from chef_backend.leader.state import (
    REFUSED,
    Action,
    Cause,
    Kind,
    LeaderKey,
    Observation,
    Peer,
    PgState,
    Position,
    Role,
    SyncSet,
)

A, B, C = "a" * 32, "b" * 32, "c" * 32
ADDR = {A: "10.0.0.1", B: "10.0.0.2", C: "10.0.0.3"}


def standby(lsn: int = 100, tl: int = 1, upstream: str | None = None) -> PgState:
    return PgState(running=True, in_recovery=True, position=Position(tl, lsn), upstream=upstream,
                   streaming=upstream is not None)


def primary(lsn: int = 100, tl: int = 1, standbys: tuple[str, ...] = ()) -> PgState:
    return PgState(running=True, in_recovery=False, position=Position(tl, lsn), standbys=standbys)


def peer(guid: str, lsn: int = 100, tl: int = 1, eligible: bool = True, detached: bool = True,
         fresh: bool = True, final: bool | None = None) -> Peer:
    """A peer's report; a detached one is final unless told otherwise."""
    return Peer(guid, ADDR[guid], "waiting_for_leader", eligible, Position(tl, lsn), detached, fresh,
                final=detached if final is None else final)


def obs(**kw: object) -> Observation:
    if "detached" in kw:  # shorthand: detached, or following whoever the leader key names
        detached = kw.pop("detached")
        leader = kw.get("leader")
        kw["following"] = None if detached else (leader.address if leader else ADDR[C])
    base = Observation(
        me=A, etcd_ok=True, lease_ok=True, leader=None, pg=standby(), ineligible=(), unhealthy=(),
        members=(A, B, C), peers={}, sync=SyncSet((A, B), 1), synchronous=True, last_leader=C,
        failover_enabled=True, was_leader=False, leaderless_seconds=10.0, following=None, final=True,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def kinds(decision) -> list[Kind]:
    return [a.kind for a in decision.actions]


# --- bootstrap and the leader's own path -------------------------------------------------------------

def test_bootstrap_single_node_takes_leadership() -> None:
    d = decide(obs(members=(A,), sync=SyncSet(), last_leader=None))
    assert kinds(d) == [Kind.ACQUIRE] and d.role is Role.PROMOTING and not d.ready


def test_bootstrap_starts_postgresql_detached_first() -> None:
    d = decide(obs(members=(A,), sync=SyncSet(), last_leader=None, pg=PgState(running=False), detached=False))
    assert kinds(d) == [Kind.FOLLOW, Kind.START_PG] and d.actions[0].target is None


def test_key_holder_in_recovery_promotes_with_the_published_sync_set() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A])))
    assert kinds(d) == [Kind.CLAIM, Kind.PROMOTE] and d.role is Role.PROMOTING and not d.ready
    assert d.actions[1].sync == SyncSet((A, B), 1)


def test_key_holder_still_streaming_detaches_before_promoting() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), detached=False))
    assert kinds(d) == [Kind.FOLLOW, Kind.CLAIM, Kind.PROMOTE] and d.actions[0].target is None


def test_healthy_primary_leader_is_ready() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B, C)), sync=SyncSet((B, C), 1),
                   applied_sync=SyncSet((B, C), 1)))
    assert d.ready and d.role is Role.LEADER and d.actions == ()


def test_leader_applies_the_published_set_when_postgresql_has_another() -> None:
    # A transition published the union; PostgreSQL must end up with the same set, or a member
    # left out of synchronous_standby_names could be the only one still up.
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B, C)), sync=SyncSet((B, C), 1),
                   applied_sync=SyncSet((B,), 1)))
    assert d.actions == (Action(Kind.SET_SYNC, sync=SyncSet((B, C), 1)),)


def test_leader_publishes_new_sync_member_once_it_streams() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B, C)), sync=SyncSet((B,), 1)))
    assert d.ready
    assert d.actions == (Action(Kind.SET_SYNC, sync=SyncSet((B, C), 1)),)


def test_required_active_followers_keeps_new_leader_at_503() -> None:
    o = obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B,)), sync=SyncSet((B, C), 1))
    assert not decide(o, required_active_followers=2).ready
    assert decide(o, required_active_followers=1).ready


def test_unhealthy_leader_steps_down_and_fences() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(), unhealthy=("disk full",)))
    assert kinds(d) == [Kind.RELEASE, Kind.FENCE] and not d.ready


def test_leader_whose_storage_is_full_steps_down_when_a_follower_can_lead() -> None:
    full = "PostgreSQL's WAL disk is full (0 MB free)"
    base = obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B, C)), sync=SyncSet((B, C), 1),
               applied_sync=SyncSet((B, C), 1), storage_full=full)
    d = decide(replace(base, peers={B: peer(B), C: peer(C, eligible=False)}))
    assert kinds(d) == [Kind.RELEASE, Kind.FENCE] and not d.ready and full in d.reason
    # Nobody else could take writes either: stay (reads keep working).
    d = decide(replace(base, peers={B: peer(B, eligible=False), C: replace(peer(C), storage_full=True)}))
    assert d.ready and d.role is Role.LEADER


def test_node_whose_storage_is_full_defers_to_a_node_with_room() -> None:
    full = "PostgreSQL's data disk is full (3 MB free)"
    d = decide(obs(storage_full=full, peers={B: peer(B), C: peer(C)}))
    assert kinds(d) == [] and full in d.reason


def test_when_every_node_is_full_the_most_advanced_still_leads() -> None:
    full = "PostgreSQL's data disk is full (20 MB free)"
    peers = {B: replace(peer(B, lsn=90), storage_full=True), C: replace(peer(C, lsn=90), storage_full=True)}
    d = decide(obs(storage_full=full, peers=peers, sync=SyncSet((A, B), 1)))
    assert kinds(d) == [Kind.ACQUIRE]


def test_a_node_with_room_is_not_held_back_by_a_full_ex_leaders_unacknowledged_wal() -> None:
    # C led, its disk filled, it stepped down with WAL its standbys never confirmed (so never
    # acknowledged); A and B (the synchronous set) hold every acknowledged commit.
    peers = {B: peer(B, lsn=100), C: replace(peer(C, lsn=150), storage_full=True)}
    d = decide(obs(peers=peers, sync=SyncSet((A, B), 1), last_leader=C))
    assert kinds(d) == [Kind.ACQUIRE]


def test_an_ineligible_synchronous_member_ahead_still_holds_the_election_back() -> None:
    # B may hold commits acknowledged by it alone: safety first, even though B cannot lead.
    peers = {B: peer(B, lsn=150, eligible=False)}
    d = decide(obs(peers=peers, sync=SyncSet((A, B), 1)))
    assert kinds(d) == [] and "behind" in d.reason


def test_leader_whose_postgres_died_restarts_it_without_answering_200() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=PgState(running=False)))
    assert kinds(d) == [Kind.START_PG] and not d.ready


# --- losing etcd, leases ------------------------------------------------------------------------------

def test_leader_that_loses_etcd_keeps_leading_until_its_deadline() -> None:
    d = decide(obs(etcd_ok=False, pg=primary(standbys=(B,)), sync=SyncSet((B, C), 1), leader=None))
    assert d.ready and d.actions == ()


def test_leader_that_loses_etcd_fences_after_its_deadline() -> None:
    d = decide(obs(etcd_ok=False, lease_ok=False, pg=primary()))
    assert kinds(d) == [Kind.FENCE] and not d.ready


def test_key_holder_whose_lease_lapsed_fences() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), lease_ok=False, pg=primary()))
    assert kinds(d) == [Kind.FENCE] and not d.ready


def test_follower_without_etcd_keeps_streaming() -> None:
    d = decide(obs(etcd_ok=False, pg=standby(upstream=ADDR[B])))
    assert d.actions == () and not d.ready


def test_lease_outliving_ttl_never_lets_a_follower_promote() -> None:
    # The dead leader's key is still there (etcd extended the lease): followers keep following.
    d = decide(obs(leader=LeaderKey(B, ADDR[B]), pg=standby(upstream=None), detached=False))
    assert d.actions == () and d.role is Role.FOLLOWER and not d.ready


def test_primary_without_key_that_may_not_lead_is_fenced() -> None:
    d = decide(obs(pg=primary(), last_leader=B, sync=SyncSet((B, C), 1)))
    assert kinds(d) == [Kind.FENCE]


# --- followers --------------------------------------------------------------------------------------

def test_follower_repoints_to_new_leader() -> None:
    d = decide(obs(leader=LeaderKey(C, ADDR[C]), pg=standby(upstream=ADDR[B]), following=ADDR[B]))
    assert d.actions == (Action(Kind.FOLLOW, ADDR[C]),)


def test_detached_follower_reattaches_when_a_leader_appears() -> None:
    d = decide(obs(leader=LeaderKey(C, ADDR[C]), pg=standby(upstream=None), detached=True))
    assert d.actions == (Action(Kind.FOLLOW, ADDR[C]),)


def test_stopped_follower_starts_following_the_leader() -> None:
    d = decide(obs(leader=LeaderKey(C, ADDR[C]), pg=PgState(running=False)))
    assert kinds(d) == [Kind.FOLLOW, Kind.START_PG] and d.actions[0].target == ADDR[C]


@pytest.mark.parametrize("pg", [primary(), standby()])
def test_node_back_with_possibly_diverged_data_rejoins(pg: PgState) -> None:
    d = decide(obs(leader=LeaderKey(C, ADDR[C]), pg=pg, was_leader=True))
    assert d.actions == (Action(Kind.REJOIN, ADDR[C]),) and not d.ready


def test_primary_seeing_another_leader_rejoins_even_without_marker() -> None:
    d = decide(obs(leader=LeaderKey(C, ADDR[C]), pg=primary()))
    assert kinds(d) == [Kind.REJOIN]


# --- elections ----------------------------------------------------------------------------------------

def test_leaderless_follower_detaches_before_anything_else() -> None:
    d = decide(obs(detached=False, pg=standby(upstream=ADDR[C]), peers={B: peer(B)}))
    assert d.actions == (Action(Kind.FOLLOW, None),) and d.role is Role.WAITING


def test_most_advanced_sync_member_takes_over() -> None:
    d = decide(obs(pg=standby(lsn=200), peers={B: peer(B, lsn=150)}))
    assert kinds(d) == [Kind.ACQUIRE]


def test_follower_behind_another_does_not_take_over() -> None:
    d = decide(obs(pg=standby(lsn=150), peers={B: peer(B, lsn=200)}))
    assert d.actions == () and "behind" in d.reason


def test_follower_behind_an_ineligible_node_still_does_not_take_over() -> None:
    # The ineligible node may hold commits acknowledged only by it: waiting is the safe choice.
    d = decide(obs(pg=standby(lsn=150), peers={B: peer(B, lsn=200, eligible=False)}))
    assert d.actions == () and "behind" in d.reason


def test_later_timeline_wins_over_larger_lsn() -> None:
    d = decide(obs(pg=standby(lsn=100, tl=3), peers={B: peer(B, lsn=900, tl=2)}))
    assert kinds(d) == [Kind.ACQUIRE]


def test_sync_member_down_blocks_election_until_it_reports() -> None:
    # ANY 1 of (A, B): a commit may be on B only; A must hear from B first.
    d = decide(obs(peers={}))
    assert d.actions == () and "waiting for 2 of the synchronous set" in d.reason


def test_position_that_can_still_grow_does_not_count() -> None:
    d = decide(obs(peers={B: peer(B, detached=False)}))
    assert d.actions == () and "waiting for 2" in d.reason


def test_stale_report_does_not_count() -> None:
    d = decide(obs(peers={B: peer(B, fresh=False)}))
    assert d.actions == () and "waiting for 2" in d.reason


def test_node_outside_sync_set_never_takes_over() -> None:
    d = decide(obs(me=C, sync=SyncSet((A, B), 1), last_leader=None, peers={A: peer(A), B: peer(B)}))
    assert d.actions == () and "not in the synchronous set" in d.reason


def test_without_confirmed_sync_standby_only_last_leader_may_lead() -> None:
    d = decide(obs(sync=SyncSet(), last_leader=B, peers={B: peer(B)}))
    assert d.actions == () and "only the last leader" in d.reason
    d = decide(obs(sync=SyncSet(), last_leader=A, peers={B: peer(B)}))
    assert kinds(d) == [Kind.ACQUIRE]


def test_the_last_leader_without_a_confirmed_set_defers_to_no_older_tail() -> None:
    # Found by the simulation (seed 16291): B, an older leader re-promoted on a timeline whose number
    # A's takeover also chose, reported more WAL on it than A, the last leader, had; A deferred to
    # B, which may not lead: no leader ever again.
    d = decide(obs(me=A, sync=SyncSet(), last_leader=A, pg=standby(lsn=100, tl=3), peers={B: peer(B, lsn=120, tl=3)}))
    assert kinds(d) == [Kind.ACQUIRE]
    # At a bootstrap (no last leader) everyone may lead, so everyone compares.
    d = decide(obs(me=A, sync=SyncSet(), last_leader=None, pg=standby(lsn=100), peers={B: peer(B, lsn=120)}))
    assert d.actions == () and "behind" in d.reason


def test_two_candidates_at_once_defer_by_guid_during_grace() -> None:
    o = obs(last_leader=C, peers={B: peer(B)}, leaderless_seconds=0.5)
    assert kinds(decide(o)) == [Kind.ACQUIRE]  # A < B: A goes first
    o_b = obs(me=B, last_leader=C, peers={A: peer(A)}, leaderless_seconds=0.5)
    assert decide(o_b).actions == () and "deferring" in decide(o_b).reason


def test_two_candidates_both_race_after_grace_and_the_transaction_decides() -> None:
    o_b = obs(me=B, last_leader=C, peers={A: peer(A)}, leaderless_seconds=TIE_GRACE_SECONDS + 1)
    assert kinds(decide(o_b)) == [Kind.ACQUIRE]


def test_all_nodes_restarting_prefer_the_last_leader() -> None:
    # After a full restart everyone is equal; the last leader goes first, the others wait for it.
    sync = SyncSet((B, C), 1)
    last = obs(me=A, last_leader=A, sync=sync, peers={B: peer(B), C: peer(C)}, leaderless_seconds=0.5)
    assert kinds(decide(last)) == [Kind.ACQUIRE]
    other = obs(me=B, last_leader=A, sync=sync, peers={A: peer(A), C: peer(C)}, leaderless_seconds=0.5)
    assert decide(other).actions == () and "deferring" in decide(other).reason


def test_last_leader_alone_after_restart_may_lead_without_sync_reports() -> None:
    d = decide(obs(me=A, last_leader=A, sync=SyncSet((B, C), 1), peers={}))
    assert kinds(d) == [Kind.ACQUIRE]


def test_restart_with_last_leader_gone_needs_both_sync_members() -> None:
    sync = SyncSet((B, C), 1)
    d = decide(obs(me=B, last_leader=A, sync=sync, peers={}))
    assert d.actions == () and "waiting for 2" in d.reason
    d = decide(obs(me=B, last_leader=A, sync=sync, peers={C: peer(C, lsn=90)}, pg=standby(lsn=100)))
    assert kinds(d) == [Kind.ACQUIRE]


def test_ineligible_node_does_not_run() -> None:
    d = decide(obs(ineligible=("unsynced: re-sync failed",), peers={B: peer(B)}))
    assert d.actions == () and "unsynced" in d.reason


def test_failover_disabled_blocks_all_but_last_leader() -> None:
    d = decide(obs(failover_enabled=False, peers={B: peer(B)}))
    assert d.actions == () and "disabled" in d.reason
    d = decide(obs(failover_enabled=False, last_leader=A, peers={B: peer(B)}))
    assert kinds(d) == [Kind.ACQUIRE]


def test_async_mode_needs_a_majority_and_ignores_ineligible_positions() -> None:
    base = obs(synchronous=False, sync=SyncSet())
    assert "majority" in decide(base).reason
    d = decide(replace(base, peers={B: peer(B, lsn=500, eligible=False)}))
    assert kinds(d) == [Kind.ACQUIRE]


# --- synchronous set ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("members", "standbys", "published", "expected"),
    [
        ((A, B, C), (), SyncSet(), SyncSet()),
        ((A, B, C), (B,), SyncSet(), SyncSet((B,), 1)),
        ((A, B, C), (B, C), SyncSet((B,), 1), SyncSet((B, C), 1)),
        # a member that stops streaming stays in the set (it may hold acknowledged commits)
        ((A, B, C), (C,), SyncSet((B, C), 1), SyncSet((B, C), 1)),
        # a removed member leaves it
        ((A, C), (C,), SyncSet((B, C), 1), SyncSet((C,), 1)),
        # five nodes: ANY 2 of 4
        ((A, B, C, "d" * 32, "e" * 32), (B, C, "d" * 32, "e" * 32), SyncSet(),
         SyncSet((B, C, "d" * 32, "e" * 32), 2)),
    ],
)
def test_desired_sync_set(members, standbys, published, expected) -> None:
    o = obs(members=members, pg=primary(standbys=standbys), sync=published, leader=LeaderKey(A, ADDR[A]))
    assert desired_sync_set(o) == expected


def test_async_mode_has_no_sync_set() -> None:
    o = obs(synchronous=False, pg=primary(standbys=(B, C)), leader=LeaderKey(A, ADDR[A]))
    assert desired_sync_set(o) == SyncSet()


# --- readiness and failing over before the lease expires ------------------------------------------

def test_leader_whose_sync_standbys_all_went_quiet_answers_503() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=()), sync=SyncSet((B, C), 1)))
    assert not d.ready and "synchronous standbys stream" in d.reason
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(C,)), sync=SyncSet((B, C), 1)))
    assert d.ready


def test_a_just_promoted_leader_serves_once_a_quorum_holds_what_it_had_at_promotion() -> None:
    # Found by the simulation's reads (seeds 1090, 1022 among 15): a leader answering 200 right after
    # its promotion showed clients the old leader's last commit, which only it had received (or its
    # own unacknowledged tail), and died before any standby had it: the next leader did not.
    def promoted(flushed: tuple[tuple[str, int], ...]) -> Observation:
        pg = PgState(running=True, in_recovery=False, position=Position(2, 120), standbys=(B, C), flushed=flushed)
        return obs(leader=LeaderKey(A, ADDR[A]), pg=pg, sync=SyncSet((B, C), 1), applied_sync=SyncSet((B, C), 1),
                   promoted_from=110)
    d = decide(promoted(((B, 100), (C, 109))))
    assert not d.ready and "everything it had" in d.reason
    assert decide(promoted(((B, 100), (C, 110)))).ready
    assert not decide(replace(promoted(((B, 110),)), sync=SyncSet((B, C), 2), applied_sync=SyncSet((B, C), 2))).ready


def test_single_node_leader_needs_no_standby() -> None:
    d = decide(obs(members=(A,), leader=LeaderKey(A, ADDR[A]), pg=primary(), sync=SyncSet()))
    assert d.ready


def test_new_leader_holds_503_until_the_old_one_is_fenced() -> None:
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B,)), sync=SyncSet((B, C), 1),
                   hold_ready=True))
    assert not d.ready and "old leader" in d.reason


DEAD = LeaderKey(C, ADDR[C], mod_revision=42, lease=7)


def test_suspected_leader_is_taken_over_once_the_sync_set_detached() -> None:
    d = decide(obs(leader=DEAD, leader_suspected=True, peers={B: peer(B), C: peer(C, lsn=999, detached=False)},
                   sync_revision=17))
    # Guarded by every report it counted and by the synchronous set it counted them against.
    assert d.actions == (Action(Kind.TAKEOVER, leader=DEAD, guards=((B, 0),), position=Position(1, 100),
                                sync_revision=17),)
    assert not d.ready


def test_a_leaderless_cluster_is_acquired_against_the_synchronous_set_it_counted() -> None:
    d = decide(obs(leader=None, peers={B: peer(B)}, sync_revision=5))
    assert [(a.kind, a.sync_revision) for a in d.actions] == [(Kind.ACQUIRE, 5)]


def test_suspected_leader_makes_followers_detach_first() -> None:
    d = decide(obs(leader=DEAD, leader_suspected=True, detached=False, pg=standby(upstream=None)))
    assert d.actions == (Action(Kind.FOLLOW, None),)


def test_no_takeover_while_a_sync_member_still_streams_from_the_old_leader() -> None:
    d = decide(obs(leader=DEAD, leader_suspected=True, peers={B: peer(B, detached=False)}))
    assert d.actions == () and "waiting for 2" in d.reason


def test_no_takeover_from_behind() -> None:
    d = decide(obs(leader=DEAD, leader_suspected=True, pg=standby(lsn=100), peers={B: peer(B, lsn=101)}))
    assert d.actions == () and "behind" in d.reason


def test_async_mode_never_takes_over_before_the_lease_expires() -> None:
    d = decide(obs(leader=DEAD, leader_suspected=True, synchronous=False, sync=SyncSet(),
                   pg=standby(upstream=None), detached=True, peers={B: peer(B)}))
    assert kinds(d) == [Kind.FOLLOW] and d.actions[0].target == ADDR[C]


def test_a_silent_leader_is_left_at_once_and_not_followed_again_while_silent() -> None:
    d = decide(obs(leader=DEAD, leader_silent=True, detached=False, pg=standby(upstream=None)))
    assert d.actions == (Action(Kind.FOLLOW, None),) and d.role is Role.FOLLOWER
    d = decide(obs(leader=DEAD, leader_silent=True, detached=True, pg=standby(upstream=None)))
    assert d.actions == () and "silent" in d.reason
    # Asynchronous mode has no early takeover, so nothing to detach for.
    d = decide(obs(leader=DEAD, leader_silent=True, synchronous=False, sync=SyncSet(), detached=True,
                   pg=standby(upstream=None)))
    assert d.actions == (Action(Kind.FOLLOW, ADDR[C]),)


def test_unsuspected_leader_is_followed_again_after_a_false_alarm() -> None:
    d = decide(obs(leader=DEAD, leader_suspected=False, detached=True, pg=standby(upstream=None)))
    assert d.actions == (Action(Kind.FOLLOW, ADDR[C]),)


# --- operator control ---------------------------------------------------------------------------------

def test_switchover_source_hands_the_key_to_an_eligible_heir() -> None:
    from chef_backend.leader.state import Switchover

    heir = replace(peer(B), lease=99)
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B, C)), sync=SyncSet((B, C), 1),
                   switchover=Switchover(A, B), peers={B: heir}))
    assert d.actions == (Action(Kind.HANDOVER, leader=LeaderKey(B, ADDR[B], lease=99)),) and not d.ready


def test_switchover_to_an_ineligible_node_is_refused() -> None:
    from chef_backend.leader.state import Switchover

    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B,)), sync=SyncSet((B, C), 1),
                   switchover=Switchover(A, B), peers={B: replace(peer(B, eligible=False), lease=9)}))
    assert kinds(d) == [Kind.END_SWITCHOVER] and d.actions[0].target == REFUSED  # the command tells why


def test_switchover_to_a_follower_not_streaming_now_is_refused() -> None:
    """Its status and lease can outlive it (a member killed a few seconds ago still looks eligible)."""
    from chef_backend.leader.state import Switchover

    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(C,)), sync=SyncSet((B, C), 1),
                   switchover=Switchover(A, B), peers={B: replace(peer(B), lease=99)}))
    assert kinds(d) == [Kind.END_SWITCHOVER] and d.actions[0].target == REFUSED and "not streaming" in d.reason


@pytest.mark.parametrize("pg", [PgState(running=False), standby()])
def test_old_leader_waits_for_its_heir_to_promote_before_re_syncing(pg: PgState) -> None:
    """Seed 1585: the heir died after the handover; re-syncing from it (a rewind that failed, then a base
    backup of its shorter WAL) replaced the only complete copy — the last leader's — of every commit."""
    handed = LeaderKey(B, ADDR[B], lease=99, handover=Position(1, 500))
    d = decide(obs(leader=handed, pg=pg, was_leader=True))
    assert d.actions == () and "to promote" in d.reason
    claimed = replace(handed, fork=Position(1, 500))
    assert decide(obs(leader=claimed, pg=pg, was_leader=True)).actions == (Action(Kind.REJOIN, ADDR[B]),)


def test_an_old_leader_still_primary_while_its_heir_promotes_is_fenced() -> None:
    """Rule 1 holds while waiting for the heir too: a primary without the key is stopped."""
    handed = LeaderKey(B, ADDR[B], lease=99, handover=Position(1, 500))
    d = decide(obs(leader=handed, pg=primary(), was_leader=True))
    assert kinds(d) == [Kind.FENCE] and "to promote" in d.reason


def test_heir_promotes_only_from_the_handover_position() -> None:
    ok = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=standby(lsn=500), handover_position=Position(1, 500)))
    # Path 5 of issue 14: the heir records itself as the last leader before it promotes.
    assert kinds(ok) == [Kind.CLAIM, Kind.PROMOTE] and ok.actions[0].target == "history"
    again = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=standby(lsn=500), handover_position=Position(1, 500),
                       last_leader=A))
    assert kinds(again) == [Kind.CLAIM, Kind.PROMOTE] and again.actions[0].target is None
    short = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=standby(lsn=400), handover_position=Position(1, 500)))
    assert kinds(short) == [Kind.RELEASE, Kind.END_SWITCHOVER] and short.actions[1].target == REFUSED


def test_heir_closes_the_switchover_once_ready() -> None:
    from chef_backend.leader.state import Switchover

    d = decide(obs(leader=LeaderKey(A, ADDR[A]), pg=primary(standbys=(B,)), sync=SyncSet((B, C), 1),
                   applied_sync=SyncSet((B, C), 1), switchover=Switchover(C, A)))
    assert d.ready and kinds(d) == [Kind.END_SWITCHOVER] and d.actions[0].target is None  # done, not refused


def test_others_do_not_race_during_a_switchover() -> None:
    from chef_backend.leader.state import Switchover

    d = decide(obs(switchover=Switchover(C, B), peers={B: peer(B)}))
    assert d.actions == () and "switchover to" in d.reason


def test_force_leader_skips_the_report_quorum_but_not_basic_health() -> None:
    d = decide(obs(force_leader=True, peers={}))
    assert kinds(d) == [Kind.ACQUIRE]
    d = decide(obs(force_leader=True, ineligible=("unsynced: x",)))
    assert d.actions == ()


# --- issue 14's paths, one table row each ------------------------------------------------------------------

def test_path1_a_report_whose_position_is_not_final_does_not_count() -> None:
    # A member whose PostgreSQL is down, starting, frozen, or replaying from a restartpoint posts
    # detached but not final: its 0/0 (or climbing) position must not elect anyone.
    d = decide(obs(leader=None, peers={B: peer(B, lsn=0, final=False)}, sync=SyncSet((A, B, C), 1)))
    assert kinds(d) == [] and "waiting for 3 of the synchronous set" in d.reason


def test_path1_own_position_must_be_final_before_candidacy() -> None:
    d = decide(obs(leader=None, peers={B: peer(B)}, final=False))
    assert kinds(d) == [] and "own position" in d.reason


def test_path2_takeover_is_conditioned_on_every_report_it_counted() -> None:
    p = replace(peer(B), mod_revision=42)
    d = decide(obs(leader=DEAD, leader_suspected=True, peers={B: p}))
    assert d.actions[0].kind is Kind.TAKEOVER and d.actions[0].guards == ((B, 42),)
    d = decide(obs(leader=None, peers={B: p}))
    assert d.actions[0].kind is Kind.ACQUIRE and d.actions[0].guards == ((B, 42),)


def test_path4_our_guid_under_another_lease_is_not_our_key() -> None:
    # A restarted manager finds its previous run's key: it must win it back by a transaction (the
    # followers may be taking it over) before it promotes anything.
    stale = LeaderKey(A, ADDR[A], mod_revision=9, lease=111)
    d = decide(obs(leader=stale, lease=222, last_leader=A, peers={B: peer(B)}))
    assert kinds(d) == [Kind.TAKEOVER] and d.actions[0].leader == stale
    mine = decide(obs(leader=replace(stale, lease=222), lease=222))
    assert kinds(mine) == [Kind.CLAIM, Kind.PROMOTE]


def test_path8_a_follower_past_the_new_leaders_fork_rejoins() -> None:
    leader = LeaderKey(C, ADDR[C], fork=Position(1, 100))
    stuck = decide(obs(leader=leader, pg=standby(lsn=150), following=ADDR[C], stream_stuck=True))
    assert kinds(stuck) == [Kind.REJOIN]
    behind = decide(obs(leader=leader, pg=standby(lsn=90), following=ADDR[C], stream_stuck=True))
    assert kinds(behind) == []
    streaming = decide(obs(leader=leader, pg=standby(lsn=150), following=ADDR[C], stream_stuck=False))
    assert kinds(streaming) == []


def test_path0_a_leader_without_etcd_needs_its_own_synchronous_standbys_to_stream() -> None:
    d = decide(obs(etcd_ok=False, pg=primary(standbys=()), applied_sync=SyncSet((B, C), 1), sync=SyncSet()))
    assert not d.ready and "synchronous standbys" in d.reason
    d = decide(obs(etcd_ok=False, pg=primary(standbys=(B,)), applied_sync=SyncSet((B, C), 1), sync=SyncSet()))
    assert d.ready


def test_path7_a_leader_cut_off_from_etcd_and_its_standbys_fences_at_once() -> None:
    d = decide(obs(etcd_ok=False, pg=primary(standbys=()), applied_sync=SyncSet((B, C), 1), sync=SyncSet()))
    assert kinds(d) == [Kind.FENCE]


@pytest.mark.parametrize("etcd_ok", [False, True])
def test_a_fenced_leader_starts_postgresql_only_once_the_frontends_stopped_routing_to_it(etcd_ok: bool) -> None:
    # Found by the simulation (seed 43, its reads): fenced at once without etcd and standbys (path 7),
    # the old leader started PostgreSQL read-only at its next tick, while a frontend's HAProxy,
    # whose last check had seen 200, still opened sessions to it: they read the commits that were
    # waiting for the standbys at the fence, and the next leader promoted without them.
    down = PgState(running=False)
    d = decide(obs(etcd_ok=etcd_ok, leader=None, pg=down, detached=True, routed=True))
    assert kinds(d) == [] and "frontends" in d.reason and not d.ready
    assert kinds(decide(obs(etcd_ok=etcd_ok, leader=None, pg=down, detached=True))) == [Kind.START_PG]


def test_a_leader_or_follower_whose_postgresql_stopped_starts_it_only_once_the_frontends_moved() -> None:
    # Found by the simulation (seed 6898): the leader's PostgreSQL crashed while commits waited for its
    # stalled standbys; its manager started it again at once, it replayed them, and clients whose
    # HAProxy had last seen 200 read them there; the node died and the next leader lacked them.
    down = PgState(running=False)
    for key in (LeaderKey(A, ADDR[A]), LeaderKey(B, ADDR[B])):
        d = decide(obs(leader=key, pg=down, routed=True))
        assert Kind.START_PG not in kinds(d) and "frontends" in d.reason and not d.ready
        assert Kind.START_PG in kinds(decide(obs(leader=key, pg=down)))


def test_path2_a_key_holder_claims_its_key_before_promoting() -> None:
    # A leader that fenced itself (cut off from etcd and its standbys) and comes back while its
    # followers take over must not promote as well: the claim changes the key's revision first.
    d = decide(obs(leader=LeaderKey(A, ADDR[A]), last_leader=A))
    assert kinds(d) == [Kind.CLAIM, Kind.PROMOTE] and d.actions[0].target is None


def test_a_node_outside_the_set_that_was_not_the_last_leader_holds_no_election_back() -> None:
    # Found by the simulation (seed 136): an old leader's unacknowledged tail made everyone defer
    # to a node that may never lead, forever.
    d = decide(obs(leader=None, sync=SyncSet((A, B), 1), last_leader=B, peers={B: peer(B), C: peer(C, lsn=999)}))
    assert kinds(d) == [Kind.ACQUIRE]
    d = decide(obs(leader=None, sync=SyncSet((A, B), 1), last_leader=C, peers={B: peer(B), C: peer(C, lsn=999)}))
    assert kinds(d) == [] and "behind" in d.reason


def test_path8_a_follower_stuck_on_an_older_timeline_than_the_leaders_rejoins() -> None:
    # Found by the simulation (seeds 437, 441, 453): WAL received on a timeline the leader's
    # history does not contain.
    leader = LeaderKey(C, ADDR[C], fork=Position(5, 900))
    report = replace(peer(C, lsn=1000, tl=6), role="leader")
    d = decide(obs(leader=leader, pg=standby(lsn=300, tl=3), following=ADDR[C], stream_stuck=True, peers={C: report}))
    assert kinds(d) == [Kind.REJOIN]


def test_path8_a_follower_on_another_timeline_of_the_same_number_rejoins() -> None:
    # Found by the simulation (seed 782): two nodes promoted from timeline 3 at different points
    # without hearing of each other, and both called theirs 4. A follower of the first, stuck
    # behind the second, compares where its timeline began with the leader's fork. pg_rewind would
    # see two clusters "on the same timeline" and do nothing: a base backup.
    leader = LeaderKey(C, ADDR[C], fork=Position(3, 474))
    other = replace(standby(lsn=480, tl=4), timeline_start=475)
    assert kinds(decide(obs(leader=leader, pg=other, following=ADDR[C], stream_stuck=True))) == [Kind.REBUILD]
    same = replace(standby(lsn=480, tl=4), timeline_start=474)
    assert kinds(decide(obs(leader=leader, pg=same, following=ADDR[C], stream_stuck=True,
                            streamed_from_leader=True))) == []
    unknown = replace(standby(lsn=480, tl=4), timeline_start=None)
    assert kinds(decide(obs(leader=leader, pg=unknown, following=ADDR[C], stream_stuck=True,
                            streamed_from_leader=True))) == []


def test_path8_a_follower_on_another_timeline_of_the_same_number_and_switch_point_rebuilds() -> None:
    # Found by the simulation (seed 2813): n1 and, later, n3 both promoted from 2/277 and both
    # called their timeline 3; n4 had received n1's timeline 3 before n1 lost power. Its timeline
    # number and switch point are the leader's: only that it never streamed from this leader tells.
    leader = LeaderKey(C, ADDR[C], fork=Position(2, 277))
    other = replace(standby(lsn=305, tl=3), timeline_start=277)
    d = decide(obs(leader=leader, pg=other, following=ADDR[C], stream_stuck=True))
    assert d.actions == (Action(Kind.REBUILD, ADDR[C]),) and not d.ready
    # The leader's own timeline, streamed from it before: a stream that stopped is no divergence.
    assert kinds(decide(obs(leader=leader, pg=other, following=ADDR[C], stream_stuck=True,
                            streamed_from_leader=True))) == []
    # Still on the fork's timeline, not past the fork: merely behind.
    behind = replace(standby(lsn=270, tl=2), timeline_start=100)
    assert kinds(decide(obs(leader=leader, pg=behind, following=ADDR[C], stream_stuck=True))) == []
    # Not stuck (yet): nothing.
    assert kinds(decide(obs(leader=leader, pg=other, following=ADDR[C], stream_stuck=False))) == []


def test_path8_a_former_leader_past_the_new_leaders_fork_rebuilds() -> None:
    # Its own timeline (3, begun at 2/277) may carry the number the new leader's got from the same
    # fork: pg_rewind would find "the same timeline" and leave the diverged WAL in place.
    fork = LeaderKey(C, ADDR[C], fork=Position(2, 277))
    d = decide(obs(leader=fork, pg=primary(lsn=305, tl=3)))
    assert d.actions == (Action(Kind.REBUILD, ADDR[C]),)
    # The new leader forked from our timeline: its own is a later number, pg_rewind finds the fork.
    later = LeaderKey(C, ADDR[C], fork=Position(3, 290))
    assert kinds(decide(obs(leader=later, pg=primary(lsn=305, tl=3)))) == [Kind.REJOIN]


# --- why leadership moves: the typed cause /metrics counts ----------------------------------------------

def _cause_cases() -> list[tuple[str, Observation, Cause]]:
    from chef_backend.leader.state import Switchover

    lead = LeaderKey(A, ADDR[A])
    return [
        ("takeover of a dead leader", obs(leader=DEAD, leader_suspected=True, peers={B: peer(B)}), Cause.LEADER_DEAD),
        ("no leader at all", obs(pg=standby(lsn=200), peers={B: peer(B, lsn=150)}), Cause.NO_LEADER),
        ("force-leader", obs(force_leader=True, pg=standby(lsn=100), peers={B: peer(B, lsn=150)}), Cause.FORCED),
        ("switchover heir promotes", obs(leader=lead, switchover=Switchover(C, A)), Cause.SWITCHOVER),
        ("switchover source hands over", obs(leader=lead, pg=primary(standbys=(B, C)), sync=SyncSet((B, C), 1),
                                             switchover=Switchover(A, B), peers={B: replace(peer(B), lease=9)}),
         Cause.SWITCHOVER),
        ("lease lapsed", obs(leader=lead, lease_ok=False, pg=primary()), Cause.LEASE_LOST),
        ("etcd and lease lost", obs(etcd_ok=False, lease_ok=False, pg=primary()), Cause.LEASE_LOST),
        ("search unhealthy", obs(leader=lead, pg=primary(), unhealthy=("search failed",),
                                 unhealthy_cause=Cause.SEARCH_UNHEALTHY), Cause.SEARCH_UNHEALTHY),
        ("storage full", obs(leader=lead, pg=primary(standbys=(B, C)), sync=SyncSet((B, C), 1),
                             applied_sync=SyncSet((B, C), 1), storage_full="WAL disk full", peers={B: peer(B)}),
         Cause.DISK_FULL),
        ("a healthy leader", obs(leader=lead, pg=primary(standbys=(B,))), Cause.NONE),
    ]


@pytest.mark.parametrize(("case", "observation", "cause"), _cause_cases(), ids=[c[0] for c in _cause_cases()])
def test_each_change_of_leadership_names_its_cause(case: str, observation: Observation, cause: Cause) -> None:
    assert decide(observation).cause is cause, case
