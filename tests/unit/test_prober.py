"""The fault suite's two-writable-leaders checker must fire when it should, and only then."""

from __future__ import annotations

import pytest

from tests.support.workload import DirectWrite, LeaderProber, LeaderSample, StaleRead


def prober(*writes: tuple[str, float, float, bool]) -> LeaderProber:
    p = LeaderProber(["http://a:7331/leader", "http://b:7331/leader"])
    p.direct = [DirectWrite(host, f"{host}-{i}", sent, done, ok) for i, (host, sent, done, ok) in enumerate(writes)]
    return p


def test_clean_handover_is_not_an_overlap() -> None:
    p = prober(("a", 0.0, 0.01, True), ("a", 0.1, 0.11, True), ("a", 0.2, 0.2, False),
               ("b", 0.3, 0.31, True), ("b", 0.4, 0.41, True), ("a", 0.5, 0.5, False))
    assert p.write_overlaps() == []
    assert p.write_windows() == [("a", 0.0, 0.11), ("b", 0.3, 0.41)]


def test_two_nodes_taking_turns_without_refusing_is_an_overlap() -> None:
    p = prober(("a", 0.0, 0.01, True), ("b", 0.05, 0.06, True), ("a", 0.1, 0.11, True))
    assert len(p.write_overlaps()) == 1


def test_a_commit_acknowledged_late_overlaps_the_new_leader() -> None:
    # The old leader's write was sent before the new leader took writes and acknowledged after.
    p = prober(("b", 1.0, 1.01, True), ("a", 0.5, 2.0, True), ("a", 2.1, 2.1, False))
    assert len(p.write_overlaps()) == 1


def test_acknowledged_direct_writes_are_listed_for_the_lost_write_check() -> None:
    p = prober(("a", 0.0, 0.01, True), ("b", 0.0, 0.0, False))
    assert p.acknowledged_direct() == ["a-0"]


def sampled(*samples: tuple[str, float, float, bool]) -> LeaderProber:
    p = LeaderProber(["http://a:7331/leader", "http://b:7331/leader"])
    p.samples = [LeaderSample(f"http://{host}:7331/leader", sent, answered, leader)
                 for host, sent, answered, leader in samples]
    return p


def test_a_handover_sampled_at_the_same_moments_is_not_an_overlap() -> None:
    p = sampled(("a", 0.0, 0.01, True), ("b", 0.0, 0.01, False), ("a", 0.1, 0.11, True), ("b", 0.1, 0.11, False),
                ("a", 0.2, 0.21, False), ("b", 0.2, 0.21, True), ("a", 0.3, 0.31, False), ("b", 0.3, 0.31, True))
    assert p.leader_windows() == [("http://a:7331/leader", 0.01, 0.1), ("http://b:7331/leader", 0.21, 0.3)]
    assert p.leader_overlaps() == []


def test_two_runs_of_200_at_once_are_an_overlap() -> None:
    p = sampled(("a", 0.0, 0.01, True), ("b", 0.0, 0.01, True), ("a", 0.1, 0.11, True), ("b", 0.1, 0.11, True))
    assert len(p.leader_overlaps()) == 1


def test_one_slow_answer_is_not_taken_for_an_overlap() -> None:
    # a's single 200 took 0.4 s to arrive: it was true at some moment of that span, maybe before b's.
    p = sampled(("a", 0.0, 0.4, True), ("a", 0.5, 0.51, False), ("b", 0.2, 0.21, True), ("b", 0.3, 0.31, True))
    assert p.leader_overlaps() == []


def test_stale_reads_through_haproxy_or_from_a_claimed_leader_fail_the_check() -> None:
    for stale in (StaleRead("haproxy", 9.0, "b-7"), StaleRead("a", 0.05, "b-7")):
        p = sampled(("a", 0.0, 0.01, True), ("a", 0.1, 0.11, True), ("a", 0.2, 0.21, False))
        p.stale_reads = [stale]
        with pytest.raises(AssertionError, match="stale reads served"):
            p.assert_one_leader()


def test_a_stale_primary_that_no_longer_claims_leadership_serves_no_client() -> None:
    p = sampled(("a", 0.0, 0.01, True), ("a", 0.1, 0.11, True), ("a", 0.2, 0.21, False))
    p.stale_reads = [StaleRead("a", 0.5, "b-7")]
    p.assert_one_leader()
