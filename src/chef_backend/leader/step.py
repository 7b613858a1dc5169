"""The leader manager's whole policy as one pure function: `step(memory, sensed, now)`.

The daemon (daemon.py) only does I/O: it looks at PostgreSQL, etcd and the old leader (`Sensed`),
calls `step`, publishes the plan's readiness, carries out the plan's actions in order, and feeds
each action's outcome back with `feed`. Everything with a clock in it is here, with time as an
input: the lease deadline, suspicion of the leader, the leaderless timer, the freshness of the
peers' reports, "behind the leader", the failure counters, the takeover hold, "just promoted",
the two-phase change of the synchronous set, rewind-or-rebuild with its back-off, and how long
/leader may answer 200. The decision proper (who leads, who follows) is decide.py's, which `step`
feeds with the observation it derives. Constants and their inequalities: timing.py.
"""

from __future__ import annotations

from dataclasses import replace

from chef_backend.leader.decide import decide, desired_sync_set, standby_quorum
from chef_backend.leader.state import (
    Action,
    Cause,
    Decision,
    Kind,
    LeaderKey,
    Memory,
    Observation,
    Peer,
    PgState,
    Plan,
    Report,
    Role,
    Sensed,
    SyncSet,
)
from chef_backend.leader.timing import (
    RATE_DRIFT,
    READY_VALIDITY_SECONDS,
    RECEIVER_STOP_GRACE_SECONDS,
    REJOIN_BACKOFF_SECONDS,
    STREAM_STUCK_SECONDS,
    SUSPECT_AFTER_SECONDS,
    fence_deadline,
    frontends_route_after_200,
    takeover_hold,
)


def wants_leader_probe(sensed_pg: PgState, leader: LeaderKey | None, me: str) -> bool:
    """Whether the daemon should ask the leader's manager whether it is alive: only when our WAL
    receiver does not stream from it (streaming is proof enough)."""
    if leader is None or leader.guid == me:
        return False
    return not (sensed_pg.streaming and sensed_pg.upstream == leader.address)


# Actions that point this node at a leader (FOLLOW with a target). Starting or restarting PostgreSQL
# keeps what it followed: a previous run re-attached only after a retraction of its own landed.
_REATTACHING = frozenset({Kind.FOLLOW, Kind.REWIND, Kind.REBUILD})


