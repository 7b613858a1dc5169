"""The leader manager process (the original's leaderl): I/O around the pure step function.

Each tick: look (PostgreSQL, etcd, the leader's manager, this node's health) -> `step.step` ->
publish the plan's readiness -> carry out its actions -> feed their outcomes back. Every decision
and every timer is in step.py/decide.py; every constant in timing.py.

Fencing timeline (leader side)
------------------------------
Each tick the leader renews its lease. Let t0 be the local time (timing.clock) just *before* a
keepalive request that succeeds with TTL T. etcd restarts the lease's countdown when it handles
the request, which is after t0, so the lease cannot expire on etcd's side before t0 + T (etcd may
only extend leases, e.g. on a raft leader change, never shorten them). The node therefore treats
its leadership as valid until

    deadline = t0 + T(1 - 1%) - margin,   margin = max(2 s, T/5)   (timing.fence_deadline)

`/leader` compares the current time with `deadline` on every request, so it turns 503 at the
deadline even if this loop is stuck, and a thread of its own (`fence_on_time`) stops PostgreSQL
(immediate shutdown) when it passes; the margin covers that shutdown and scheduling delays. A
second thread (`keep_ready`) looks at PostgreSQL every 0.25 s on a primary: a 200 rests on standbys
that flushed a recent heartbeat (step._ready_until), whatever etcd requests the loop is waiting on. Followers act
only once the key is gone on etcd's side, i.e. after t0 + T: by then the old leader has answered
503 for `margin` seconds and stopped PostgreSQL.

If this process is frozen (SIGSTOP) it can neither answer HTTP nor fence. HAProxy then marks the
node down (its checks time out), and in synchronous mode the followers detach from the old leader
before anyone is promoted, so the frozen leader's PostgreSQL can no longer acknowledge a commit.
In asynchronous mode that last guarantee does not hold; see docs/failover.md.
"""

from __future__ import annotations

import argparse
import contextlib
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
from chef_backend.host.netloc import host_port
from chef_backend.host.paths import NodePaths, host_path
from chef_backend.leader import records
from chef_backend.leader.actions import Executor, Markers, parse_sync_standby_names
from chef_backend.leader.config import ManagerConfig
from chef_backend.leader.http import HttpServer, Published
from chef_backend.leader.pg import HeartbeatLog, LocalPg
from chef_backend.leader.state import Action, Health, Kind, Knobs, Lease, Memory, PgState, Plan, Role, Sensed
from chef_backend.leader.step import feed, next_timer, refresh_ready, step, wants_leader_probe
from chef_backend.leader.timing import READY_LOOK_SECONDS, TICK_SECONDS, URGENT_TICK_SECONDS, clock
from chef_backend.services import elasticsearch, etcd_tls, postgresql
from chef_backend.supervision.runit import Supervisor

log = logging.getLogger("leaderl")

