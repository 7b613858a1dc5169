"""Models of what the leader managers talk to: etcd, PostgreSQL and the network.

Everything is driven by the scheduler's real time `now` (seconds); no model reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chef_backend.leader.state import Position, SyncSet

PORTS = ("pg", "http", "etcd")


# --- network --------------------------------------------------------------------------------------------

@dataclass
class Network:
    """Which node can reach which, per port and per direction (a cut of (a, b, port) drops what a
    sends to b on that port: the other direction still works)."""

    cut: set[tuple[int, int, str]] = field(default_factory=set)

    def ok(self, a: int, b: int, port: str) -> bool:
        """Whether a request from a to b's `port` gets an answer (both directions needed)."""
        return a == b or ((a, b, port) not in self.cut and (b, a, port) not in self.cut)

    def delivers(self, a: int, b: int, port: str) -> bool:
        return a == b or (a, b, port) not in self.cut


# --- HAProxy --------------------------------------------------------------------------------------------

@dataclass
class HAProxy:
    """One Chef frontend's HAProxy in front of PostgreSQL: which servers its last check of /leader
    found up (rise 1 fall 1). It opens new sessions on those only, and shuts a server's sessions down
    when a check marks it down (`on-marked-down shutdown-sessions`)."""

    name: str
    up: set[int] = field(default_factory=set)


# --- etcd -----------------------------------------------------------------------------------------------

@dataclass
class Entry:
    value: Any
    create_revision: int
    mod_revision: int
    lease: int


@dataclass
class Etcd:
    """A linearizable key-value store with revisions, leases (expiring by real time) and
    transactions. Every operation happens at one instant, in the scheduler's order."""

    kv: dict[str, Entry] = field(default_factory=dict)
    revision: int = 1
    leases: dict[int, tuple[float, float]] = field(default_factory=dict)  # id -> (expiry, ttl)
    next_lease: int = 100

    def expire(self, now: float) -> None:
        for lid, (expiry, _) in list(self.leases.items()):
            if expiry <= now:
                self.revoke(lid)

    def grant(self, ttl: float, now: float) -> int:
        self.next_lease += 1
        self.leases[self.next_lease] = (now + ttl, ttl)
        return self.next_lease

    def keepalive(self, lid: int, now: float) -> float:
        if lid not in self.leases:
            return 0.0
        ttl = self.leases[lid][1]
        self.leases[lid] = (now + ttl, ttl)
        return ttl

    def revoke(self, lid: int) -> None:
        if self.leases.pop(lid, None) is None:
            return
        for key in [k for k, e in self.kv.items() if e.lease == lid]:
            self.revision += 1
            del self.kv[key]

    def put(self, key: str, value: Any, lease: int = 0) -> bool:
        if lease and lease not in self.leases:
            return False  # etcd refuses a put with an unknown lease
        self.revision += 1
        old = self.kv.get(key)
        self.kv[key] = Entry(value, old.create_revision if old else self.revision, self.revision, lease)
        return True

    def delete(self, key: str) -> None:
        if key in self.kv:
            self.revision += 1
            del self.kv[key]

    def txn(self, compares: list[tuple[str, str, int]], puts: list[tuple[str, Any, int]]) -> bool:
        """compares: (key, "mod"|"lease"|"create", expected); puts: (key, value, lease)."""
        for key, what, expected in compares:
            e = self.kv.get(key)
            actual = 0 if e is None else {"mod": e.mod_revision, "lease": e.lease, "create": e.create_revision}[what]
            if actual != expected:
                return False
        if any(lease and lease not in self.leases for _, _, lease in puts):
            return False
        for key, value, lease in puts:
            self.put(key, value, lease)
        return True


# --- PostgreSQL -----------------------------------------------------------------------------------------

Record = tuple[str, int]  # ("c", commit id) or ("p", promotion id): WAL records, unique cluster-wide


@dataclass
class Pg:
    """One node's PostgreSQL: its WAL as a list of unique records (a promotion record starts a new
    timeline), its role, its WAL receiver, and on a primary its standbys' replies."""

    wal: list[Record] = field(default_factory=list)
    running: bool = False
    starts: int = 0  # how often the server started: a connection to an earlier start is dead
    frozen: bool = False  # SIGSTOP
    want_up: bool = False  # runit's wish: a crashed server comes back
    finish_until: float = 0.0  # after an exit nobody asked for, runsv's `finish` pauses until then
    accepting_at: float = 0.0  # a starting server accepts connections from then on
    in_recovery: bool = True
    replayed: int = 0  # how much of the WAL is replayed (a restart starts from a restartpoint)
    conninfo: str | None = None  # primary_conninfo's host, as last reloaded (None: detached)
    receiver: str | None = None  # the host the running WAL receiver streams from
    receiver_connected: bool = False
    receiver_upstream_start: int = 0  # which start of the upstream's server the connection is to
    receiver_heard: float = 0.0  # last message from the upstream (wal_receiver_timeout 10 s)
    receiver_linger_until: float = 0.0  # a receiver told to stop keeps going until then (replay conflict)
    receiving_since_start: bool = False  # pg_last_wal_receive_lsn() is NULL until the receiver got something
    sync: SyncSet = field(default_factory=SyncSet)  # synchronous_standby_names
    # standby -> (flush, reply time: when the standby sent it, heard: when this server received it)
    replies: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    # Replies on their way here, in the order sent: (not before, standby, flush, sent at). TCP delivers
    # them in order, once both directions work and a retransmission got through.
    inflight: list[tuple[float, str, int, float]] = field(default_factory=list)
    status_sent: float = float("-inf")  # as a standby: the last reply its WAL receiver sent
    # (WAL index, issued at, sent through HAProxy) waiting for standbys
    pending: list[tuple[int, float, bool]] = field(default_factory=list)

    @property
    def timeline(self) -> int:
        return 1 + sum(1 for kind, _ in self.wal if kind == "p")

    def position(self) -> Position:
        """max(receive, replay) as the leader manager's query reports it."""
        if not self.in_recovery:
            return Position(self.timeline, len(self.wal))
        lsn = self.replayed
        if self.receiving_since_start:
            lsn = max(lsn, len(self.wal))
        return Position(1 + sum(1 for kind, _ in self.wal[:lsn] if kind == "p"), lsn)

    def timeline_start(self) -> int:
        """Where the current timeline began: the index of the last promotion record it holds."""
        lsn = self.position().lsn
        return max((i for i, (kind, _) in enumerate(self.wal[:lsn]) if kind == "p"), default=0)

    def primary(self) -> bool:
        return self.running and not self.in_recovery

    def acks(self, index: int, now: float) -> bool:
        """Whether the commit at WAL `index` is acknowledged by enough synchronous standbys."""
        if not self.sync.members:
            return True
        have = sum(1 for m in self.sync.members if m in self.replies and self.replies[m][0] > index)
        return have >= self.sync.quorum
