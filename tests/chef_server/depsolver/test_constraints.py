"""Chef version constraints: what erchef accepts, and which versions each operator matches."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server.depsolver.constraints import (
    ANY,
    Constraint,
    InvalidConstraint,
    InvalidVersion,
    Version,
    is_valid_constraint,
    parse_constraint,
    parse_version,
)

# Accepted and rejected environment cookbook_versions values (pedant's environments/create spec).
VALID = [
    (">= 1.0.0", ">=", Version(1, 0, 0)),
    (">= 1.0", ">=", Version(1, 0, 0)),
    ("<= 1.0.0", "<=", Version(1, 0, 0)),
    ("> 1.0.0", ">", Version(1, 0, 0)),
    ("< 1.0.0", "<", Version(1, 0, 0)),
    ("= 1.0.0", "=", Version(1, 0, 0)),
    ("~> 1.0.0", "~>", Version(1, 0, 0)),
    ("1.0.0", "=", Version(1, 0, 0)),
    ("1.2", "=", Version(1, 2, 0)),
    ("= 1", "=", Version(1, 0, 0)),
    (">= 1.2.20130730201745", ">=", Version(1, 2, 20130730201745)),
    (">= 1.2.2147483669", ">=", Version(1, 2, 2147483669)),
    (f"= 0.0.{2**63 - 1}", "=", Version(0, 0, 2**63 - 1)),
]

INVALID = [">= 1.0.0.0", ">= 1,0,0", ">= 1.a.b", ">= 1.0rc1", ">=1.0.0", " >= 1.0.0", ">=  1.0.0", "", ">= 1.-2.3",
           "s395dss@#", "~>1.0", "=> 1.0", ">= ", "1.0 ", ">= 1.", ">= .1", f"= 0.0.{2**63}", "= ١.٢"]


@pytest.mark.parametrize(("text", "op", "version"), VALID)
def test_valid_constraints_parse(text, op, version):
    constraint = parse_constraint(text)
    assert (constraint.op, constraint.version) == (op, version)
    assert is_valid_constraint(text)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_constraints_are_rejected(text):
    with pytest.raises(InvalidConstraint):
        parse_constraint(text)
    assert not is_valid_constraint(text)


@pytest.mark.parametrize("value", [None, 1, 1.1, [">= 1.0.0"], [], {"a": 1}])
def test_non_strings_are_not_constraints(value):
    assert not is_valid_constraint(value)


@pytest.mark.parametrize(("text", "expected"), [("1", Version(1)), ("1.2", Version(1, 2)), ("1.2.3", Version(1, 2, 3))])
def test_versions_fill_missing_parts_with_zero(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "1.2.3.4", "a", "1.2.x", "-1.0", "1..2", "v1.0"])
def test_invalid_versions(text):
    with pytest.raises(InvalidVersion):
        parse_version(text)


MATCHES = [
    # (constraint, version, matches?)
    ("= 1.2.3", "1.2.3", True),
    ("= 1.2", "1.2.0", True),
    ("= 1.2.3", "1.2.4", False),
    ("> 1.2.3", "1.2.4", True),
    ("> 1.2.3", "1.2.3", False),
    (">= 1.2.3", "1.2.3", True),
    (">= 1.2.3", "1.2.2", False),
    ("< 2.0", "1.99.99", True),
    ("< 2.0", "2.0.0", False),
    ("<= 2.0", "2.0.0", True),
    ("<= 2.0", "2.0.1", False),
    # ~> x.y: same major, minor at least y
    ("~> 1.2", "1.2.0", True),
    ("~> 1.2", "1.9.7", True),
    ("~> 1.2", "1.1.9", False),
    ("~> 1.2", "2.0.0", False),
    # ~> x.y.z: same major and minor, patch at least z
    ("~> 1.2.3", "1.2.3", True),
    ("~> 1.2.3", "1.2.10", True),
    ("~> 1.2.3", "1.2.2", False),
    ("~> 1.2.3", "1.3.0", False),
    ("~> 1.2.0", "1.3.0", False),
    # ~> x: the same as ~> x.0
    ("~> 1", "1.5.0", True),
    ("~> 1", "2.0.0", False),
    ("1.2.3", "1.2.3", True),
    (">= 1.2.20130730200000", "1.2.20130730201745", True),
]


@pytest.mark.parametrize(("constraint", "version", "expected"), MATCHES)
def test_matching(constraint, version, expected):
    assert parse_constraint(constraint).matches(parse_version(version)) is expected


def test_any_matches_everything_and_prints_as_dep_selector_does():
    assert ANY.matches(Version(0)) and ANY.matches(Version(99, 99, 99))
    assert str(ANY) == ">= 0.0.0"
    assert str(parse_constraint("~> 1.2")) == "~> 1.2.0"
    assert str(parse_constraint("1.0")) == "= 1.0.0"


versions = st.builds(Version, st.integers(0, 4), st.integers(0, 4), st.integers(0, 4))


def _constraint(op: str, v: Version, short: bool) -> Constraint:
    # A short ~> (written x or x.y) has patch 0, as parsing makes it.
    if short and op == "~>":
        return Constraint(op, Version(v.major, v.minor), short=True)
    return Constraint(op, v)


constraints = st.builds(_constraint, st.sampled_from(["=", ">", ">=", "<", "<=", "~>"]), versions, st.booleans())


@given(constraints, versions)
def test_bounds_describe_exactly_the_matching_versions(constraint, version):
    low, low_in, high, high_in = constraint.bounds()
    above = version > low or (low_in and version == low)
    below = high is None or version < high or (high_in and version == high)
    assert constraint.matches(version) == (above and below)


@given(constraints)
def test_printed_constraints_parse_back(constraint):
    text = str(constraint)
    if constraint.short:  # the printed x.y.z form of ~> x.y reads as ~> x.y.z
        return
    assert parse_constraint(text) == constraint
