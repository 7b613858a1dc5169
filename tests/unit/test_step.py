"""Table tests of the step function's timers and memory (chef_backend.leader.step)."""

from __future__ import annotations

from dataclasses import replace

from chef_backend.leader.state import (
    Action,
    EtcdView,
    Health,
    History,
    Kind,
    Knobs,
    LeaderKey,
    Lease,
    Memory,
    Peer,
    PgState,
    Position,
    Role,
    Sensed,
    SyncSet,
)
from chef_backend.leader.step import feed, next_timer, refresh_ready, step
from chef_backend.leader.timing import (
    RATE_DRIFT,
    READY_VALIDITY_SECONDS,
    RECEIVER_STOP_GRACE_SECONDS,
    REJOIN_BACKOFF_SECONDS,
    SUSPECT_AFTER_SECONDS,
    fence_deadline,
    frontends_route_after_200,
    takeover_hold,
)

A, B, C = "a" * 32, "b" * 32, "c" * 32
ADDR = {A: "10.0.0.1", B: "10.0.0.2", C: "10.0.0.3"}
TTL = 30.0


def standby(lsn: int = 100, upstream: str | None = None) -> PgState:
    return PgState(running=True, in_recovery=True, position=Position(1, lsn), upstream=upstream,
                   streaming=upstream is not None, receiving=upstream is not None, wal_exhausted=upstream is None)


def primary(lsn: int = 100, standbys: tuple[str, ...] = (), fresh_until: float = 1e9, flushed: int = 100) -> PgState:
    return PgState(running=True, in_recovery=False, position=Position(1, lsn), standbys=standbys,
                   fresh_until=tuple((g, fresh_until) for g in standbys), flushed=tuple((g, flushed) for g in standbys))


def peer(guid: str, lsn: int = 100, detached: bool = True, rev: int = 50) -> Peer:
    return Peer(guid, ADDR[guid], "waiting_for_leader", True, Position(1, lsn), detached, False, mod_revision=rev,
                final=detached)


AB = SyncSet((A, B), 1)


def view(leader: str | None = C, peers: dict[str, Peer] | None = None, revision: int = 100,
         sync: SyncSet = AB, last: str | None = C) -> EtcdView:
    key = LeaderKey(leader, ADDR[leader], mod_revision=7, lease=1 if leader == A else 3) if leader else None
    return EtcdView(revision=revision, leader=key, members=(A, B, C), peers=peers or {}, sync=sync,
                    history=History(last, 1))


def sensed(now: float, pg: PgState | None = None, etcd: EtcdView | None = None, **kw: object) -> Sensed:
    base = Sensed(me=A, address=ADDR[A], pg=pg or standby(), etcd=etcd, lease=Lease(1, now, TTL),
                  health=Health(), knobs=Knobs(), observed_at=now)
    return replace(base, **kw)  # type: ignore[arg-type]


def kinds(plan) -> list[Kind]:
    return [a.kind for a in plan.actions if a.kind is not Kind.POST_STATUS]


def test_lease_deadline_counts_from_when_the_renewal_was_sent() -> None:
    memory, plan = step(Memory(), sensed(10.0, etcd=view(), lease=Lease(1, 8.0, TTL)), 10.0)
    assert memory.deadline == fence_deadline(8.0, TTL) and plan.deadline == memory.deadline


def test_leader_is_suspected_only_after_it_was_silent_for_a_while() -> None:
    m = Memory(following=ADDR[C])
    m, plan = step(m, sensed(0.0, etcd=view(), leader_answers=False), 0.0)
    # Silent, not suspect yet: we detach at once, so that our position is final by the time it is.
    assert kinds(plan) == [Kind.FOLLOW] and plan.actions[0].target is None and m.unreachable_since == 0.0
    assert m.leaderless_since is None and "silent" in plan.decision.reason
    m = feed(m, plan.actions[0], True, 0.0)
    m, plan = step(m, sensed(1.0, etcd=view(), leader_answers=False), 1.0)
    assert kinds(plan) == [] and not plan.report.final  # one look so far
    m, plan = step(m, sensed(SUSPECT_AFTER_SECONDS, etcd=view(), leader_answers=False), SUSPECT_AFTER_SECONDS)
    assert plan.report.final and "looks dead" in plan.decision.reason
    assert m.leaderless_since == SUSPECT_AFTER_SECONDS and m.leaderless_revision == 100


