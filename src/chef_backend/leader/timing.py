"""Every timing constant of the leader manager, and the inequalities between them.

All times are seconds on one clock, `clock()`: CLOCK_BOOTTIME, which (unlike CLOCK_MONOTONIC)
keeps counting while the machine or VM is suspended, so that a node resumed after a suspension
does not believe its lease or its last "ready" are still fresh.

The inequalities that make failover safe are functions here and are checked by
tests/unit/test_timing.py for every TTL the settings accept.
"""

from __future__ import annotations

import time

TICK_SECONDS = 1.0
URGENT_TICK_SECONDS = 0.25  # while leadership moves: every fraction of a second is write outage
# A leader whose WAL stream we lost and whose manager has not answered for this long is suspect.
SUSPECT_AFTER_SECONDS = 1.25
# How often a primary's readiness watcher looks at PostgreSQL (daemon.Manager.keep_ready); after
# each look it writes a WAL heartbeat, which every streaming standby flushes and reports at once.
READY_LOOK_SECONDS = 0.25
# A standby that has flushed no heartbeat written in this long is gone: four heartbeats missed.
# Counted from the heartbeat's write, not from the reply: a receiver that gets nothing still replies
# (wal_receiver_status_interval), and a reply may arrive late; neither may keep a standby fresh.
STANDBY_STALE_SECONDS = 1.25
# How long one look's "ready" keeps /leader at 200: a frozen or blocked loop cannot keep answering 200.
READY_VALIDITY_SECONDS = 1.5
# Equally advanced candidates defer to the last leader (or the smaller GUID) this long.
TIE_GRACE_SECONDS = 3.0
REJOIN_BACKOFF_SECONDS = 15.0
# A detached standby whose WAL receiver still runs after this long (PostgreSQL restarts it only
# when the startup process next needs WAL) is restarted: its position must become final.
RECEIVER_STOP_GRACE_SECONDS = 3.0
# A follower that has not streamed from its leader for this long checks whether it diverged.
STREAM_STUCK_SECONDS = 5.0
# Drift between nodes' clock *rates* over one hold (NTP keeps rates within 500 ppm; we allow 1%).
RATE_DRIFT = 0.01
# A look at PostgreSQL that takes longer than this counts as a failed check (a frozen server).
PG_CHECK_TIMEOUT_SECONDS = 3.0
# How often a Chef frontend's HAProxy checks /leader on a member it routes to (frontend/haproxy.py:
# `inter 2s fall 1`); until its next check it keeps opening sessions to a member that stopped
# answering 200.
FRONTEND_CHECK_SECONDS = 2.0
# How long that check waits for an answer (`timeout check 1s`): a frozen manager's host still
# accepts the connection, so the check fails only then.
FRONTEND_CHECK_TIMEOUT_SECONDS = 1.0


def clock() -> float:
    """The leader manager's clock: seconds, monotonic, counting through suspensions."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def lease_margin(ttl: float) -> float:
    """How long before etcd could expire our lease we stop answering 200 and fence."""
    return max(2.0, ttl / 5.0)


def fence_deadline(sent_at: float, ttl: float) -> float:
    """Until when a lease renewed by a request sent at `sent_at` is ours by our own clock. etcd
    restarts the lease when it handles the request, after `sent_at`, and never shortens it."""
    return sent_at + ttl * (1 - RATE_DRIFT) - lease_margin(ttl)


def old_leader_quiet_after() -> float:
    """After the synchronous standbys that detached stopped receiving, how long the old leader can
    keep answering 200, whatever its loop is doing (even blocked on an unreachable etcd) and however
    late their last replies reach it: its 200 needs a quorum of standbys that flushed a heartbeat
    written less than STANDBY_STALE ago (step.ready_until caps it there), a just-promoted leader
    included; a heartbeat a standby flushed was written before it stopped receiving."""
    return STANDBY_STALE_SECONDS


def frontends_route_after_200() -> float:
    """How long after its last 200 a member may still get new sessions from a frontend's HAProxy:
    until that HAProxy's next check has failed (it may wait out its timeout on a frozen manager),
    by our clock, plus one urgent tick for the check's round trip."""
    return (FRONTEND_CHECK_SECONDS + FRONTEND_CHECK_TIMEOUT_SECONDS) * (1 + RATE_DRIFT) + URGENT_TICK_SECONDS


def takeover_hold() -> float:
    """How long a node that took the leader key over answers 503 (unless the old leader itself
    answers 503; a refused connection proves nothing, a firewall's reset looks the same), counted
    from when the synchronous standbys it counted had stopped receiving from the old leader (at the
    latest, the takeover): longer than the old leader can keep answering 200 after that, by the new
    leader's clock (rates may differ by RATE_DRIFT each way), plus one urgent tick."""
    return old_leader_quiet_after() * (1 + 2 * RATE_DRIFT) + URGENT_TICK_SECONDS


def pg_restart_after_crash() -> float:
    """How long runit waits (the PostgreSQL service's `finish`) before it starts again a PostgreSQL that
    exited by itself: a crash, a kill -9 or, with `restart_after_crash = off`, a backend that died. The
    node may have answered 200 until one ready validity after its last look at a running server, and
    the frontends route to it for a while after that; a standby started any sooner would show them the
    commits that waited for the standbys at the crash, which the next leader may not have."""
    return READY_VALIDITY_SECONDS * (1 + RATE_DRIFT) + frontends_route_after_200()
