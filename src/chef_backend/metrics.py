"""The leader manager's Prometheus metrics (`GET :7331/metrics`), with the prometheus_client library.

Everything is answered from memory, like `/leader`: the control loop's status document (handed
over every tick) and a sampler thread that reads this node's PostgreSQL replication view and its
disks every few seconds. Counters count what this node saw since its manager started, as
Prometheus counters do (`rate()`/`increase()` handle restarts).

What each metric means is in its help text; README.md shows a scrape.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest

log = logging.getLogger(__name__)
# A *_created series beside every counter only doubles what is scraped.
disable_created_metrics()

ROLES = ("leader", "promoting", "follower", "waiting_for_leader")
FAILURE_KINDS = ("pgsql", "etcd", "search")
SAMPLE_SECONDS = 5.0

_REPLICATION_SQL = """
SELECT application_name,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) END,
       EXTRACT(epoch FROM replay_lag),
       sync_state
  FROM pg_stat_replication
"""


class Metrics:
    """The registry of one leader manager; `observe` takes each status document, `render` answers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.role = Gauge("chef_backend_role", "1 for this node's current role", ["role"], registry=r)
        self.leader = Gauge("chef_backend_leader", "1 while this node answers 200 on /leader", registry=r)
        self.ready = Gauge("chef_backend_ready", "1 when the last decision said ready to serve as leader",
                           registry=r)
        self.eligible = Gauge("chef_backend_eligible", "1 when this node may become leader", registry=r)
        self.lease = Gauge("chef_backend_lease_remaining_seconds",
                           "Seconds until this node's leader lease may expire (0 when it holds none)", registry=r)
        self.leader_changes = Counter("chef_backend_leader_changes",
                                      "Changes of the cluster's leader seen by this node", registry=r)
        self.acquired = Counter("chef_backend_leadership_acquired",
                                "Times this node took leadership, by reason", ["reason"], registry=r)
        self.lost = Counter("chef_backend_leadership_lost", "Times this node stopped leading, by reason",
                            ["reason"], registry=r)
        self.failures = Counter("chef_backend_health_check_failures",
                                "Failed health checks, by kind", ["kind"], registry=r)
        self.consecutive = Gauge("chef_backend_health_check_consecutive_failures",
                                 "Current run of failed health checks, by kind", ["kind"], registry=r)
        self.etcd_up = Gauge("chef_backend_etcd_healthy", "1 when this node's last etcd request succeeded",
                             registry=r)
        self.search_up = Gauge("chef_backend_search_healthy",
                               "1 when the search cluster answers green or yellow, 0 otherwise (absent when off)",
                               registry=r)
        self.search_nodes = Gauge("chef_backend_search_nodes", "Nodes in the search cluster", registry=r)
        self.lag_bytes = Gauge("chef_backend_replication_lag_bytes",
                               "On the leader: WAL bytes a standby has yet to replay", ["standby"], registry=r)
        self.lag_seconds = Gauge("chef_backend_replication_lag_seconds",
                                 "On the leader: a standby's replay lag in seconds", ["standby"], registry=r)
        self.synchronous = Gauge("chef_backend_standby_synchronous",
                                 "On the leader: 1 if the standby acknowledges commits (synchronous set)",
                                 ["standby"], registry=r)
        self.disk_free = Gauge("chef_backend_disk_free_bytes", "Free space of a checked disk path", ["path"],
                               registry=r)
        self.disk_ok = Gauge("chef_backend_disk_healthy", "1 when a checked disk path has the space it needs",
                             ["path"], registry=r)
        for kind in FAILURE_KINDS:
            self.failures.labels(kind)
        self._last: dict[str, Any] = {}
        self._last_leader: str | None = None
        self._acquire_cause = ""
        self._lock = threading.Lock()

    # -- from the control loop -----------------------------------------------------------------
    def observe(self, doc: dict[str, Any]) -> None:
        """Take the status document the control loop just published; move the counters."""
        with self._lock:
            prev, self._last = self._last, doc
            role = str(doc.get("role", ""))
            before = str(prev.get("role", ""))
            for name in ROLES:
                self.role.labels(name).set(1 if role == name else 0)
            self.ready.set(1 if doc.get("ready") else 0)
            self.eligible.set(1 if doc.get("eligible") else 0)
            leader = doc.get("leader")
            if leader and leader != self._last_leader:
                if self._last_leader is not None:
                    self.leader_changes.inc()
                self._last_leader = leader
            # The decision's typed cause (state.Cause): the first promoting step says why we lead.
            if role == "promoting" and before not in ("promoting", "leader"):
                self._acquire_cause = str(doc.get("cause") or "")
            if role == "leader" and before != "leader" and prev:
                self.acquired.labels(self._acquire_cause or str(doc.get("cause") or "") or "other").inc()
            if before == "leader" and role != "leader":
                self.lost.labels(str(doc.get("cause") or "") or "other").inc()
            failures = doc.get("failures") or {}
            old = prev.get("failures") or {}
            for kind in FAILURE_KINDS:
                now_n, was_n = int(failures.get(kind) or 0), int(old.get(kind) or 0)
                self.consecutive.labels(kind).set(now_n)
                if now_n > was_n:
                    self.failures.labels(kind).inc(now_n - was_n)
            self.etcd_up.set(1 if not failures.get("etcd") else 0)
            search = doc.get("search")
            if search:
                self.search_up.set(1 if search.get("status") in ("green", "yellow") else 0)
                self.search_nodes.set(int(search.get("nodes") or 0))

    # -- from the sampler ----------------------------------------------------------------------
    def set_replication(self, rows: list[tuple[str, float | None, float | None, str]]) -> None:
        with self._lock:
            for gauge in (self.lag_bytes, self.lag_seconds, self.synchronous):
                gauge.clear()
            for standby, lag_bytes, lag_seconds, sync_state in rows:
                if lag_bytes is not None:
                    self.lag_bytes.labels(standby).set(float(lag_bytes))
                self.lag_seconds.labels(standby).set(float(lag_seconds or 0.0))
                self.synchronous.labels(standby).set(1 if sync_state in ("sync", "quorum") else 0)

    def set_disks(self, free: dict[str, int], min_free: int) -> None:
        with self._lock:
            for path, nbytes in free.items():
                self.disk_free.labels(path).set(nbytes)
                self.disk_ok.labels(path).set(1 if nbytes >= min_free else 0)

    # -- for /metrics --------------------------------------------------------------------------
    def render(self, is_leader: bool, lease_deadline: float) -> bytes:
        """The Prometheus text exposition of every metric."""
        with self._lock:
            self.leader.set(1 if is_leader else 0)
            holds = self._last.get("role") in ("leader", "promoting")
            self.lease.set(max(0.0, lease_deadline - time.monotonic()) if holds else 0.0)
            return generate_latest(self.registry)


