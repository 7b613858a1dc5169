"""Where failover is decided: what this node should do next, as a pure function of what it sees.

`decide(observation)` returns the node's role, whether `/leader` may answer 200, and the actions
to take. Everything here is deterministic and free of I/O so that every case (two candidates at
once, a leader that loses etcd, a follower behind, a node back with diverged data, all nodes
restarting) is covered by table tests in tests/unit/test_decide.py.

Safety rules
------------
1. One writable leader. A node accepts writes only while it holds the leader key, which is
   bound to its etcd lease and taken by a create-if-absent transaction. A node that finds itself
   primary without the key is fenced (PostgreSQL stopped) before anything else. The daemon also
   fences on its own clock before the lease can expire on etcd's side (see timing.fence_deadline).
2. No lost acknowledged commit. In synchronous mode every commit is acknowledged by the leader
   and by `quorum` of the published synchronous set S. A candidate needs current positions from
   |S| - quorum + 1 members of S (any such group holds every acknowledged commit) and must be at
   least as far as each of them. Before a position counts it must be *final*: PostgreSQL runs in
   recovery following no one, with no WAL receiver, and its position did not move between two
   looks, so it can no longer grow behind our back and the old leader, if it is still alive, can
   no longer get commits acknowledged through it. (A node whose PostgreSQL is down, starting,
   frozen, or replaying from a restartpoint reports no final position.)
3. Data that may have diverged is never served. A former leader that sees another leader is
   rewound (or re-copied) before it follows; see actions.py.

Failing over before the lease expires (synchronous mode only)
-------------------------------------------------------------
When |S| - quorum + 1 members of S have detached, at most quorum - 1 members still stream from
the old leader, so it can no longer acknowledge any commit: that group is a fence as strong as
the lease. Followers detach from a leader only when they *suspect* it: its lease has not been
renewed for a few seconds and their WAL receiver lost it. The most advanced of them then
replaces the old key (a transaction on the key's revision) and revokes the old lease; the daemon
holds its `/leader` at 503 until the old leader, if it still runs, must have seen its standbys go
quiet and turned 503 itself (see timing.takeover_hold). In asynchronous mode there is no
such fence, so the followers wait for the lease to expire.
"""

from __future__ import annotations

from chef_backend.leader.state import (
    REFUSED,
    Action,
    Cause,
    Decision,
    Kind,
    LeaderKey,
    Observation,
    Peer,
    Role,
    SyncSet,
)
from chef_backend.leader.timing import TIE_GRACE_SECONDS


def decide(obs: Observation, required_active_followers: int = 0) -> Decision:
    """The next step for this node."""
    if not obs.etcd_ok:
        return _without_etcd(obs)
    if obs.leader is not None and obs.leader.guid == obs.me:
        if obs.leader.lease == obs.lease:
            return _as_leader(obs, required_active_followers)
        # Our GUID under another lease: the key of this node's previous run (a restarted manager).
        # It is not ours until a takeover binds it to our lease (the followers may be taking it over
        # at the same moment: the transaction on its revision lets only one of us win).
        return _leaderless(obs, takeover=obs.leader)
    if obs.leader is not None:
        if obs.leader_suspected and obs.synchronous and not obs.was_leader:
            return _leaderless(obs, takeover=obs.leader)
        return _as_follower(obs)
    return _leaderless(obs)


def _without_etcd(obs: Observation) -> Decision:
    if not obs.pg.running:
        return _start_detached(obs, "etcd unreachable; starting PostgreSQL detached (read-only)")
    if not obs.pg.in_recovery:
        if obs.lease_ok:
            # Our lease is still alive on etcd's side by our conservative clock: keep serving while
            # our synchronous standbys stream; the daemon fences the moment the lease ends.
            ready, why = _leader_ready(obs, 0)
            if not ready and standby_quorum(obs) is not None and not obs.hold_ready:
                # Cut off from etcd *and* from our standbys: the followers may be electing a new
                # leader. Stop now, not at the lease deadline: a commit whose wait for the standbys
                # is cancelled would be visible here after the new leader's first write.
                return Decision(Role.WAITING, False, (Action(Kind.FENCE),), f"etcd unreachable and {why}: fenced",
                                Cause.LEASE_LOST)
            return Decision(Role.LEADER, ready, (), f"etcd unreachable; leading until the lease deadline ({why})")
        return Decision(Role.WAITING, False, (Action(Kind.FENCE),), "etcd unreachable and lease lost: fenced",
                        Cause.LEASE_LOST)
    return Decision(Role.WAITING, False, (), "etcd unreachable")


