"""The daemon carries out a plan's actions in order and stops at the first that fails."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from chef_backend.leader.daemon import Manager
from chef_backend.leader.state import Action, Decision, Kind, Memory, Plan, Position, Report, Role


@dataclass
class FakeExecutor:
    failing: Kind
    ran: list[Kind] = field(default_factory=list)
    lease: int = 0
    deadline: float = 0.0

    raising: bool = False

    def run(self, action: Action, reason: str) -> bool:
        self.ran.append(action.kind)
        if self.raising and action.kind is self.failing:
            raise OSError("etcd unreachable")
        return action.kind is not self.failing


def carry_out(actions: tuple[Action, ...], failing: Kind, raising: bool = False) -> list[Kind]:
    manager = object.__new__(Manager)
    manager.memory = Memory()
    manager.lock = threading.Lock()
    manager.executor = FakeExecutor(failing, raising=raising)  # type: ignore[assignment]
    report = Report(Role.PROMOTING, False, "", True, (), None, None, Position(1, 0), True, False, True, True,
                    False, None, ())
    manager.execute(Plan(Decision(Role.PROMOTING, False, actions, "test"), actions, report, 0.0, 0.0, False))
    return manager.executor.ran  # type: ignore[attr-defined]


def test_a_failed_claim_promotes_nothing() -> None:
    """The key moved (a switchover's handover held up in etcd landed) between the look and the claim."""
    ran = carry_out((Action(Kind.CLAIM), Action(Kind.PROMOTE)), failing=Kind.CLAIM)
    assert ran == [Kind.CLAIM]


def test_an_action_that_raises_stops_the_plan_too() -> None:
    ran = carry_out((Action(Kind.CLAIM), Action(Kind.PROMOTE)), failing=Kind.CLAIM, raising=True)
    assert ran == [Kind.CLAIM]


def test_a_set_not_published_is_not_applied() -> None:
    ran = carry_out((Action(Kind.PUBLISH_SYNC), Action(Kind.APPLY_SYNC)), failing=Kind.PUBLISH_SYNC)
    assert ran == [Kind.PUBLISH_SYNC]


def test_actions_that_succeed_all_run_in_order() -> None:
    ran = carry_out((Action(Kind.FOLLOW), Action(Kind.CLAIM), Action(Kind.PROMOTE)), failing=Kind.FENCE)
    assert ran == [Kind.FOLLOW, Kind.CLAIM, Kind.PROMOTE]