def test_an_answer_or_a_stream_from_the_leader_clears_suspicion() -> None:
    m = Memory(following=ADDR[C], unreachable_since=0.0)
    m2, _ = step(m, sensed(5.0, etcd=view(), leader_answers=True), 5.0)
    assert m2.unreachable_since is None
    m3, _ = step(m, sensed(5.0, pg=standby(upstream=ADDR[C]), etcd=view()), 5.0)
    assert m3.unreachable_since is None


def test_reports_count_only_when_posted_after_the_leader_was_lost() -> None:
    m = Memory(leaderless_since=0.0, leaderless_revision=60)
    stale = {B: peer(B, lsn=50, rev=55)}
    _, plan = step(m, sensed(10.0, etcd=view(leader=None, peers=stale)), 10.0)
    assert kinds(plan) == []  # B's report predates the loss: wait for a fresh one
    fresh = {B: peer(B, lsn=50, rev=61)}
    m, plan = step(m, sensed(10.0, etcd=view(leader=None, peers=fresh)), 10.0)
    assert kinds(plan) == []  # our own position is not final yet: one look so far
    _, plan = step(m, sensed(11.0, etcd=view(leader=None, peers=fresh)), 11.0)
    assert kinds(plan) == [Kind.ACQUIRE] and plan.actions[0].guards == ((B, 61),)


def test_follower_too_far_behind_the_leader_is_ineligible() -> None:
    knobs = Knobs(max_bytes_behind_leader=10)
    _, plan = step(Memory(following=ADDR[C]), sensed(0.0, pg=standby(lsn=100, upstream=ADDR[C]),
                   etcd=view(peers={C: peer(C, lsn=200)}), knobs=knobs), 0.0)
    assert not plan.report.eligible and "behind the leader" in plan.report.ineligible[0]


def test_postgresql_failures_are_counted_once_per_interval_then_the_leader_steps_down() -> None:
    m = Memory(lease=1)
    knobs = Knobs(max_pgsql_failures=2, health_interval=5.0)
    down = PgState(running=False)
    etcd = view(leader=A, sync=SyncSet())
    for now, expected in ((0.0, 1), (1.0, 1), (5.0, 2)):
        m, plan = step(m, sensed(now, pg=down, etcd=etcd, knobs=knobs), now)
        assert m.pg_failures == expected
    assert kinds(plan) == [Kind.RELEASE, Kind.FENCE]


def test_ready_leader_answers_200_for_a_short_while_after_its_look() -> None:
    m = Memory(lease=1)
    m, plan = step(m, sensed(10.0, pg=primary(standbys=(B,)), etcd=view(leader=A), observed_at=9.5), 10.0)
    assert plan.decision.ready and plan.ready_until == 9.5 + READY_VALIDITY_SECONDS


def test_ready_leader_answers_200_no_longer_than_its_standbys_count_as_replying() -> None:
    # Path 0 of issue 14: a leader cut off from everyone (etcd too) keeps its lease for a while,
    # but its 200 must end when its standbys' last replies go stale, not at its lease deadline.
    m = Memory(lease=1, applied_sync=SyncSet((B, C), 1), deadline=100.0)
    m, plan = step(m, sensed(10.0, pg=primary(standbys=(B,), fresh_until=11.0), etcd=None, lease=None), 10.0)
    assert plan.decision.ready and plan.ready_until == 11.0
    m, plan = step(m, sensed(12.0, pg=primary(standbys=(), fresh_until=11.0), etcd=None, lease=None), 12.0)
    assert not plan.decision.ready and plan.ready_until == 0.0