def step(memory: Memory, sensed: Sensed, now: float) -> tuple[Memory, Plan]:
    """The next plan for this node, and the memory to carry to the next tick."""
    if memory.last_obs is None and sensed.health.was_leader:
        # This manager has just started (after a kill -9 of the one before it, or a quick reboot of the
        # host) on a node that led: the one before may have answered 200 until moments ago, and the
        # frontends route here until their next checks (decide._start_pg waits for them).
        memory = replace(memory, served_until=max(memory.served_until, now))
    memory = _count(memory, sensed, now)
    memory = _lease(memory, sensed)
    memory, final = _finality(memory, sensed.pg, now)
    obs, memory = _observe(memory, sensed, now)
    memory, stuck = _stream_stuck(memory, obs, sensed.leader_answers is True, now)
    memory, streamed = _streamed_from_leader(memory, obs)
    obs = replace(obs, final=final, lease=memory.lease, stream_stuck=stuck, streamed_from_leader=streamed)
    decision = decide(obs, sensed.knobs.required_active_followers)
    actions, memory = _expand(memory, decision, obs, now)
    if memory.following is None and sensed.pg.running and sensed.pg.in_recovery and sensed.pg.receiving \
            and memory.detached_at is not None and now - memory.detached_at >= RECEIVER_STOP_GRACE_SECONDS \
            and not actions:
        # Detached, but the WAL receiver still runs (PostgreSQL restarts it only when replay next
        # needs WAL; a replay conflict can delay that indefinitely): it may still acknowledge the
        # old leader's commits. A fast restart stops it.
        actions = (Action(Kind.RESTART_PG),)
    ready_until = _ready_until(obs, decision.ready, sensed.observed_at)
    # A final position stops being final the moment an action may move it: the report says so
    # before that action runs (and the action runs only if that report was posted).
    moves = any(a.kind not in (Kind.POST_STATUS, Kind.PUBLISH_SYNC) for a in actions)
    report = _report(obs, decision, final and not moves, memory, now)
    last = memory.last_report
    mine = sensed.etcd.status_revisions.get(sensed.me, 0) if sensed.etcd is not None else 0
    unsure = not memory.posted and any(a.kind in _REATTACHING and (a.kind is not Kind.FOLLOW or a.target)
                                       for a in actions)
    if not report.final and ((last is not None and last.final) or unsure):
        # The retraction, and so the move, happens only if the leader key is still the one this
        # decision saw: a candidate's takeover that counted our final report either changed the key
        # first (we do not re-attach to the old leader) or fails on our retraction. A restarted
        # manager retracts whatever its previous run may have posted before it re-attaches: once
        # this post lands, no post held up from then can (each holds only over the status it read).
        revision = obs.leader.mod_revision if obs.leader is not None else 0
        actions = (Action(Kind.POST_STATUS, report=report, leader_revision=revision, status_revision=mine),
                   *actions)
    elif _should_post(memory, sensed, obs, report, now):
        actions = (*actions, Action(Kind.POST_STATUS, report=report, status_revision=mine))
    urgent = (obs.switchover is not None or decision.role in (Role.WAITING, Role.PROMOTING)
              or memory.unreachable_since is not None or obs.promoted_from != 0)
    if memory.promoted_from and (decision.ready or not sensed.pg.running or sensed.pg.in_recovery):
        memory = replace(memory, promoted_from=0)  # confirmed (or no longer primary: nothing to confirm)
    memory = replace(memory, ready_until=ready_until, served_until=max(memory.served_until, ready_until), last_obs=obs)
    return memory, Plan(decision, actions, report, ready_until, memory.deadline, urgent)


def next_timer(memory: Memory, now: float) -> float | None:
    """When the next of memory's timers runs out (the takeover hold, the suspicion of a silent
    leader), if one runs: the tick that acts on it should start then, not up to a tick later."""
    ends = [memory.hold_until]
    if memory.unreachable_since is not None:
        ends.append(memory.unreachable_since + SUSPECT_AFTER_SECONDS)
    pending = [t for t in ends if t > now]
    return min(pending) if pending else None


def refresh_ready(memory: Memory, pg: PgState, observed_at: float, required_active_followers: int) -> Memory:
    """Keep a ready leader's 200 going from a fresh look at PostgreSQL alone, before the tick's etcd
    round trips (which can take seconds while etcd elects a raft leader). Only the standbys'
    freshness can change here; the lease deadline is checked on every request anyway."""
    last = memory.last_obs
    if last is None or observed_at >= memory.ready_until:
        return memory
    obs = replace(last, pg=pg)
    ready_until = _ready_until(obs, decide(obs, required_active_followers).ready, observed_at)
    return replace(memory, ready_until=ready_until, served_until=max(memory.served_until, ready_until))


def _ready_until(obs: Observation, ready: bool, observed_at: float) -> float:
    """Until when /leader may answer 200 after a look at `observed_at`: READY_VALIDITY at most,
    and no longer than the quorum of synchronous standbys it needs counts as streaming from it (so a
    leader that loses its standbys turns 503 in time even while this loop is blocked)."""
    if not ready or not obs.lease_ok:
        return 0.0
    until = observed_at + READY_VALIDITY_SECONDS
    sync = standby_quorum(obs)
    if sync is not None:
        fresh = sorted((t for g, t in obs.pg.fresh_until if g in sync.members), reverse=True)
        until = min(until, fresh[sync.quorum - 1] if len(fresh) >= sync.quorum else 0.0)
    return until