def _start_detached(obs: Observation, reason: str) -> Decision:
    """A read-only standby that follows no one is harmless, and lets the node report its position."""
    actions = () if obs.detached else (Action(Kind.FOLLOW, None),)
    return _start_pg(obs, Role.WAITING, actions, reason)


def _start_pg(obs: Observation, role: Role, actions: tuple[Action, ...], reason: str) -> Decision:
    """Start PostgreSQL (after `actions`), unless we answered 200 moments ago: a frontend's HAProxy may
    open sessions here until its next check, and even read-only PostgreSQL would show them the commits
    that were waiting for our standbys when it stopped (fenced, crashed, stopped by an operator),
    which the next leader may not have."""
    if obs.routed:
        return Decision(role, False, actions, "waiting for the frontends to stop routing here "
                        "before starting PostgreSQL")
    return Decision(role, False, (*actions, Action(Kind.START_PG)), reason)


def _leader_ready(obs: Observation, required_active_followers: int) -> tuple[bool, str]:
    """Whether a primary holding the key may answer 200, and why (not)."""
    if obs.hold_ready:
        return False, "waiting for the old leader to be fenced"
    active = len(obs.pg.standbys)
    if active < required_active_followers:
        return False, f"waiting for {required_active_followers} active followers ({active} streaming)"
    sync = standby_quorum(obs)
    if sync is not None:
        streaming = len(set(obs.pg.standbys) & set(sync.members))
        if streaming < sync.quorum:
            # Commits would only hang; and the followers may be electing a new leader. Checked
            # with PostgreSQL's own set, known without etcd: a leader cut off from everyone must
            # turn 503 once its standbys go quiet, long before its lease deadline.
            return False, f"only {streaming} of {sync.quorum} needed synchronous standbys stream"
        if obs.promoted_from and not promotion_confirmed(obs, sync):
            # Until then a read could show a commit only we hold (the old leader's last, which only we
            # received, or our own unacknowledged tail), lost if we die before they have it.
            return False, "promoted: waiting for the synchronous standbys to hold everything it had then"
    return True, "leader"


def promotion_confirmed(obs: Observation, sync: SyncSet) -> bool:
    """Whether a quorum of the synchronous set has flushed everything we held when we promoted."""
    return obs.pg.flushed_past(sync.members, obs.promoted_from) >= sync.quorum


def standby_quorum(obs: Observation) -> SyncSet | None:
    """The synchronous standbys a leader's 200 depends on (None: no such dependence). Every set in
    force counts: PostgreSQL's own, and the published one when etcd answers."""
    if not obs.synchronous:
        return None
    sets = [s for s in (obs.applied_sync, obs.sync if obs.etcd_ok else SyncSet()) if s.members]
    if not sets:
        return None
    strictest = max(sets, key=lambda s: max(1, s.quorum))
    return SyncSet(strictest.members, max(1, strictest.quorum))


