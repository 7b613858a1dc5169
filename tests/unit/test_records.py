"""Whatever lands in etcd, reading it never raises: a malformed record counts as absent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chef_backend.leader import records
from chef_backend.leader.state import LeaderKey, Position, Report, Role, Switchover, SyncSet

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                    max_leaves=12)
FIELDS = st.fixed_dictionaries({}, optional={k: JSON for k in (
    "guid", "address", "position", "handover", "members", "quorum", "source", "target", "eligible", "detached",
    "receiver_gone_for")})


@given(st.one_of(JSON, FIELDS))
def test_no_record_reader_raises_on_any_json(value: object) -> None:
    records.peer("g", value, True, 1)
    records.leader_key(value, 1, 1)
    records.handover_position(value)
    records.sync_set(value)
    records.last_leader(value)
    records.switchover(value)
    records.guid_list(value)


def test_well_formed_records_are_read() -> None:
    assert records.leader_key({"guid": "a", "address": "10.0.0.1"}, 5, 7) == LeaderKey("a", "10.0.0.1", 5, 7)
    assert records.sync_set({"members": ["b", "c"], "quorum": 1}) == SyncSet(("b", "c"), 1)
    assert records.last_leader([{"guid": "a"}, {"guid": "b"}]) == "b"
    assert records.switchover({"source": "a", "target": "b"}) == Switchover("a", "b")
    assert records.handover_position({"handover": {"timeline": 2, "lsn": 99}}) == Position(2, 99)
    p = records.peer("b", {"address": "10.0.0.2", "position": {"timeline": 1, "lsn": 5}, "eligible": True,
                           "detached": False, "role": "follower"}, True, 3)
    assert p is not None and p.eligible and not p.detached and p.position == Position(1, 5)


def test_malformed_records_count_as_absent() -> None:
    assert records.leader_key({"guid": 5, "address": "x"}, 1, 1) is None
    assert records.sync_set({"members": "bc", "quorum": 1}) == SyncSet()
    assert records.peer("b", {"address": "x", "position": {"timeline": "1", "lsn": 5}}, True, 1) is None
    # "yes" is not True: an eligibility claim must be exactly a JSON true
    assert records.peer("b", {"address": "x", "position": {"timeline": 1, "lsn": 5}, "eligible": "yes"},
                        True, 1).eligible is False
    assert records.guid_list("abc") == ()
    # A duration that is not a positive finite number claims nothing (0: the takeover hold gets no head start).
    for bad in ("1.5", -2.0, True, float("inf"), None):
        value = {"address": "x", "position": {"timeline": 1, "lsn": 5}, "receiver_gone_for": bad}
        assert records.peer("b", value, True, 1).receiver_gone_for == 0.0


def test_a_final_reports_receiver_silence_goes_through_etcd() -> None:
    report = Report(Role.WAITING, False, "", True, (), None, None, Position(1, 5), True, True, True, True, False,
                    None, (), receiver_gone_for=0.7504)
    doc = records.encode_status(report, "b", {"address": "10.0.0.2"})
    assert records.peer("b", doc, True, 1).receiver_gone_for == 0.75
