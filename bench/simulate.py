"""Run many simulated schedules of the leader managers (tests/simulation) and print JSON.

    python bench/simulate.py [--schedules N] [--start SEED] [--jobs J] [--duration S]

Each schedule is one seed: 3 or 5 nodes, TTL 30 or 10, cuts that drop or reset, and a random
fault schedule over `--duration` simulated seconds, with every invariant checked after every event.
Prints schedules/s, the seeds tried, and the first failing seed with its violation and schedule
(replay it with `python -m tests.simulation SEED --trace`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.simulation.world import Outcome, run


def one(args: tuple[int, float]) -> Outcome:
    seed, duration = args
    return run(seed, duration=duration)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=max(1, (multiprocessing.cpu_count() or 1)))
    parser.add_argument("--duration", type=float, default=150.0, help="simulated seconds per schedule")
    args = parser.parse_args()
    seeds = range(args.start, args.start + args.schedules)
    started = time.monotonic()
    failing: Outcome | None = None
    tried = commits = acknowledged = promotions = 0
    with multiprocessing.Pool(args.jobs) as pool:
        for outcome in pool.imap(one, ((s, args.duration) for s in seeds), chunksize=4):
            tried += 1
            commits += outcome.commits
            acknowledged += outcome.acknowledged
            promotions += outcome.promotions
            if outcome.violation and failing is None:
                failing = outcome
                pool.terminate()
                break
    seconds = time.monotonic() - started
    report = {
        "schedules": tried,
        "seconds": round(seconds, 2),
        "schedules_per_second": round(tried / seconds, 2) if seconds else None,
        "simulated_seconds_per_schedule": args.duration,
        "seeds": [args.start, args.start + tried - 1],
        "commits": commits,
        "acknowledged": acknowledged,
        "promotions": promotions,
        "failing_seed": failing.seed if failing else None,
        "violation": failing.violation if failing else None,
        "schedule": failing.schedule if failing else None,
    }
    print(json.dumps(report, indent=2))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
