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
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

from chef_backend import __version__
from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Snapshot, Store, StoreError, describe
from chef_backend.host.httpcheck import REFUSED, http_status
from chef_backend.host.paths import NodePaths, host_path
from chef_backend.leader import records
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
    Role,
)
from chef_backend.services import elasticsearch, etcd_tls, postgresql
from chef_backend.supervision.runit import Supervisor

log = logging.getLogger("leaderl")

TICK_SECONDS = 1.0
URGENT_TICK_SECONDS = 0.25
# A leader whose WAL stream we lost and whose leader manager has not answered for this long is suspect.
SUSPECT_AFTER_SECONDS = 1.5
RAFT_CHECK_SECONDS = 2.0
ZEN_CHECK_SECONDS = 10.0  # how often the leader checks Elasticsearch 6's quorum setting
# A new leader answers 200 without a streaming synchronous standby for this long after promotion,
# while its followers re-attach (a leader whose standbys went away answers 503).
JUST_PROMOTED_SECONDS = 5.0
# How long a tick's "ready" stays valid for /leader: a frozen loop cannot keep answering 200.
READY_VALIDITY_SECONDS = 2.5
# Below this much free space on PostgreSQL's data or WAL filesystem it cannot start a new WAL
# segment (16 MB) or extend a table: the node counts as full, whatever disk_min_space_mb says.
PG_STORAGE_RESERVE_MB = 32


def lease_margin(ttl: float) -> float:
    return max(2.0, ttl / 5.0)