RAFT_CHECK_SECONDS = 2.0
FENCE_CHECK_SECONDS = 0.1
ZEN_CHECK_SECONDS = 10.0  # how often the leader checks Elasticsearch 6's quorum setting
SHUTDOWN_ETCD_SECONDS = 4.0  # how long a stopping manager tries to release its key and lease
# Below this much free space on PostgreSQL's data or WAL filesystem it cannot start a new WAL
# segment (16 MB) or extend a table: the node counts as full, whatever disk_min_space_mb says.
PG_STORAGE_RESERVE_MB = 32


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
        beats = HeartbeatLog()
        self.pg = LocalPg(self.settings, config.secrets.db_superuser_password, beats)
        # The readiness watcher's own connection: it looks while the loop waits on etcd.
        self.watch_pg = LocalPg(self.settings, config.secrets.db_superuser_password, beats)
        self.lock = threading.Lock()  # memory and published readiness, shared with the watcher
        self.supervisor = Supervisor(self.paths)
        self.executor = Executor(
            self.settings, config.secrets, self.paths, self.me, self.store, self.pg, self.supervisor
        )
        self.markers = Markers(self.paths.leaderl_data)
        self.published = Published()
        self.ttl = ttl
        self.last_raft_check = -1e9
        self.last_zen_check = -1e9
        self.local_store = self.store.with_endpoints([config.etcd_endpoints[0]])
        self.last_health = -1e9
        self.last_health_result = Health()
        self.search: dict[str, Any] | None = None
        self.last_reason = ""
        self.urgent = False
        # Whether PostgreSQL may be a primary, for the fence thread: until a look shows otherwise, from
        # the moment a promotion is asked for (the loop may block in etcd right after it).
        self.may_be_primary = False
        self.stopping = threading.Event()
        self.wake = threading.Event()  # the watcher saw our WAL stream stop: tick now, not in a second
        self.reload_requested = threading.Event()
        self.config_path = config_path
        layout = postgresql.PgLayout.of(self.settings, self.paths)
        try:
            current = layout.managed_conf.read_text().split("=", 1)[1].strip().strip("'")
        except (OSError, IndexError):
            current = ""
        self.memory = Memory(following=postgresql.configured_upstream(layout),
                             applied_sync=parse_sync_standby_names(current.replace("''", "'")))

    def knobs(self) -> Knobs:
        s = self.settings
        return Knobs(
            synchronous=s["postgresql.synchronous_replication"],
            required_active_followers=s["leaderl.required_active_followers"],
            max_bytes_behind_leader=s["leaderl.health_check.max_bytes_behind_leader"],
            max_pgsql_failures=s["leaderl.health_check.max_pgsql_failures"],
            max_search_failures=s["leaderl.health_check.max_elasticsearch_failures"],
            health_interval=s["leaderl.health_check.interval_seconds"],
            fatal_system_checks=s["leaderl.health_check.fatal_system_checks"],
            status_interval=s["leaderl.status_post_update_interval_seconds"],
        )

    # -- looking ---------------------------------------------------------------------------------
    def renew_lease(self) -> Lease:
        """Renew (or grant) our lease; the time is taken before the request is sent."""
        lease = self.memory.lease
        sent_at = clock()
        if lease:
            ttl = self.store.keepalive(lease)
            if ttl > 0:
                return Lease(lease, sent_at, ttl)
            log.warning("lease %x expired; granting a new one", lease)
            sent_at = clock()
        return Lease(self.store.grant(self.ttl), sent_at, self.ttl)

    def look_at_pg(self) -> PgState:
        if self.supervisor.status("postgresql").state != "run":
            self.may_be_primary = False
            return PgState(running=False)
        try:
            state = self.pg.observe()
        except psycopg.Error as exc:
            # A check that failed says nothing of what it is (a frozen primary fails it too).
            log.warning("PostgreSQL check failed: %s", str(exc).strip().splitlines()[0] if str(exc).strip()
                        else type(exc).__name__)
            return PgState(running=False)
        self.may_be_primary = not state.in_recovery
        return state

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
        now = clock()
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

    def check_search(self) -> bool | None:
        """Whether the local search node answered its health check (its cluster's colour is no
        failure of this node: a red index must not cost the whole cluster its leader)."""
        if not self.settings.service_enabled("elasticsearch"):
            return None
        self.search = elasticsearch.health(self.settings)
        if self.search is None:
            log.warning("search service check failed")
        return self.search is not None

    def health(self, now: float) -> Health:
        """This node's own checks; the slow ones only every health-check interval."""
        checked = now - self.last_health >= self.settings["leaderl.health_check.interval_seconds"]
        previous = self.last_health_result
        if checked:
            self.last_health = now
            disks, full, search = self.check_disks(), self.check_pg_storage(), self.check_search()
        else:
            disks, full, search = previous.disk_problems, previous.storage_full, None
        try:
            unsynced = self.markers.unsynced.read_text().strip() if self.markers.unsynced.exists() else None
        except OSError:
            unsynced = None
        result = Health(disks, full, search, unsynced, self.markers.was_leader.exists())
        self.last_health_result = result
        return result

    def read_etcd(self) -> tuple[Lease | None, Snapshot | None]:
        try:
            lease = self.renew_lease()
            with self.lock:  # the watcher writes memory too: no write of either may be lost
                self.memory = replace(self.memory, lease=lease.lease)  # a new grant is ours even if the read fails
            snapshot = self.store.snapshot()
        except (StoreError, OSError, ValueError) as exc:
            log.warning("etcd unreachable (%d in a row): %s", self.memory.etcd_failures + 1, describe(exc))
            return None, None
        return lease, snapshot

    def probe(self, address: str, path: str) -> int | None:
        """A leader manager's answer: the HTTP code, 0 when it refuses, None when it is silent."""
        code = http_status(f"http://{host_port(address, self.settings['leaderl.http_port'])}{path}", 0.5)
        return 0 if code == REFUSED else code

    def sense(self) -> tuple[Sensed, Snapshot | None]:
        """Everything this tick looks at. Changes nothing (but the HTTP readiness refresh)."""
        knobs = self.knobs()
        observed_at = clock()
        pg = self.look_at_pg()
        with self.lock:
            self.memory = refresh_ready(self.memory, pg, observed_at, knobs.required_active_followers)
            self.published.ready_until = self.memory.ready_until
        lease, snapshot = self.read_etcd()
        view = records.etcd_view(snapshot) if snapshot is not None else None
        leader_answers = None
        if view is not None and wants_leader_probe(pg, view.leader, self.me):
            assert view.leader is not None
            leader_answers = self.probe(view.leader.address, "/status") not in (None, 0)
        old_leader_code = None
        if self.memory.hold_probe is not None and clock() < self.memory.hold_until:
            old_leader_code = self.probe(self.memory.hold_probe, "/leader")
        sensed = Sensed(
            me=self.me, address=self.settings.publish_address, pg=pg, etcd=view, lease=lease,
            health=self.health(clock()), knobs=knobs, leader_answers=leader_answers,
            old_leader_code=old_leader_code, observed_at=observed_at,
        )
        return sensed, snapshot

    def move_etcd_leadership(self) -> None:
        """Keep etcd's raft leader off the PostgreSQL leader's node, so that losing that node
        does not also cost an etcd election (etcd.election_timeout, 5 s by default) right when
        the followers need etcd to fail over."""
        now = clock()
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

    # -- acting ----------------------------------------------------------------------------------
    def status_extra(self) -> dict[str, Any]:
        m = self.memory
        return {
            "name": self.settings.node_name,
            "address": self.settings.publish_address,
            "disks": {
                "problems": list(m.disk_problems),
                "paths": list(self.settings["leaderl.health_check.disk_paths"]),
            },
            "failures": {"pgsql": m.pg_failures, "etcd": m.etcd_failures, "search": m.search_failures},
            "search": None if self.search is None else {
                "status": self.search.get("status"), "nodes": self.search.get("number_of_nodes")},
            "version": __version__,
        }

    def post_status(self, doc: dict[str, Any], status_revision: int, leader_revision: int | None = None) -> bool:
        """Post our status only while our status key's mod revision is `status_revision` (0: absent);
        with `leader_revision`, only while the leader key's is that (0: absent) too."""
        value = dict(doc, updated=time.time())
        compare = [Store.cmp_revision(keys.STATUS + self.me, status_revision)]
        if leader_revision is not None:
            compare.append(Store.cmp_revision(keys.LEADER, leader_revision))
        return self.store.txn(compare, [Store.op_put(keys.STATUS + self.me, value, self.memory.lease)])

    def execute(self, plan: Plan) -> None:
        """Carry out the plan's actions in order, feeding each outcome back; stop at a failure."""
        self.executor.lease, self.executor.deadline = self.memory.lease, plan.deadline
        for action in plan.actions:
            try:
                if action.kind is Kind.POST_STATUS:
                    assert action.report is not None
                    ok = self.post_status(records.encode_status(action.report, self.me, self.status_extra()),
                                          action.status_revision or 0, action.leader_revision)
                else:
                    if action.kind is Kind.PROMOTE:
                        self.may_be_primary = True
                    ok = self.executor.run(action, plan.decision.reason)
            except Exception as exc:
                log.error("%s failed: %s", action.kind.value, exc)
                ok = False
            with self.lock:  # the watcher writes memory too: an outcome (a takeover's hold) must not be lost
                self.memory = feed(self.memory, action, ok, clock())
            if not ok:
                # What follows rests on it: a retraction that did not land (what it announced must not
                # happen), a synchronous set not published (it must not be applied), a claim that
                # failed (the key moved meanwhile: nothing may be promoted).
                break

    def housekeeping(self, plan: Plan, snapshot: Snapshot | None, members: tuple[str, ...]) -> None:
        """What a node keeps in order besides leadership: the search node's seeds and quorum, and
        on the leader etcd's raft leadership and the replication slots."""
        if snapshot is None:
            return
        self.sync_search_seeds(snapshot)
        pg = plan.report
        if plan.decision.role is Role.LEADER and pg.pg_running and not pg.pg_in_recovery:
            self.move_etcd_leadership()
            try:
                self.pg.ensure_slots([g for g in members if g != self.me],
                                     lambda: list(self.store.snapshot().under(keys.NODES)))
            except (psycopg.Error, StoreError, OSError) as exc:
                log.warning("could not manage replication slots: %s", describe(exc))

    # -- loop ----------------------------------------------------------------------------------
    def tick(self) -> Plan:
        sensed, snapshot = self.sense()
        with self.lock:
            self.memory, plan = step(self.memory, sensed, clock())
            # Before acting: a tick that fences or hands over must not answer 200 while it does.
            # (A ready plan keeps a later 200 the watcher found: both rest on a fresh look.)
            self.published.ready_until = max(plan.ready_until, self.published.ready_until) if plan.ready_until else 0.0
            self.published.lease_deadline = plan.deadline
        self.urgent = plan.urgent
        self.execute(plan)
        self.published.status = records.encode_status(plan.report, self.me, self.status_extra())
        self.housekeeping(plan, snapshot, sensed.etcd.members if sensed.etcd else ())
        if plan.decision.reason != self.last_reason:
            log.info("%s: %s", plan.decision.role.value, plan.decision.reason)
            self.last_reason = plan.decision.reason
        return plan

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

    def keep_ready(self) -> None:
        """Look at PostgreSQL every READY_LOOK_SECONDS. On a primary, keep a ready leader's 200 going
        from those looks: the loop may wait seconds on etcd, and a 200 rests on standbys that flushed a
        heartbeat written less than STANDBY_STALE ago; after each look, it writes the next one
        (LocalPg.heartbeat). On a standby that streams, wake the loop the moment the stream
        stops, so that suspicion of a dead leader starts then, not up to a tick later."""
        required = self.settings["leaderl.required_active_followers"]
        while not self.stopping.wait(READY_LOOK_SECONDS):
            last = self.memory.last_obs
            if last is None or not last.pg.running:
                continue
            if last.pg.in_recovery and (self.urgent or not last.pg.streaming):
                continue
            observed_at = clock()
            try:
                pg = self.watch_pg.observe()
            except psycopg.Error:
                continue
            if not pg.in_recovery:  # (only the loop's own looks, in order with its promotions, lower it)
                self.may_be_primary = True
            if last.pg.in_recovery:
                if not pg.streaming:
                    self.wake.set()
                continue
            with self.lock:
                self.memory = refresh_ready(self.memory, pg, observed_at, required)
                if self.published.ready_until:
                    self.published.ready_until = max(self.published.ready_until, self.memory.ready_until)
            if not pg.in_recovery:
                with contextlib.suppress(psycopg.Error):
                    self.watch_pg.heartbeat()

    def fence_on_time(self) -> None:
        """Fence at the lease deadline on a thread of its own: the loop may be blocked for seconds in
        etcd requests exactly when the deadline passes. It goes by what PostgreSQL may be (the last look, or
        a promotion asked for since), not by the last status published: that trails by a tick, and a
        tick may block for seconds right after a promotion. Not before the first step, which sets the
        deadline."""
        fenced = None
        while not self.stopping.wait(FENCE_CHECK_SECONDS):
            deadline = self.memory.deadline
            if self.memory.last_obs is not None and clock() >= deadline and deadline != fenced \
                    and self.may_be_primary:
                fenced = deadline
                log.error("fencing PostgreSQL: lease deadline passed")
                try:  # immediate shutdown (SIGQUIT); the loop's own FENCE follows on its next tick
                    self.supervisor.sv("down", "postgresql", wait=0)
                    self.supervisor.sv("quit", "postgresql", wait=0)
                except Exception as exc:
                    log.error("fencing failed: %s", exc)

    def run(self) -> None:
        host = self.settings["leaderl.http_address"]
        HttpServer(self.published, host, self.settings["leaderl.http_port"]).start()
        threading.Thread(target=self.fence_on_time, name="fence", daemon=True).start()
        threading.Thread(target=self.keep_ready, name="ready", daemon=True).start()
        log.info(
            "leaderl %s started as %s (%s); /leader on %s:%s",
            __version__,
            self.me,
            self.settings.publish_address,
            host,
            self.settings["leaderl.http_port"],
        )
        while not self.stopping.is_set():
            started = clock()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            try:
                self.tick()
            except Exception:
                log.exception("tick failed")
            now = clock()
            pause = (URGENT_TICK_SECONDS if self.urgent else TICK_SECONDS) - (now - started)
            timer = next_timer(self.memory, now)
            if timer is not None:
                # E.g. the first tick after a takeover's hold is the one that starts answering 200.
                pause = min(pause, timer - now + 0.01)
            self.wake.wait(max(0.05, pause))
            self.wake.clear()
        self.shutdown()

    def shutdown(self) -> None:
        """Graceful stop: stop answering 200, give leadership away, revoke our lease."""
        self.published.ready_until = 0.0
        was_leader = self.published.status.get("role") == Role.LEADER.value
        if was_leader:
            # Stop PostgreSQL first (fast shutdown streams all WAL to the followers), then let go
            # of the key: the next leader starts exactly where this one ended, nothing to rewind.
            self.pg.close()
            self.supervisor.sv("down", "postgresql", wait=60)
        # Letting go in etcd only saves the others the lease's expiry, so it gets a bounded time:
        # the last node of a cluster stopped node by node has an etcd without quorum, where each
        # request would wait for its timeout on every endpoint.
        letting_go = threading.Thread(target=self._let_go, args=(was_leader,), name="let-go", daemon=True)
        letting_go.start()
        letting_go.join(SHUTDOWN_ETCD_SECONDS)
        if letting_go.is_alive():
            log.warning("etcd did not answer within %g s; the leader key goes when its lease expires",
                        SHUTDOWN_ETCD_SECONDS)
        self.pg.close()
        log.info("leaderl stopped")

    def _let_go(self, was_leader: bool) -> None:
        if was_leader:
            self.executor.lease = self.memory.lease
            try:
                self.executor.run(Action(Kind.RELEASE), "leader manager stopping")
            except Exception as exc:
                log.warning("could not release leadership: %s", exc)
        if self.memory.lease:
            try:
                self.store.revoke(self.memory.lease)
            except (StoreError, OSError):
                pass


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
        manager.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda signum, frame: manager.reload_requested.set())
    os.umask(0o077)
    # /leader is answered on a thread of its own: a check that arrives while the control loop or
    # the readiness watcher holds the GIL would otherwise wait up to the default 5 ms for it.
    sys.setswitchinterval(0.0005)
    manager.run()
    return 0
