"""What the leader manager observes and what it may do: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    LEADER = "leader"
    PROMOTING = "promoting"
    FOLLOWER = "follower"
    WAITING = "waiting_for_leader"


class Cause(StrEnum):
    """Why a decision takes or gives up leadership, as a fixed value (the reason text varies);
    posted in the status and counted by /metrics."""

    NONE = ""
    LEADER_DEAD = "leader_dead"
    NO_LEADER = "no_leader"
    FORCED = "forced"
    SWITCHOVER = "switchover"
    LEASE_LOST = "lease_lost"
    DISK_FULL = "disk_full"
    SEARCH_UNHEALTHY = "search_unhealthy"
    POSTGRESQL_UNHEALTHY = "postgresql_unhealthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, order=True)
class Position:
    """How far a node's WAL goes: timeline first, then LSN (bytes)."""

    timeline: int = 0
    lsn: int = 0

    def __str__(self) -> str:
        return f"{self.timeline}/{self.lsn:X}"


@dataclass(frozen=True)
class PgState:
    """The local PostgreSQL as last seen."""

    running: bool = False
    in_recovery: bool = True
    position: Position = Position()
    upstream: str | None = None  # host the WAL receiver streams from
    streaming: bool = False
    standbys: tuple[str, ...] = ()  # GUIDs that flushed a recent heartbeat of ours (we are primary)
    fresh_until: tuple[tuple[str, float], ...] = ()  # (GUID, until when it counts as streaming from us)
    receiving: bool = False  # a WAL receiver process exists (in whatever state)
    # In recovery, the startup process waits for WAL that no source has: everything on disk is
    # replayed, so the replay position is the end of this node's WAL (not a restartpoint's).
    wal_exhausted: bool = False
    flushed: tuple[tuple[str, int], ...] = ()  # (GUID, flush LSN) of each standby streaming from us
    # In recovery: the LSN where our current timeline began (its history file's last switch point;
    # 0 on timeline 1; None when unknown). Timeline *numbers* can collide: two nodes that promoted
    # from the same timeline without hearing of each other both call theirs N + 1.
    timeline_start: int | None = None

    def flushed_past(self, members: tuple[str, ...], lsn: int) -> int:
        """How many of `members` stream from us and have flushed our WAL up to `lsn` or beyond."""
        return sum(1 for g, flushed in self.flushed if g in members and flushed >= lsn)


@dataclass(frozen=True)
class LeaderKey:
    guid: str
    address: str
    mod_revision: int = 0
    lease: int = 0
    handover: Position | None = None  # after a switchover: the old leader's final position
    fork: Position | None = None  # where the holder's timeline forks: its position when it took the key


@dataclass(frozen=True)
class Peer:
    """What another member last posted."""

    guid: str
    address: str
    role: str
    eligible: bool
    position: Position
    detached: bool  # it follows no one (its standby configuration streams from no one)
    fresh: bool  # posted after this node last saw a leader, so its position is current
    lease: int = 0  # the lease its status is bound to (a switchover hands the leader key to it)
    storage_full: bool = False  # its PostgreSQL filesystem is full: it leads only if no one with room can
    mod_revision: int = 0  # of its status key: a takeover is conditioned on the reports it counted
    # Its position can no longer grow: PostgreSQL runs in recovery, follows no one, has no WAL
    # receiver, and showed the same position at two looks in a row. Only such a report counts.
    final: bool = False
    # With `final`: for how long, when it posted, it had had no WAL receiver that could receive anything
    receiver_gone_for: float = 0.0


@dataclass(frozen=True)
class SyncSet:
    """The leader's synchronous standbys as published in etcd: every acknowledged commit is on
    the leader and on at least `quorum` of `members`."""

    members: tuple[str, ...] = ()
    quorum: int = 0


@dataclass(frozen=True)
class Switchover:
    """An operator's promote/demote: hand leadership from `source` to `target`."""

    source: str
    target: str


