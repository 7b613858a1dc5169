"""Soak: N random fault cycles against a three-host cluster (network namespaces), under load.

    /opt/chef-backend/embedded/bin/python bench/soak.py --cycles 100 [--seed S] [--faults a,b]

Prints one JSON line per cycle and a JSON summary: cycles, lost writes, double-leader windows,
max write outage, max recovery time. The run's history (workload and prober logs, each node's
logs) is kept under /tmp/chef-backend-test-logs/soak/.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.harness import Cluster
from tests.support.hosts import FAULT_CONFIG, PG_DISK_MB, client_workload, ns_cluster, setup_network, teardown_network
from tests.support.workload import LeaderProber, Writer

FAULTS = ("cut_leader", "cut_follower", "asymmetric", "loss_and_delay", "etcd_outage", "kill_leader",
          "freeze_manager", "disk_full")


def inject(cluster: Cluster, fault: str) -> None:
    """Apply one fault, hold it, heal it."""
    leader = cluster.wait_leader(120)
    others = [n for n in cluster.nodes if n is not leader]
    if fault == "cut_leader":
        leader.cut_from(*others)
        time.sleep(20)
        leader.heal()
    elif fault == "cut_follower":
        follower = others[0]
        follower.cut_from(*[n for n in cluster.nodes if n is not follower])
        time.sleep(15)
        follower.heal()
    elif fault == "asymmetric":
        leader.cut_from(*others, direction="input")
        time.sleep(20)
        leader.heal()
    elif fault == "loss_and_delay":
        leader.drop_randomly(30)
        leader.delay_output(500)
        time.sleep(10)
        leader.heal()
    elif fault == "etcd_outage":
        for node in cluster.nodes:
            node.signal("etcd", signal.SIGSTOP)
        time.sleep(30)
        for node in cluster.nodes:
            node.signal("etcd", signal.SIGCONT)
    elif fault == "kill_leader":
        leader.crash()
        time.sleep(10)
        leader.ctl("start")
    elif fault == "freeze_manager":
        leader.signal("chef-backend-leaderl", signal.SIGSTOP)
        time.sleep(15)
        leader.signal("chef-backend-leaderl", signal.SIGCONT)
    elif fault == "disk_full":
        leader.fill_pg_disk()
        time.sleep(15)
        leader.free_pg_disk()


def lost(cluster: Cluster, writer: Writer, prober: LeaderProber) -> int:
    """Acknowledged rows (the workload's and the prober's direct writes) missing on the leader."""
    leader = cluster.wait_leader(120)
    direct = prober.acknowledged_direct()  # before the query: a write acknowledged after it is no loss
    with leader.connect(cluster.password()) as conn:
        present = {r[0] for r in conn.execute("SELECT key FROM direct_probe").fetchall()}
        return len(writer.missing_on(conn)) + sum(1 for k in direct if k not in present)


def run_cycle(cluster: Cluster, writer: Writer, prober: LeaderProber, cycle: int, fault: str) -> dict:
    """One fault, then wait for full health; report what the client saw."""
    cluster.wait_healthy(180)
    writer.wait_acks(20, timeout=60)
    writer.max_gap = 0.0
    overlaps_before = len(prober.overlaps) + len(prober.write_overlaps())
    inject(cluster, fault)
    healed = time.monotonic()
    cluster.wait_healthy(180)
    recovery = time.monotonic() - healed
    writer.wait_acks(20, timeout=120)
    doc = {"cycle": cycle, "fault": fault, "write_outage_s": round(writer.max_gap, 2),
           "recovery_s": round(recovery, 2), "lost_writes": lost(cluster, writer, prober),
           "double_leader_windows": len(prober.overlaps) + len(prober.write_overlaps()) - overlaps_before}
    print(json.dumps(doc), flush=True)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--faults", default=",".join(FAULTS), help="the faults to draw from (comma-separated)")
    args = parser.parse_args()
    faults = args.faults.split(",")
    if unknown := set(faults) - set(FAULTS):
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    rng = random.Random(args.seed)
    setup_network(3)
    cluster = ns_cluster("soak", extra_config=FAULT_CONFIG, pg_disk_mb=PG_DISK_MB)
    results = []
    try:
        cluster.create()
        cluster.wait_healthy(120)
        with client_workload(cluster) as (writer, prober):
            for cycle in range(args.cycles):
                results.append(run_cycle(cluster, writer, prober, cycle, rng.choice(faults)))
    finally:
        cluster.teardown()
        teardown_network()
    print(json.dumps({
        "summary": True, "seed": args.seed, "cycles": len(results),
        "lost_writes": max((r["lost_writes"] for r in results), default=0),
        "double_leader_windows": sum(r["double_leader_windows"] for r in results),
        "max_write_outage_s": max((r["write_outage_s"] for r in results), default=0.0),
        "max_recovery_s": max((r["recovery_s"] for r in results), default=0.0),
        "faults": {f: sum(1 for r in results if r["fault"] == f) for f in faults},
    }), flush=True)


if __name__ == "__main__":
    main()