def feed(memory: Memory, action: Action, ok: bool, now: float) -> Memory:
    """Fold an action's outcome into memory (`ok`: it did what it was asked)."""
    kind = action.kind
    if kind is Kind.TAKEOVER:
        # Held whether or not it seems to have worked: etcd may have carried the transaction out and
        # its answer been lost, and then the Store's resend to the next member fails its compare while
        # the key is ours (a lost hold would let our first 200 overlap the old leader's last).
        assert action.leader is not None
        quiet = now if action.quiet_since is None else min(now, action.quiet_since)
        return replace(memory, hold_until=quiet + takeover_hold(), hold_probe=action.leader.address)
    lsn = action.position.lsn if action.position is not None else 0
    if kind is Kind.PROMOTE and ok:
        sync = action.sync or SyncSet()
        return replace(memory, promoted_from=lsn, applied_sync=sync, sync_switch=(sync, lsn))
    if kind is Kind.APPLY_SYNC and ok:
        sync = action.sync or SyncSet()
        return replace(memory, applied_sync=sync, sync_switch=(sync, lsn))
    if kind is Kind.FOLLOW and ok:
        detached_at = None if action.target is not None else (memory.detached_at if memory.following is None else now)
        return replace(memory, following=action.target, detached_at=detached_at, last_position=None)
    if kind is Kind.REWIND and not ok:
        return replace(memory, rewind_failed=True)  # re-copy at once
    if kind in (Kind.REWIND, Kind.REBUILD):
        following = action.target if ok else memory.following
        return replace(memory, last_rejoin=now, rewind_failed=False, following=following,
                       detached_at=None if ok else memory.detached_at)
    if kind is Kind.POST_STATUS and ok:
        return replace(memory, last_post=now, last_report=action.report, posted=True)
    if kind is Kind.POST_STATUS and action.report is not None and action.report.final:
        # No answer is no proof: etcd may have the report, or get it later (held up on its way, it
        # lands unless another post lands first). So it must be retracted before this node moves,
        # and it is posted again at the next tick.
        return replace(memory, last_post=-1e9, last_report=action.report)
    if kind is Kind.RESTART_PG:
        return replace(memory, last_position=None, detached_at=now)
    if kind is Kind.FENCE or kind is Kind.HANDOVER:
        return replace(memory, ready_until=0.0)
    return memory


# -- timers and counters ------------------------------------------------------------------------------

def _count(memory: Memory, sensed: Sensed, now: float) -> Memory:
    knobs, health = sensed.knobs, sensed.health
    if sensed.pg.running:
        memory = replace(memory, pg_failures=0)
    elif now - memory.last_pg_failure >= knobs.health_interval:
        # Counted once per health-check interval, as the original does.
        memory = replace(memory, pg_failures=memory.pg_failures + 1, last_pg_failure=now)
    memory = replace(memory, etcd_failures=0 if sensed.etcd is not None else memory.etcd_failures + 1)
    if health.search_answered is True:
        memory = replace(memory, search_seen=True, search_failures=0)
    elif health.search_answered is False and memory.search_seen:
        # A search node still starting is no failure: count once it has answered.
        memory = replace(memory, search_failures=memory.search_failures + 1)
    return replace(memory, disk_problems=health.disk_problems, storage_full=health.storage_full)


def _lease(memory: Memory, sensed: Sensed) -> Memory:
    lease = sensed.lease
    if lease is None:
        return memory  # etcd unreachable: the deadline stands
    if not lease.lease:
        return replace(memory, lease=0, deadline=0.0)
    return replace(memory, lease=lease.lease, deadline=fence_deadline(lease.sent_at, lease.ttl))


def _health(memory: Memory, sensed: Sensed) -> tuple[list[str], list[str], Cause]:
    """(ineligible, unhealthy) reasons from this node's own checks, and the first unhealthy one's cause."""
    knobs = sensed.knobs
    unhealthy: list[tuple[Cause, str]] = []
    if memory.pg_failures >= knobs.max_pgsql_failures:
        unhealthy.append((Cause.POSTGRESQL_UNHEALTHY, f"PostgreSQL failed {memory.pg_failures} checks in a row"))
    if memory.search_failures >= knobs.max_search_failures:
        unhealthy.append((Cause.SEARCH_UNHEALTHY,
                          f"search service failed {memory.search_failures} checks in a row"))
    if memory.disk_problems and knobs.fatal_system_checks:
        unhealthy.append((Cause.UNHEALTHY, "disk: " + "; ".join(memory.disk_problems)))
    reasons = [text for _, text in unhealthy]
    ineligible = list(reasons)
    if sensed.health.unsynced is not None:
        ineligible.append("unsynced: " + sensed.health.unsynced)
    return ineligible, reasons, unhealthy[0][0] if unhealthy else Cause.NONE