def test_a_leader_cut_off_right_after_promoting_never_answers_200() -> None:
    # Found by the simulation (seed 323, its reads): a leader promoted moments before it was cut off
    # from everyone, its tick blocked in etcd requests, answered 200 without standbys (then spared
    # while its followers re-attached) until its lease deadline; commits cancelled meanwhile were
    # read there, and the next leader promoted without them. Now nothing is spared: its 200 waits
    # for a quorum of standbys to hold what it had at promotion, and the tick stays urgent meanwhile.
    promote = Action(Kind.PROMOTE, sync=SyncSet((B, C), 1), position=Position(1, 100))
    m = feed(Memory(lease=1, deadline=100.0), promote, True, 10.0)
    m, plan = step(m, sensed(10.5, pg=primary(lsn=101), etcd=view(leader=A), lease=Lease(1, 10.5, TTL)), 10.5)
    assert not plan.decision.ready and plan.urgent and m.promoted_from == 100
    assert refresh_ready(m, primary(lsn=101), 11.0, 0).ready_until == 0.0
    behind = primary(lsn=101, standbys=(B,), flushed=99)
    m, plan = step(m, sensed(11.0, pg=behind, etcd=view(leader=A), lease=Lease(1, 11.0, TTL)), 11.0)
    assert not plan.decision.ready and m.promoted_from == 100
    caught_up = primary(lsn=101, standbys=(B,), flushed=100)
    m, plan = step(m, sensed(11.25, pg=caught_up, etcd=view(leader=A), lease=Lease(1, 11.25, TTL)), 11.25)
    assert plan.decision.ready and m.promoted_from == 0


def test_a_restarted_manager_on_a_node_that_led_counts_as_routed_from_its_start() -> None:
    # Found by the simulation (seed 19042): every process of the leader killed and the host back 1.3 s
    # later; the new manager, which had not answered 200 itself, started PostgreSQL read-only at once,
    # and clients still routed there read the old leader's unacknowledged last commit.
    down = PgState(running=False)
    led = Health(was_leader=True)
    m, plan = step(Memory(), sensed(50.0, pg=down, etcd=None, lease=None, health=led), 50.0)
    assert Kind.START_PG not in kinds(plan) and "routing" in plan.decision.reason
    later = 50.0 + frontends_route_after_200()
    _, plan = step(m, sensed(later, pg=down, etcd=None, lease=None, health=led), later)
    assert Kind.START_PG in kinds(plan)
    # A node that did not lead since its last re-sync was never routed to: no wait.
    _, plan = step(Memory(), sensed(50.0, pg=down, etcd=None, lease=None), 50.0)
    assert Kind.START_PG in kinds(plan)


def test_frontends_count_as_routing_here_until_their_next_check_after_the_last_200() -> None:
    m = Memory(lease=1, applied_sync=SyncSet((B, C), 1), deadline=100.0)
    m, plan = step(m, sensed(10.0, pg=primary(standbys=(B,), fresh_until=11.0), etcd=None, lease=None), 10.0)
    assert plan.ready_until == 11.0 and m.served_until == 11.0
    down = PgState(running=False)
    late = 11.0 + frontends_route_after_200()
    m, plan = step(m, sensed(late - 0.01, pg=down, etcd=None, lease=None), late - 0.01)
    assert Kind.START_PG not in kinds(plan) and m.served_until == 11.0
    _, plan = step(m, sensed(late, pg=down, etcd=None, lease=None), late)
    assert Kind.START_PG in kinds(plan)


def test_takeover_holds_503_until_the_hold_ends_or_the_old_leader_answers_503() -> None:
    takeover = Action(Kind.TAKEOVER, leader=LeaderKey(C, ADDR[C], 7, 3))
    m = feed(Memory(lease=1), takeover, True, 0.0)
    etcd = view(leader=A)
    _, plan = step(m, sensed(1.0, pg=primary(standbys=(B,)), etcd=etcd), 1.0)
    assert not plan.decision.ready
    _, plan = step(m, sensed(1.0, pg=primary(standbys=(B,)), etcd=etcd, old_leader_code=0), 1.0)
    assert not plan.decision.ready  # refused: maybe a firewall's reset (path 0 of issue 14)
    _, plan = step(m, sensed(1.0, pg=primary(standbys=(B,)), etcd=etcd, old_leader_code=503), 1.0)
    assert plan.decision.ready
    t = takeover_hold()
    _, plan = step(m, sensed(t, pg=primary(standbys=(B,)), etcd=etcd, lease=Lease(1, t, TTL)), t)
    assert plan.decision.ready


