"""Property tests against a brute-force solver on tiny universes.

The brute force tries every assignment (each cookbook at one allowed version or absent), so on a
tiny universe it knows whether a run list can be satisfied, the best score by erchef's
preference order (run-list cookbooks at their newest, then other cookbooks at their newest, then
the least distance from newest overall), and the first run-list item that makes it unsatisfiable.
"""

import itertools
from unittest import mock

from hypothesis import event, given, settings
from hypothesis import strategies as st

from chef_server.depsolver import CookbooksNotFound, DepsolverFailure, NoVersionsMatch, Unsatisfiable, solve
from chef_server.depsolver.constraints import parse_version
from chef_server.depsolver.runlist import cookbooks_for_run_list

from .checks import allowed, satisfied, score

NAMES = ["a", "b", "c", "d"]
VERSIONS = ["0.5.0", "1.0.0", "1.1.0", "1.2.3", "2.0.0"]
CONSTRAINTS = [f"{op} {v}" for op in ("=", ">", ">=", "<", "<=", "~>") for v in ("1.0", "1.1.0", "2.0.0")]

dependencies = st.dictionaries(st.sampled_from([*NAMES, "ghost"]), st.sampled_from(CONSTRAINTS), max_size=2)
cookbook = st.dictionaries(st.sampled_from(VERSIONS), dependencies, min_size=1, max_size=3)
universes = st.dictionaries(st.sampled_from(NAMES), cookbook, min_size=1)
pins = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(CONSTRAINTS), max_size=1)


@st.composite
def problems(draw):
    """(universe, pins, run list): run lists mostly name cookbooks that exist."""
    universe = draw(universes)
    names = st.sampled_from(sorted(universe)) | st.just("ghost") if draw(st.integers(0, 9)) == 0 else st.sampled_from(
        sorted(universe))
    item = st.tuples(names, st.sampled_from(["", "::x"]), st.sampled_from(["", "", "", "@1.0.0", "@2.0"]))
    return universe, draw(pins), draw(st.lists(item.map("".join), min_size=1, max_size=4))


def brute_force(universe, pins, roots):
    """The best score of any satisfying assignment, or None."""
    names = sorted(universe)
    options = [[None, *allowed(universe, pins, name)] for name in names]
    best = None
    for choice in itertools.product(*options):
        assignment = {n: v for n, v in zip(names, choice, strict=True) if v is not None}
        if satisfied(universe, pins, roots, assignment):
            s = score(universe, pins, roots, assignment)
            best = s if best is None or s < best else best
    return best


@settings(max_examples=400, deadline=None)
@given(problems())
def test_solutions_satisfy_everything_and_match_brute_force(problem):
    check_against_brute_force(*problem)


@settings(max_examples=200, deadline=None)
@given(problems())
def test_search_alone_matches_brute_force(problem):
    # Without the newest-everywhere shortcut every solvable problem goes through CP-SAT.
    with mock.patch("chef_server.depsolver.solver._newest_everywhere", return_value=None):
        check_against_brute_force(*problem)


def check_against_brute_force(universe, pins, run_list):
    roots = cookbooks_for_run_list(run_list)
    try:
        result = solve(universe, pins, run_list)
    except CookbooksNotFound as failure:
        event("no such cookbook")
        assert failure.names == [r.name for r in roots if r.name not in universe]
        assert failure.names
        return
    except NoVersionsMatch as failure:
        event("no versions match")
        unmet = [str(r) for r in roots
                 if not any(r.constraint.matches(parse_version(v)) for v in allowed(universe, pins, r.name))]
        assert failure.constraints == unmet
        assert unmet
        return
    except Unsatisfiable as failure:
        event("unsatisfiable")
        assert brute_force(universe, pins, roots) is None
        first_bad = next(i for i in range(len(roots)) if brute_force(universe, pins, roots[:i + 1]) is None)
        assert failure.unsatisfiable_run_list_item == str(roots[first_bad])
        assert failure.non_existent_cookbooks or failure.most_constrained_cookbooks
        return
    event("solved")
    assert satisfied(universe, pins, roots, result)
    assert score(universe, pins, roots, result) == brute_force(universe, pins, roots)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_answers_are_deterministic(problem):
    universe, pins, run_list = problem

    def outcome():
        try:
            return solve(universe, pins, run_list)
        except DepsolverFailure as failure:
            return failure.body()
    assert outcome() == outcome()
