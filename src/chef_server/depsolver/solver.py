"""The depsolver's decision: which version of each cookbook a run list gets in an environment.

The order of checks is erchef's: run-list cookbooks missing from the organization, then run-list
items no environment-allowed version meets, then the search itself (CP-SAT, see model.py), and
on a conflict the explanation (explain.py). The answer holds the run list's cookbooks and,
recursively, the dependencies of the versions chosen, nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from .explain import explain
from .failures import CookbooksNotFound, NoVersionsMatch, SolveTimeout
from .graph import Graph, Universe
from .model import SelectionModel, TimeLimit
from .runlist import RunListCookbook, cookbooks_for_run_list

DEFAULT_TIMEOUT = 5.0
"""Seconds; erchef's default `depsolver_timeout` is 5000 ms."""


def solve(universe: Universe, pins: Mapping[str, str], run_list: list[str],
          timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """Choose cookbook versions for `run_list` in an environment with `pins` (its `cookbook_versions`).

    Returns {cookbook: version string as in `universe`}; raises a failures.DepsolverFailure.
    Inputs are assumed validated (constraints and versions parse; run-list items are recipes).
    """
    deadline = time.monotonic() + timeout
    items = cookbooks_for_run_list(run_list)
    if not items:
        return {}
    missing = [item.name for item in items if item.name not in universe]
    if missing:
        raise CookbooksNotFound(missing)
    graph = Graph.build(universe, pins, [item.name for item in items])
    unmet = [str(item) for item in items if not graph.matching(item.name, item.constraint)]
    if unmet:
        raise NoVersionsMatch(unmet)
    picked = _newest_everywhere(graph, items)
    if picked is not None:
        return _needed(graph, items, picked)
    try:
        model = SelectionModel(graph, items)
        model.prefer_newest()
        solver = model.solve(deadline)
        if solver is None:
            raise explain(graph, items, deadline)
        return _needed(graph, items, model.selection(solver))
    except TimeLimit:
        raise SolveTimeout from None


def _newest_everywhere(graph: Graph, items: list[RunListCookbook]) -> dict[str, int] | None:
    """The newest version of every cookbook (within the run list's own constraints), if that is
    consistent; no assignment can then score better, so it is the solver's answer without search."""
    picked: dict[str, int] = {}
    for item in items:
        index = graph.matching(item.name, item.constraint)[-1]
        if picked.setdefault(item.name, index) != index:
            return None
    pending = list(picked)
    while pending:
        name = pending.pop()
        for dep, constraint in graph.packages[name].dependencies[picked[name]]:
            package = graph.packages[dep]
            if dep not in picked:
                if not package.versions:
                    return None
                picked[dep] = len(package.versions) - 1
                pending.append(dep)
            if picked[dep] not in package.matching(constraint):
                return None
    return picked


def _needed(graph: Graph, items: list[RunListCookbook], picked: dict[str, int]) -> dict[str, str]:
    """The run list's cookbooks and what their chosen versions depend on, depth first."""
    result: dict[str, str] = {}
    for item in items:
        if item.name in result:
            continue
        result[item.name] = _label(graph, item.name, picked)
        stack = [iter(graph.packages[item.name].dependencies[picked[item.name]])]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                stack.pop()
            elif dep[0] not in result:
                result[dep[0]] = _label(graph, dep[0], picked)
                stack.append(iter(graph.packages[dep[0]].dependencies[picked[dep[0]]]))
    return result


def _label(graph: Graph, name: str, picked: dict[str, int]) -> str:
    return graph.packages[name].labels[picked[name]]
