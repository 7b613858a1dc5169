"""Which standbys count as streaming from a primary (leader/pg.py: fresh_standbys, HeartbeatLog): a
standby counts for STANDBY_STALE after the newest heartbeat it flushed was written, never on its
replies alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chef_backend.leader.pg import HeartbeatLog, fresh_standbys
from chef_backend.leader.timing import STANDBY_STALE_SECONDS as STALE

BEATS = ((100, 10.0), (200, 10.25), (300, 10.5))


def test_a_standby_counts_from_the_newest_heartbeat_it_flushed() -> None:
    assert fresh_standbys(BEATS, [("b", 250), ("c", 300)]) == (("b", 10.25 + STALE), ("c", 10.5 + STALE))


def test_a_standby_that_flushed_no_recent_heartbeat_is_not_listed() -> None:
    # Its receiver may still reply every wal_receiver_status_interval (a one-way cut: it hears
    # nothing, yet its replies reach us), but its flush position does not move.
    assert fresh_standbys(BEATS, [("b", 99)]) == ()
    assert fresh_standbys((), [("b", 10**9)]) == ()


@given(st.lists(st.tuples(st.integers(0, 10**6), st.floats(0, 100)), max_size=8),
       st.integers(0, 10**6), st.floats(0, 100))
def test_a_standby_that_stopped_receiving_counts_no_longer_than_the_staleness(
        beats: list[tuple[int, float]], flushed: int, stopped: float) -> None:
    # Whatever reached it was written before it stopped receiving at `stopped`; when its last reply
    # arrives does not enter the computation at all.
    received = tuple((lsn, at) for lsn, at in beats if at <= stopped)
    for _, until in fresh_standbys(received, [("b", flushed)]):
        assert until <= stopped + STALE


def test_the_log_keeps_the_heartbeats_that_can_still_make_a_standby_fresh() -> None:
    log = HeartbeatLog()
    log.record(100, 10.0)
    log.record(200, 10.0 + STALE + 0.01)  # the first can no longer make anyone fresh
    assert log.fresh([("b", 150)]) == ()
    assert log.fresh([("b", 250)]) == (("b", 10.01 + 2 * STALE),)


def test_the_log_forgets_what_it_wrote_before_it_was_seen_in_recovery() -> None:
    # A demoted node promoted again writes new WAL at other positions: a standby's flush position
    # says nothing about a heartbeat of the previous promotion.
    log = HeartbeatLog()
    log.record(100, 10.0)
    log.record(300, 10.6)  # by a promotion that completed while the look in recovery ran
    log.forget(10.5)
    assert log.fresh([("b", 150)]) == ()
    assert log.fresh([("b", 300)]) == (("b", 10.6 + STALE),)