@dataclass(frozen=True)
class Observation:
    """Everything a decision needs, gathered in one tick."""

    me: str
    etcd_ok: bool
    lease_ok: bool  # our lease is alive by our own (conservative) clock
    leader: LeaderKey | None
    pg: PgState
    ineligible: tuple[str, ...]  # reasons this node may not lead; empty when it may
    unhealthy: tuple[str, ...]  # reasons a leader must step down; empty when healthy
    members: tuple[str, ...]  # registered GUIDs, this node included
    peers: dict[str, Peer] = field(default_factory=dict)
    sync: SyncSet = SyncSet()  # as published in etcd
    sync_revision: int = 0  # the published set's mod revision: a takeover counts on it staying
    applied_sync: SyncSet = SyncSet()  # as PostgreSQL's synchronous_standby_names has it here
    synchronous: bool = True
    last_leader: str | None = None
    failover_enabled: bool = True
    was_leader: bool = False  # this node promoted and has not re-synced since: it may have diverged
    leaderless_seconds: float = 0.0
    following: str | None = None  # the host our standby configuration streams from (None: detached)
    # The leader key exists but its holder looks dead: its lease has not been renewed for a while
    # and our WAL receiver lost it. Only then may the synchronous set take over before the TTL.
    leader_suspected: bool = False
    # Our WAL receiver lost the leader and its manager did not answer our last look, for less long
    # than makes it suspect (or longer: then leader_suspected too).
    leader_silent: bool = False
    hold_ready: bool = False  # just took over: wait until the old leader must have stopped answering 200
    # Our WAL end when we promoted, while fewer than a quorum of our synchronous standbys have flushed
    # that far (0 otherwise): until they have, what we hold may be ours alone.
    promoted_from: int = 0
    routed: bool = False  # answered 200 moments ago: a frontend's HAProxy may still open sessions here
    switchover: Switchover | None = None
    force_leader: bool = False  # the operator's force-leader names this node
    handover_position: Position | None = None  # in the leader key after a switchover: promote from here on
    # Why PostgreSQL's own filesystem (data or WAL) has no room left; None while it has. Such a
    # node cannot take writes, so a leader hands over to an eligible follower with room, and such a
    # node is a candidate only when no node with room is.
    storage_full: str | None = None
    final: bool = False  # our own position is final (see Peer.final)
    lease: int = 0  # our lease: the leader key is ours only if bound to it
    stream_stuck: bool = False  # told to follow the leader for a while, and not streaming from it
    # We streamed from the current leader key's holder since this manager started: our timeline is its.
    streamed_from_leader: bool = False
    unhealthy_cause: Cause = Cause.NONE  # the first of `unhealthy`, as a fixed value

    @property
    def detached(self) -> bool:
        """Our WAL receiver has been told to stop: our position can no longer grow."""
        return self.following is None


class Kind(StrEnum):
    ACQUIRE = "acquire"  # take the leader key (create-if-absent)
    TAKEOVER = "takeover"  # replace a dead leader's key (compare its revision) and revoke its lease
    PROMOTE = "promote"  # pg_promote()
    RELEASE = "release"  # delete the leader key if it is still ours
    FENCE = "fence"  # stop PostgreSQL now: it must not accept writes
    START_PG = "start_pg"
    FOLLOW = "follow"  # stream from `target` (or from no one, detached, when target is None)
    REJOIN = "rejoin"  # pg_rewind (or a base backup) from `target`, then follow it
    HANDOVER = "handover"  # switchover: stop PostgreSQL cleanly, give the key to `target`
    END_SWITCHOVER = "end_switchover"  # delete the switchover request (target REFUSED: record why)
    # Rewrite our key under our lease (a new revision: a takeover prepared against the old one fails)
    # before promoting; with target "history", also record this node as the last leader.
    CLAIM = "claim"
    RESTART_PG = "restart_pg"  # a fast restart: stops a WAL receiver that outlived its detachment
    SET_SYNC = "set_sync"  # move to a synchronous standby set (step.py splits it in the two below)
    PUBLISH_SYNC = "publish_sync"  # write the synchronous set to etcd
    APPLY_SYNC = "apply_sync"  # set PostgreSQL's synchronous_standby_names
    REWIND = "rewind"  # stop PostgreSQL, pg_rewind from `target`, follow it, start (step.py's REJOIN)
    REBUILD = "rebuild"  # stop PostgreSQL, a new base backup from `target`, follow it, start
    POST_STATUS = "post_status"  # publish this node's status (the plan's report) under our lease


