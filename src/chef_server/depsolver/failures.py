"""Why a run list cannot be solved, carrying what erchef's answer says.

Each failure knows its HTTP status and the JSON object erchef puts in `{"error": [...]}`, so the
HTTP layer only has to send `failure.status` and `failure.body()`. Every one is a 412 in erchef,
the time limit too (`chef_wm_depsolver` answers `resolution_timeout` with a precondition failure;
its 503s are for an exhausted solver pool and the cookbook cache, which are not decisions of the
solver).
"""

from __future__ import annotations

from dataclasses import dataclass


class DepsolverFailure(Exception):
    """A run list the depsolver cannot satisfy; `body()` is erchef's error body."""

    status = 412

    def detail(self) -> dict:
        """The object erchef puts in the body's `error` list."""
        raise NotImplementedError

    def body(self) -> dict:
        """The whole JSON response body."""
        return {"error": [self.detail()]}

    def __str__(self) -> str:
        return self.detail()["message"]


@dataclass(eq=False)
class CookbooksNotFound(DepsolverFailure):
    """Run-list cookbooks that have no version at all in the organization."""

    names: list[str]

    def detail(self) -> dict:
        noun = "cookbook" if len(self.names) == 1 else "cookbooks"
        return {
            "message": f"Run list contains invalid items: no such {noun} {', '.join(self.names)}.",
            "non_existent_cookbooks": list(self.names),
            "cookbooks_with_no_versions": [],
        }


@dataclass(eq=False)
class NoVersionsMatch(DepsolverFailure):
    """Run-list items (as `(name op version)`) that no version allowed by the environment meets."""

    constraints: list[str]

    def detail(self) -> dict:
        noun = "cookbook" if len(self.constraints) == 1 else "cookbooks"
        return {
            "message": "Run list contains invalid items: no versions match the constraints on "
            f"{noun} {', '.join(self.constraints)}.",
            "non_existent_cookbooks": [],
            "cookbooks_with_no_versions": list(self.constraints),
        }


@dataclass(eq=False)
class Unsatisfiable(DepsolverFailure):
    """The dependencies conflict: the first run-list item that cannot be added, and why."""

    message: str
    unsatisfiable_run_list_item: str
    non_existent_cookbooks: list[str]
    most_constrained_cookbooks: list[str]

    def detail(self) -> dict:
        return {
            "message": self.message,
            "unsatisfiable_run_list_item": self.unsatisfiable_run_list_item,
            "non_existent_cookbooks": list(self.non_existent_cookbooks),
            "most_constrained_cookbooks": list(self.most_constrained_cookbooks),
        }


class SolveTimeout(DepsolverFailure):
    """The solver did not finish within the time limit."""

    def detail(self) -> dict:
        return {
            "message": "unable to solve dependencies in alotted time",
            "non_existent_cookbooks": [],
            "most_constrained_cookbooks": [],
        }