def _as_leader(obs: Observation, required_active_followers: int) -> Decision:
    if not obs.lease_ok:
        return Decision(Role.WAITING, False, (Action(Kind.FENCE),), "leader lease could not be renewed",
                        Cause.LEASE_LOST)
    if obs.unhealthy:
        reason = "stepping down: " + "; ".join(obs.unhealthy)
        return Decision(Role.WAITING, False, (Action(Kind.RELEASE), Action(Kind.FENCE)), reason,
                        obs.unhealthy_cause or Cause.UNHEALTHY)
    if obs.storage_full and _roomy_peer(obs):
        # Stepping down is the same path as for a failed PostgreSQL: the synchronous set elects
        # the most advanced follower. Without an eligible follower staying is better: reads work.
        reason = f"stepping down: {obs.storage_full}, and an eligible follower has room"
        return Decision(Role.WAITING, False, (Action(Kind.RELEASE), Action(Kind.FENCE)), reason, Cause.DISK_FULL)
    switchover = obs.switchover
    if switchover is not None and switchover.source == obs.me:
        target = obs.peers.get(switchover.target)
        if target is None or not target.eligible or not target.lease:
            return Decision(Role.LEADER, False, (Action(Kind.END_SWITCHOVER, target=REFUSED),),
                            f"switchover to {switchover.target} refused: it is not an eligible follower")
        if target.guid not in obs.pg.standbys:
            # Its last status may be a dead node's (its lease outlives it by up to the TTL): only a standby
            # streaming from us now receives every commit in the handover's flush.
            return Decision(Role.LEADER, False, (Action(Kind.END_SWITCHOVER, target=REFUSED),),
                            f"switchover to {switchover.target} refused: it is not streaming from this leader")
        heir = LeaderKey(target.guid, target.address, lease=target.lease)
        return Decision(Role.LEADER, False, (Action(Kind.HANDOVER, leader=heir),),
                        f"switchover: handing leadership to {target.guid}", Cause.SWITCHOVER)
    if not obs.pg.running:
        return _start_pg(obs, Role.PROMOTING, (), "starting PostgreSQL to lead")
    if obs.pg.in_recovery:
        if obs.handover_position is not None and obs.pg.position < obs.handover_position:
            return Decision(Role.WAITING, False, (Action(Kind.RELEASE), Action(Kind.END_SWITCHOVER, target=REFUSED)),
                            f"switchover refused: {obs.pg.position} is short of the old leader's "
                            f"{obs.handover_position}")
        actions = () if obs.detached else (Action(Kind.FOLLOW, None),)
        # Claim the key before promoting: rewriting it under our lease changes its revision, so a
        # takeover the followers prepared against the old revision fails, and if theirs came first
        # the claim fails and nothing is promoted. (A holder that fenced itself, cut off from etcd
        # and its standbys, and comes back while they take over must not promote too.) A
        # switchover's heir also records itself as the last leader here, before it can acknowledge
        # anything (the old leader recorded nothing: it holds every commit until then).
        claim = Action(Kind.CLAIM, position=obs.pg.position, target=None if obs.last_leader == obs.me else "history")
        # Promote with exactly the published set in force, so that no standby outside it can
        # acknowledge a commit before the first SET_SYNC.
        promote = Action(Kind.PROMOTE, sync=obs.sync, position=obs.pg.position)
        heir = switchover is not None and switchover.target == obs.me
        return Decision(Role.PROMOTING, False, (*actions, claim, promote), "promoting PostgreSQL",
                        Cause.SWITCHOVER if heir else Cause.NONE)
    actions: tuple[Action, ...] = ()
    wanted = desired_sync_set(obs)
    if wanted != obs.sync or wanted != obs.applied_sync:
        actions = (Action(Kind.SET_SYNC, sync=wanted),)
    ready, why = _leader_ready(obs, required_active_followers)
    if ready and switchover is not None and switchover.target == obs.me:
        actions = (*actions, Action(Kind.END_SWITCHOVER))
    return Decision(Role.LEADER, ready, actions, why)