REFUSED = "refused"  # END_SWITCHOVER's target when the request was refused, not done


@dataclass(frozen=True)
class Action:
    kind: Kind
    target: str | None = None
    sync: SyncSet | None = None
    leader: LeaderKey | None = None  # the key a TAKEOVER replaces; the node a HANDOVER gives it to
    report: Report | None = None  # what a POST_STATUS posts
    # (GUID, mod revision) of every status a TAKEOVER or ACQUIRE counted: it happens only if none changed
    guards: tuple[tuple[str, int], ...] = ()
    # ACQUIRE, TAKEOVER: the published synchronous set's mod revision when the reports were counted
    # against it; the transaction fails if a leader has published another set since. PUBLISH_SYNC:
    # the set it replaces (a publication held up in etcd cannot land after a later one)
    sync_revision: int | None = None
    position: Position | None = None  # ACQUIRE/TAKEOVER: our final position (the fork point); APPLY_SYNC: the WAL end
    # POST_STATUS that retracts a final report: post it only while the leader key's mod revision is
    # still this (0: no key), the key the decision to move saw. HANDOVER, RELEASE: only while our key
    # is still the one the decision saw (one held up in etcd must not land after we claimed it again)
    leader_revision: int | None = None
    # POST_STATUS: only while our status key's mod revision is still this (0: absent). A post held up
    # in etcd (its answer lost, the Store gone on to the next member) then cannot land after a later
    # one: a final report must not come back after its node retracted it and re-attached
    status_revision: int | None = None
    # TAKEOVER: by then, on our clock, every synchronous standby it counted had stopped receiving from
    # the old leader (the takeover hold runs from here; None: from the takeover itself)
    quiet_since: float | None = None


@dataclass(frozen=True)
class Decision:
    role: Role
    ready: bool  # answer 200 on /leader
    actions: tuple[Action, ...]
    reason: str
    cause: Cause = Cause.NONE



# --- the step function's inputs and memory (see step.py) ------------------------------------------------

@dataclass(frozen=True)
class History:
    """The last leadership change recorded in etcd, and the revision of the history key."""

    last_leader: str | None = None
    mod_revision: int = 0


@dataclass(frozen=True)
class EtcdView:
    """The cluster's records, read at one etcd revision."""

    revision: int
    leader: LeaderKey | None
    members: tuple[str, ...]
    peers: dict[str, Peer]  # every other member's last status, freshness not yet judged
    sync: SyncSet
    history: History
    switchover: Switchover | None = None
    sync_revision: int = 0  # the sync key's mod revision (0: absent)
    status_revisions: dict[str, int] = field(default_factory=dict)  # every status key's mod revision
    failover_enabled: bool = True
    blocked: tuple[str, ...] = ()  # nodes whose failover the operator turned off
    force_leader: str | None = None


@dataclass(frozen=True)
class Knobs:
    """The settings the policy reads (from leaderl.json; a reload changes them)."""

    synchronous: bool = True
    required_active_followers: int = 0
    max_bytes_behind_leader: int = 1 << 30
    max_pgsql_failures: int = 5
    max_search_failures: int = 5
    health_interval: float = 5.0
    fatal_system_checks: bool = False
    status_interval: float = 10.0


@dataclass(frozen=True)
class Lease:
    """This tick's lease renewal: the lease id, when the (successful) request was sent, its TTL.
    `lease == 0`: no lease (the renewal failed, or etcd said it had expired)."""

    lease: int = 0
    sent_at: float = 0.0
    ttl: float = 0.0


@dataclass(frozen=True)
class Health:
    """This node's own checks (run by the daemon every health interval; None: not run this tick)."""

    disk_problems: tuple[str, ...] = ()
    storage_full: str | None = None
    search_answered: bool | None = None  # None: not checked this tick, or no search service
    unsynced: str | None = None  # why a (re-)sync failed or is in progress; None when in sync
    was_leader: bool = False  # promoted and not re-synced since: the data may have diverged


