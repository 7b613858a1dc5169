"""Chef cookbook versions and version constraints: parsing, validation, matching.

A version is `x`, `x.y` or `x.y.z` of non-negative integers (missing parts are 0), each at most
2**63-1, the range erchef accepts (PostgreSQL bigint columns). A constraint is `OP VERSION` with
exactly one space, OP one of `=`, `>`, `>=`, `<`, `<=`, `~>`, or a bare version (meaning `=`).
`~> x.y` allows `x.y` up to the next major (`>= x.y, < x+1`); `~> x.y.z` allows `x.y.z` up to
the next minor (`>= x.y.z, < x.(y+1)`). erchef validates environment `cookbook_versions` and
cookbook metadata `dependencies` with these rules; the HTTP layer uses `parse_constraint` for both.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

MAX_VERSION_PART = 2**63 - 1

OPERATORS = ("=", ">", ">=", "<", "<=", "~>")

_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_CONSTRAINT = re.compile(r"(?:(=|>|>=|<|<=|~>) )?([^ ]+)")


class InvalidVersion(ValueError):
    """A version string is not `x`, `x.y` or `x.y.z` of non-negative integers."""


class InvalidConstraint(ValueError):
    """A constraint string is not `OP VERSION` (one space) or a bare version."""


class Version(NamedTuple):
    """A cookbook version; ordered by (major, minor, patch). A tuple: solving compares and hashes
    versions and constraints by the hundred thousand, and tuples do that in C."""

    major: int
    minor: int = 0
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> Version:
    """Parse `x`, `x.y` or `x.y.z`; raise InvalidVersion otherwise."""
    version, _ = _parse_version_parts(text)
    return version


def _parse_version_parts(text: str) -> tuple[Version, int]:
    match = _VERSION.fullmatch(text) if isinstance(text, str) and text.isascii() else None
    if match is None:
        raise InvalidVersion(f"invalid version {text!r}")
    parts = [int(p) for p in match.groups() if p is not None]
    if any(p > MAX_VERSION_PART for p in parts):
        raise InvalidVersion(f"invalid version {text!r}")
    return Version(*parts), len(parts)


class Constraint(NamedTuple):
    """One version constraint. `short` marks `~>` given as `x` or `x.y` (minor may float)."""

    op: str
    version: Version
    short: bool = False

    def matches(self, v: Version) -> bool:
        """Whether version `v` satisfies this constraint."""
        op, c = self.op, self.version
        if op == "=":
            return v == c
        if op == ">=":
            return v >= c
        if op == ">":
            return v > c
        if op == "<=":
            return v <= c
        if op == "<":
            return v < c
        if self.short:
            return v.major == c.major and v.minor >= c.minor
        return v.major == c.major and v.minor == c.minor and v.patch >= c.patch

    def bounds(self) -> tuple[Version, bool, Version | None, bool]:
        """The interval of matching versions: (low, low included, high or None for unbounded, high included)."""
        op, c = self.op, self.version
        if op == "=":
            return c, True, c, True
        if op == ">=":
            return c, True, None, False
        if op == ">":
            return c, False, None, False
        if op == "<=":
            return ZERO, True, c, True
        if op == "<":
            return ZERO, True, c, False
        upper = Version(c.major + 1) if self.short else Version(c.major, c.minor + 1)
        return c, True, upper, False

    def __str__(self) -> str:
        # dep_selector's form, which erchef's 412 bodies quote: the version always as x.y.z.
        return f"{self.op} {self.version}"


ZERO = Version(0, 0, 0)
ANY = Constraint(">=", ZERO)


@functools.lru_cache(maxsize=65536)
def parse_constraint(text: str) -> Constraint:
    """Parse a Chef version constraint; raise InvalidConstraint (a ValueError) when malformed."""
    match = _CONSTRAINT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidConstraint(f"invalid version constraint {text!r}")
    op, raw = match.groups()
    try:
        version, nparts = _parse_version_parts(raw)
    except InvalidVersion:
        raise InvalidConstraint(f"invalid version constraint {text!r}") from None
    return Constraint(op or "=", version, short=(op == "~>" and nparts <= 2))


def is_valid_constraint(value: object) -> bool:
    """Whether `value` is a constraint string erchef accepts (for request validation)."""
    if not isinstance(value, str):
        return False
    try:
        parse_constraint(value)
    except InvalidConstraint:
        return False
    return True
