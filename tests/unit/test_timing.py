"""The inequalities between the leader manager's timing constants (chef_backend.leader.timing)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chef_backend.leader import timing as t

TTLS = st.integers(min_value=4, max_value=3600)  # settings.py refuses a TTL below 4 s
RATES = st.floats(min_value=1 - t.RATE_DRIFT, max_value=1 + t.RATE_DRIFT)


@given(TTLS, RATES)
def test_a_leader_fences_before_etcd_can_expire_its_lease(ttl: int, rate: float) -> None:
    # By the node's clock (running at `rate` against etcd's), the deadline comes a margin before
    # the lease can expire on etcd's side, which is never earlier than sent_at + ttl.
    local = t.fence_deadline(0.0, ttl)
    assert local / rate < ttl
    assert ttl - local / rate >= t.lease_margin(ttl) * 0.9


def test_the_fence_margin_covers_an_immediate_shutdown_and_a_slow_tick() -> None:
    assert t.lease_margin(4) >= 2.0 > t.TICK_SECONDS


@given(RATES, RATES)
def test_takeover_hold_outlasts_the_old_leaders_200_whatever_its_loop_does(old: float, new: float) -> None:
    # The old leader's 200 ends old_leader_quiet_after() after the detached standbys stopped
    # receiving, by its clock; the new leader's hold starts after that and runs on its own clock.
    assert t.takeover_hold() / new > t.old_leader_quiet_after() / old


def test_the_old_leader_turns_503_when_its_standbys_go_quiet_even_without_etcd() -> None:
    assert t.old_leader_quiet_after() >= t.STANDBY_STALE_SECONDS


def test_a_healthy_leader_does_not_flap() -> None:
    # A primary looks every READY_LOOK and writes a heartbeat after each look, which a live standby
    # flushes and reports before the next look: at each look its newest flushed heartbeat is one
    # look old, so it may miss several before it counts as gone.
    assert t.STANDBY_STALE_SECONDS >= 5 * t.READY_LOOK_SECONDS
    assert t.READY_VALIDITY_SECONDS > t.TICK_SECONDS > t.READY_LOOK_SECONDS


def test_suspicion_outlasts_a_busy_leader_manager() -> None:
    assert t.SUSPECT_AFTER_SECONDS > t.URGENT_TICK_SECONDS * 4


def test_a_detached_receiver_is_forced_to_stop_after_its_grace() -> None:
    assert t.RECEIVER_STOP_GRACE_SECONDS > t.TICK_SECONDS
