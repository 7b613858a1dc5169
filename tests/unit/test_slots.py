"""Replication slots on the leader: one per other member, and a joiner's never dropped by a stale view."""

from __future__ import annotations

from typing import Any

from chef_backend.leader.pg import LocalPg

A, B, C = "a" * 32, "b" * 32, "c" * 32


class FakePg(LocalPg):
    """LocalPg over a set of slot names instead of a server."""

    def __init__(self, slots: set[str], active: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.slots = set(slots)
        self.active = set(active)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if sql.startswith("SELECT slot_name"):
            return [(s,) for s in sorted(self.slots)]
        if "pg_create_physical_replication_slot" in sql:
            self.slots.add(params[0])
        elif sql.startswith("SELECT active"):
            return [(params[0] in self.active,)]
        elif "pg_drop_replication_slot" in sql:
            self.slots.remove(params[0])
        return []


def test_a_slot_per_member_and_none_for_a_removed_one() -> None:
    pg = FakePg({f"cb_{C}", "someone_elses"})
    pg.ensure_slots([A, B], lambda: [A, B])
    assert pg.slots == {f"cb_{A}", f"cb_{B}", "someone_elses"}


def test_a_joiners_slot_survives_a_view_from_before_it_registered() -> None:
    pg = FakePg({f"cb_{A}", f"cb_{C}"})  # C registered and made its slot after our snapshot
    pg.ensure_slots([A], lambda: [A, C])
    assert pg.slots == {f"cb_{A}", f"cb_{C}"}


def test_a_slot_in_use_is_not_dropped() -> None:
    pg = FakePg({f"cb_{A}", f"cb_{C}"}, active={f"cb_{C}"})
    pg.ensure_slots([A], lambda: [A])
    assert f"cb_{C}" in pg.slots


def test_membership_is_read_again_only_when_a_slot_looks_unwanted() -> None:
    calls = []
    pg = FakePg({f"cb_{A}"})
    pg.ensure_slots([A], lambda: calls.append(1) or [A])
    assert calls == []
