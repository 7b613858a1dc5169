"""Failover benchmark: prints one JSON line per trial, then a JSON summary.

    /opt/chef-backend/embedded/bin/python bench/failover.py [--trials N] [--patroni]

Measured on real processes, through HAProxy (`inter 1s fall 1 rise 1`, `on-marked-down
shutdown-sessions`) as the fault suite's client sees the cluster:
  - write outage seen by an insert loop when every process of the leader node gets kill -9,
    at the default TTL (30 s) and at TTL 10, and the acknowledged rows lost;
  - switchover (promote) outage, as many times as kill -9 trials, at each TTL;
  - /leader latency p50/p99 at 200 checks/s (a new connection per check, one at a time from a
    process of its own, like HAProxy's checker);
  - pgbench TPS through HAProxy with synchronous and with asynchronous replication;
  - the leader manager's resident memory on each node;
  - with --patroni, the same kill -9 workload against Patroni 4.1.5 (bench/patroni_cluster.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.harness import Cluster
from tests.support.workload import HAProxy, Writer, outage_after

CLIENT = "127.0.0.20"


def emit(doc: dict) -> None:
    print(json.dumps(doc), flush=True)


def lost_rows(cluster: Cluster, writer: Writer) -> int:
    leader = cluster.wait_leader(120)
    with leader.connect(cluster.password()) as conn:
        return len(writer.missing_on(conn))


def start_env(name: str, extra: str) -> tuple[Cluster, HAProxy, Writer]:
    cluster = Cluster.fresh(name, extra_config=extra)
    cluster.create()
    cluster.wait_healthy(120)
    haproxy = HAProxy(cluster.base / "haproxy", CLIENT, [n.address for n in cluster.nodes])
    haproxy.start()
    haproxy.wait_one_up()
    writer = Writer(CLIENT, cluster.password())
    cluster.wait_for(lambda: _ok(writer.setup), 30, "HAProxy routing")
    writer.start()
    return cluster, haproxy, writer


def _ok(fn) -> bool:
    try:
        fn()
        return True
    except Exception:
        return False


def stop_env(cluster: Cluster, haproxy: HAProxy, writer: Writer) -> None:
    writer.stop()
    haproxy.stop()
    cluster.teardown()


def kill9_trials(ttl: int, trials: int) -> list[dict]:
    cluster, haproxy, writer = start_env(f"bench-ttl{ttl}", f"leaderl.leader_ttl_seconds = {ttl}\n")
    results = []
    try:
        for trial in range(trials):
            cluster.wait_healthy(180)
            writer.wait_acks(50)
            leader = cluster.wait_leader()
            fault_at = time.monotonic()
            leader.crash()
            outage = outage_after(writer, fault_at)
            leader.ctl("start")
            cluster.wait_healthy(180)
            lost = lost_rows(cluster, writer)
            doc = {"bench": "kill9", "system": "chef-backend", "ttl": ttl, "trial": trial,
                   "write_outage_s": round(outage, 2), "lost_rows": lost, "acked": len(writer.acked)}
            emit(doc)
            results.append(doc)
        # As many switchovers: each outage is quantised by HAProxy's checks (1 s while a server is up).
        results += [switchover_trial(cluster, writer, ttl) for _ in range(trials)]
        if ttl == 30:
            results.append(leader_latency(cluster))
            results.append(leaderl_memory(cluster))
            results.append(pgbench(cluster, "synchronous"))
    finally:
        stop_env(cluster, haproxy, writer)
    return results


def switchover_trial(cluster: Cluster, writer: Writer, ttl: int) -> dict:
    cluster.wait_healthy(120)
    writer.wait_acks(50)
    leader = cluster.wait_leader()
    target = next(n for n in cluster.nodes if n is not leader)
    writer.max_gap = 0.0
    leader.ctl("promote", target.name)
    writer.wait_acks(20, timeout=60)
    outage = writer.max_gap
    cluster.wait_healthy(120)
    doc = {"bench": "switchover", "system": "chef-backend", "ttl": ttl, "write_outage_s": round(outage, 2),
           "lost_rows": lost_rows(cluster, writer)}
    emit(doc)
    return doc


# Run in a process of its own, one check at a time, as HAProxy's checker does: the benchmark's
# own threads (the insert loop) must not stand in the measured time.
_CHECKER = r"""
import json, socket, sys, time
host, rate, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
request = b"GET /leader HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n"
out = []
start = time.perf_counter()
for i in range(count):
    delay = start + i / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    t0 = time.perf_counter()
    try:
        with socket.create_connection((host, 7331), timeout=2) as s:
            s.sendall(request)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        code = int(answer.split(None, 2)[1])
    except (OSError, IndexError, ValueError):
        code = 0
    out.append(((time.perf_counter() - t0) * 1000, code))
