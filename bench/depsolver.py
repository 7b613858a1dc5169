"""Depsolver benchmark: solve times on a seeded synthetic cookbook universe.

    .venv/bin/python bench/depsolver.py [--seed S] [--cookbooks 500] [--versions 20] [--runs 200]

The universe has tiers like a real organization's: base cookbooks with no dependencies, library
cookbooks on top of them, service cookbooks, and wrapper cookbooks that run lists name. Each
cookbook has `--versions` versions (majors, minors and patches mixed); each version depends on a
few cookbooks of lower tiers with every Chef operator (`>=`, `~> x.y`, `~> x.y.z`, `=`, `<`,
`>`), newer versions asking for newer dependencies, and a dependency is added or dropped now and
then. The environment pins about one cookbook in ten. Run lists name 3 to 12 wrapper or service
cookbooks, some with `@version` (plus ten large run lists of 40 to 60).

Unsatisfiable cases: two run-list cookbooks asking for disjoint ranges of a shared dependency
(far apart in the run list and deep in the graph), an environment pin excluding what a
dependency needs, and a dependency on a cookbook that does not exist.

Prints one JSON document: p50, p99 and max solve time in milliseconds per case kind (wall clock,
and CPU time, which a shared machine disturbs less), with how many answers and failures of each
kind came back.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from chef_server.depsolver import DepsolverFailure, solve

TIERS = (("base", 0.15), ("lib", 0.30), ("svc", 0.35), ("wrap", 0.20))


def make_versions(rng: random.Random, count: int) -> list[tuple[int, int, int]]:
    """`count` increasing versions: mostly patches and minors, a new major now and then."""
    major, minor, patch = rng.randint(0, 2), rng.randint(0, 5), 0
    result = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.08:
            major, minor, patch = major + 1, 0, 0
        elif roll < 0.45:
            minor, patch = minor + 1, 0
        else:
            patch += 1
        result.append((major, minor, patch))
    return result


def text(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


def constraint_for(rng: random.Random, versions: list[tuple[int, int, int]], position: float) -> str:
    """A constraint on a dependency with `versions`, aiming at the part `position` (0..1) of its history."""
    index = min(len(versions) - 1, max(0, int(position * len(versions)) + rng.randint(-4, 0)))
    v = versions[index]
    roll = rng.random()
    if roll < 0.45:
        return f">= {text(v)}"
    if roll < 0.70:
        return f"~> {v[0]}.{v[1]}"
    if roll < 0.80:
        return f"~> {text(v)}"
    if roll < 0.85:
        return f"= {text(v)}"
    if roll < 0.93:
        return f"< {v[0] + 1}.0"
    return f"> {text(versions[max(0, index - 3)])}"


def make_universe(rng: random.Random, cookbooks: int, versions: int):
    """(universe, tiers {tier: [names]}, version lists {name: [(x, y, z)]})."""
    tiers: dict[str, list[str]] = {}
    names = []
    for tier, share in TIERS:
        tiers[tier] = [f"{tier}{i:03d}" for i in range(max(1, round(cookbooks * share)))]
        names += tiers[tier]
    history = {name: make_versions(rng, versions) for name in names}
    lower: list[str] = []
    universe: dict[str, dict[str, dict[str, str]]] = {}
    for tier, _ in TIERS:
        for name in tiers[tier]:
            fanout = 0 if tier == "base" else rng.choice((1, 2, 2, 3, 3, 4, 5))
            deps = rng.sample(lower, min(fanout, len(lower)))
            universe[name] = {}
            for k, v in enumerate(history[name]):
                if lower and rng.random() < 0.1:
                    deps = deps[:-1] if deps and rng.random() < 0.5 else [*deps, rng.choice(lower)]
                position = k / versions
                universe[name][text(v)] = {
                    dep: constraint_for(rng, history[dep], position) for dep in dict.fromkeys(deps) if dep != name
                }
        lower += tiers[tier]
    return universe, tiers, history


def make_pins(rng: random.Random, history) -> dict[str, str]:
    pins = {}
    for name, versions in history.items():
        if rng.random() < 0.1:
            v = versions[rng.randrange(len(versions) // 2, len(versions))]
            pins[name] = rng.choice((f"~> {v[0]}.{v[1]}", f"<= {text(v)}", f">= {text(versions[2])}"))
    return pins


def make_run_list(rng: random.Random, tiers, history, size: tuple[int, int] = (3, 12)) -> list[str]:
    pool = tiers["wrap"] + tiers["svc"]
    run_list = []
    for name in rng.sample(pool, rng.randint(*size)):
        recipe = name if rng.random() < 0.5 else f"{name}::{rng.choice(('default', 'server', 'client'))}"
        if rng.random() < 0.1:
            recipe += "@" + text(rng.choice(history[name][-5:]))
        run_list.append(recipe)
    return run_list


def add_conflicts(rng: random.Random, universe, tiers, history) -> list[tuple[str, list[str], dict[str, str]]]:
    """Unsatisfiable cases: (kind, run list, extra pins); adds the cookbooks they need to `universe`."""
    cases = []
    for i in range(10):
        shared = rng.choice(tiers["base"])
        old, new = history[shared][4], history[shared][12]
        for side, constraint in (("a", f"< {text(old)}"), ("b", f">= {text(new)}")):
            target = rng.choice(tiers["lib"])
            universe[f"clash{i}{side}"] = {f"1.{k}.0": {target: ">= 0.0", shared: constraint} for k in range(10)}
        filler = make_run_list(rng, tiers, history)
        cases.append(("conflict", [f"clash{i}a", *filler, f"clash{i}b"], {}))
    for i in range(10):
        shared = rng.choice(tiers["base"])
        universe[f"needsnew{i}"] = {f"2.{k}.0": {shared: f">= {text(history[shared][-1])}"} for k in range(5)}
        cases.append(("pin", [*make_run_list(rng, tiers, history), f"needsnew{i}"],
                      {shared: f"< {text(history[shared][-1])}"}))
    for i in range(10):
        universe[f"broken{i}"] = {"1.0.0": {rng.choice(tiers["lib"]): ">= 0.0", f"missing{i}": ">= 1.0"}}
        cases.append(("missing", [*make_run_list(rng, tiers, history), f"broken{i}"], {}))
    return cases


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(universe, pins, run_list, timeout) -> tuple[tuple[float, float], str]:
    """((wall ms, CPU ms), outcome) of one solve."""
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        solve(universe, pins, run_list, timeout=timeout)
        outcome = "solved"
    except DepsolverFailure as failure:
        outcome = type(failure).__name__
    return ((time.perf_counter() - start) * 1000, (time.process_time() - start_cpu) * 1000), outcome


def summary(times, outcomes) -> dict:
    """Wall-clock percentiles, and CPU-time ones (steadier on a shared machine)."""
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return {
        "runs": len(times),
        "p50_ms": round(percentile(wall, 50), 2),
        "p99_ms": round(percentile(wall, 99), 2),
        "max_ms": round(max(wall), 2),
        "cpu_p50_ms": round(percentile(cpu, 50), 2),
        "cpu_p99_ms": round(percentile(cpu, 99), 2),
        "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cookbooks", type=int, default=500)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=5.0, help="solver time limit, seconds (erchef's default)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    universe, tiers, history = make_universe(rng, args.cookbooks, args.versions)
    pins = make_pins(rng, history)
    conflicts = add_conflicts(rng, universe, tiers, history)
    run_lists = [make_run_list(rng, tiers, history) for _ in range(args.runs)]
    large = [make_run_list(rng, tiers, history, (40, 60)) for _ in range(10)]

    timed(universe, pins, run_lists[0], args.timeout)  # warm-up: imports, first CP-SAT call
    results = [timed(universe, pins, run_list, args.timeout) for run_list in run_lists]
    report = {
        "seed": args.seed,
        "cookbooks": len(universe),
        "versions_per_cookbook": args.versions,
        "dependency_edges": sum(len(deps) for versions in universe.values() for deps in versions.values()),
        "pinned": len(pins),
        "timeout_s": args.timeout,
        "random_run_lists": summary([t for t, _ in results], [o for _, o in results]),
        "random_run_lists_solved_only": summary(*zip(*[(t, o) for t, o in results if o == "solved"], strict=True)),
    }
    runs = [timed(universe, pins, run_list, args.timeout) for run_list in large]
    report["large_run_lists_40_to_60"] = summary([t for t, _ in runs], [o for _, o in runs])
    for kind in ("conflict", "pin", "missing"):
        runs = [timed(universe, {**pins, **extra}, run_list, args.timeout)
                for k, run_list, extra in conflicts if k == kind]
        report[f"unsatisfiable_{kind}"] = summary([t for t, _ in runs], [o for _, o in runs])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