def _suspect(memory: Memory, sensed: Sensed, leader: LeaderKey, now: float) -> tuple[bool, Memory]:
    """Whether the leader looks dead: our WAL receiver lost it *and* its manager has not answered
    for SUSPECT_AFTER_SECONDS. Either alone is normal (PostgreSQL restarting on the leader; a
    manager that is busy or briefly cut off from us)."""
    key = (leader.guid, leader.mod_revision)
    if not wants_leader_probe(sensed.pg, leader, sensed.me) or sensed.leader_answers:
        return False, replace(memory, unreachable_since=None, suspected_key=key)
    # Silence counts from the first look at this key: a new leader is not suspect for its predecessor's.
    known = memory.unreachable_since is not None and memory.suspected_key == key
    since = memory.unreachable_since if known and memory.unreachable_since is not None else now
    return now - since >= SUSPECT_AFTER_SECONDS, replace(memory, unreachable_since=since, suspected_key=key)


def _observe(memory: Memory, sensed: Sensed, now: float) -> tuple[Observation, Memory]:
    """The observation decide() reads, with every timer applied."""
    if now >= memory.hold_until:
        memory = replace(memory, hold_probe=None)
    elif sensed.old_leader_code not in (None, 0, 200):
        # The old leader itself answers 503, and having lost its standbys to us it cannot answer
        # 200 again. (A refused connection proves nothing: a firewall's reset looks the same.)
        memory = replace(memory, hold_until=0.0, hold_probe=None)
    ineligible, unhealthy, unhealthy_cause = _health(memory, sensed)
    me, pg, view = sensed.me, sensed.pg, sensed.etcd
    base = Observation(
        me=me,
        etcd_ok=view is not None,
        lease_ok=now < memory.deadline,
        leader=None,
        pg=pg,
        ineligible=(),
        unhealthy=tuple(unhealthy),
        unhealthy_cause=unhealthy_cause,
        storage_full=memory.storage_full,
        members=(me,),
        synchronous=sensed.knobs.synchronous,
        was_leader=sensed.health.was_leader,
        following=memory.following,
        applied_sync=memory.applied_sync,
        hold_ready=now < memory.hold_until,
        promoted_from=memory.promoted_from,
        routed=now < memory.served_until + frontends_route_after_200(),
    )
    if view is None:
        return replace(base, ineligible=tuple(ineligible)), memory

    leader = view.leader
    suspected = False
    if leader is not None and leader.guid != me:
        suspected, memory = _suspect(memory, sensed, leader, now)
    else:
        memory = replace(memory, unreachable_since=None)
    if leader is None or suspected:
        if memory.leaderless_since is None:
            memory = replace(memory, leaderless_since=now, leaderless_revision=view.revision)
    else:
        memory = replace(memory, leaderless_since=None)
    # A report is current if posted while a leader was seen, or after this node lost it.
    peers: dict[str, Peer] = {
        g: replace(p, fresh=leader is not None or p.mod_revision > memory.leaderless_revision)
        for g, p in view.peers.items() if g != me
    }
    if me in view.blocked:
        ineligible.append("failover is turned off for this node")
    if leader is not None and leader.guid in peers and leader.guid != me and pg.running and pg.in_recovery:
        behind = peers[leader.guid].position.lsn - pg.position.lsn
        limit = sensed.knobs.max_bytes_behind_leader
        if behind > limit:
            ineligible.append(f"{behind} bytes behind the leader (limit {limit})")
    mine = leader is not None and leader.guid == me and leader.lease == memory.lease
    obs = replace(
        base,
        leader=leader,
        ineligible=tuple(ineligible),
        members=view.members or (me,),
        peers=peers,
        sync=view.sync,
        sync_revision=view.sync_revision,
        last_leader=view.history.last_leader,
        failover_enabled=view.failover_enabled,
        leaderless_seconds=0.0 if memory.leaderless_since is None else now - memory.leaderless_since,
        leader_suspected=suspected,
        leader_silent=memory.unreachable_since is not None,
        switchover=view.switchover,
        force_leader=view.force_leader == me and leader is None,
        handover_position=leader.handover if mine and leader is not None else None,
    )
    return obs, memory


