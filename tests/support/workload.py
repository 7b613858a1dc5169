"""A client's view of the cluster: HAProxy routing by /leader, and a writer that records every
acknowledged insert so that a lost write can be proven afterwards."""

from __future__ import annotations

import functools
import itertools
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import psycopg

from chef_backend.frontend.haproxy import OBSERVE
from chef_backend.host.httpcheck import http_status
from chef_backend.host.netloc import host_port, url_host
from tests.support.harness import Cluster, Node

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
    timeout check 1s
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
    option redispatch 1
    http-check send meth GET uri /leader ver HTTP/1.1 hdr Host localhost:7331
    default-server inter 1s downinter 250ms rise 1 fall 1 on-marked-down shutdown-sessions {observe}
{servers}
"""


class HAProxy:
    """HAProxy as a Chef frontend runs it, but with the fault suite's 1 s checks."""

    def __init__(self, directory: Path, bind: str, backends: list[str], netns: str | None = None) -> None:
        self.netns = netns
        self.dir = directory
        self.bind = bind
        self.dir.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server be{i} {host_port(addr, 5432)} check port 7331"
                            for i, addr in enumerate(backends, 1))
        (self.dir / "haproxy.cfg").write_text(HAPROXY_CFG.format(dir=self.dir, bind=url_host(bind), servers=servers,
                                                                      observe=OBSERVE))
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
    log: Path | None = None  # history of every attempt, for reading after a failed run
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
        with History(self.log) as history:
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
                    history.write(f"ack {next_id}")
                    next_id += 1
                    time.sleep(0.01)
                except psycopg.Error as exc:
                    self.errors += 1
                    history.write(f"error {next_id} {one_line(exc)}")
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


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class History:
    """Timestamped lines in a file (or nowhere), flushed as they come: a crashed run keeps them."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file: TextIO | None = None
        self.lock = threading.Lock()

    def __enter__(self) -> History:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("a", buffering=1)
        return self

    def write(self, line: str) -> None:
        if self.file is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
            with self.lock:
                self.file.write(f"{stamp} {line}\n")

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


@dataclass
class DirectWrite:
    """One write tried directly on a node's PostgreSQL: sent, then acknowledged or refused."""

    host: str
    key: str
    sent: float  # time.monotonic()
    done: float
    ok: bool


@dataclass
class LeaderSample:
    """One `GET /leader` of one node: sent, answered (or given up), and whether it said 200."""

    url: str
    sent: float  # time.monotonic()
    answered: float
    leader: bool


@dataclass
class StaleRead:
    """A read that missed a write acknowledged before it was sent, from a node serving as primary
    (or through HAProxy, whatever the node)."""

    via: str
    sent: float
    missing: str


PROBE_EVERY_S = 0.1


