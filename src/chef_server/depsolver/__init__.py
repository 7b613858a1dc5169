"""erchef's cookbook dependency solver (`POST /organizations/O/environments/E/cookbook_versions`).

Pure code: `solve(universe, pins, run_list)` returns the chosen version of every cookbook the run
list needs, or raises a `DepsolverFailure` whose `status` and `body()` are erchef's answer.
Constraint parsing and validation, shared with cookbook and environment validation, live in
`constraints`.
"""

from .constraints import Constraint, InvalidConstraint, InvalidVersion, Version, parse_constraint, parse_version
from .failures import CookbooksNotFound, DepsolverFailure, NoVersionsMatch, SolveTimeout, Unsatisfiable
from .solver import DEFAULT_TIMEOUT, solve

__all__ = [
    "DEFAULT_TIMEOUT",
    "Constraint",
    "CookbooksNotFound",
    "DepsolverFailure",
    "InvalidConstraint",
    "InvalidVersion",
    "NoVersionsMatch",
    "SolveTimeout",
    "Unsatisfiable",
    "Version",
    "parse_constraint",
    "parse_version",
    "solve",
]
