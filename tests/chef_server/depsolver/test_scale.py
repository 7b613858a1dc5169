"""A universe of hundreds of cookbooks: answers stay correct and conflicts end in an explanation."""

import random

import pytest

from chef_server.depsolver import Unsatisfiable, solve
from chef_server.depsolver.runlist import cookbooks_for_run_list

from .checks import satisfied


def layered_universe(seed: int, cookbooks: int = 300, versions: int = 12):
    """Cookbook i depends on a few of the 30 after it; newer versions ask for newer dependencies."""
    rng = random.Random(seed)
    names = [f"cb{i:03d}" for i in range(cookbooks)]
    universe = {}
    for i, name in enumerate(names):
        later = names[i + 1:i + 31]
        deps = rng.sample(later, min(len(later), rng.randint(0, 3)))
        universe[name] = {
            f"{1 + k // 5}.{k % 5}.0": {
                dep: rng.choice([f">= 1.{min(4, k // 3)}", f"~> {1 + k // 6}.0", f"< {2 + k // 5}.0", "> 0.5"])
                for dep in deps
            }
            for k in range(versions)
        }
    return universe, names


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_large_universe_answers_satisfy_everything(seed):
    universe, names = layered_universe(seed)
    pins = {names[50]: "~> 1.2", names[120]: "< 2.0"}
    rng = random.Random(seed)
    for _ in range(3):
        run_list = rng.sample(names[:100], 8)
        result = solve(universe, pins, run_list, timeout=60)  # outcomes, not speed: a loaded CI machine is fine
        assert satisfied(universe, pins, cookbooks_for_run_list(run_list), result)
        assert set(run_list) <= set(result)


def test_large_universe_conflict_is_explained():
    universe, names = layered_universe(4)
    universe["wants_old"] = {"1.0.0": {names[200]: "< 1.1"}}
    universe["wants_new"] = {"1.0.0": {names[200]: ">= 2.0"}}
    run_list = ["wants_old", *names[:10], "wants_new", *names[10:20]]
    with pytest.raises(Unsatisfiable) as caught:
        solve(universe, {}, run_list, timeout=60)
    assert caught.value.unsatisfiable_run_list_item == "(wants_new >= 0.0.0)"
    assert [c.split(" = ")[0] for c in caught.value.most_constrained_cookbooks] == [names[200]]