class Manager:
    """One node's leader manager."""

    def __init__(self, config: ManagerConfig, config_path: Path) -> None:
        self.config = config
        self.settings = config.settings
        self.me = config.identity.guid
        self.paths = NodePaths.current()
        timeout = self.settings["leaderl.etcd_pool.http_timeout_ms"] / 1000.0
        ttl = self.settings["leaderl.leader_ttl_seconds"]
        # Short: while etcd elects a raft leader every request hangs until this timeout, and each
        # hung request delays the whole tick (and so the detection of a dead PostgreSQL leader).
        self.store = Store(list(config.etcd_endpoints), timeout=min(timeout, 2.0, max(1.0, ttl / 6)),
                           tls=etcd_tls.client_tls(self.settings))
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
        self.last_pg_failure = 0.0
        self.etcd_failures = 0
        self.leaderless_since: float | None = None
        self.leader_unreachable_since: float | None = None
        self.last_raft_check = 0.0
        self.local_store = self.store.with_endpoints([config.etcd_endpoints[0]])
        self.leaderless_revision = 0
        self.last_post = 0.0
        self.last_posted: dict[str, Any] = {}
        self.last_health = 0.0
        self.disk_problems: tuple[str, ...] = ()
        self.storage_full: str | None = None
        self.search_failures = 0
        self.last_zen_check = 0.0
        self.search_seen = False  # a JVM still starting is no failure: count once it has answered
        self.search: dict[str, Any] | None = None
        self.last_reason = ""
        self.urgent = False
        self.last_obs: Observation | None = None
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.config_path = config_path
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
            state = PgState(running=False)
        else:
            try:
                state = self.pg.observe()
            except psycopg.Error as exc:
                log.warning("PostgreSQL check failed: %s", str(exc).strip().splitlines()[0] if str(exc).strip()
                            else type(exc).__name__)
                state = PgState(running=False)
        self.count_pg_health(state.running)
        return state

    def count_pg_health(self, ok: bool) -> None:
        """Consecutive failed PostgreSQL checks, counted once per health-check interval (seed)."""
        if ok:
            self.pg_failures = 0
            return
        now = time.monotonic()
        if now - self.last_pg_failure >= self.settings["leaderl.health_check.interval_seconds"]:
            self.last_pg_failure = now
            self.pg_failures += 1

    def check_disks(self) -> tuple[str, ...]:
        problems = []
        min_mb = self.settings["leaderl.health_check.disk_min_space_mb"]
        for raw in self.settings["leaderl.health_check.disk_paths"]:
            try:
                free_mb = shutil.disk_usage(host_path(raw)).free // (1024 * 1024)
            except OSError as exc:
                problems.append(f"{raw}: {exc.strerror}")
                continue
            if free_mb < min_mb:
                problems.append(f"{raw}: {free_mb} MB free, below {min_mb} MB")
        return tuple(problems)

    def check_pg_storage(self) -> str | None:
        """Why PostgreSQL's data or WAL filesystem is full (pg_wal may be a link elsewhere)."""
        layout = self.executor.layout
        for what, path in (("data", layout.data), ("WAL", layout.data / "pg_wal")):
            try:
                free_mb = shutil.disk_usage(path).free // (1024 * 1024)
            except OSError:
                continue  # no data directory yet (joining): nothing to fill
            if free_mb < PG_STORAGE_RESERVE_MB:
                return f"PostgreSQL's {what} disk is full ({free_mb} MB free)"
        return None

    def sync_search_seeds(self, snapshot: Snapshot) -> None:
        """Keep the search node's seed hosts equal to the cluster's members (joins, remove-node)."""
        if not self.settings.service_enabled("elasticsearch"):
            return
        members = [e.value["address"] for e in snapshot.under(keys.NODES).values()
                   if isinstance(e.value, dict) and isinstance(e.value.get("address"), str)]
        try:
            if members and elasticsearch.write_seed_hosts(self.paths, members):
                log.info("search seed hosts now %s", ", ".join(sorted(members)))
        except OSError as exc:
            log.warning("could not update the search seed hosts: %s", exc)
        now = time.monotonic()
        if members and now - self.last_zen_check >= ZEN_CHECK_SECONDS:
            self.last_zen_check = now
            if elasticsearch.engine(self.settings).zen:
                self.keep_zen_quorum(snapshot, len(members))

    def keep_zen_quorum(self, snapshot: Snapshot, members: int) -> None:
        """Elasticsearch 6's Zen discovery elects a search master with minimum_master_nodes of the
        nodes, which nothing but us keeps at a majority of the members as they come and go: in this
        node's configuration (what it goes by after a restart), and, on the leader, cluster-wide."""
        try:
            if elasticsearch.write_zen_quorum(self.paths, members):
                log.info("search: this node's discovery.zen.minimum_master_nodes now %d",
                         elasticsearch.quorum(members))
        except (OSError, ValueError) as exc:
            log.warning("could not update the search node's minimum_master_nodes: %s", exc)
        leader = snapshot.value(keys.LEADER)
        if isinstance(leader, dict) and leader.get("guid") == self.me:
            quorum = elasticsearch.set_zen_quorum(self.settings, members)
            if quorum is not None:
                log.info("search: discovery.zen.minimum_master_nodes now %d cluster-wide", quorum)

    def check_search(self) -> None:
        """Count consecutive health checks the local search node failed to answer (its cluster's
        colour is no failure of this node: a red index must not cost the whole cluster its leader)."""
        if not self.settings.service_enabled("elasticsearch"):
            return
        self.search = elasticsearch.health(self.settings)
        if self.search is not None:
            self.search_seen = True
            self.search_failures = 0
        elif self.search_seen:
            self.search_failures += 1
            log.warning("search service check failed (%d in a row)", self.search_failures)

    def read_etcd(self) -> Snapshot | None:
        try:
            self.renew_lease()
            snapshot = self.store.snapshot()
        except (StoreError, OSError, ValueError) as exc:
            self.etcd_failures += 1
            log.warning("etcd unreachable (%d in a row): %s", self.etcd_failures, describe(exc))
            return None
        self.etcd_failures = 0
        return snapshot

    def suspect(self, leader: LeaderKey, pg: PgState) -> bool:
        """Whether the leader looks dead: our WAL receiver lost it *and* its leader manager has not
        answered HTTP for SUSPECT_AFTER_SECONDS. Either alone is normal (PostgreSQL restarting on
        the leader; a leader manager that is busy or briefly cut off from us)."""
        now = time.monotonic()
        if pg.streaming and pg.upstream == leader.address:
            self.leader_unreachable_since = None
            return False
        url = f"http://{leader.address}:{self.settings['leaderl.http_port']}/status"
        if http_status(url, 0.5) not in (None, REFUSED):
            self.leader_unreachable_since = None
            return False
        if self.leader_unreachable_since is None:
            self.leader_unreachable_since = now
        return now - self.leader_unreachable_since >= SUSPECT_AFTER_SECONDS

    def move_etcd_leadership(self) -> None:
        """Keep etcd's raft leader off the PostgreSQL leader's node, so that losing that node
        does not also cost an etcd election (etcd.election_timeout, 5 s by default) right when
        the followers need etcd to fail over."""
        now = time.monotonic()
        if now - self.last_raft_check < RAFT_CHECK_SECONDS:
            return
        self.last_raft_check = now
        try:
            status = self.local_store.status()
            me = status["header"]["member_id"]
            if status.get("leader") != me:
                return
            others = [m for m in self.local_store.members() if m["ID"] != me and m.get("name")]
            healthy = self.local_store.member_health(others)
            # Only to a member that answers, and only while every other member does: raft stops
            # taking writes while a transfer is pending, so a transfer to a dead member would stall
            # etcd for an election timeout.
            if others and all(healthy.get(m["name"]) for m in others):
                self.local_store.transfer_leadership(others[0]["ID"])
                log.info("moved etcd raft leadership to member %s", others[0]["name"])
        except (StoreError, OSError, KeyError, ValueError) as exc:
            log.info("could not move etcd raft leadership: %s", describe(exc))

    def health(self) -> tuple[list[str], list[str]]:
        """(ineligible, unhealthy) reasons from this node's own checks."""
        now = time.monotonic()
        if now - self.last_health >= self.settings["leaderl.health_check.interval_seconds"]:
            self.last_health = now
            self.disk_problems = self.check_disks()
            self.storage_full = self.check_pg_storage()
            self.check_search()
        unhealthy: list[str] = []
        if self.pg_failures >= self.settings["leaderl.health_check.max_pgsql_failures"]:
            unhealthy.append(f"PostgreSQL failed {self.pg_failures} checks in a row")
        limit = self.settings["leaderl.health_check.max_elasticsearch_failures"]
        if self.search_failures >= limit:
            unhealthy.append(f"search service failed {self.search_failures} checks in a row")
        if self.disk_problems and self.settings["leaderl.health_check.fatal_system_checks"]:
            unhealthy.append("disk: " + "; ".join(self.disk_problems))
        ineligible = list(unhealthy)
        if self.markers.unsynced.exists():
            ineligible.append("unsynced: " + self.markers.unsynced.read_text().strip())
        return ineligible, unhealthy

    def peers(self, snapshot: Snapshot, leader_present: bool) -> dict[str, Peer]:
        peers = {}
        for guid, st in snapshot.under(keys.STATUS).items():
            if guid == self.me:
                continue
            fresh = leader_present or st.mod_revision > self.leaderless_revision
            if (p := records.peer(guid, st.value, fresh, st.lease)) is not None:
                peers[guid] = p
        return peers

    def refresh_ready(self, pg: PgState, observed_at: float) -> None:
        """Keep a ready leader's 200 going from a fresh look at PostgreSQL alone, before this tick's
        etcd round trips, which can take seconds while etcd elects a raft leader. Only the standby
        freshness can change here; the lease deadline is checked on every request anyway."""
        last = self.last_obs
        if last is None or time.monotonic() >= self.published.ready_until:
            return
        if decide(replace(last, pg=pg), self.settings["leaderl.required_active_followers"]).ready:
            self.published.ready_until = observed_at + READY_VALIDITY_SECONDS

    def observe(self, observed_at: float) -> tuple[Observation, Snapshot | None]:
        pg = self.observe_pg()
        self.refresh_ready(pg, observed_at)
        snapshot = self.read_etcd()
        now = time.monotonic()
        ineligible, unhealthy = self.health()
        base = Observation(
            me=self.me,
            etcd_ok=snapshot is not None,
            lease_ok=self.lease_ok(),
            leader=None,
            pg=pg,
            ineligible=(),
            unhealthy=tuple(unhealthy),
            storage_full=self.storage_full,
            members=(self.me,),
            synchronous=self.settings["postgresql.synchronous_replication"],
            was_leader=self.markers.was_leader.exists(),
            following=self.executor.following,
            hold_ready=now < self.executor.hold_until,
            just_promoted=now - self.executor.promoted_at < JUST_PROMOTED_SECONDS,
        )
        if snapshot is None:
            return replace(base, ineligible=tuple(ineligible)), None

        entry = snapshot.get(keys.LEADER)
        leader = records.leader_key(entry.value, entry.mod_revision, entry.lease) if entry else None
        suspected = leader is not None and leader.guid != self.me and self.suspect(leader, pg)
        if leader is None or suspected:
            if self.leaderless_since is None:
                self.leaderless_since = now
                self.leaderless_revision = snapshot.revision
        else:
            self.leaderless_since = None
        peers = self.peers(snapshot, leader is not None)
        self.sync_search_seeds(snapshot)
        if self.me in records.guid_list(snapshot.value(keys.CONTROL_BLOCKED)):
            ineligible.append("failover is turned off for this node")
        if leader is not None and leader.guid in peers and leader.guid != self.me and pg.running and pg.in_recovery:
            behind = peers[leader.guid].position.lsn - pg.position.lsn
            limit = self.settings["leaderl.health_check.max_bytes_behind_leader"]
            if behind > limit:
                ineligible.append(f"{behind} bytes behind the leader (limit {limit})")
        mine = entry is not None and leader is not None and leader.guid == self.me
        obs = replace(
            base,
            leader=leader,
            ineligible=tuple(ineligible),
            members=tuple(sorted(snapshot.under(keys.NODES))) or (self.me,),
            peers=peers,
            sync=records.sync_set(snapshot.value(keys.SYNC)),
            applied_sync=self.executor.applied_sync,
            last_leader=records.last_leader(snapshot.value(keys.HISTORY)),
            failover_enabled=snapshot.value(keys.CONTROL_FAILOVER, "on") != "off",
            leaderless_seconds=0.0 if self.leaderless_since is None else now - self.leaderless_since,
            leader_suspected=suspected,
            switchover=records.switchover(snapshot.value(keys.CONTROL_SWITCHOVER)),
            force_leader=snapshot.value(keys.CONTROL_FORCE) == self.me and leader is None,
            handover_position=records.handover_position(entry.value) if mine and entry else None,
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
            "storage_full": obs.storage_full,
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
            "failures": {"pgsql": self.pg_failures, "etcd": self.etcd_failures, "search": self.search_failures},
            "search": None if self.search is None else {
                "status": self.search.get("status"), "nodes": self.search.get("number_of_nodes")},
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
        self.executor.release_hold_if_fenced()
        observed_at = time.monotonic()
        obs, snapshot = self.observe(observed_at)
        self.last_obs = obs
        decision = decide(obs, self.settings["leaderl.required_active_followers"])
        # Tick faster while leadership is moving: every fraction of a second is write outage.
        self.urgent = (obs.switchover is not None or decision.role in (Role.WAITING, Role.PROMOTING)
                       or self.leader_unreachable_since is not None)
        for action in decision.actions:
            try:
                self.executor.run(action, decision.reason)
            except Exception as exc:
                log.error("%s failed: %s", action.kind.value, exc)
                break
        if decision.role is Role.LEADER and obs.pg.running and not obs.pg.in_recovery and snapshot is not None:
            self.move_etcd_leadership()
            try:
                self.pg.ensure_slots([g for g in obs.members if g != self.me],
                                     lambda: list(self.store.snapshot().under(keys.NODES)))
            except (psycopg.Error, StoreError, OSError) as exc:
                log.warning("could not manage replication slots: %s", describe(exc))
        # "ready" is a fact about the moment we observed, so it only holds for a short while.
        self.published.ready_until = observed_at + READY_VALIDITY_SECONDS if decision.ready and obs.lease_ok else 0.0
        self.published.lease_deadline = self.deadline
        doc = self.status_doc(obs, decision)
        self.published.status = doc
        self.post_status(obs, doc)
        if decision.reason != self.last_reason:
            log.info("%s: %s", decision.role.value, decision.reason)
            self.last_reason = decision.reason
        return decision

    def reload(self) -> None:
        """Take new settings from leaderl.json (SIGHUP, sent by reconfigure) without a restart, so
        that a leader keeps its leadership. The settings object is shared by every part of the
        manager, so it is updated in place; the listening address and port need a restart."""
        try:
            fresh = ManagerConfig.load(self.config_path)
        except (OSError, ValueError, KeyError) as exc:
            log.error("reload: cannot read %s: %s; keeping the current settings", self.config_path, exc)
            return
        self.settings.values.clear()
        self.settings.values.update(fresh.settings.values)
        self.ttl = self.settings["leaderl.leader_ttl_seconds"]
        log.info("reloaded settings from %s", self.config_path)

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
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            try:
                self.tick()
            except Exception:
                log.exception("tick failed")
            if not self.lease_ok() and self._is_primary():
                # Belt and braces: whatever the tick did, a primary past its deadline is stopped.
                self.executor.run(Action(Kind.FENCE), "lease deadline passed")
            pause = (URGENT_TICK_SECONDS if self.urgent else TICK_SECONDS) - (time.monotonic() - started)
            self.stopping.wait(max(0.05, pause))
        self.shutdown()

    def _is_primary(self) -> bool:
        st = self.published.status.get("pg", {})
        return bool(st.get("running")) and not st.get("in_recovery", True)

    def shutdown(self) -> None:
        """Graceful stop: stop answering 200, give leadership away, revoke our lease."""
        self.published.ready_until = 0.0
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
    manager = Manager(config, Path(args.config))

    def stop(signum: int, frame: object) -> None:
        manager.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda signum, frame: manager.reload_requested.set())
    os.umask(0o077)
    manager.run()
    return 0