def test_the_takeover_hold_runs_from_when_the_counted_standbys_went_quiet() -> None:
    # A (us) and B, the synchronous set, both detached from C, which looks dead. B says its WAL
    # receiver has been gone 0.5 s (by its clock); ours since our first look without one, at 0.
    b = replace(peer(B), receiver_gone_for=0.5)
    etcd = view(leader=C, peers={B: b})
    m, _ = step(Memory(lease=1), sensed(0.0, etcd=etcd, leader_answers=False), 0.0)
    m, plan = step(m, sensed(2.0, etcd=etcd, leader_answers=False), 2.0)
    takeover = next(a for a in plan.actions if a.kind is Kind.TAKEOVER)
    assert m.still_since == 0.0  # (the report says it is no longer final: the takeover moves it)
    quiet = 2.0 - 0.5 * (1 - 2 * RATE_DRIFT)  # B's clock may run slower than ours
    assert takeover.quiet_since == quiet
    assert feed(m, takeover, True, 2.1).hold_until == quiet + takeover_hold()
    # A report that does not say (an older version's) gives no head start: the hold runs from now.
    m0, _ = step(Memory(lease=1), sensed(0.0, etcd=view(leader=C, peers={B: peer(B)}), leader_answers=False), 0.0)
    _, plan = step(m0, sensed(2.0, etcd=view(leader=C, peers={B: peer(B)}), leader_answers=False), 2.0)
    assert next(a for a in plan.actions if a.kind is Kind.TAKEOVER).quiet_since == 2.0
    # Nor do standbys when no synchronous set was confirmed (the old leader's 200 did not rest on them).
    unconfirmed = view(leader=C, peers={B: b}, sync=SyncSet(), last=A)
    m0, _ = step(Memory(lease=1), sensed(0.0, etcd=unconfirmed, leader_answers=False), 0.0)
    _, plan = step(m0, sensed(2.0, etcd=unconfirmed, leader_answers=False), 2.0)
    assert next(a for a in plan.actions if a.kind is Kind.TAKEOVER).quiet_since == 2.0


def test_a_position_is_still_from_the_first_look_after_whatever_could_move_it() -> None:
    etcd = view(leader=None)
    m, _ = step(Memory(lease=1), sensed(0.0, etcd=etcd), 0.0)
    m, plan = step(m, sensed(1.0, etcd=etcd), 1.0)
    assert m.still_since == 0.0 and plan.report.receiver_gone_for == 1.0
    m = feed(m, Action(Kind.RESTART_PG), True, 1.5)  # a restart may start a receiver we never see
    m, plan = step(m, sensed(2.0, etcd=etcd), 2.0)
    assert m.still_since == 2.0 and not plan.report.final and plan.report.receiver_gone_for == 0.0
    m, _ = step(m, sensed(3.0, pg=replace(standby(), receiving=True), etcd=etcd), 3.0)
    assert m.still_since is None


def test_the_next_tick_comes_when_a_timer_runs_out() -> None:
    assert next_timer(Memory(), 5.0) is None
    silent = Memory(unreachable_since=5.0)
    assert next_timer(silent, 5.5) == 5.0 + SUSPECT_AFTER_SECONDS
    assert next_timer(silent, 5.0 + SUSPECT_AFTER_SECONDS) is None  # suspected already
    held = replace(silent, hold_until=6.0)
    assert next_timer(held, 5.5) == 6.0 and next_timer(held, 6.0) == 5.0 + SUSPECT_AFTER_SECONDS


def test_a_takeover_that_seems_to_have_failed_holds_503_too() -> None:
    # etcd may have carried it out and its answer been lost: the Store's resend to another member
    # then fails its compare while the key is ours, and the next tick promotes on it.
    takeover = Action(Kind.TAKEOVER, leader=LeaderKey(C, ADDR[C], 7, 3))
    m = feed(Memory(lease=1), takeover, False, 0.0)
    _, plan = step(m, sensed(1.0, pg=primary(standbys=(B,)), etcd=view(leader=A)), 1.0)
    assert not plan.decision.ready


