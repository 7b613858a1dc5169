"""The cookbook selection problem as a CP-SAT model (OR-tools), and how its answers are read.

One Boolean per allowed cookbook version; at most one per cookbook; a selected version implies,
for each of its dependencies, that the dependency is selected at a matching version; each
run-list item must be met. Cookbooks need not be selected at all unless something requires them.
The preferences are erchef's order (run-list cookbooks at their newest allowed version, then the
others); dep_selector also counts cookbooks the answer leaves out, which can hold back one it
keeps, so we count only selected cookbooks and break remaining ties toward newer versions.

`relaxed=True` adds dep_selector's relaxation, used only to explain a failure: each cookbook can
be "disabled", which lifts every constraint on it; the model then minimises how many are
disabled, run-list cookbooks first, then those merely required by others, then "suspicious"
ones (the target of a dependency no version meets), as erchef's dep_selector does.

Why CP-SAT (OR-tools): on bench/depsolver.py's universe (540 cookbooks x 20 versions, seed 1)
it answers solvable run lists with proven-optimal preferences in p50 110 ms, p99 230 ms of CPU
(40-60 item run lists: p50 0.6 s), and proves and explains conflicts in p50 150-230 ms of CPU,
all well inside erchef's 5 s limit on this project's shared 2-core machine. resolvelib (pip's
resolver), measured on the same cases with a provider trying newest first, is faster on easy
lists (p50 41 ms) but picks by greedy backtracking, not by preference: its answer differed from
the preferred one on 46 of 50 solvable lists, it gave up ("too deep", 20000 rounds) on 6
solvable ones, and on conflicts it ran 5-23 s, mostly ending "too deep" rather than proving
anything. python-sat would need a MaxSAT layer (RC2) for the preferences and has no time limit
of its own. CP-SAT runs with one worker so that every frontend gives the same answer for the
same input, honours the time limit itself, and releases the GIL while it searches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ortools.sat.python import cp_model

from .graph import Graph
from .runlist import RunListCookbook


class TimeLimit(Exception):
    """The solver ran out of time before proving its answer."""


class SelectionModel:
    """The CP-SAT model of one depsolver request; run-list items can be switched off for culprit search."""

    def __init__(self, graph: Graph, roots: Sequence[RunListCookbook], *, relaxed: bool = False,
                 optional_roots: bool = False) -> None:
        self.graph = graph
        self.roots = list(roots)
        model = self.model = cp_model.CpModel()
        self.chosen = {name: [model.new_bool_var("") for _ in pkg.versions]
                       for name, pkg in graph.packages.items()}
        self.disabled = {name: model.new_bool_var("") for name in graph.packages} if relaxed else {}
        self.suspicious: set[str] = set()
        """Cookbooks some dependency in the graph constrains to no version."""
        self._met: dict[tuple[str, int, int], cp_model.IntVar | None] = {}
        for lits in self.chosen.values():
            if len(lits) > 1:
                model.add_at_most_one(lits)
        for name, pkg in graph.packages.items():
            lits = self.chosen[name]
            for index, deps in enumerate(pkg.dependencies):
                for dep, constraint in deps:
                    met = self._met_literal(dep, graph.matching(dep, constraint))
                    if met is None:
                        model.add_bool_or([lits[index].Not()])
                    else:
                        model.add_implication(lits[index], met)
        self.enabled = []
        for root in self.roots:
            met = self._met_literal(root.name, graph.matching(root.name, root.constraint))
            assert met is not None, "run-list items that no version meets are rejected before solving"
            if optional_roots:
                on = model.new_bool_var("")
                model.add_implication(on, met)
                self.enabled.append(on)
            else:
                model.add_bool_or([met])

    def _met_literal(self, name: str, versions: range) -> cp_model.IntVar | None:
        """A literal implying `name` is at one of `versions` (or disabled); None when impossible."""
        key = (name, versions.start, versions.stop)
        if key in self._met:
            return self._met[key]
        lits = self.chosen[name][versions.start:versions.stop]
        if not versions:
            self.suspicious.add(name)
        if self.disabled:
            lits = [*lits, self.disabled[name]]
        if not lits:
            met = None
        elif len(lits) == 1:
            met = lits[0]
        else:
            met = self.model.new_bool_var("")
            self.model.add_bool_or(lits).only_enforce_if(met)
        self._met[key] = met
        return met

    def prefer_newest(self) -> None:
        """Objective: run-list cookbooks at their newest allowed version first, then every other
        selected cookbook at its newest, then versions as new as possible overall."""
        root_names = {root.name for root in self.roots}
        distance_terms, older_terms, root_terms = [], [], []
        distance_max = older_max = 0
        for name, lits in self.chosen.items():
            last = len(lits) - 1
            for index, lit in enumerate(lits[:-1]):
                distance_terms.append((last - index, lit))
                distance_max += last - index
                if name not in root_names:
                    older_terms.append(lit)
            if name in root_names and lits:
                root_terms.append(lits[-1])
            older_max += max(last, 0)
        older_weight = distance_max + 1
        root_weight = older_weight * (older_max + 1)
        self.model.minimize(
            sum(w * lit for w, lit in distance_terms)
            + older_weight * sum(older_terms)
            - root_weight * sum(root_terms)
        )

    def prefer_fewest_disabled(self, suspicious: set[str]) -> None:
        """Objective of the relaxed model, dep_selector's: disable as few run-list cookbooks as
        possible, then as few of the others, then as few `suspicious` ones (targets of a
        dependency that no version meets anywhere in the request's graph)."""
        required = {root.name for root in self.roots}
        n = len(self.disabled)
        induced_weight = n + 1
        required_weight = induced_weight * (n + 1)
        terms = []
        for name, lit in self.disabled.items():
            weight = (required_weight if name in required else 0) + (1 if name in suspicious else 0)
            if not weight:
                weight = induced_weight
            terms.append(weight * lit)
        self.model.minimize(sum(terms))

    def solve(self, deadline: float, active_roots: int | None = None) -> cp_model.CpSolver | None:
        """Solve with the first `active_roots` run-list items switched on (all by default).

        Returns the solver holding a proven answer, None when infeasible; raises TimeLimit.
        """
        self.model.clear_assumptions()
        if self.enabled:
            count = len(self.enabled) if active_roots is None else active_roots
            self.model.add_assumptions(self.enabled[:count])
            self.model.add_assumptions([lit.Not() for lit in self.enabled[count:]])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeLimit
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1  # deterministic: every frontend answers alike
        # Core-based optimisation suits this objective (a weighted sum of Booleans); the LP
        # relaxation and probing cost more than they prune here (measured on the benchmark).
        solver.parameters.optimize_with_core = True
        solver.parameters.linearization_level = 0
        solver.parameters.cp_model_probing_level = 0
        solver.parameters.max_time_in_seconds = remaining
        status = solver.solve(self.model)
        if status == cp_model.OPTIMAL:
            return solver
        if status == cp_model.INFEASIBLE:
            return None
        if status in (cp_model.FEASIBLE, cp_model.UNKNOWN):
            raise TimeLimit
        raise RuntimeError(f"depsolver model rejected by CP-SAT: {solver.status_name(status)}")

    def selection(self, solver: cp_model.CpSolver) -> dict[str, int]:
        """The chosen version index of each selected cookbook."""
        picked = {}
        for name, lits in self.chosen.items():
            for index, lit in enumerate(lits):
                if solver.boolean_value(lit):
                    picked[name] = index
        return picked

    def disabled_names(self, solver: cp_model.CpSolver) -> list[str]:
        """The cookbooks the relaxed model had to disable, in graph order."""
        return [name for name, lit in self.disabled.items() if solver.boolean_value(lit)]