@dataclass
class LeaderProber:
    """Every 100 ms, asks every node's /leader (one thread per node, so the nodes are sampled at
    the same moments and a short overlap is neither missed by a slow sweep nor invented by one),
    and, given a password, tries one write directly on every node's PostgreSQL and reads back the
    newest acknowledged write on every node and through `haproxy`. Records any time two nodes
    answered 200 at once, any two nodes whose windows of accepting writes overlapped, and any read
    from a primary (or through HAProxy) that missed an acknowledged write."""

    urls: list[str]
    password: str | None = None
    log: Path | None = None
    haproxy: str | None = None  # the client's HAProxy address, read through as the workload writes
    writer: Writer | None = None  # whose acknowledged inserts the reads look for, besides the probes'
    samples: list[LeaderSample] = field(default_factory=list)
    direct: list[DirectWrite] = field(default_factory=list)
    stale_reads: list[StaleRead] = field(default_factory=list)
    # The newest workload rows a client read through HAProxy: as good as acknowledged (a commit whose
    # wait for the standbys was cancelled is visible on the primary), so no node may lose them.
    read_ids: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _history: History | None = None

    def start(self, netns: str | None = None) -> LeaderProber:
        self._history = History(self.log).__enter__()
        for url in self.urls:
            self._threads.append(_spawn(functools.partial(self._probe_leader, url), netns))
        if self.password is not None:
            hosts = [urlsplit(u).hostname or "" for u in self.urls]
            for host in hosts:
                self._threads.append(_spawn(functools.partial(self._probe_writes, host), netns))
            for host in [*hosts, *([self.haproxy] if self.haproxy else [])]:
                self._threads.append(_spawn(functools.partial(self._probe_reads, host), netns))
        return self

    def _probe_leader(self, url: str) -> None:
        host = urlsplit(url).hostname or url
        before: bool | None = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            sent = time.monotonic()
            leader = http_status(url, 0.5) == 200
            self.samples.append(LeaderSample(url, sent, time.monotonic(), leader))
            if leader != before:
                self._note(f"{host} /leader {'200' if leader else 'not 200'}")
                before = leader
            next_at += PROBE_EVERY_S
            time.sleep(max(0.0, next_at - time.monotonic()))

    def leader_windows(self) -> list[tuple[str, float, float]]:
        """(url, from, to) spans during which a node certainly answered 200: from the answer to the
        first of a run of 200s to the sending of the last (the node said 200 at some moment of
        each request; between two 200s with nothing else between, it said 200 throughout)."""
        windows: list[tuple[str, float, float]] = []
        for url in self.urls:
            run: list[LeaderSample] = []
            for sample in [*(s for s in list(self.samples) if s.url == url), None]:
                if sample is not None and sample.leader:
                    run.append(sample)
                    continue
                if len(run) > 1 and run[0].answered < run[-1].sent:
                    windows.append((url, run[0].answered, run[-1].sent))
                run = []
        return windows

    def leader_overlaps(self) -> list[tuple[tuple[str, float, float], tuple[str, float, float]]]:
        """Pairs of windows in which two different nodes both answered 200."""
        return _overlapping(self.leader_windows())

    @property
    def overlaps(self) -> list[tuple[tuple[str, float, float], tuple[str, float, float]]]:
        return self.leader_overlaps()

    def _probe_writes(self, host: str) -> None:
        """One outstanding write at a time: a commit waiting for a synchronous standby blocks this
        thread (the node is not accepting writes meanwhile), and is never cancelled, since a
        cancelled wait would report the write as committed."""
        conn: psycopg.Connection | None = None
        state = ""
        counter = itertools.count(1)
        while not self._stop.is_set():
            key = f"{host}-{next(counter)}"
            try:
                if conn is None:
                    conn = self._connect(host, "direct-probe")
                    conn.execute("CREATE TABLE IF NOT EXISTS direct_probe (key text PRIMARY KEY)")
                sent = time.monotonic()
                conn.execute("INSERT INTO direct_probe (key) VALUES (%s)", (key,))
                self.direct.append(DirectWrite(host, key, sent, time.monotonic(), ok=True))
                outcome = "accepts writes"
            except psycopg.Error as exc:
                self.direct.append(DirectWrite(host, key, time.monotonic(), time.monotonic(), ok=False))
                outcome = f"refuses writes: {one_line(exc)}"
                if conn is not None and (conn.closed or conn.broken):
                    conn = None
            if outcome != state:
                self._note(f"{host} {outcome}")
                state = outcome
            time.sleep(PROBE_EVERY_S)

    def _connect(self, host: str, name: str) -> psycopg.Connection:
        return psycopg.connect(host=host, port=5432, user="chef_pgsql", password=self.password, dbname="postgres",
                               connect_timeout=1, autocommit=True, application_name=name)

    def _newest_acks(self) -> tuple[str | None, int | None]:
        """The newest acknowledged direct write and workload insert, as of now."""
        direct = next((w.key for w in reversed(list(self.direct)) if w.ok), None)
        inserted = self.writer.acked[-1] if self.writer is not None and self.writer.acked else None
        return direct, inserted

    def _probe_reads(self, host: str) -> None:
        """Reads back, on `host`, the newest writes acknowledged before the read was sent. Only a
        node serving as primary (or HAProxy's choice) must have them: a standby may lag."""
        conn: psycopg.Connection | None = None
        through_haproxy = host == self.haproxy
        while not self._stop.is_set():
            sent = time.monotonic()
            key, inserted = self._newest_acks()
            try:
                if conn is None:
                    conn = self._connect(host, "read-probe")
                    conn.execute("SET statement_timeout = '2s'")
                row = conn.execute(
                    "SELECT pg_is_in_recovery(),"
                    " to_regclass('direct_probe') IS NULL OR EXISTS (SELECT 1 FROM direct_probe WHERE key = %s),"
                    " to_regclass('workload') IS NULL OR EXISTS (SELECT 1 FROM workload WHERE id = %s)",
                    (key or "", inserted or 0)).fetchone()
                in_recovery, has_key, has_insert = row if row is not None else (True, True, True)
                if through_haproxy:
                    self._note_read(conn)
                if through_haproxy or not in_recovery:
                    via = "haproxy" if through_haproxy else host
                    if key is not None and not has_key:
                        self._stale(StaleRead(via, sent, key))
                    if inserted is not None and not has_insert:
                        self._stale(StaleRead(via, sent, f"workload {inserted}"))
            except psycopg.Error:
                if conn is not None and (conn.closed or conn.broken):
                    conn = None
            time.sleep(PROBE_EVERY_S)

    def _note_read(self, conn: psycopg.Connection) -> None:
        """Remember the newest workload row this read through HAProxy showed."""
        try:
            row = conn.execute("SELECT max(id) FROM workload").fetchone()
        except psycopg.errors.UndefinedTable:
            return
        if row is not None and row[0] is not None and (not self.read_ids or row[0] > self.read_ids[-1]):
            self.read_ids.append(int(row[0]))
            self._note(f"read workload {row[0]} through haproxy")

    def _stale(self, read: StaleRead) -> None:
        self.stale_reads.append(read)
        self._note(f"stale read via {read.via}: missing {read.missing}")

    def _note(self, line: str) -> None:
        if self._history is not None:
            self._history.write(line)

    def write_windows(self) -> list[tuple[str, float, float]]:
        """(host, from, to) spans during which a node acknowledged every direct write tried on it:
        from the sending of the first to the acknowledgement of the last, until a refusal."""
        windows: list[tuple[str, float, float]] = []
        open_at: dict[str, tuple[float, float]] = {}
        for w in sorted(self.direct, key=lambda w: w.done):
            if w.ok:
                first = open_at.get(w.host, (w.sent, w.done))[0]
                open_at[w.host] = (first, w.done)
            elif w.host in open_at:
                windows.append((w.host, *open_at.pop(w.host)))
        windows += [(host, *span) for host, span in open_at.items()]
        return windows

    def write_overlaps(self) -> list[tuple[tuple[str, float, float], tuple[str, float, float]]]:
        """Pairs of windows in which two different nodes both accepted writes."""
        return _overlapping(self.write_windows())

    def acknowledged_direct(self) -> list[str]:
        return [w.key for w in list(self.direct) if w.ok]

    def served_stale_reads(self) -> list[StaleRead]:
        """Stale reads a client could be served: through HAProxy (the only way Chef's frontends
        reach PostgreSQL), or directly from a primary while its /leader said 200. An old primary
        that no longer claims leadership and can acknowledge nothing (its manager frozen, say)
        still answers reads on a direct connection, as any standby does: no client is sent there."""
        windows = self.leader_windows()
        return [r for r in list(self.stale_reads)
                if r.via == "haproxy" or any(urlsplit(url).hostname == r.via and start <= r.sent <= end
                                             for url, start, end in windows)]

    def assert_one_leader(self) -> None:
        """Never two 200s at once, never two nodes accepting writes at once, never a stale read
        served to a client."""
        assert self.leader_overlaps() == [], f"two nodes answered 200 at once: {self.leader_overlaps()[:5]}"
        assert self.write_overlaps() == [], f"two nodes accepted writes at once: {self.write_overlaps()[:5]}"
        assert self.served_stale_reads() == [], f"stale reads served: {self.served_stale_reads()[:5]}"

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)  # a write thread blocked on a commit is left behind (daemon)
        if self._history is not None:
            self._history.__exit__()


