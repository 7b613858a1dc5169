"""Soak: N random fault cycles against a three-host cluster (network namespaces), under load.

    sudo /opt/chef-backend/embedded/bin/python bench/soak.py --cycles 100 [--seed S]

Prints one JSON line per cycle and a JSON summary: cycles, lost writes, double-leader windows,
max write outage, max recovery time. Node logs of the run are kept under
/tmp/chef-backend-test-logs/soak/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.hosts import FAULT_CONFIG, client_workload, ns_cluster, setup_network, teardown_network
from tests.integration.harness import Cluster
from tests.integration.workload import LeaderProber, Writer

FAULTS = ("cut_leader", "cut_follower", "asymmetric", "packet_loss", "etcd_outage", "kill_leader", "freeze_manager")


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
    elif fault == "packet_loss":
        leader.drop_randomly(30)
        time.sleep(10)
        leader.heal()
    elif fault == "etcd_outage":
        pids = [p for n in cluster.nodes for p in n.processes() if _cmd(p).endswith("/etcd")]
        _signal(pids, signal.SIGSTOP)
        time.sleep(30)
        _signal(pids, signal.SIGCONT)
    elif fault == "kill_leader":
        leader.crash()
        time.sleep(10)
        leader.ctl("start")
    elif fault == "freeze_manager":
        pids = [p for p in leader.processes() if "chef-backend-leaderl" in _cmd(p, all_args=True)]
        _signal(pids, signal.SIGSTOP)
        time.sleep(15)
        _signal(pids, signal.SIGCONT)


def _cmd(pid: int, all_args: bool = False) -> str:
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    return b" ".join(parts).decode(errors="replace") if all_args else parts[0].decode(errors="replace")


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def lost(cluster: Cluster, writer: Writer) -> int:
    """Acknowledged rows missing on the leader once every node caught up."""
    leader = cluster.wait_leader(120)
    with leader.connect(cluster.password()) as conn:
        return len(writer.missing_on(conn))


def run_cycle(cluster: Cluster, writer: Writer, prober: LeaderProber, cycle: int, fault: str) -> dict:
    """One fault, then wait for full health; report what the client saw."""
    cluster.wait_healthy(180)
    writer.wait_acks(20, timeout=60)
    writer.max_gap = 0.0
    overlaps_before = len(prober.overlaps)
    inject(cluster, fault)
    healed = time.monotonic()
    cluster.wait_healthy(180)
    recovery = time.monotonic() - healed
    writer.wait_acks(20, timeout=120)
    doc = {"cycle": cycle, "fault": fault, "write_outage_s": round(writer.max_gap, 2),
           "recovery_s": round(recovery, 2), "lost_writes": lost(cluster, writer),
           "double_leader_windows": len(prober.overlaps) - overlaps_before}
    print(json.dumps(doc), flush=True)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    setup_network(3)
    cluster = ns_cluster("soak", extra_config=FAULT_CONFIG)
    results = []
    try:
        cluster.create()
        cluster.wait_healthy(120)
        with client_workload(cluster) as (writer, prober):
            for cycle in range(args.cycles):
                results.append(run_cycle(cluster, writer, prober, cycle, rng.choice(FAULTS)))
    finally:
        cluster.teardown()
        teardown_network()
    print(json.dumps({
        "summary": True, "seed": args.seed, "cycles": len(results),
        "lost_writes": max((r["lost_writes"] for r in results), default=0),
        "double_leader_windows": sum(r["double_leader_windows"] for r in results),
        "max_write_outage_s": max((r["write_outage_s"] for r in results), default=0.0),
        "max_recovery_s": max((r["recovery_s"] for r in results), default=0.0),
        "faults": {f: sum(1 for r in results if r["fault"] == f) for f in FAULTS},
    }), flush=True)


if __name__ == "__main__":
    main()