# -- turning the decision into actions ------------------------------------------------------------------

def _expand(memory: Memory, decision: Decision, obs: Observation, now: float) -> tuple[tuple[Action, ...], Memory]:
    out: list[Action] = []
    for action in decision.actions:
        if action.kind is Kind.SET_SYNC:
            changes, memory = _sync_change(memory, obs, action.sync or SyncSet())
            # A publication holds only over the set this decision read (one held up in etcd must
            # not land over a later one).
            out.extend(replace(a, sync_revision=obs.sync_revision) if a.kind is Kind.PUBLISH_SYNC else a
                       for a in changes)
        elif action.kind is Kind.PROMOTE:
            out.append(replace(action, position=obs.pg.position))
        elif action.kind is Kind.TAKEOVER:
            out.append(replace(action, quiet_since=_standbys_quiet_since(memory, obs, action.guards, now)))
        elif action.kind in (Kind.RELEASE, Kind.HANDOVER):
            # Only over the key this decision saw: one held up in etcd (no answer, so we went on, and
            # may have claimed or taken the key again) must not land later.
            out.append(replace(action, leader_revision=obs.leader.mod_revision if obs.leader is not None else 0))
        elif action.kind in (Kind.REJOIN, Kind.REBUILD):
            if now - memory.last_rejoin < REJOIN_BACKOFF_SECONDS:
                break
            rebuild = action.kind is Kind.REBUILD or memory.rewind_failed
            out.append(Action(Kind.REBUILD if rebuild else Kind.REWIND, action.target))
        else:
            out.append(action)
    return tuple(out), memory


def _sync_change(memory: Memory, obs: Observation, wanted: SyncSet) -> tuple[list[Action], Memory]:
    """Move to the wanted synchronous set without a moment where a promotable group could miss an
    acknowledged commit: publish the union first (with the smaller quorum), apply, and publish the
    exact set only on a later tick (after PostgreSQL picked it up)."""
    current = memory.applied_sync
    if current != wanted:
        union = tuple(sorted(set(current.members) | set(wanted.members)))
        quorum = min(current.quorum, wanted.quorum) if current.members else 0
        return [Action(Kind.PUBLISH_SYNC, sync=SyncSet(union, quorum)),
                Action(Kind.APPLY_SYNC, sync=wanted, position=obs.pg.position)], memory
    if not wanted.members:
        return [Action(Kind.PUBLISH_SYNC, sync=wanted)], memory
    switch = memory.sync_switch
    if switch is None or switch[0] != wanted:
        # PostgreSQL has this set, but when it took it is unknown (a restarted manager read it back
        # from the configuration file; the switch may have been moments ago): count from our WAL
        # end now, which is past the switch.
        switch = (wanted, obs.pg.position.lsn)
        memory = replace(memory, sync_switch=switch)
    # Commits acknowledged before the switch are on `quorum` members of the *old* set: the new set
    # may stand alone only once `quorum` of its own members hold everything up to it.
    if obs.pg.flushed_past(wanted.members, switch[1]) < max(1, wanted.quorum):
        return [], memory
    return [Action(Kind.PUBLISH_SYNC, sync=wanted)], memory


def _stream_stuck(memory: Memory, obs: Observation, leader_answers: bool, now: float) -> tuple[Memory, bool]:
    """Whether we have been told to follow the leader, whose manager answers us, for
    STREAM_STUCK_SECONDS and do not stream from it."""
    leader, pg = obs.leader, obs.pg
    trying = (leader is not None and obs.following == leader.address and pg.running and pg.in_recovery
              and leader_answers and not (pg.streaming and pg.upstream == leader.address))
    if not trying:
        return replace(memory, stuck_since=None), False
    since = memory.stuck_since if memory.stuck_since is not None else now
    return replace(memory, stuck_since=since), now - since >= STREAM_STUCK_SECONDS