def test_rejoin_rewinds_then_rebuilds_after_a_failed_rewind_then_backs_off() -> None:
    m = Memory(lease=1, posted=True)
    etcd = view(leader=C)
    pg = primary()
    m, plan = step(m, sensed(0.0, pg=pg, etcd=etcd, leader_answers=True), 0.0)
    assert kinds(plan) == [Kind.REWIND]
    m = feed(m, plan.actions[0], False, 0.0)
    m, plan = step(m, sensed(1.0, pg=pg, etcd=etcd, leader_answers=True), 1.0)
    assert kinds(plan) == [Kind.REBUILD]
    m = feed(m, plan.actions[0], False, 1.0)
    m, plan = step(m, sensed(2.0, pg=pg, etcd=etcd, leader_answers=True), 2.0)
    assert kinds(plan) == []
    now = 1.0 + REJOIN_BACKOFF_SECONDS
    m, plan = step(m, sensed(now, pg=pg, etcd=etcd, leader_answers=True), now)
    assert kinds(plan) == [Kind.REWIND]


def test_path8_a_follower_that_never_streamed_from_the_leader_rebuilds_when_stuck_past_its_fork() -> None:
    # Seed 2813: our timeline 3 began at the fork of the leader's timeline 3, but it is another
    # history (a leader that died promoted from the same point). Having streamed from this very key
    # is the only evidence that it is the leader's own.
    key = LeaderKey(C, ADDR[C], mod_revision=7, lease=3, fork=Position(2, 277))
    etcd = replace(view(leader=C), leader=key)
    ours = replace(standby(lsn=305), position=Position(3, 305), timeline_start=277, receiving=True,
                   wal_exhausted=False)
    m = Memory(lease=1, following=ADDR[C], posted=True)
    m, plan = step(m, sensed(0.0, pg=ours, etcd=etcd, leader_answers=True), 0.0)
    assert kinds(plan) == [] and not plan.decision.reason.startswith("cannot stream")
    m, plan = step(m, sensed(6.0, pg=ours, etcd=etcd, leader_answers=True), 6.0)
    assert kinds(plan) == [Kind.REBUILD] and plan.actions[0].target == ADDR[C]
    m = feed(m, plan.actions[0], True, 6.0)
    m, plan = step(m, sensed(12.0, pg=ours, etcd=etcd, leader_answers=True), 12.0)
    assert kinds(plan) == []  # backing off
    # Streaming from this key once is enough: a later stall is not a divergence.
    streaming = replace(ours, upstream=ADDR[C], streaming=True)
    m = Memory(lease=1, following=ADDR[C])
    m, _ = step(m, sensed(0.0, pg=streaming, etcd=etcd, leader_answers=True), 0.0)
    assert m.streamed_from == (C, Position(2, 277))
    m, _ = step(m, sensed(1.0, pg=ours, etcd=etcd, leader_answers=True), 1.0)
    m, plan = step(m, sensed(7.0, pg=ours, etcd=etcd, leader_answers=True), 7.0)
    assert kinds(plan) == []
    assert m.last_obs is not None and m.last_obs.streamed_from_leader
    # Another key (another holder, or the same node leading again from elsewhere) is another
    # leader: what we streamed before proves nothing about its timeline.
    for other in (replace(key, guid=B), replace(key, fork=Position(3, 400))):
        m2, _ = step(m, sensed(8.0, pg=ours, etcd=replace(etcd, leader=other), leader_answers=True), 8.0)
        assert m2.last_obs is not None and not m2.last_obs.streamed_from_leader


def test_a_new_synchronous_set_is_published_as_a_union_then_exactly() -> None:
    m = Memory(lease=1, applied_sync=SyncSet((B,), 1))
    etcd = view(leader=A, sync=SyncSet((B,), 1), last=A)
    m, plan = step(m, sensed(0.0, pg=primary(standbys=(B, C)), etcd=etcd), 0.0)
    assert kinds(plan) == [Kind.PUBLISH_SYNC, Kind.APPLY_SYNC]
    assert plan.actions[0].sync == SyncSet((B, C), 1) and plan.actions[1].sync == SyncSet((B, C), 1)
    for action in plan.actions:
        m = feed(m, action, True, 0.0)
    etcd = view(leader=A, sync=SyncSet((B, C), 1), last=A)
    m, plan = step(m, sensed(1.0, pg=primary(standbys=(B, C)), etcd=etcd), 1.0)
    assert kinds(plan) == []


