"""Patroni 4.1.5 on the same machine, for the failover benchmark only (never a dependency).

Three Patroni nodes on 127.0.0.31-33 with their own three-member etcd (Debian's etcd, like ours),
Patroni's defaults (ttl 30, loop_wait 10, retry_timeout 10, asynchronous replication), pg_rewind on,
behind HAProxy on 127.0.0.40 checking `GET /primary` with the same `inter 1s fall 1 rise 1`.
Patroni is installed from PyPI into its own virtualenv under /opt/patroni-bench.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from chef_backend.frontend.haproxy import OBSERVE
from chef_backend.host.httpcheck import http_status
from tests.support.harness import kill_node
from tests.support.workload import Writer, outage_after

VENV = Path("/opt/patroni-bench")
BASE = Path("/tmp/patroni-bench")
ADDRS = ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
CLIENT = "127.0.0.40"
PASSWORD = "bench-superuser-password"
USER = "chef_pgsql"

HAPROXY = """\
global
    stats socket {base}/haproxy.sock mode 600
defaults
    timeout connect 2s
    timeout check 1s
    timeout client 30s
    timeout server 30s
frontend pg
    bind {client}:5432
    mode tcp
    default_backend patroni
backend patroni
    mode tcp
    option httpchk
    http-check send meth GET uri /primary ver HTTP/1.1 hdr Host localhost
    option redispatch 1
    default-server inter 1s downinter 250ms rise 1 fall 1 on-marked-down shutdown-sessions {observe}
{servers}
"""


def install() -> None:
    if not (VENV / "bin/patroni").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin/pip"), "install", "-q", "patroni[etcd3,psycopg3]==4.1.5"], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(VENV)], check=True)


def node_dir(i: int) -> Path:
    return BASE / f"p{i}"


def start_etcd(i: int, new: bool) -> None:
    addr = ADDRS[i - 1]
    cluster = ",".join(f"e{j}=http://{a}:2380" for j, a in enumerate(ADDRS, 1))
    args = [
        "etcd", "--name", f"e{i}", "--data-dir", str(node_dir(i) / "etcd"),
        "--listen-client-urls", f"http://{addr}:2379", "--advertise-client-urls", f"http://{addr}:2379",
        "--listen-peer-urls", f"http://{addr}:2380", "--initial-advertise-peer-urls", f"http://{addr}:2380",
        "--initial-cluster", cluster, "--initial-cluster-state", "new" if new else "existing",
        "--initial-cluster-token", "patroni-bench", "--enable-v2=true",
    ]
    log = (node_dir(i) / "etcd.log").open("ab")
    subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def write_patroni_config(i: int) -> Path:
    addr = ADDRS[i - 1]
    d = node_dir(i)
    config = {
        "scope": "bench",
        "name": f"p{i}",
        "restapi": {"listen": f"{addr}:8008", "connect_address": f"{addr}:8008"},
        "etcd3": {"hosts": [f"{a}:2379" for a in ADDRS]},
        "bootstrap": {
            "dcs": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10, "maximum_lag_on_failover": 1048576,
                    "postgresql": {"use_pg_rewind": True, "parameters": {"wal_log_hints": "on"}}},
            "initdb": [{"encoding": "UTF8"}, "data-checksums"],
            "pg_hba": ["host all all 127.0.0.0/8 md5", "host replication replicator 127.0.0.0/8 md5"],
        },
        "postgresql": {
            "listen": f"{addr}:5432",
            "connect_address": f"{addr}:5432",
            "data_dir": str(d / "data"),
            "bin_dir": "/usr/lib/postgresql/15/bin",
            "pgpass": str(d / "pgpass"),
            "authentication": {"superuser": {"username": USER, "password": PASSWORD},
                               "replication": {"username": "replicator", "password": "bench-replication"}},
            "parameters": {"unix_socket_directories": str(d), "shared_buffers": "64MB", "max_connections": 60},
            "remove_data_directory_on_rewind_failure": True,
            "remove_data_directory_on_diverged_timelines": True,
        },
    }
    path = d / "patroni.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


def start_patroni(i: int) -> None:
    log = (node_dir(i) / "patroni.log").open("ab")
    subprocess.Popen(["chpst", "-u", f"{USER}:{USER}", str(VENV / "bin/patroni"), str(node_dir(i) / "patroni.yml")],
                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def code(url: str) -> int:
    return http_status(url, 1) or 0


def wait(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise RuntimeError(f"Patroni bench: timed out waiting for {what}")


def primary() -> int | None:
    live = [i for i, a in enumerate(ADDRS, 1) if code(f"http://{a}:8008/primary") == 200]
    return live[0] if len(live) == 1 else None


def replicas_streaming() -> bool:
    """One primary and the two others replicas that Patroni itself calls healthy, both streaming
    from it. Patroni's /replica says 200 before a replica streams: the primary creates their
    replication slots only at its next loop (up to loop_wait later), and until then a kill of the
    primary leaves replicas without its data and, too far behind, refused as candidates."""
    lead = primary()
    if lead is None or not all(code(f"http://{a}:8008/replica") == 200 for i, a in enumerate(ADDRS, 1) if i != lead):
        return False
    try:
        with psycopg.connect(host=ADDRS[lead - 1], user=USER, password=PASSWORD, dbname="postgres",
                             connect_timeout=2, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == len(ADDRS) - 1


def kill9_trials(trials: int, emit: Callable[[dict], None]) -> list[dict]:
    """The chef-backend kill -9 workload, against Patroni."""
    install()
    cleanup()
    for i in (1, 2, 3):
        node_dir(i).mkdir(parents=True)
        shutil.chown(node_dir(i), USER, USER)
        node_dir(i).chmod(0o700)
        write_patroni_config(i)
    for i in (1, 2, 3):
        start_etcd(i, new=True)
    for i in (1, 2, 3):
        start_patroni(i)
    servers = "\n".join(f"    server p{i} {a}:5432 check port 8008" for i, a in enumerate(ADDRS, 1))
    (BASE / "haproxy.cfg").write_text(HAPROXY.format(base=BASE, client=CLIENT, servers=servers, observe=OBSERVE))
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(BASE / "haproxy.cfg")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    results = []
    writer = Writer(CLIENT, PASSWORD)
    try:
        wait(replicas_streaming, 180, "three healthy Patroni nodes")
        wait(lambda: _ok(writer.setup), 60, "HAProxy to route to the Patroni primary")
        writer.start()
        for trial in range(trials):
            wait(replicas_streaming, 240, "Patroni to recover")
            writer.wait_acks(50, timeout=60)
            victim = primary()
            assert victim is not None
            fault_at = time.monotonic()
            kill_node(node_dir(victim))
            outage = outage_after(writer, fault_at, timeout=180)
            start_etcd(victim, new=False)
            start_patroni(victim)
            wait(replicas_streaming, 240, "the killed Patroni node to rejoin")
            leader = primary()
            assert leader is not None
            with psycopg.connect(host=ADDRS[leader - 1], user=USER, password=PASSWORD, dbname="postgres",
                                 autocommit=True) as conn:
                try:
                    lost = len(writer.missing_on(conn))
                except psycopg.errors.UndefinedTable:  # the new primary never had the table
                    lost = len(writer.acked)
            doc = {"bench": "kill9", "system": "patroni", "version": "4.1.5", "ttl": 30, "trial": trial,
                   "write_outage_s": round(outage, 2), "lost_rows": lost, "acked": len(writer.acked)}
            emit(doc)
            results.append(doc)
    finally:
        writer.stop()
        haproxy.terminate()
        cleanup()
    return results


def _ok(fn: Callable[[], None]) -> bool:
    try:
        fn()
        return True
    except Exception:
        return False


def cleanup() -> None:
    if BASE.exists():
        for i in (1, 2, 3):
            kill_node(node_dir(i))
        kill_node(BASE)
        shutil.rmtree(BASE, ignore_errors=True)
