"""The leader manager process (the original's leaderl): observe, decide, act, once a tick.

Fencing timeline (leader side)
------------------------------
Each tick the leader renews its lease. Let t0 be the local monotonic time just *before* a
keepalive request that succeeds with TTL T. etcd restarts the lease's countdown when it handles
the request, which is after t0, so the lease cannot expire on etcd's side before t0 + T (etcd may
only extend leases, e.g. on a raft leader change, never shorten them). The node therefore treats
its leadership as valid until

    deadline = t0 + T - margin,   margin = max(2 s, T/5)      (6 s at the default TTL of 30 s)

`/leader` compares the current time with `deadline` on every request, so it turns 503 at the
deadline even if this loop is stuck. The loop fences PostgreSQL (immediate shutdown) as soon as it
sees the deadline passed; the margin covers that shutdown and scheduling delays. Followers act
only once the key is gone on etcd's side, i.e. after t0 + T: by then the old leader has answered
503 for `margin` seconds and stopped PostgreSQL.

If this process is frozen (SIGSTOP) it can neither answer HTTP nor fence. HAProxy then marks the
node down (its checks time out), and in synchronous mode the followers detach from the old leader
before anyone is promoted, so the frozen leader's PostgreSQL can no longer acknowledge a commit.
In asynchronous mode that last guarantee does not hold; see docs/failover.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from chef_backend import __version__
from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Snapshot, Store, StoreError
from chef_backend.leader.actions import Executor, Markers, parse_sync_standby_names
from chef_backend.leader.config import ManagerConfig
from chef_backend.leader.decide import decide
from chef_backend.leader.http import HttpServer, Published
from chef_backend.leader.pg import LocalPg
from chef_backend.leader.state import (
    Action,
    Decision,
    Kind,
    LeaderKey,
    Observation,
    Peer,
    PgState,
    Position,
    Role,
    SyncSet,
)
from chef_backend.paths import NodePaths, host_path
from chef_backend.services import postgresql
from chef_backend.supervision.runit import Supervisor

log = logging.getLogger("leaderl")

TICK_SECONDS = 1.0


def lease_margin(ttl: float) -> float:
    return max(2.0, ttl / 5.0)


class Manager:
    """One node's leader manager."""

    def __init__(self, config: ManagerConfig) -> None:
        self.config = config
        self.settings = config.settings
        self.me = config.identity.guid
        self.paths = NodePaths.current()
        timeout = self.settings["leaderl.etcd_pool.http_timeout_ms"] / 1000.0
        ttl = self.settings["leaderl.leader_ttl_seconds"]
        self.store = Store(list(config.etcd_endpoints), timeout=min(timeout, max(1.0, ttl / 6)))
        self.pg = LocalPg(self.settings, config.secrets.db_superuser_password)
        self.supervisor = Supervisor(self.paths)
        self.executor = Executor(
            self.settings, config.secrets, self.paths, self.me, self.store, self.pg, self.supervisor
        )
        self.markers = Markers(self.paths.leaderl_data)
        self.published = Published()
        self.ttl = ttl
        self.deadline = 0.0
        self.pg_failures = 0
        self.etcd_failures = 0
        self.leaderless_since: float | None = None
        self.leaderless_revision = 0
        self.last_post = 0.0
        self.last_posted: dict[str, Any] = {}
        self.last_health = 0.0
        self.disk_problems: tuple[str, ...] = ()
        self.last_reason = ""
        self.stopping = threading.Event()
        layout = postgresql.PgLayout.of(self.settings, self.paths)
        try:
            current = layout.managed_conf.read_text().split("=", 1)[1].strip().strip("'")
        except (OSError, IndexError):
            current = ""
        self.executor.applied_sync = parse_sync_standby_names(current.replace("''", "'"))

    # -- lease ---------------------------------------------------------------------------------
    def renew_lease(self) -> None:
        if not self.executor.lease:
            self.executor.lease = self.store.grant(self.ttl)
            self.deadline = time.monotonic() + self.ttl - lease_margin(self.ttl)
            return
        t0 = time.monotonic()
        ttl = self.store.keepalive(self.executor.lease)
        if ttl <= 0:
            log.warning("lease %x expired; granting a new one", self.executor.lease)
            self.executor.lease = 0
            self.deadline = 0.0
            self.renew_lease()
            return
        self.deadline = t0 + ttl - lease_margin(ttl)

    def lease_ok(self) -> bool:
        return time.monotonic() < self.deadline

    # -- observation ---------------------------------------------------------------------------
    def observe_pg(self) -> PgState:
        if self.supervisor.status("postgresql").state != "run":
            return PgState(running=False)
        try:
            state = self.pg.observe()
        except psycopg.Error as exc:
            self.pg_failures += 1
            log.warning(
                "PostgreSQL check failed (%d in a row): %s",
                self.pg_failures,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )
            return PgState(running=False)
        self.pg_failures = 0
        return state

    def check_disks(self) -> tuple[str, ...]:
        problems = []
        min_mb = self.settings["leaderl.health_check.disk_min_space_mb"]
        for raw in self.settings["leaderl.health_check.disk_paths"]:
            path = host_path(raw)
            try:
                free_mb = shutil.disk_usage(path).free // (1024 * 1024)
            except OSError as exc:
                problems.append(f"{raw}: {exc.strerror}")
                continue
            if free_mb < min_mb:
                problems.append(f"{raw}: {free_mb} MB free, below {min_mb} MB")
        return tuple(problems)

    def observe(self) -> tuple[Observation, Snapshot | None]:
        pg = self.observe_pg()
        snapshot: Snapshot | None = None
        etcd_ok = True
        try:
            self.renew_lease()
            snapshot = self.store.snapshot()
            self.etcd_failures = 0
        except (StoreError, OSError, ValueError) as exc:
            etcd_ok = False
            self.etcd_failures += 1
            log.warning("etcd unreachable (%d in a row): %s", self.etcd_failures, exc)

        now = time.monotonic()
        if now - self.last_health >= self.settings["leaderl.health_check.interval_seconds"]:
            self.last_health = now
            self.disk_problems = self.check_disks()

        ineligible: list[str] = []
        unhealthy: list[str] = []
        max_pg = self.settings["leaderl.health_check.max_pgsql_failures"]
        if self.pg_failures >= max_pg:
            unhealthy.append(f"PostgreSQL failed {self.pg_failures} checks in a row")
        if self.disk_problems and self.settings["leaderl.health_check.fatal_system_checks"]:
            unhealthy.append("disk: " + "; ".join(self.disk_problems))
        ineligible.extend(unhealthy)
        if self.markers.unsynced.exists():
            ineligible.append("unsynced: " + self.markers.unsynced.read_text().strip())

        leader: LeaderKey | None = None
        peers: dict[str, Peer] = {}
        members: tuple[str, ...] = (self.me,)
        sync = SyncSet()
        last_leader: str | None = None
        failover = True
        if snapshot is not None:
            entry = snapshot.get(keys.LEADER)
            if entry and isinstance(entry.value, dict):
                leader = LeaderKey(entry.value["guid"], entry.value["address"], entry.mod_revision)
            if leader is None:
                if self.leaderless_since is None:
                    self.leaderless_since = now
                    self.leaderless_revision = snapshot.revision
            else:
                self.leaderless_since = None
            members = tuple(sorted(snapshot.under(keys.NODES))) or (self.me,)
            for guid, st in snapshot.under(keys.STATUS).items():
                if guid == self.me or not isinstance(st.value, dict):
                    continue
                v = st.value
                pos = v.get("position", {})
                peers[guid] = Peer(
                    guid=guid,
                    address=v.get("address", ""),
                    role=v.get("role", ""),
                    eligible=bool(v.get("eligible")),
                    position=Position(int(pos.get("timeline", 0)), int(pos.get("lsn", 0))),
                    detached=bool(v.get("detached")),
                    fresh=leader is not None or st.mod_revision > self.leaderless_revision,
                )
            s = snapshot.value(keys.SYNC) or {}
            sync = SyncSet(tuple(s.get("members", ())), int(s.get("quorum", 0)))
            history = snapshot.value(keys.HISTORY) or []
            last_leader = history[-1]["guid"] if history else None
            failover = snapshot.value(keys.CONTROL_FAILOVER, "on") != "off"
            if self.me in (snapshot.value(keys.CONTROL_BLOCKED) or []):
                ineligible.append("failover is turned off for this node")
            if leader is not None and leader.guid != self.me and leader.guid in peers and pg.running and pg.in_recovery:
                behind = peers[leader.guid].position.lsn - pg.position.lsn
                limit = self.settings["leaderl.health_check.max_bytes_behind_leader"]
                if behind > limit:
                    ineligible.append(f"{behind} bytes behind the leader (limit {limit})")

        obs = Observation(
            me=self.me,
            etcd_ok=etcd_ok,
            lease_ok=self.lease_ok(),
            leader=leader,
            pg=pg,
            ineligible=tuple(ineligible),
            unhealthy=tuple(unhealthy),
            members=members,
            peers=peers,
            sync=sync,
            synchronous=self.settings["postgresql.synchronous_replication"],
            last_leader=last_leader,
            failover_enabled=failover,
            was_leader=self.markers.was_leader.exists(),
            leaderless_seconds=0.0 if self.leaderless_since is None else now - self.leaderless_since,
            detached=self.markers.detached.exists(),
        )
        return obs, snapshot

    # -- status --------------------------------------------------------------------------------
    def status_doc(self, obs: Observation, decision: Decision) -> dict[str, Any]:
        return {
            "guid": self.me,
            "name": self.settings.node_name,
            "address": self.settings.publish_address,
            "role": decision.role.value,
            "ready": decision.ready,
            "reason": decision.reason,
            "eligible": not obs.ineligible,
            "ineligible": list(obs.ineligible),
            "leader": obs.leader.guid if obs.leader else None,
            "position": {"timeline": obs.pg.position.timeline, "lsn": obs.pg.position.lsn},
            "detached": obs.detached,
            "pg": {
                "running": obs.pg.running,
                "in_recovery": obs.pg.in_recovery,
                "streaming": obs.pg.streaming,
                "upstream": obs.pg.upstream,
                "standbys": list(obs.pg.standbys),
            },
            "disks": {
                "problems": list(self.disk_problems),
                "paths": list(self.settings["leaderl.health_check.disk_paths"]),
            },
            "failures": {"pgsql": self.pg_failures, "etcd": self.etcd_failures},
            "version": __version__,
        }

    def post_status(self, obs: Observation, doc: dict[str, Any]) -> None:
        now = time.monotonic()
        interval = self.settings["leaderl.status_post_update_interval_seconds"]
        volatile = ("position", "failures")
        changed = {k: v for k, v in doc.items() if k not in volatile} != {
            k: v for k, v in self.last_posted.items() if k not in volatile
        }
        if obs.leader is not None and not changed and now - self.last_post < interval:
            return
        if not obs.etcd_ok or not self.executor.lease:
            return
        try:
            self.store.put(keys.STATUS + self.me, dict(doc, updated=time.time()), lease=self.executor.lease)
            self.last_post, self.last_posted = now, doc
        except (StoreError, OSError) as exc:
            log.warning("could not post status: %s", exc)

    # -- loop ----------------------------------------------------------------------------------
    def tick(self) -> Decision:
        obs, snapshot = self.observe()
        decision = decide(obs, self.settings["leaderl.required_active_followers"])
        for action in decision.actions:
            try:
                self.executor.run(action, decision.reason)
            except Exception as exc:
                log.error("%s failed: %s", action.kind.value, exc)
                break
        if decision.role is Role.LEADER and obs.pg.running and not obs.pg.in_recovery and snapshot is not None:
            try:
                self.pg.ensure_slots([g for g in obs.members if g != self.me])
            except psycopg.Error as exc:
                log.warning("could not manage replication slots: %s", exc)
        self.published.ready = decision.ready and obs.lease_ok
        self.published.lease_deadline = self.deadline
        doc = self.status_doc(obs, decision)
        self.published.status = doc
        self.post_status(obs, doc)
        if decision.reason != self.last_reason:
            log.info("%s: %s", decision.role.value, decision.reason)
            self.last_reason = decision.reason
        return decision

    def run(self) -> None:
        host = self.settings["leaderl.http_address"]
        HttpServer(self.published, host, self.settings["leaderl.http_port"]).start()
        log.info(
            "leaderl %s started as %s (%s); /leader on %s:%s",
            __version__,
            self.me,
            self.settings.publish_address,
            host,
            self.settings["leaderl.http_port"],
        )
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                decision = self.tick()
            except Exception:
                log.exception("tick failed")
                decision = None
            if not self.lease_ok() and self._is_primary():
                # Belt and braces: whatever the tick did, a primary past its deadline is stopped.
                self.executor.run(Action(Kind.FENCE), "lease deadline passed")
            leaderless = decision is not None and decision.role in (Role.WAITING, Role.PROMOTING)
            pause = (TICK_SECONDS / 2 if leaderless else TICK_SECONDS) - (time.monotonic() - started)
            self.stopping.wait(max(0.05, pause))
        self.shutdown()

    def _is_primary(self) -> bool:
        st = self.published.status.get("pg", {})
        return bool(st.get("running")) and not st.get("in_recovery", True)

    def shutdown(self) -> None:
        """Graceful stop: stop answering 200, give leadership away, revoke our lease."""
        self.published.ready = False
        if self.published.status.get("role") == Role.LEADER.value:
            # Stop PostgreSQL first (fast shutdown streams all WAL to the followers), then let go
            # of the key: the next leader starts exactly where this one ended, nothing to rewind.
            self.pg.close()
            self.supervisor.sv("down", "postgresql", wait=60)
            try:
                self.executor.run(Action(Kind.RELEASE), "leader manager stopping")
            except Exception as exc:
                log.warning("could not release leadership: %s", exc)
        if self.executor.lease:
            try:
                self.store.revoke(self.executor.lease)
            except (StoreError, OSError):
                pass
        self.pg.close()
        log.info("leaderl stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chef-backend-leaderl", description="chef-backend leader manager")
    parser.add_argument("--config", required=True, help="path of leaderl.json")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    config = ManagerConfig.load(Path(args.config))
    manager = Manager(config)

    def stop(signum: int, frame: object) -> None:
        manager.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.umask(0o077)
    manager.run()
    return 0
