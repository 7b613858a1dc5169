"""The leader manager's view of, and hold on, the local PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import psycopg

from chef_backend.config.settings import Settings
from chef_backend.leader.state import PgState, Position
from chef_backend.leader.timing import PG_CHECK_TIMEOUT_SECONDS, STANDBY_STALE_SECONDS, clock
from chef_backend.services import postgresql

log = logging.getLogger(__name__)

_STATE_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() - '0/0' END,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       pg_last_wal_receive_lsn() - '0/0',
       pg_last_wal_replay_lsn() - '0/0',
       (SELECT timeline_id FROM pg_control_checkpoint()),
       (SELECT min_recovery_end_timeline FROM pg_control_recovery()),
       (SELECT status FROM pg_stat_wal_receiver),
       (SELECT sender_host FROM pg_stat_wal_receiver),
       (SELECT received_tli FROM pg_stat_wal_receiver),
       (SELECT coalesce(array_agg(application_name || '=' || coalesce((flush_lsn - '0/0')::text, '0')), '{}')
          FROM pg_stat_replication),
       (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup')
"""



# The history file of a timeline: its last line names where that timeline began.
_HISTORY_SQL = "SELECT pg_read_file(%s, 0, 1048576, true)"  # missing_ok: no file, NULL


def timeline_start(history: str) -> int | None:
    """The LSN (bytes) where a timeline began, from its history file ("parentTLI<TAB>X/Y<TAB>reason"
    lines; the last is the switch to this timeline); None if the text has no such line."""
    for line in reversed(history.splitlines()):
        fields = line.split()
        if len(fields) >= 2 and not line.lstrip().startswith("#") and "/" in fields[1]:
            try:
                hi, lo = fields[1].split("/")
                return (int(hi, 16) << 32) + int(lo, 16)
            except ValueError:
                return None
    return None


