"""What the leader manager observes and what it may do: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    LEADER = "leader"
    PROMOTING = "promoting"
    FOLLOWER = "follower"
    WAITING = "waiting_for_leader"


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
    standbys: tuple[str, ...] = ()  # GUIDs streaming from us with a recent reply (we are primary)


@dataclass(frozen=True)
class LeaderKey:
    guid: str
    address: str
    mod_revision: int = 0
    lease: int = 0


@dataclass(frozen=True)
class Peer:
    """What another member last posted."""

    guid: str
    address: str
    role: str
    eligible: bool
    position: Position
    detached: bool  # its WAL receiver is stopped: its position can no longer grow
    fresh: bool  # posted after this node last saw a leader, so its position is current
    lease: int = 0  # the lease its status is bound to (a switchover hands the leader key to it)
    storage_full: bool = False  # its PostgreSQL filesystem is full: it leads only if no one with room can


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
    hold_ready: bool = False  # just took over: wait until the old leader must have stopped answering 200
    just_promoted: bool = False  # promoted moments ago: followers are still re-attaching
    switchover: Switchover | None = None
    force_leader: bool = False  # the operator's force-leader names this node
    handover_position: Position | None = None  # in the leader key after a switchover: promote from here on
    # Why PostgreSQL's own filesystem (data or WAL) has no room left; None while it has. Such a
    # node cannot take writes, so a leader hands over to an eligible follower with room, and such a
    # node is a candidate only when no node with room is.
    storage_full: str | None = None

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
    END_SWITCHOVER = "end_switchover"  # delete the switchover request
    SET_SYNC = "set_sync"  # publish/apply the synchronous standby set


@dataclass(frozen=True)
class Action:
    kind: Kind
    target: str | None = None
    sync: SyncSet | None = None
    leader: LeaderKey | None = None  # the key a TAKEOVER replaces; the node a HANDOVER gives it to


@dataclass(frozen=True)
class Decision:
    role: Role
    ready: bool  # answer 200 on /leader
    actions: tuple[Action, ...]
    reason: str

