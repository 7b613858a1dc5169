"""The fault suite's two-writable-leaders checker must fire when it should, and only then."""

from __future__ import annotations

from tests.support.workload import DirectWrite, LeaderProber


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
