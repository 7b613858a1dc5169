"""From the run list a client posts to the cookbooks the depsolver must include.

chef-client sends an expanded run list of recipes: `cb`, `cb::recipe`, either with `@x.y.z`. As
in erchef, each item names its cookbook (the part before `::`) and, with `@`, an exact version;
exact duplicates are dropped keeping the first, while `cb` and `cb@1.0.0` stay separate items.
The run list's syntax is validated beforehand by the HTTP layer (the same rules as node and role
run lists).
"""

from __future__ import annotations

from dataclasses import dataclass

from .constraints import ANY, Constraint, Version, parse_version


@dataclass(frozen=True, slots=True)
class RunListCookbook:
    """A cookbook the run list requires, with the exact version asked for, if any."""

    name: str
    version: Version | None = None

    @property
    def constraint(self) -> Constraint:
        """The constraint this item puts on its cookbook (any version when none is given)."""
        return ANY if self.version is None else Constraint("=", self.version)

    def __str__(self) -> str:
        # dep_selector's "solution constraint" form, quoted in erchef's 412 bodies.
        return f"({self.name} {self.constraint})"


def cookbooks_for_run_list(run_list: list[str]) -> list[RunListCookbook]:
    """The run list's cookbooks in order, exact duplicates removed."""
    seen: set[RunListCookbook] = set()
    result = []
    for item in run_list:
        recipe, _, version = item.partition("@")
        cookbook = RunListCookbook(recipe.split("::", 1)[0], parse_version(version) if version else None)
        if cookbook not in seen:
            seen.add(cookbook)
            result.append(cookbook)
    return result