def test_status_is_posted_when_it_changes_and_every_interval() -> None:
    m = Memory(lease=1)
    etcd = view(leader=C)
    pg = standby(upstream=ADDR[C])
    m = replace(m, following=ADDR[C])
    m, plan = step(m, sensed(0.0, pg=pg, etcd=etcd), 0.0)
    post = [a for a in plan.actions if a.kind is Kind.POST_STATUS]
    assert post and plan.report.role is Role.FOLLOWER
    m = feed(m, post[0], True, 0.0)
    m, plan = step(m, sensed(1.0, pg=standby(lsn=200, upstream=ADDR[C]), etcd=etcd), 1.0)
    assert not [a for a in plan.actions if a.kind is Kind.POST_STATUS]  # only the position moved
    m, plan = step(m, sensed(11.0, pg=pg, etcd=etcd), 11.0)
    assert [a for a in plan.actions if a.kind is Kind.POST_STATUS]


# --- issue 14's paths at the step level ---------------------------------------------------------------------

def test_path1_a_position_is_final_only_when_unchanged_over_two_looks_without_a_receiver() -> None:
    m = Memory(lease=1)
    etcd = view(leader=None)
    m, plan = step(m, sensed(0.0, pg=standby(lsn=40), etcd=etcd), 0.0)
    assert not plan.report.final  # first look
    m, plan = step(m, sensed(1.0, pg=standby(lsn=80), etcd=etcd), 1.0)
    assert not plan.report.final  # replay still climbing from a restartpoint
    m, plan = step(m, sensed(2.0, pg=standby(lsn=80), etcd=etcd), 2.0)
    assert plan.report.final
    m, plan = step(m, sensed(3.0, pg=PgState(running=False), etcd=etcd), 3.0)
    assert not plan.report.final  # down (or frozen: the check failed)
    receiving = replace(standby(lsn=80), receiving=True)
    m, _ = step(m, sensed(4.0, pg=receiving, etcd=etcd), 4.0)
    m, plan = step(m, sensed(5.0, pg=receiving, etcd=etcd), 5.0)
    assert not plan.report.final  # a WAL receiver still runs
    stalled = replace(standby(lsn=80), wal_exhausted=False)
    m, _ = step(m, sensed(6.0, pg=stalled, etcd=etcd), 6.0)
    m, plan = step(m, sensed(7.0, pg=stalled, etcd=etcd), 7.0)
    assert not plan.report.final  # replay stopped short of the WAL on disk (a query conflict)


def test_path2_a_final_report_is_retracted_before_re_attaching() -> None:
    m = Memory(lease=1)
    lost = view(leader=None, peers={B: peer(B, lsn=999, rev=200)})
    m, _ = step(m, sensed(0.0, pg=standby(lsn=80), etcd=lost), 0.0)
    m, plan = step(m, sensed(1.0, pg=standby(lsn=80), etcd=lost), 1.0)
    assert plan.report.final
    m = feed(m, plan.actions[-1], True, 1.0)
    back = view(leader=C)
    m, plan = step(m, sensed(2.0, pg=standby(lsn=80), etcd=back, leader_answers=True), 2.0)
    assert [a.kind for a in plan.actions] == [Kind.POST_STATUS, Kind.FOLLOW]
    assert not plan.actions[0].report.final and plan.actions[1].target == ADDR[C]
    # Seed 16259: the retraction lands only while the key is the one this decision saw; a takeover
    # that counted our report either came first (the retraction fails, and with it the plan) or fails.
    key = back.leader
    assert key is not None and plan.actions[0].leader_revision == key.mod_revision


