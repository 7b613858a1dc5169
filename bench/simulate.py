"""Run many simulated schedules of the leader managers (tests/simulation) and print JSON.

    python bench/simulate.py [--schedules N] [--start SEED] [--jobs J] [--duration S]

Each schedule is one seed: 3 or 5 nodes, TTL 30 or 10, cuts that drop or reset, and a random
fault schedule over `--duration` simulated seconds, with every invariant checked after every event.
Prints schedules/s, the seeds tried, and the first failing seed with its violation and schedule
(replay it with `python -m tests.simulation SEED --trace`). A progress line goes to stderr every
500 schedules; stopped early (Ctrl-C, SIGTERM), it still prints what it tried, the seeds from
--start on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.simulation.world import Outcome, run


def one(args: tuple[int, float]) -> Outcome:
    seed, duration = args
    return run(seed, duration=duration)


def _worker_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent reports and stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
    stop: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stop.append(signum))
    with multiprocessing.Pool(args.jobs, initializer=_worker_signals) as pool:
        # In seed order, so that the seeds tried are always start .. start + tried - 1.
        outcomes = pool.imap(one, ((s, args.duration) for s in seeds))
        while tried < len(seeds) and not stop:
            try:
                outcome = outcomes.next(timeout=1.0)
            except multiprocessing.TimeoutError:
                continue
            tried += 1
            commits += outcome.commits
            acknowledged += outcome.acknowledged
            promotions += outcome.promotions
            if tried % 500 == 0:
                print(f"{tried} schedules, seeds {args.start}-{args.start + tried - 1} clean, "
                      f"{tried / (time.monotonic() - started):.2f}/s", file=sys.stderr, flush=True)
            if outcome.violation:
                failing = outcome
                break
        pool.terminate()
    seconds = time.monotonic() - started
    report = {
        "interrupted": bool(stop),
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