def _overlapping(windows: list[tuple[str, float, float]]) -> list[tuple[tuple[str, float, float],
                                                                          tuple[str, float, float]]]:
    return [(a, b) for a, b in itertools.combinations(windows, 2) if a[0] != b[0] and a[1] < b[2] and b[1] < a[2]]


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


def assert_nothing_lost(cluster: Cluster, writer: Writer, prober: LeaderProber | None = None) -> None:
    """Every acknowledged row is on every node (followers get a few seconds to catch up): the
    writer's, those the prober's direct writes had acknowledged, and the newest rows a client read
    through HAProxy (a cancelled commit wait leaves a row visible that may be on no standby)."""
    password = cluster.password()
    direct = prober.acknowledged_direct() if prober is not None else []
    read = list(prober.read_ids) if prober is not None else []
    for node in cluster.nodes:
        def missing(node: Node = node) -> list[str]:
            with node.connect(password) as conn:
                lost = [str(i) for i in writer.missing_on(conn)]
                if read:
                    present = {r[0] for r in conn.execute("SELECT id FROM workload WHERE id = ANY(%s)",
                                                          (read,)).fetchall()}
                    lost += [f"{i} (read through haproxy)" for i in read if i not in present]
                if direct:
                    present = {r[0] for r in conn.execute("SELECT key FROM direct_probe").fetchall()}
                    lost += [k for k in direct if k not in present]
                return lost
        try:
            cluster.wait_for(lambda m=missing: not m(), 20, f"{node.name} to hold every acknowledged row")
        except AssertionError:
            lost = missing()
            raise AssertionError(f"{len(lost)} acknowledged rows missing on {node.name}: {lost[:10]}") from None
