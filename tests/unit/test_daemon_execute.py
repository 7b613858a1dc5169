"""The daemon carries out a plan's actions in order and stops at the first that fails; its fence thread
goes by what PostgreSQL may be."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psycopg

from chef_backend.leader import daemon
from chef_backend.leader.daemon import Manager
from chef_backend.leader.state import Action, Decision, Kind, Memory, PgState, Plan, Position, Report, Role
from chef_backend.leader.timing import clock
from tests.unit.test_decide import obs


@dataclass
class FakeExecutor:
    failing: Kind
    ran: list[Kind] = field(default_factory=list)
    lease: int = 0
    deadline: float = 0.0

    raising: bool = False
    manager: Manager | None = None
    primary_when_promoting: bool | None = None

    def run(self, action: Action, reason: str) -> bool:
        self.ran.append(action.kind)
        if action.kind is Kind.PROMOTE and self.manager is not None:
            self.primary_when_promoting = self.manager.may_be_primary
        if self.raising and action.kind is self.failing:
            raise OSError("etcd unreachable")
        return action.kind is not self.failing


def bare_manager() -> Manager:
    manager = object.__new__(Manager)
    manager.memory = Memory()
    manager.lock = threading.Lock()
    manager.may_be_primary = False
    manager.stopping = threading.Event()
    return manager


def carry_out(actions: tuple[Action, ...], failing: Kind, raising: bool = False) -> list[Kind]:
    manager = bare_manager()
    manager.executor = FakeExecutor(failing, raising=raising, manager=manager)  # type: ignore[assignment]
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


def test_a_promotion_counts_as_primary_for_the_fence_thread_from_the_moment_it_is_asked_for() -> None:
    """The status published trails by a tick, and the tick after a promotion may block in etcd for
    seconds: the fence thread must not wait for it to know the server may be a primary."""
    manager = bare_manager()
    fake = FakeExecutor(failing=Kind.FENCE, manager=manager)
    manager.executor = fake  # type: ignore[assignment]
    report = Report(Role.PROMOTING, False, "", True, (), None, None, Position(1, 0), True, False, True, True,
                    False, None, ())
    actions = (Action(Kind.CLAIM), Action(Kind.PROMOTE))
    manager.execute(Plan(Decision(Role.PROMOTING, False, actions, "test"), actions, report, 0.0, 0.0, False))
    assert fake.primary_when_promoting is True and manager.may_be_primary


@dataclass
class FakeSupervisor:
    state: str = "run"
    calls: list[str] = field(default_factory=list)

    def sv(self, command: str, service: str, wait: float = 0) -> None:
        self.calls.append(command)

    def status(self, service: str) -> object:
        return type("Status", (), {"state": self.state})()


def fence_thread_calls(may_be_primary: bool, stepped: bool, deadline_passed: bool = True) -> list[str]:
    manager = bare_manager()
    manager.supervisor = FakeSupervisor()  # type: ignore[assignment]
    manager.may_be_primary = may_be_primary
    manager.memory = Memory(deadline=clock() + (-1.0 if deadline_passed else 60.0),
                            last_obs=obs() if stepped else None)
    thread = threading.Thread(target=manager.fence_on_time)
    thread.start()
    manager.stopping.wait(5 * daemon.FENCE_CHECK_SECONDS)
    manager.stopping.set()
    thread.join()
    return manager.supervisor.calls  # type: ignore[attr-defined]


def test_the_fence_thread_stops_a_server_that_may_be_primary_once_the_deadline_passed() -> None:
    assert fence_thread_calls(may_be_primary=True, stepped=True) == ["down", "quit"]  # once per deadline
    assert fence_thread_calls(may_be_primary=False, stepped=True) == []
    assert fence_thread_calls(may_be_primary=True, stepped=True, deadline_passed=False) == []
    # Before the first step the deadline is not set yet (a restarted manager on a running primary).
    assert fence_thread_calls(may_be_primary=True, stepped=False) == []


def test_a_look_lowers_the_belief_only_when_it_shows_a_standby_or_a_stopped_server() -> None:
    manager = bare_manager()
    manager.supervisor = FakeSupervisor()  # type: ignore[assignment]

    class Pg:
        result: PgState | Exception = PgState(running=True, in_recovery=False)

        def observe(self) -> PgState:
            if isinstance(self.result, Exception):
                raise self.result
            return self.result

    pg = Pg()
    manager.pg = pg  # type: ignore[assignment]
    manager.look_at_pg()
    assert manager.may_be_primary
    pg.result = psycopg.OperationalError("timeout")  # a frozen primary fails its check too
    manager.look_at_pg()
    assert manager.may_be_primary
    pg.result = PgState(running=True, in_recovery=True)
    manager.look_at_pg()
    assert not manager.may_be_primary
    manager.may_be_primary = True
    manager.supervisor.state = "down"  # type: ignore[attr-defined]
    manager.look_at_pg()
    assert not manager.may_be_primary
