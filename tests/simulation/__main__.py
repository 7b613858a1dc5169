"""Replay one schedule: python -m tests.simulation SEED [--trace]."""

from __future__ import annotations

import argparse

from tests.simulation.world import run

parser = argparse.ArgumentParser()
parser.add_argument("seed", type=int)
parser.add_argument("--trace", action="store_true", help="print every node's decisions too")
parser.add_argument("--as-found-before-lost-answers", action="store_true",
                    help="no lost etcd answers: how seeds found before they were modelled replay")
parser.add_argument("--as-found-before-late-effects", action="store_true",
                    help="no etcd requests taking effect late: how seeds found before they were modelled replay")
args = parser.parse_args()
outcome = run(args.seed, trace=args.trace, lost_answers=False if args.as_found_before_lost_answers else None,
              late_effects=False if args.as_found_before_late_effects or args.as_found_before_lost_answers else None)
for line in outcome.trace if args.trace else outcome.schedule:
    print(line)
print(f"seed {outcome.seed}: {outcome.violation or 'no violation'} "
      f"({outcome.commits} commits, {outcome.acknowledged} acknowledged, {outcome.promotions} promotions)")