def test_a_final_report_whose_post_got_no_answer_is_retracted_before_re_attaching() -> None:
    """etcd may have carried the post out, or may still (held up on its way, it lands later): the
    node re-attaches only after a retraction has landed, and posts the report again meanwhile."""
    m = Memory(lease=1)
    lost = replace(view(leader=None, peers={B: peer(B, lsn=999, rev=200)}), status_revisions={A: 60})
    m, _ = step(m, sensed(0.0, pg=standby(lsn=80), etcd=lost), 0.0)
    m, plan = step(m, sensed(1.0, pg=standby(lsn=80), etcd=lost), 1.0)
    post = plan.actions[-1]
    assert post.kind is Kind.POST_STATUS and post.report.final and post.status_revision == 60
    m = feed(m, post, False, 1.0)
    m, plan = step(m, sensed(1.5, pg=standby(lsn=80), etcd=lost), 1.5)
    assert [a.kind for a in plan.actions] == [Kind.POST_STATUS]  # again at once, not a status interval later
    back = replace(view(leader=C), status_revisions={A: 60})
    m, plan = step(m, sensed(2.0, pg=standby(lsn=80), etcd=back, leader_answers=True), 2.0)
    assert [a.kind for a in plan.actions] == [Kind.POST_STATUS, Kind.FOLLOW]
    retraction = plan.actions[0]
    assert not retraction.report.final and retraction.status_revision == 60 and retraction.leader_revision == 7


def test_every_post_holds_only_over_the_status_key_this_tick_read() -> None:
    """A post held up in etcd cannot land after a later post: each compares our status key's mod
    revision with the one this tick's snapshot showed (0: absent)."""
    for revisions, expected in (({A: 41, B: 9}, 41), ({B: 9}, 0)):
        m = Memory(lease=1, following=ADDR[C])
        etcd = replace(view(leader=C), status_revisions=revisions)
        _, plan = step(m, sensed(0.0, pg=standby(upstream=ADDR[C]), etcd=etcd), 0.0)
        posts = [a for a in plan.actions if a.kind is Kind.POST_STATUS]
        assert posts and all(a.status_revision == expected for a in posts)


def test_a_synchronous_set_is_published_only_over_the_set_this_tick_read() -> None:
    m = Memory(lease=1, applied_sync=SyncSet((B,), 1))
    etcd = replace(view(leader=A, sync=SyncSet((B,), 1), last=A), sync_revision=77)
    _, plan = step(m, sensed(0.0, pg=primary(standbys=(B, C)), etcd=etcd), 0.0)
    publish = [a for a in plan.actions if a.kind is Kind.PUBLISH_SYNC]
    assert publish and publish[0].sync_revision == 77


def test_a_handover_or_a_release_holds_only_over_the_key_the_decision_saw() -> None:
    """One held up in etcd (no answer: the node went on, and may have claimed or taken its key again)
    must not land later: each compares the key's mod revision with the one the decision read."""
    from chef_backend.leader.state import Switchover

    heir = replace(peer(B, detached=False), role="follower", lease=99)
    etcd = replace(view(leader=A, peers={B: heir}, last=A), switchover=Switchover(A, B))
    m = Memory(lease=1, applied_sync=AB)
    _, plan = step(m, sensed(0.0, pg=primary(standbys=(B, C)), etcd=etcd), 0.0)
    assert kinds(plan) == [Kind.HANDOVER] and plan.actions[0].leader_revision == 7
    m = Memory(lease=1, pg_failures=5, last_pg_failure=0.0)
    _, plan = step(m, sensed(1.0, pg=PgState(running=False), etcd=view(leader=A, sync=SyncSet())), 1.0)
    assert kinds(plan) == [Kind.RELEASE, Kind.FENCE] and plan.actions[0].leader_revision == 7


def test_a_restarted_manager_posts_before_it_re_attaches() -> None:
    """Its previous run may have been killed while a final report was held up in etcd: until a post
    of this run has landed (after which none held up can), it posts first, guarded, and moves only
    if that landed; detaching is never held back."""
    etcd = replace(view(leader=C), status_revisions={A: 33})
    m = Memory(lease=1)
    m, plan = step(m, sensed(0.0, pg=primary(), etcd=etcd, leader_answers=True), 0.0)
    assert [a.kind for a in plan.actions] == [Kind.POST_STATUS, Kind.REWIND]
    assert plan.actions[0].status_revision == 33 and plan.actions[0].leader_revision == 7
    m = feed(m, plan.actions[0], True, 0.0)
    assert m.posted
    m = Memory(following=ADDR[C])
    _, plan = step(m, sensed(0.0, etcd=view(), leader_answers=False), 0.0)
    assert plan.actions[0].kind is Kind.FOLLOW and plan.actions[0].target is None