print(json.dumps(out))
"""


def leader_latency(cluster: Cluster, rate: int = 200, seconds: int = 10) -> dict:
    leader = cluster.wait_leader()
    done = subprocess.run([sys.executable, "-c", _CHECKER, leader.address, str(rate), str(rate * seconds)],
                          capture_output=True, text=True, check=True)
    checks = json.loads(done.stdout)
    latencies = [ms for ms, _ in checks]
    codes: dict[int, int] = {}
    for _, code in checks:
        codes[code] = codes.get(code, 0) + 1
    qs = statistics.quantiles(latencies, n=100)
    doc = {"bench": "leader_latency", "checks_per_s": rate, "checks": len(latencies), "codes": codes,
           "p50_ms": round(qs[49], 2), "p99_ms": round(qs[98], 2), "max_ms": round(max(latencies), 2)}
    emit(doc)
    return doc


def leaderl_memory(cluster: Cluster) -> dict:
    rss = {}
    for node in cluster.nodes:
        for pid in node.processes():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if b"chef-backend-leaderl" in cmd:
                kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
                rss[node.name] = round(kb / 1024, 1)
    doc = {"bench": "leaderl_rss_mb", "per_node": rss, "max": max(rss.values()), "limit": 80}
    emit(doc)
    return doc


def pgbench(cluster: Cluster, mode: str, seconds: int = 20, clients: int = 8) -> dict:
    env = dict(os.environ, PGPASSWORD=cluster.password())
    pgb = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    base = [pgb, "-h", CLIENT, "-p", "5432", "-U", "chef_pgsql"]
    subprocess.run([*base, "-i", "-s", "5", "-q", "postgres"], env=env, check=True, capture_output=True)
    out = subprocess.run([*base, "-T", str(seconds), "-c", str(clients), "-j", "2", "-n", "postgres"], env=env,
                         check=True, capture_output=True, text=True).stdout
    tps = float(next(line for line in out.splitlines() if line.startswith("tps")).split()[2])
    doc = {"bench": "pgbench", "replication": mode, "clients": clients, "seconds": seconds, "tps": round(tps, 1)}
    emit(doc)
    return doc


def async_pgbench() -> dict:
    cluster, haproxy, writer = start_env("bench-async", "postgresql.synchronous_replication = false\n")
    try:
        writer.stop()
        return pgbench(cluster, "asynchronous")
    finally:
        stop_env(cluster, haproxy, writer)


def summarize(results: list[dict]) -> dict:
    summary: dict = {"summary": True}
    for bench, ttl in itertools.product(("kill9", "switchover"), (30, 10)):
        trials = [r for r in results if r["bench"] == bench and r.get("ttl") == ttl and r["system"] == "chef-backend"]
        if trials:
            outages = [r["write_outage_s"] for r in trials]
            summary[f"{bench}_ttl{ttl}"] = {
                "trials": len(trials), "outage_s_median": statistics.median(outages), "outage_s_max": max(outages),
                "lost_rows": sum(r["lost_rows"] for r in trials),
            }
    for r in results:
        if r["bench"] in ("leader_latency", "leaderl_rss_mb"):
            summary[r["bench"]] = {k: v for k, v in r.items() if k != "bench"}
    tps = {r["replication"]: r["tps"] for r in results if r["bench"] == "pgbench"}
    if len(tps) == 2:
        summary["pgbench_tps"] = dict(tps, sync_over_async=round(tps["synchronous"] / tps["asynchronous"], 2))
    patroni = [r for r in results if r["bench"] == "kill9" and r["system"] == "patroni"]
    if patroni:
        outages = [r["write_outage_s"] for r in patroni]
        summary["patroni_kill9_ttl30"] = {"trials": len(patroni), "outage_s_median": statistics.median(outages),
                                          "outage_s_max": max(outages),
                                          "lost_rows": sum(r["lost_rows"] for r in patroni)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="kill -9 trials and switchovers per TTL")
    parser.add_argument("--patroni", action="store_true", help="also run the kill -9 workload against Patroni")
    args = parser.parse_args()
    results: list[dict] = []
    results += kill9_trials(30, args.trials)
    results += kill9_trials(10, args.trials)
    results.append(async_pgbench())
    if args.patroni:
        from bench.patroni_cluster import kill9_trials as patroni_trials

        results += patroni_trials(args.trials, emit)
    print(json.dumps(summarize(results)), flush=True)


if __name__ == "__main__":
    main()
