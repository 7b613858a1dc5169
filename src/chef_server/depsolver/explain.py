"""Explaining an unsatisfiable run list the way erchef's dep_selector does.

dep_selector adds the run-list items one at a time and reports the first that makes the problem
unsolvable; it then relaxes the smallest set of cookbooks ("disabled") that makes that prefix
solvable, names the first that does not exist (else the first that exists), and lists the paths
from the run list to that cookbook. We find the same first item by bisection (solvability only
shrinks as items are added) and reproduce the texts of erchef's 412 body. The path listing is
capped (`MAX_PATHS`, `MAX_STEPS`), as the paths through a large universe can be exponentially many.
"""

from __future__ import annotations

from collections.abc import Sequence

from .failures import Unsatisfiable
from .graph import Graph
from .model import SelectionModel
from .runlist import RunListCookbook

MAX_PATHS = 32
MAX_STEPS = 20_000


def explain(graph: Graph, items: Sequence[RunListCookbook], deadline: float) -> Unsatisfiable:
    """Build the failure for run-list `items`, already known to have no solution.

    Raises model.TimeLimit when the deadline passes first.
    """
    strict = SelectionModel(graph, items, optional_roots=True)
    low, high = 1, len(items)
    while low < high:
        middle = (low + high) // 2
        if strict.solve(deadline, middle) is None:
            high = middle
        else:
            low = middle + 1
    relaxed = SelectionModel(graph.restricted(item.name for item in items[:high]), items[:high], relaxed=True)
    relaxed.prefer_fewest_disabled(strict.suspicious)
    solver = relaxed.solve(deadline)
    assert solver is not None, "disabling every cookbook always satisfies the relaxed model"
    disabled = relaxed.disabled_names(solver)
    missing = [name for name in disabled if name not in graph.known]
    constrained = [name for name in disabled if name in graph.known]
    culprit = (missing or constrained)[0]
    return Unsatisfiable(
        message=_feedback(graph, items, items[high - 1], culprit),
        unsatisfiable_run_list_item=str(items[high - 1]),
        non_existent_cookbooks=missing,
        most_constrained_cookbooks=[_describe_newest(graph, name) for name in constrained],
    )


def _describe_newest(graph: Graph, name: str) -> str:
    """`name = NEWEST -> [(dep op x.y.z), ...]`, dep_selector's description of a cookbook."""
    package = graph.packages[name]
    if not package.versions:
        return f"{name} = "
    deps = ", ".join(f"({dep} {constraint})" for dep, constraint in package.dependencies[-1])
    return f"{name} = {package.versions[-1]} -> [{deps}]"


def _feedback(graph: Graph, items: Sequence[RunListCookbook], failing: RunListCookbook, culprit: str) -> str:
    exists = bool(graph.packages[culprit].versions)
    paths = _collapse(_paths_to(graph, items, culprit))
    listed = ", ".join("[" + " -> ".join(_show(step) for step in path) + "]" for path in paths)
    return (
        f"Unable to satisfy constraints on package {culprit}{'' if exists else ', which does not exist,'}"
        f" due to solution constraint {failing}. "
        f"Solution constraints that may result in a constraint on {culprit}: {listed}"
    )


# A path step is ("v", cookbook, version) for a chosen version, ("c", cookbook, constraint) for
# the constraint that reaches the target, or a list of "v" steps merged by _collapse.


def _paths_to(graph: Graph, items: Sequence[RunListCookbook], target: str) -> list[list]:
    """Every path from a run-list item through matching versions' dependencies to `target`."""
    paths: list[list] = []
    steps = 0

    def walk(name: str, constraint, path: list) -> None:
        nonlocal steps
        steps += 1
        if len(paths) >= MAX_PATHS or steps > MAX_STEPS:
            return
        if name == target:
            paths.append([*path, ("c", name, str(constraint))])
            return
        package = graph.packages[name]
        if not package.versions or any(step[1] == name for step in path):
            return
        seen = []
        for index in reversed(package.matching(constraint)):  # newest first, as erchef lists them
            deps = package.dependencies[index]
            if deps in seen:
                continue
            path.append(("v", name, str(package.versions[index])))
            for dep, dep_constraint in deps:
                if dep != name:
                    walk(dep, dep_constraint, path)
            path.pop()
            seen.append(deps)

    for item in items:
        walk(item.name, item.constraint, [])
    return paths


def _collapse(paths: list[list]) -> list[list]:
    """Merge each path into the previous one when they differ only in one version of one cookbook."""
    if len(paths) < 2:
        return paths
    collapsed: list[list] = []
    for path in paths:
        last = collapsed[-1] if collapsed else None
        if last is None or len(last) != len(path):
            collapsed.append(list(path))
            continue
        differs_at, merged = None, None
        for index, step in enumerate(path):
            if step == last[index]:
                continue
            previous = last[index] if isinstance(last[index], list) else [last[index]]
            if differs_at is not None or previous[0][0] != "v" or step[0] != "v" or previous[0][1] != step[1]:
                differs_at = None
                break
            differs_at, merged = index, [*previous, step]
        if differs_at is None:
            collapsed.append(list(path))
        else:
            last[differs_at] = merged
    return collapsed


def _show(step) -> str:
    if isinstance(step, list):
        return f"({step[0][1]} = {{{','.join(s[2] for s in step)}}})"
    kind, name, text = step
    return f"({name} = {text})" if kind == "v" else f"({name} {text})"
