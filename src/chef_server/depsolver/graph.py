"""The part of an organization's cookbook universe a run list can reach, as the solver sees it.

Input shapes are those the HTTP layer reads from the database: the universe maps each cookbook
name to its versions (strings) and each version to its metadata dependencies `{name: constraint}`;
the environment's `cookbook_versions` pins map names to constraints. As in erchef, a pin removes
the versions it excludes before anything else, and only cookbooks reachable from the run list
through any remaining version's dependencies take part (in depth-first order, which decides what
a failure reports first).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field

from .constraints import Constraint, Version, parse_constraint, parse_version

Universe = Mapping[str, Mapping[str, Mapping[str, str]]]
"""cookbook name -> version string -> metadata dependencies {cookbook name: constraint}."""


@dataclass(slots=True)
class Package:
    """One cookbook's versions allowed by the environment, oldest first, with parsed dependencies."""

    name: str
    versions: list[Version]
    labels: list[str]
    """The universe's own version strings, parallel to `versions`."""
    dependencies: list[list[tuple[str, Constraint]]]
    """Per version, its dependencies in metadata order."""
    _ranges: dict[Constraint, range] = field(default_factory=dict)

    def matching(self, constraint: Constraint) -> range:
        """Indexes of the versions that satisfy `constraint` (always contiguous)."""
        found = self._ranges.get(constraint)
        if found is None:
            low, low_in, high, high_in = constraint.bounds()
            start = (bisect_left if low_in else bisect_right)(self.versions, low)
            if high is None:
                stop = len(self.versions)
            else:
                stop = (bisect_right if high_in else bisect_left)(self.versions, high)
            found = self._ranges[constraint] = range(start, max(start, stop))
        return found


@dataclass(slots=True)
class Graph:
    """Reachable packages in depth-first order from the run list's cookbooks."""

    packages: dict[str, Package]
    known: Container[str]
    """Every cookbook name in the organization, whether or not the environment allows a version."""

    def matching(self, name: str, constraint: Constraint) -> range:
        """Indexes of `name`'s allowed versions meeting `constraint`; empty for unknown cookbooks."""
        package = self.packages.get(name)
        return package.matching(constraint) if package else range(0)

    @classmethod
    def build(cls, universe: Universe, pins: Mapping[str, str], roots: Iterable[str]) -> Graph:
        """Parse and filter what `roots` can reach; cookbooks without allowed versions have none."""
        parsed_pins = {name: parse_constraint(text) for name, text in pins.items()}

        def load(name: str) -> Package:
            pin = parsed_pins.get(name)
            allowed = []
            for label, deps in universe.get(name, {}).items():
                version = parse_version(label)
                if pin is None or pin.matches(version):
                    allowed.append((version, label, [(dep, parse_constraint(text)) for dep, text in deps.items()]))
            allowed.sort(key=lambda entry: entry[0])
            return Package(name, [a[0] for a in allowed], [a[1] for a in allowed], [a[2] for a in allowed])

        return cls(_depth_first(roots, load), universe)

    def restricted(self, roots: Iterable[str]) -> Graph:
        """The part of this graph reachable from `roots`, in the same order."""
        return Graph(_depth_first(roots, self.packages.__getitem__), self.known)


def _depth_first(roots: Iterable[str], load: Callable[[str], Package]) -> dict[str, Package]:
    """Packages reachable from `roots`, depth-first preorder over newest-first versions, as
    dep_selector orders its packages."""
    packages: dict[str, Package] = {}
    for root in roots:
        if root in packages:
            continue
        packages[root] = load(root)
        stack = [_children(packages[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
            elif child not in packages:
                packages[child] = load(child)
                stack.append(_children(packages[child]))
    return packages


def _children(package: Package) -> Iterable[str]:
    for deps in reversed(package.dependencies):
        for name, _ in deps:
            yield name
