"""The leader managers' invariants under simulated faults (see tests/simulation/world.py).

A failure names its seed: `python -m tests.simulation SEED --trace` replays the schedule exactly.
"""

from __future__ import annotations

import pytest

from tests.simulation.models import PORTS
from tests.simulation.world import World, run

# Seeds that found a path of issue 14 before it was closed (with the simulation as of that fix).
REGRESSIONS: dict[str, list[int]] = {}

CI_SEEDS = range(60)


def fail(outcome) -> str:
    return f"seed {outcome.seed}: {outcome.violation}\n" + "\n".join(outcome.schedule)


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_random_schedule(seed: int) -> None:
    outcome = run(seed)
    assert outcome.violation is None, fail(outcome)


@pytest.mark.parametrize(("path", "seed"), [(p, s) for p, seeds in REGRESSIONS.items() for s in seeds])
def test_seed_that_found_a_path_of_issue_14(path: str, seed: int) -> None:
    outcome = run(seed)
    assert outcome.violation is None, f"path {path}: " + fail(outcome)


@pytest.mark.parametrize("reject", [False, True])
@pytest.mark.parametrize("ttl", [30.0, 10.0])
def test_path0_leader_cut_off_from_everyone(ttl: float, reject: bool) -> None:
    """Issue 14, path 0: the leader cut off from both followers (all ports, both directions) while
    the clients still reach it; with `reject`, the cut answers with resets, which look like a
    dead process to the new leader's probe."""
    world = World(7, ttl=ttl, faults=False, duration=90, reject=reject)

    def cut() -> None:
        leader = next(n.index for n in world.nodes if n.pg.primary())
        world.network.cut |= {(a, b, p) for a in range(3) for b in range(3) if (a == leader) != (b == leader)
                              for p in PORTS}
        world.note(f"isolate n{leader}")

    world.at(30.0, cut)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2  # a new leader was elected


def test_a_seed_replays_exactly() -> None:
    first, second = run(11, trace=True), run(11, trace=True)
    assert first.trace == second.trace and first.schedule == second.schedule


def test_without_faults_every_commit_is_acknowledged_and_one_leader_is_elected() -> None:
    outcome = World(3, faults=False, duration=30).run()
    assert outcome.violation is None and outcome.promotions == 1
    assert outcome.acknowledged >= outcome.commits - 2  # the last ones may still be in flight
