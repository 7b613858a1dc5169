"""What a depsolver answer must satisfy, and how erchef's preferences score it (for tests)."""

from chef_server.depsolver.constraints import parse_constraint, parse_version


def allowed(universe, pins, name):
    """The cookbook's versions the environment allows, oldest first."""
    pin = parse_constraint(pins[name]) if name in pins else None
    versions = sorted(universe.get(name, {}), key=parse_version)
    return [v for v in versions if pin is None or pin.matches(parse_version(v))]


def satisfied(universe, pins, roots, assignment):
    """Whether `assignment` {name: label} meets the run-list items and every chosen version's dependencies."""
    for root in roots:
        if root.name not in assignment or not root.constraint.matches(parse_version(assignment[root.name])):
            return False
    for name, label in assignment.items():
        if label not in allowed(universe, pins, name):
            return False
        for dep, text in universe[name][label].items():
            if dep not in assignment or not parse_constraint(text).matches(parse_version(assignment[dep])):
                return False
    return True


def score(universe, pins, roots, assignment):
    root_names = {root.name for root in roots}
    off_root = off_other = distance = 0
    for name, label in assignment.items():
        versions = allowed(universe, pins, name)
        behind = len(versions) - 1 - versions.index(label)
        distance += behind
        if name in root_names:
            off_root += behind > 0
        else:
            off_other += behind > 0
    return off_root, off_other, distance