@dataclass(frozen=True)
class Sensed:
    """Everything the daemon looked at in one tick: the step function's input."""

    me: str
    address: str
    pg: PgState  # running=False when PostgreSQL is down or its check failed
    etcd: EtcdView | None  # None: etcd unreachable
    lease: Lease | None  # None: not renewed this tick (etcd unreachable)
    health: Health
    knobs: Knobs
    leader_answers: bool | None = None  # the leader's manager answered /status (None: not asked)
    old_leader_code: int | None = None  # after a takeover, the old leader's /leader: 0 = refused, None = silent
    observed_at: float = 0.0  # when PostgreSQL was looked at (clock())


@dataclass(frozen=True)
class Memory:
    """What the leader manager carries from one tick to the next."""

    lease: int = 0
    deadline: float = 0.0  # our lease is ours until then by our clock (see timing.fence_deadline)
    following: str | None = None  # the host standby.conf streams from; None = detached
    applied_sync: SyncSet = SyncSet()  # synchronous_standby_names as PostgreSQL has it
    pg_failures: int = 0
    last_pg_failure: float = -1e9
    etcd_failures: int = 0
    search_failures: int = 0
    search_seen: bool = False
    disk_problems: tuple[str, ...] = ()
    storage_full: str | None = None
    leaderless_since: float | None = None
    leaderless_revision: int = 0
    unreachable_since: float | None = None  # since when the leader's manager has not answered us
    suspected_key: tuple[str, int] | None = None  # (GUID, revision) of the leader key `unreachable_since` is about
    hold_until: float = 0.0  # after a takeover: no 200 before this
    hold_probe: str | None = None  # the old leader's address, probed to end the hold early
    promoted_from: int = 0  # Observation.promoted_from, kept until a quorum of the standbys confirmed it
    last_rejoin: float = -1e9
    rewind_failed: bool = False  # the last pg_rewind failed: re-copy next time
    ready_until: float = 0.0  # /leader answers 200 until then (and before `deadline`)
    served_until: float = 0.0  # the latest ready_until: the frontends route here until a while after
    last_post: float = -1e9
    last_report: Report | None = None
    # A post of this run has landed. Until then a post of the run before (a manager killed while
    # its post was held up in etcd) may still land: it may be a final report this run never saw.
    posted: bool = False
    last_obs: Observation | None = None  # for refreshing "ready" from a fresh look at PostgreSQL
    last_position: Position | None = None  # at the last look, if PostgreSQL was detached and receiving nothing
    still_since: float | None = None  # the tick whose look began the current run of such looks
    detached_at: float | None = None  # when we last stopped following
    # The synchronous set last applied and the WAL end then: a stricter set is published exactly only
    # once enough of its members have flushed that far (until then the union stays published).
    sync_switch: tuple[SyncSet, int] | None = None
    stuck_since: float | None = None  # since when we follow the leader without streaming from it
    streamed_from: tuple[str, Position | None] | None = None  # (GUID, fork) of the leader key we last streamed from


@dataclass(frozen=True)
class Report:
    """The policy's part of the status a node posts (records.encode_status adds the rest)."""

    role: Role
    ready: bool
    reason: str
    eligible: bool
    ineligible: tuple[str, ...]
    storage_full: str | None
    leader: str | None
    position: Position
    detached: bool
    final: bool
    pg_running: bool
    pg_in_recovery: bool
    pg_streaming: bool
    upstream: str | None
    standbys: tuple[str, ...]
    cause: Cause = Cause.NONE
    receiver_gone_for: float = 0.0  # with `final`: how long we have had no WAL receiver (Peer.receiver_gone_for)


@dataclass(frozen=True)
class Plan:
    """One step's output: the decision, the actions in order, and what /leader publishes."""

    decision: Decision
    actions: tuple[Action, ...]
    report: Report
    ready_until: float
    deadline: float
    urgent: bool
