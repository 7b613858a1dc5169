"""A client's view of the cluster: HAProxy routing by /leader, and a writer that records every
acknowledged insert so that a lost write can be proven afterwards."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from chef_backend.httpcheck import http_status
from tests.integration.harness import Cluster, Node

CLONE_NEWNET = 0x40000000


def enter_netns(ns: str) -> None:
    """Move the calling thread into a network namespace (network namespaces are per thread)."""
    import ctypes
    import os

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
    finally:
        os.close(fd)


def _spawn(target: Callable[[], None], netns: str | None) -> threading.Thread:
    """A daemon thread running `target`, on the client host `netns` when given."""

    def run() -> None:
        if netns:
            enter_netns(netns)
        target()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread

HAPROXY_CFG = """\
global
    stats socket {dir}/haproxy.sock mode 600 level admin
defaults
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout client-fin 1s
    timeout server-fin 1s
frontend postgresql
    bind {bind}:5432
    mode tcp
    default_backend chef_backend_postgresql
backend chef_backend_postgresql
    mode tcp
    option httpchk
    http-check send meth GET uri /leader ver HTTP/1.1 hdr Host localhost:7331
    default-server inter 1s rise 1 fall 1 on-marked-down shutdown-sessions
{servers}
"""


class HAProxy:
    """HAProxy as a Chef frontend runs it, but with the fault suite's 1 s checks."""

    def __init__(self, directory: Path, bind: str, backends: list[str], netns: str | None = None) -> None:
        self.netns = netns
        self.dir = directory
        self.bind = bind
        self.dir.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server be{i} {addr}:5432 check port 7331" for i, addr in enumerate(backends, 1))
        (self.dir / "haproxy.cfg").write_text(HAPROXY_CFG.format(dir=self.dir, bind=bind, servers=servers))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen([*prefix, haproxy, "-db", "-f", str(self.dir / "haproxy.cfg")],
                                     stdout=(self.dir / "haproxy.log").open("wb"), stderr=subprocess.STDOUT)

    def up_servers(self) -> list[str]:
        """The servers HAProxy currently routes to (it starts with all of them UP)."""
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(self.dir / "haproxy.sock"))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        rows = [line.split(",") for line in data.decode().splitlines() if line and not line.startswith("#")]
        return [r[1] for r in rows if r[0] == "chef_backend_postgresql" and r[1] != "BACKEND" and r[17] == "UP"]

    def wait_one_up(self, timeout: float = 30) -> str:
        """Wait, as chef-server-ctl reconfigure does, until exactly one server is UP."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                up = self.up_servers()
            except OSError:
                up = []
            if len(up) == 1:
                return up[0]
            time.sleep(0.2)
        raise AssertionError(f"HAProxy did not settle on one server within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@dataclass
class Writer:
    """Inserts ids 1, 2, 3, ... through `host`; an id counts once its COMMIT returned."""

    host: str
    password: str
    table: str = "workload"
    user: str = "chef_pgsql"
    acked: list[int] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)  # time.monotonic() of each acknowledgement
    errors: int = 0
    max_gap: float = 0.0  # longest time between two acknowledgements while running
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def setup(self) -> None:
        with psycopg.connect(self._dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY)")

    def _dsn(self) -> str:
        return (f"host={self.host} port=5432 user={self.user} password={self.password} dbname=postgres "
                f"connect_timeout=2 application_name=workload")

    def start(self, netns: str | None = None) -> Writer:
        self._thread = _spawn(self._run, netns)
        return self

    def _run(self) -> None:
        next_id = (max(self.acked) + 1) if self.acked else 1
        last_ack = time.monotonic()
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self._dsn(), autocommit=True)
                    conn.execute("SET statement_timeout = '5s'")
                conn.execute(f"INSERT INTO {self.table} (id) VALUES (%s) ON CONFLICT DO NOTHING", (next_id,))
                self.acked.append(next_id)
                now = time.monotonic()
                self.ack_times.append(now)
                self.max_gap = max(self.max_gap, now - last_ack)
                last_ack = now
                next_id += 1
                time.sleep(0.01)
            except psycopg.Error:
                self.errors += 1
                next_id += 1  # the fate of that id is unknown; never reuse it
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.1)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def wait_acks(self, count: int, timeout: float = 30) -> None:
        target = len(self.acked) + count
        deadline = time.monotonic() + timeout
        while len(self.acked) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"writes did not resume within {timeout}s ({len(self.acked)} acked)")
            time.sleep(0.05)

    def missing_on(self, conn: psycopg.Connection) -> list[int]:
        """Acknowledged ids that `conn`'s node lacks (only those acknowledged before the query)."""
        acked = list(self.acked)
        present = {r[0] for r in conn.execute(f"SELECT id FROM {self.table}").fetchall()}
        return [i for i in acked if i not in present]


@dataclass
class LeaderProber:
    """Asks every node's /leader every 100 ms and records any moment two answered 200."""

    urls: list[str]
    overlaps: list[tuple[float, list[str]]] = field(default_factory=list)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, netns: str | None = None) -> LeaderProber:
        self._thread = _spawn(self._run, netns)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            leaders = [u for u in self.urls if http_status(u, 0.5) == 200]
            self.samples += 1
            if len(leaders) > 1:
                self.overlaps.append((time.time(), leaders))
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def write_completes(host: str, password: str, within: float) -> bool:
    """Whether one direct write on `host` is acknowledged within `within` seconds.

    A commit waiting for a synchronous standby that never comes blocks forever (statement_timeout
    does not apply to that wait, and cancelling it would report success), so the attempt runs
    on its own thread and is abandoned, never cancelled."""
    done = threading.Event()

    def attempt() -> None:
        try:
            with psycopg.connect(host=host, port=5432, user="chef_pgsql", password=password, dbname="postgres",
                                 connect_timeout=2, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS direct_probe (id serial PRIMARY KEY)")
                conn.execute("INSERT INTO direct_probe DEFAULT VALUES")
                done.set()
        except psycopg.Error:
            pass

    threading.Thread(target=attempt, daemon=True).start()
    return done.wait(within)


def outage_after(writer: Writer, fault_at: float, timeout: float = 120) -> float:
    """The longest pause between two acknowledged inserts around the fault, once writes resumed."""
    deadline = time.monotonic() + timeout
    while sum(1 for t in writer.ack_times[-30:] if t > fault_at) < 20:
        if time.monotonic() > deadline:
            return float("inf")
        time.sleep(0.05)
    times = [t for t in writer.ack_times if t > fault_at - 1.0]
    return max(b - a for a, b in itertools.pairwise(times))


def assert_nothing_lost(cluster: Cluster, writer: Writer) -> None:
    """Every acknowledged row is on every node (followers get a few seconds to catch up)."""
    password = cluster.password()
    for node in cluster.nodes:
        def caught_up(node: Node = node) -> bool:
            with node.connect(password) as conn:
                return not writer.missing_on(conn)
        try:
            cluster.wait_for(caught_up, 20, f"{node.name} to hold every acknowledged row")
        except AssertionError:
            with node.connect(password) as conn:
                missing = writer.missing_on(conn)
            raise AssertionError(f"{len(missing)} acknowledged rows missing on {node.name}: {missing[:10]}") from None