class HeartbeatLog:
    """The heartbeats this node wrote as a primary in the last STANDBY_STALE_SECONDS: (end LSN, when
    the write began), shared by every look at this node's PostgreSQL (the loop's and the readiness
    watcher's), so that freshness is judged from the newest heartbeat whoever wrote it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: list[tuple[int, float]] = []

    def record(self, lsn: int, written_at: float) -> None:
        with self._lock:
            self._beats = [b for b in self._beats if b[1] > written_at - STANDBY_STALE_SECONDS] + [(lsn, written_at)]

    def fresh(self, flushes: list[tuple[str, int]]) -> tuple[tuple[str, float], ...]:
        with self._lock:
            return fresh_standbys(tuple(self._beats), flushes)

    def forget(self, before: float) -> None:
        """Seen in recovery by a look that began at `before`: what was written as a primary until then
        says nothing of the next promotion's WAL (a heartbeat written since, by a promotion that
        completed meanwhile, stays)."""
        with self._lock:
            self._beats = [b for b in self._beats if b[1] >= before]


class LocalPg:
    """One reusable superuser connection to this node's PostgreSQL."""

    def __init__(self, settings: Settings, password: str, beats: HeartbeatLog | None = None) -> None:
        self.settings = settings
        self._dsn = postgresql.conninfo(
            settings, settings.publish_address, password, timeout_s=max(1, settings["leaderl.db_timeout"] // 1000)
        )
        self._conn: psycopg.Connection | None = None
        self._last_tli = 0  # timeline last seen streaming, kept once the receiver stops
        self._beats = beats or HeartbeatLog()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-look")

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._dsn, autocommit=True)
            timeout_ms = self.settings["leaderl.db_timeout"]
            self._conn.execute(f"SET statement_timeout = {int(timeout_ms)}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _timed_query(self, sql: str = _STATE_SQL, params: tuple[object, ...] = ()) -> tuple[object, ...] | None:
        """One query, given up after PG_CHECK_TIMEOUT_SECONDS: statement_timeout is enforced by
        the server, so a stopped (SIGSTOP) or hung server would otherwise block the loop forever."""
        conn = self._connection()
        future = self._pool.submit(lambda: conn.execute(sql, params).fetchone())
        try:
            return future.result(timeout=PG_CHECK_TIMEOUT_SECONDS)
        except FutureTimeout:
            # Break the blocked read so that the worker returns, and drop the connection.
            with contextlib.suppress(OSError, ValueError):
                sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._conn = None
            raise psycopg.OperationalError(f"no answer within {PG_CHECK_TIMEOUT_SECONDS:g} s") from None

    def observe(self) -> PgState:
        """Query the server's role and WAL position; raises psycopg.Error when unreachable."""
        began = clock()
        try:
            row = self._timed_query()
        except psycopg.Error:
            self.close()
            raise
        assert row is not None
        (
            in_recovery,
            cur_lsn,
            cur_tli,
            recv_lsn,
            replay_lsn,
            ckpt_tli,
            minrec_tli,
            wr_status,
            sender,
            recv_tli,
            flushes,
            startup_wait,
        ) = row
        start = None
        if in_recovery:
            if recv_tli:
                self._last_tli = max(self._last_tli, int(recv_tli))
            tli = max(int(ckpt_tli or 0), int(minrec_tli or 0), self._last_tli)
            lsn = max(int(recv_lsn or 0), int(replay_lsn or 0))
            start = self._timeline_start(tli)
        else:
            tli, lsn = int(cur_tli), int(cur_lsn)
            self._last_tli = tli
        flushed = _flushed(list(flushes or ()))
        if in_recovery:
            self._beats.forget(began)
            until: tuple[tuple[str, float], ...] = ()
        else:
            until = self._beats.fresh(flushed)
        # pg_stat_wal_receiver has a row while a receiver process runs, in whatever state.
        now = clock()
        return PgState(
            running=True,
            in_recovery=bool(in_recovery),
            position=Position(tli, lsn),
            upstream=sender,
            streaming=wr_status == "streaming",
            standbys=tuple(g for g, t in until if now < t),
            fresh_until=until,
            receiving=wr_status is not None,
            wal_exhausted=startup_wait == "RecoveryRetrieveRetryInterval",
            flushed=tuple(sorted(flushed)),
            timeline_start=start,
        )

    def _timeline_start(self, tli: int) -> int | None:
        if tli <= 1:
            return 0
        try:
            row = self._timed_query(_HISTORY_SQL, (f"pg_wal/{tli:08X}.history",))
        except psycopg.Error as exc:
            # Only the divergence check wants it: a failed read is no failed look at PostgreSQL.
            log.warning("cannot read the history of timeline %d: %s", tli, str(exc).strip().splitlines()[0])
            return None
        return timeline_start(str(row[0])) if row and row[0] else None

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        cur = self._connection().execute(sql, params)
        return cur.fetchall() if cur.description else []

    def heartbeat(self) -> None:
        """Write a tiny WAL record and flush it locally (no wait for standbys), and note where it ends
        and when the write began: a standby that has flushed up to there was receiving from us after
        that moment. Its replies alone prove nothing: a receiver that gets nothing (a one-way cut, a
        reply held up by retransmissions) still replies every wal_receiver_status_interval, and a reply
        can arrive long after it was sent. Transactional, because a non-transactional message is not
        flushed until something else flushes WAL."""
        began = clock()
        row = self._timed_query("SELECT set_config('synchronous_commit', 'local', true), "
                                "pg_logical_emit_message(true, 'leaderl', '') - '0/0'")
        if row is not None:
            self._beats.record(int(row[1]), began)

    def promote(self) -> None:
        self.execute("SELECT pg_promote(true, 60)")
        log.info("PostgreSQL promoted")
        # A first heartbeat at once: our standbys' flush of one is what lets us answer 200, and the
        # readiness watcher writes its first only after the loop has seen us primary.
        with contextlib.suppress(psycopg.Error):
            self.heartbeat()

    def reload(self) -> None:
        self.execute("SELECT pg_reload_conf()")

    def ensure_slots(self, guids: list[str], current_members: Callable[[], list[str]]) -> None:
        """Keep one physical slot per other member on the primary, and none for removed ones.

        `guids` may predate a join: a joining node registers, then makes its slot and copies the
        data through it. So a slot is dropped only if `current_members`, read after the slots,
        confirms its node is gone (dropping a joiner's slot fails its base backup)."""
        wanted = {postgresql.slot_name(g) for g in guids}
        rows = self.execute("SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical'")
        have = {str(r[0]) for r in rows}
        for slot in sorted(wanted - have):
            self.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
            log.info("created replication slot %s", slot)
        unwanted = sorted(s for s in have - wanted if s.startswith("cb_"))
        if unwanted:
            members = {postgresql.slot_name(g) for g in current_members()}
            unwanted = [s for s in unwanted if s not in members]
        for slot in unwanted:
            active = self.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            if active and not active[0][0]:
                self.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                log.info("dropped replication slot %s of a removed member", slot)


def fresh_standbys(beats: tuple[tuple[int, float], ...],
                   flushes: list[tuple[str, int]]) -> tuple[tuple[str, float], ...]:
    """Until when each standby counts as streaming from us, by this node's clock: STANDBY_STALE_SECONDS
    after the newest heartbeat (end LSN, when its write began) it has flushed was written. The write
    came before the standby received it, so however late its reply arrives, a standby that stopped
    receiving at T counts no longer than T + STANDBY_STALE. A standby that flushed none of `beats`
    is not listed."""
    out = []
    for name, flushed in flushes:
        written = [at for lsn, at in beats if lsn <= flushed]
        if written:
            out.append((name, max(written) + STANDBY_STALE_SECONDS))
    return tuple(sorted(out))


def _flushed(rows: list[str]) -> list[tuple[str, int]]:
    """(standby, flush LSN) from `name=lsn` rows; a standby listed twice counts its furthest."""
    out: dict[str, int] = {}
    for row in rows:
        name, _, lsn = row.rpartition("=")
        try:
            out[name] = max(out.get(name, 0), int(float(lsn)))
        except ValueError:
            continue
    return list(out.items())