def desired_sync_set(obs: Observation) -> SyncSet:
    """The synchronous set the leader should publish.

    Members join once they stream from us (so a joining node's base backup never blocks
    commits) and leave only when they leave the cluster. The quorum is a majority-style
    `max(1, (n-1)//2)` of the n members, capped by the set's size: 1 of 2 followers on three
    nodes, 2 of 4 on five.
    """
    if not obs.synchronous:
        return SyncSet()
    followers = set(obs.members) - {obs.me}
    members = tuple(sorted((set(obs.sync.members) | set(obs.pg.standbys)) & followers))
    if not members:
        return SyncSet()
    quorum = min(max(1, (len(obs.members) - 1) // 2), len(members))
    return SyncSet(members, quorum)


def _as_follower(obs: Observation) -> Decision:
    assert obs.leader is not None
    leader = obs.leader
    if (obs.pg.running and not obs.pg.in_recovery) or obs.was_leader:
        if leader.handover is not None and leader.fork is None:
            # Our switchover's heir has not promoted (claimed the key) yet, and may never: it may have died
            # meanwhile. Until it does, our WAL is the complete copy of every commit — re-syncing from the
            # heir could replace it with a shorter one. A primary here (none runs without the key unless
            # something went wrong) is fenced all the same: the key is not ours.
            primary = obs.pg.running and not obs.pg.in_recovery
            return Decision(Role.FOLLOWER, False, (Action(Kind.FENCE),) if primary else (),
                            f"waiting for {leader.guid} to promote (switchover)")
        # A former leader may hold WAL the new leader never had: rewind before serving anything. If
        # our timeline is past the leader's fork, the leader's new one may carry its number, and
        # pg_rewind would find nothing to do (see _repair): a base backup.
        fork = leader.fork
        past = fork is not None and obs.pg.running and obs.pg.position.timeline > fork.timeline
        return Decision(Role.FOLLOWER, False, (Action(Kind.REBUILD if past else Kind.REJOIN, leader.address),),
                        f"re-syncing from new leader {leader.guid}")
    if not obs.pg.running:
        return _start_pg(obs, Role.FOLLOWER, (Action(Kind.FOLLOW, leader.address),),
                         "starting PostgreSQL as a follower")
    if obs.leader_silent and obs.synchronous and obs.pg.in_recovery:
        # Our stream from the leader broke and its manager does not answer: stop streaming now rather
        # than once the silence makes it suspect, so that our position is final by then and the
        # takeover can follow the suspicion at once (its hold counts from this detachment: the old
        # leader's 200 ends within STANDBY_STALE of our last receipt, however late our replies reach
        # it, step._standbys_quiet_since). A receiver it would restart could not reach it anyway; if
        # it answers again, we follow again (retracting a final report first).
        if obs.detached:
            return Decision(Role.FOLLOWER, False, (), f"leader {leader.guid} silent: detached until it answers")
        return Decision(Role.FOLLOWER, False, (Action(Kind.FOLLOW, None),), f"leader {leader.guid} silent: detaching")
    repair = _repair(obs, leader) if obs.stream_stuck else None
    if repair is not None:
        # Our WAL holds what the leader never had (received from an old leader after another took
        # over): streaming cannot resume.
        return Decision(Role.FOLLOWER, False, (Action(repair, leader.address),),
                        f"cannot stream from {leader.guid}, diverged: re-syncing")
    if obs.following != leader.address:
        return Decision(Role.FOLLOWER, False, (Action(Kind.FOLLOW, leader.address),), f"following {leader.guid}")
    return Decision(Role.FOLLOWER, False, (), f"following {leader.guid}")


def _repair(obs: Observation, leader: LeaderKey) -> Kind | None:
    """How a follower that cannot stream puts right WAL that went past the leader's history (None:
    it did not, as far as we can tell). pg_rewind (REJOIN; a no-op if we were wrong) when our
    timeline is older than the leader's; a base backup (REBUILD) when it may carry the leader's
    timeline number: pg_rewind tells timelines apart by number ("source and target cluster are on
    the same timeline": nothing to do), and two nodes that promoted from the same timeline without
    hearing of each other both call theirs N + 1."""
    pos, fork = obs.pg.position, leader.fork
    if fork is not None and pos.timeline <= fork.timeline and pos.lsn > fork.lsn:
        return Kind.REJOIN
    start = obs.pg.timeline_start
    if fork is not None and start is not None and pos.timeline > fork.timeline and start > fork.lsn:
        # Our timeline began after the leader's forked (its switch point is at most its recorded
        # fork position): whatever its number, it is another history than the leader's.
        return Kind.REBUILD
    if fork is not None and pos.timeline > fork.timeline and not obs.streamed_from_leader:
        # A timeline past the fork that we never streamed from this leader: the leader's own, or
        # another that began at the same point (its holder promoted from the same position, then
        # died before anyone else received its timeline). Neither number nor switch point tells.
        return Kind.REBUILD
    report = obs.peers.get(leader.guid)
    if report is not None and report.role == Role.LEADER.value and report.position.timeline > pos.timeline:
        return Kind.REJOIN
    return None


def _leaderless(obs: Observation, takeover: LeaderKey | None = None) -> Decision:
    """No usable leader: report a final position, and take over if this node is the one."""
    gone = f"leader {takeover.guid} looks dead" if takeover else "no leader"
    primary = obs.pg.running and not obs.pg.in_recovery
    if not obs.pg.running:
        return _start_detached(obs, f"{gone}: starting PostgreSQL detached to report its position")
    if not primary and not obs.detached:
        # Stop streaming first: our position must be final before it is compared, and the old
        # leader (if it still runs) must not get commits acknowledged through us.
        return Decision(Role.WAITING, False, (Action(Kind.FOLLOW, None),), f"{gone}: detaching")
    why_not = candidacy(obs)
    if why_not is None:
        guards = tuple(sorted((g, obs.peers[g].mod_revision) for g in reporters(obs) if g in obs.peers))
        if takeover is not None:
            # Our own key from a previous run over a primary that kept running: its timeline still
            # forks where it did.
            fork = takeover.fork if takeover.guid == obs.me and primary else obs.pg.position
            action = Action(Kind.TAKEOVER, leader=takeover, guards=guards, position=fork,
                            sync_revision=obs.sync_revision)
            return Decision(Role.PROMOTING, False, (action,), f"{gone}: taking over", Cause.LEADER_DEAD)
        action = Action(Kind.ACQUIRE, guards=guards, position=obs.pg.position, sync_revision=obs.sync_revision)
        return Decision(Role.PROMOTING, False, (action,), f"{gone}: taking leadership",
                        Cause.FORCED if obs.force_leader else Cause.NO_LEADER)
    if primary:
        return Decision(Role.WAITING, False, (Action(Kind.FENCE),), f"primary without leadership: {why_not}")
    return Decision(Role.WAITING, False, (), f"{gone}; not a candidate: {why_not}")


def _roomy_peer(obs: Observation) -> bool:
    """Whether another node that may lead has room on its PostgreSQL filesystem."""
    old = obs.leader.guid if obs.leader is not None else None
    return any(p.fresh and p.eligible and not p.storage_full for g, p in obs.peers.items() if g != old)


def candidacy(obs: Observation) -> str | None:
    """None if this node may take leadership now, else why not."""
    if obs.ineligible:
        return "; ".join(obs.ineligible)
    if obs.storage_full and _roomy_peer(obs):
        return f"{obs.storage_full}; a node with room can lead"
    if not obs.pg.running:
        return "PostgreSQL is not running"
    if obs.pg.in_recovery and not obs.final:
        return "waiting for our own position to be final"
    if not obs.lease_ok:
        return "no etcd lease"
    if obs.switchover is not None and obs.switchover.target != obs.me:
        return f"switchover to {obs.switchover.target} in progress"
    if obs.force_leader:
        return None  # the operator's explicit choice (force-leader), made while no leader exists
    bootstrap = obs.last_leader is None
    was_last = obs.last_leader == obs.me
    if not obs.failover_enabled and not (bootstrap or was_last):
        return "automatic failover is disabled"

    me_pos = obs.pg.position
    # A suspected leader's own (stale) report is no evidence about anything.
    old = obs.leader.guid if obs.leader is not None else None
    fresh = {g: p for g, p in obs.peers.items() if p.fresh and g != old}
    if obs.synchronous:
        # The last leader holds every commit it acknowledged, and no later leader existed.
        if not was_last:
            sync = obs.sync
            if not sync.members:
                if not bootstrap:
                    return "no synchronous standby was ever confirmed; only the last leader may lead"
            elif obs.me not in sync.members:
                return "not in the synchronous set"
            else:
                have = reporters(obs)
                needed = len(sync.members) - sync.quorum + 1
                if len(have) < needed:
                    return f"waiting for {needed} of the synchronous set to report (have {len(have)})"
        # Being at least as far as the synchronous set is what safety needs. Beyond it, defer only to
        # nodes that could lead instead: an ineligible ex-leader's unacknowledged WAL (or a full
        # disk's), or a node outside the set that is not the last leader (it never may lead), must
        # not keep everyone else from leading. With no set confirmed, only the last leader may lead
        # (or anyone at a bootstrap): an older leader's tail, on a timeline whose number ours may
        # share, is no reason for the last leader to wait.
        def could_lead(g: str, p: Peer) -> bool:
            may = g in obs.sync.members or g == obs.last_leader or (not obs.sync.members and bootstrap)
            return may and p.eligible and (obs.storage_full is not None or not p.storage_full)

        compared = {g: p for g, p in fresh.items() if g in obs.sync.members or could_lead(g, p)}
    else:
        majority = len(obs.members) // 2 + 1
        if len(fresh) + 1 < majority:
            return f"waiting for a majority to report ({len(fresh) + 1} of {len(obs.members)})"
        compared = {g: p for g, p in fresh.items() if p.eligible}

    for guid, peer in sorted(compared.items()):
        if peer.position > me_pos:
            return f"behind {guid} ({me_pos} < {peer.position})"
    if obs.leaderless_seconds < TIE_GRACE_SECONDS:
        for guid, peer in sorted(fresh.items()):
            if peer.eligible and peer.position == me_pos and guid != obs.me:
                if guid == obs.last_leader or (not was_last and guid < obs.me):
                    return f"deferring to equally advanced {guid}"
    return None


def reporters(obs: Observation) -> set[str]:
    """The members of the synchronous set whose final positions count now (this node included)."""
    old = obs.leader.guid if obs.leader is not None else None
    return {g for g in obs.sync.members
            if g == obs.me or (g != old and g in obs.peers and obs.peers[g].fresh and obs.peers[g].final)}