class Sampler:
    """Reads what the status document lacks (per-standby replication, disk space) every few seconds,
    on its own thread, so that /metrics never waits on PostgreSQL or a disk."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._conn: Any = None
        self._config: Any = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="metrics", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception as exc:  # a sampler problem must never touch the manager
                log.debug("metrics sample failed: %s", exc)
            time.sleep(SAMPLE_SECONDS)

    def sample(self) -> None:
        import psycopg

        from chef_backend.host.paths import NodePaths, host_path
        from chef_backend.leader.config import ManagerConfig
        from chef_backend.services import postgresql

        if self._config is None:
            self._config = ManagerConfig.load(NodePaths.current().leaderl_config)
        s = self._config.settings
        free = {}
        for path in s["leaderl.health_check.disk_paths"]:
            try:
                free[path] = shutil.disk_usage(host_path(path)).free
            except OSError:
                continue
        self.metrics.set_disks(free, int(s["leaderl.health_check.disk_min_space_mb"]) * 1024 * 1024)
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(postgresql.conninfo(s, s.publish_address,
                                                                 self._config.secrets.db_superuser_password),
                                             autocommit=True)
            rows = self._conn.execute(_REPLICATION_SQL).fetchall()
        except psycopg.Error:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            rows = []
        self.metrics.set_replication([(str(a), b, c, str(d)) for a, b, c, d in rows])