def _streamed_from_leader(memory: Memory, obs: Observation) -> tuple[Memory, bool]:
    """Whether we streamed from the current leader key's holder (the same key: its GUID and fork)
    since this manager started: then our timeline is the leader's, whatever its number."""
    leader, pg = obs.leader, obs.pg
    if leader is None:
        return memory, False
    key = (leader.guid, leader.fork)
    if pg.running and pg.in_recovery and pg.streaming and pg.upstream == leader.address:
        memory = replace(memory, streamed_from=key)
    return memory, memory.streamed_from == key


def _standbys_quiet_since(memory: Memory, obs: Observation, guards: tuple[tuple[str, int], ...],
                          now: float) -> float:
    """By when, at the latest (on our clock), the synchronous standbys a takeover counts had all stopped
    receiving from the old leader: each counted report is final, so its node had had no WAL receiver
    for the time it says (measured on its clock, which may run slower than ours by 2 × RATE_DRIFT)
    before we read it; ours has been gone since our own first look without one. The old leader's 200
    rests on a quorum of that set having flushed a heartbeat it wrote less than STANDBY_STALE before
    (pg.fresh_standbys: however late their replies reach it), which these reporters deny it
    (decide.candidacy), so the takeover hold may run from here rather than from the takeover.
    Without a synchronous set, from now."""
    if not (obs.synchronous and obs.sync.members) or memory.still_since is None:
        return now
    latest = memory.still_since
    for guid, _ in guards:
        peer = obs.peers.get(guid)
        if peer is None or not peer.final:
            return now
        latest = max(latest, now - peer.receiver_gone_for * (1 - 2 * RATE_DRIFT))
    return min(now, latest)


def _finality(memory: Memory, pg: PgState, now: float) -> tuple[Memory, bool]:
    """Whether our position is final: PostgreSQL runs in recovery following no one, with no WAL
    receiver, has replayed all the WAL it has (after a restart pg_last_wal_receive_lsn() is NULL
    and replay climbs from a restartpoint, or stalls on a query conflict), and shows the position
    of the previous look."""
    if memory.following is None and memory.detached_at is None:
        memory = replace(memory, detached_at=now)
    still = (memory.following is None and pg.running and pg.in_recovery and not pg.receiving
             and pg.wal_exhausted)
    final = still and memory.last_position == pg.position
    # A run of such looks goes on while nothing reset it (an action that may move the position does).
    since = memory.still_since if memory.last_position is not None and memory.still_since is not None else now
    return replace(memory, last_position=pg.position if still else None, still_since=since if still else None), final


def _report(obs: Observation, decision: Decision, final: bool, memory: Memory, now: float) -> Report:
    gone_for = now - memory.still_since if final and memory.still_since is not None else 0.0
    return Report(
        role=decision.role,
        ready=decision.ready,
        reason=decision.reason,
        cause=decision.cause,
        eligible=not obs.ineligible,
        ineligible=obs.ineligible,
        storage_full=obs.storage_full,
        leader=obs.leader.guid if obs.leader else None,
        position=obs.pg.position,
        detached=obs.detached,
        final=final,
        pg_running=obs.pg.running,
        pg_in_recovery=obs.pg.in_recovery,
        pg_streaming=obs.pg.streaming,
        upstream=obs.pg.upstream,
        standbys=obs.pg.standbys,
        receiver_gone_for=gone_for,
    )


def _should_post(memory: Memory, sensed: Sensed, obs: Observation, report: Report, now: float) -> bool:
    """Post when something other than the position changed, when leaderless (positions matter
    then), and at least every status interval."""
    if sensed.etcd is None or not memory.lease:
        return False
    last = memory.last_report
    changed = last is None or replace(report, position=last.position, receiver_gone_for=last.receiver_gone_for) != last
    return obs.leader is None or changed or now - memory.last_post >= sensed.knobs.status_interval


__all__ = ["desired_sync_set", "feed", "next_timer", "refresh_ready", "step", "wants_leader_probe"]
