"""erchef's cookbook dependency solver (`POST /organizations/O/environments/E/cookbook_versions`).

Pure code: `solve(universe, pins, run_list)` returns the chosen version of every cookbook the run
list needs, or raises a `DepsolverFailure` whose `status` and `body()` are erchef's answer.
Constraint parsing and validation, shared with cookbook and environment validation, live in
`constraints` (`is_valid_constraint`, `parse_constraint`, `parse_version`).

For the HTTP layer: call `solve` off the event loop (a worker thread; CP-SAT releases the GIL
while it searches), bound how many run at once and answer 503 "Dependency solver overloaded. Try
again later." when none is free, as erchef does when its solver pool is exhausted.
"""

from .constraints import (
    Constraint,
    InvalidConstraint,
    InvalidVersion,
    Version,
    is_valid_constraint,
    parse_constraint,
    parse_version,
)
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
    "is_valid_constraint",
    "parse_constraint",
    "parse_version",
    "solve",
]