def test_path3_a_receiver_that_outlives_the_detachment_is_stopped_by_a_restart() -> None:
    m = Memory(lease=1, following=ADDR[C])
    m = feed(m, Action(Kind.FOLLOW, None), True, 0.0)
    lingering = replace(standby(lsn=80), receiving=True)
    etcd = view(leader=None)
    m, plan = step(m, sensed(1.0, pg=lingering, etcd=etcd), 1.0)
    assert kinds(plan) == [] and not plan.report.final
    m, plan = step(m, sensed(RECEIVER_STOP_GRACE_SECONDS, pg=lingering, etcd=etcd), RECEIVER_STOP_GRACE_SECONDS)
    assert kinds(plan) == [Kind.RESTART_PG]


def test_path6_a_stricter_set_is_published_only_once_its_members_caught_up() -> None:
    # B was removed from the cluster: the set goes from (B, C) ANY 1 to (C) ANY 1, which alone would
    # let C elect itself. Commits acknowledged by B only are on C only once C flushed past the switch.
    m = Memory(lease=1, applied_sync=SyncSet((B, C), 1))
    pg = replace(primary(lsn=500, standbys=(C,)), flushed=((C, 100),))
    target = SyncSet((C,), 1)
    m = feed(m, Action(Kind.APPLY_SYNC, sync=target, position=Position(1, 500)), True, 0.0)
    etcd = replace(view(leader=A, sync=SyncSet((B, C), 1), last=A), members=(A, C))
    _, plan = step(m, sensed(1.0, pg=pg, etcd=etcd), 1.0)
    publish = [a for a in plan.actions if a.kind is Kind.PUBLISH_SYNC]
    assert not publish  # C has flushed 100 of the 500 the switch needs: the union stays published
    caught_up = replace(pg, flushed=((C, 500),))
    _, plan = step(m, sensed(1.0, pg=caught_up, etcd=etcd), 1.0)
    assert [a.sync for a in plan.actions if a.kind is Kind.PUBLISH_SYNC] == [target]


def test_path6_a_restarted_leader_manager_publishes_the_stricter_set_only_once_its_members_caught_up() -> None:
    # Found by the simulation (seed 2989): the leader's manager restarted after applying (C) ANY 1
    # while the union (B, C) ANY 1 was still published; its new memory had PostgreSQL's set but not
    # when it was applied, and it published (C) at once, letting C elect itself without commits
    # only B had acknowledged. Now the switch counts from the WAL end at the restarted manager's look.
    target = SyncSet((C,), 1)
    m = Memory(lease=1, applied_sync=target)  # as daemon.py starts: the set read back from PostgreSQL's configuration
    etcd = replace(view(leader=A, sync=SyncSet((B, C), 1), last=A), members=(A, C))
    behind = replace(primary(lsn=500, standbys=(C,)), flushed=((C, 400),))
    m, plan = step(m, sensed(1.0, pg=behind, etcd=etcd), 1.0)
    assert not [a for a in plan.actions if a.kind is Kind.PUBLISH_SYNC] and m.sync_switch == (target, 500)
    later = replace(primary(lsn=600, standbys=(C,)), flushed=((C, 500),))
    _, plan = step(m, sensed(2.0, pg=later, etcd=etcd), 2.0)
    assert [a.sync for a in plan.actions if a.kind is Kind.PUBLISH_SYNC] == [target]


def test_path9_a_fencing_tick_publishes_503_before_it_acts() -> None:
    m = Memory(lease=1, ready_until=50.0, deadline=5.0)
    _, plan = step(m, sensed(10.0, pg=primary(standbys=(B,)), etcd=None, lease=None), 10.0)
    assert kinds(plan) == [Kind.FENCE] and plan.ready_until == 0.0
