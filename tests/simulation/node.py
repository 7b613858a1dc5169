"""A simulated node: the real step function driven by a model of daemon.py's I/O.

`Manager.run` is a generator that mirrors `Manager.tick` in chef_backend/leader/daemon.py: each
`yield d` lets d seconds of real time pass (a request in flight, a tick's pause), so that the
scheduler interleaves the nodes, the network and PostgreSQL exactly as in a real cluster.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Entry, Snapshot
from chef_backend.leader import records
from chef_backend.leader.pg import HeartbeatLog
from chef_backend.leader.state import Action, Health, Kind, Knobs, Lease, Memory, PgState, Sensed
from chef_backend.leader.step import feed, next_timer, refresh_ready, step, wants_leader_probe
from chef_backend.leader.timing import READY_LOOK_SECONDS, TICK_SECONDS, URGENT_TICK_SECONDS
from tests.simulation.models import Pg

if TYPE_CHECKING:
    from tests.simulation.world import World

Steps = Generator[float, None, Any]

ETCD_TIMEOUT = 2.0  # per endpoint, as the daemon's Store at the default settings
PROBE_TIMEOUT = 0.5
PG_CHECK_TIMEOUT = 3.0


class EtcdDown(Exception):
    pass


@dataclass
class Node:
    index: int
    guid: str
    address: str
    pg: Pg = field(default_factory=Pg)
    host_up: bool = True
    manager_up: bool = True
    manager_frozen: bool = False
    etcd_up: bool = True
    offset: float = 0.0  # this node's clock: offset + rate * real time
    rate: float = 1.0
    memory: Memory = field(default_factory=Memory)
    ready_until: float = 0.0
    deadline: float = 0.0
    may_be_primary: bool = False  # the fence thread's belief (Manager.may_be_primary)
    was_leader: bool = False
    unsynced: str | None = None
    beats: HeartbeatLog = field(default_factory=HeartbeatLog)
    promoted_at: float = -1.0  # real time of this node's last promotion
    generation: int = 0  # bumped at each kill: a dead manager's generator stops

    def clock(self, now: float) -> float:
        return self.offset + self.rate * now

    def answers_200(self, now: float) -> bool:
        if not (self.host_up and self.manager_up and not self.manager_frozen):
            return False
        t = self.clock(now)
        return t < self.ready_until and t < self.deadline


class Manager:
    """One node's leader manager process."""

    def __init__(self, world: World, node: Node) -> None:
        self.world, self.node = world, node
        self.generation = node.generation

    @property
    def now(self) -> float:
        return self.world.now

    def clock(self) -> float:
        return self.node.clock(self.world.now)

    # -- I/O -----------------------------------------------------------------------------------------
    def etcd(self, op: Any, what: str = "") -> Steps:
        """One etcd request: tried on the local member, then the others, as the daemon's Store does.
        `what` names it for a scenario that holds some requests up."""
        w, me = self.world, self.node.index
        order = [me] + [i for i in range(len(w.nodes)) if i != me]
        for i in order:
            member = w.nodes[i]
            if not w.network.ok(me, i, "etcd") or not member.host_up:
                yield 0.001 if w.reject and member.host_up else ETCD_TIMEOUT  # a reset, or silence
                continue
            if not member.etcd_up:
                yield 0.001  # refused
                continue
            if not w.etcd_member_serves(i):
                yield 0.01  # "etcdserver: no leader"
                continue
            yield w.rng.uniform(0.002, 0.03)
            if not w.etcd_member_serves(i) or not w.network.ok(me, i, "etcd"):
                yield ETCD_TIMEOUT - 0.03
                continue
            delay = w.effect_delay(self.node, what)
            if delay is not None:
                w.at(w.now + delay, lambda: w.take_effect_late(self.node, op))
                yield 0.001 if w.reject else ETCD_TIMEOUT
                continue
            w.etcd.expire(w.now)
            result = op(w.etcd)
            if w.response_lost(self.node, result):
                # Done in etcd, but the answer never comes (the member died, or a cut fell, right
                # after): the Store waits out its timeout (a reset ends it at once) and sends the
                # same request to the next member.
                yield 0.001 if w.reject else ETCD_TIMEOUT
                continue
            return result
        raise EtcdDown()

    def probe(self, target: Node, path: str) -> Steps:
        """An HTTP request to another leader manager: its code, 0 when refused, None when silent."""
        w = self.world
        if not target.host_up or not w.network.ok(self.node.index, target.index, "http"):
            if w.reject and target.host_up:
                yield 0.001
                return 0  # a firewall's reset looks like a refused connection
            yield PROBE_TIMEOUT
            return None
        if not target.manager_up:
            yield 0.001
            return 0
        if target.manager_frozen:
            yield PROBE_TIMEOUT
            return None
        yield 0.002
        if path == "/leader":
            return 200 if target.answers_200(w.now) else 503
        return 200

    def look_at_pg(self) -> Steps:
        pg = self.node.pg
        if pg.running and pg.frozen:
            yield PG_CHECK_TIMEOUT  # the daemon gives a look up after this long
            return PgState(running=False)
        began = self.clock()
        yield 0.002
        if not pg.running or self.now < pg.accepting_at:
            return PgState(running=False)  # down, or starting: the check fails
        now = self.clock()
        flushes = [(g, f) for g, (f, _, _) in pg.replies.items()]
        if pg.in_recovery:
            self.node.beats.forget(began)
            until: tuple[tuple[str, float], ...] = ()
        else:
            until = self.node.beats.fresh(flushes)
        return PgState(
            running=True,
            in_recovery=pg.in_recovery,
            position=pg.position(),
            upstream=pg.receiver if pg.receiver_connected else None,
            streaming=pg.receiver_connected,
            standbys=tuple(g for g, t in until if now < t),
            fresh_until=until,
            receiving=pg.receiver is not None,
            wal_exhausted=pg.in_recovery and pg.receiver is None and pg.replayed >= len(pg.wal),
            flushed=tuple(sorted((g, f) for g, (f, _, _) in pg.replies.items())),
            timeline_start=pg.timeline_start() if pg.in_recovery else None,
        )

    def snapshot(self, etcd: Any) -> Snapshot:
        entries = {k: Entry(k, e.value, e.mod_revision, e.create_revision, e.lease) for k, e in etcd.kv.items()}
        return Snapshot(etcd.revision, entries)

    # -- the loop -----------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.node.generation == self.generation

    def run(self) -> Steps:
        node, w = self.node, self.world
        knobs = Knobs(synchronous=True, health_interval=5.0, max_pgsql_failures=5)
        while True:
            started = self.clock()
            observed_at = self.clock()
            pg = yield from self.look_at_pg()
            if pg.running or not node.pg.running:  # a check that failed on a running server says nothing
                node.may_be_primary = pg.running and not pg.in_recovery
            node.memory = refresh_ready(node.memory, pg, observed_at, 0)
            node.ready_until = node.memory.ready_until
            lease, view = None, None
            try:
                sent_at = self.clock()
                lid = node.memory.lease
                ttl = (yield from self.etcd(lambda e, lid=lid: e.keepalive(lid, w.now))) if lid else 0.0
                if ttl <= 0:
                    sent_at = self.clock()
                    lid = yield from self.etcd(lambda e: e.grant(w.ttl, w.now))
                    ttl = w.ttl
                lease = Lease(lid, sent_at, ttl)
                node.memory = replace(node.memory, lease=lid)
                snap = yield from self.etcd(self.snapshot)
                view = records.etcd_view(snap)
            except EtcdDown:
                lease, view = None, None
            leader_answers = None
            if view is not None and wants_leader_probe(pg, view.leader, node.guid):
                assert view.leader is not None
                target = w.by_address(view.leader.address)
                code = yield from self.probe(target, "/status")
                leader_answers = code not in (None, 0)
            old_code = None
            if node.memory.hold_probe is not None and self.clock() < node.memory.hold_until:
                old_code = yield from self.probe(w.by_address(node.memory.hold_probe), "/leader")
            sensed = Sensed(me=node.guid, address=node.address, pg=pg, etcd=view, lease=lease,
                            health=Health(unsynced=node.unsynced, was_leader=node.was_leader), knobs=knobs,
                            leader_answers=leader_answers, old_leader_code=old_code, observed_at=observed_at)
            node.memory, plan = step(node.memory, sensed, self.clock())
            w.log(node, plan.decision.role.value, plan.decision.reason, [a.kind.value for a in plan.actions])
            # Published before acting (a ready plan keeps a later 200 the watcher found).
            node.ready_until = max(plan.ready_until, node.ready_until) if plan.ready_until else 0.0
            node.deadline = plan.deadline
            for action in plan.actions:
                try:
                    ok = yield from self.act(action)
                except (EtcdDown, RuntimeError):
                    node.memory = feed(node.memory, action, False, self.clock())
                    break
                node.memory = feed(node.memory, action, ok, self.clock())
                if not ok:
                    break  # Manager.execute: what follows rests on it
            w.check()
            now = self.clock()
            pause = (URGENT_TICK_SECONDS if plan.urgent else TICK_SECONDS) - (now - started)
            timer = next_timer(node.memory, now)
            if timer is not None:  # Manager.run
                pause = min(pause, timer - now + 0.01)
            yield max(0.05, pause)

    def watch(self) -> Steps:
        """The daemon's readiness watcher thread (Manager.keep_ready)."""
        node = self.node
        while True:
            yield READY_LOOK_SECONDS
            last = node.memory.last_obs
            if last is None or not last.pg.running or last.pg.in_recovery:
                continue
            observed_at = self.clock()
            pg = yield from self.look_at_pg()
            if not pg.running:
                continue
            if not pg.in_recovery:
                node.may_be_primary = True
            node.memory = refresh_ready(node.memory, pg, observed_at, 0)
            if node.ready_until:
                node.ready_until = max(node.ready_until, node.memory.ready_until)
            if not pg.in_recovery:
                yield from self.heartbeat()

    def heartbeat(self) -> Steps:
        """LocalPg.heartbeat: a WAL record, and where it ends and when its write began."""
        began = self.clock()
        yield 0.002
        pg = self.node.pg
        if pg.primary() and not pg.frozen:
            self.world.heartbeat(self.node)
            self.node.beats.record(len(pg.wal), began)

    # -- actions ------------------------------------------------------------------------------------
    def stop_pg(self, why: str) -> None:
        self.world.stop_pg(self.node, why)

    def act(self, action: Action) -> Steps:
        node, w = self.node, self.world
        k = action.kind
        me_rec = records.encode_leader(node.guid, node.address, w.now, fork=action.position)
        guards = [(keys.STATUS + g, "mod", rev) for g, rev in action.guards]
        if action.sync_revision is not None:
            guards.append((keys.SYNC, "mod", action.sync_revision))
        if k in (Kind.ACQUIRE, Kind.TAKEOVER, Kind.CLAIM):
            entry = yield from self.etcd(lambda e: e.kv.get(keys.HISTORY))
            history = records.appended_history(entry.value if entry else None, {"guid": node.guid})
            rev = entry.mod_revision if entry else 0
            old = action.leader
            key_cmp = {Kind.ACQUIRE: (keys.LEADER, "create", 0),
                       Kind.CLAIM: (keys.LEADER, "lease", node.memory.lease),
                       Kind.TAKEOVER: (keys.LEADER, "mod", old.mod_revision if old else 0)}[k]
            puts = [(keys.LEADER, me_rec, node.memory.lease)]
            compares = [key_cmp, *guards]
            if k is not Kind.CLAIM or action.target == "history":
                puts.append((keys.HISTORY, history, 0))
                compares.append((keys.HISTORY, "mod", rev))
            ok = yield from self.etcd(lambda e: e.txn(compares, puts), k.value)
            if ok and k is Kind.TAKEOVER and old is not None:
                yield from self.etcd(lambda e: e.revoke(old.lease))
            return ok
        if k is Kind.RELEASE:
            compares = [(keys.LEADER, "lease", node.memory.lease)]
            if action.leader_revision is not None:
                compares.append((keys.LEADER, "mod", action.leader_revision))
            yield from self.etcd(lambda e: e.txn(compares, []) and e.delete(keys.LEADER), "release")
            return True
        if k is Kind.PROMOTE:
            node.may_be_primary = True
            node.was_leader = True
            yield from self.pg_call()
            node.pg.sync = action.sync or node.pg.sync
            if self.clock() >= node.deadline:  # actions.Executor._do_promote: the lease ran out meanwhile
                return False
            w.promote(node)
            yield from self.heartbeat()  # LocalPg.promote
            return True
        if k is Kind.FENCE:
            self.stop_pg("fence")
            yield 0.01
            return True
        if k is Kind.RESTART_PG:
            self.stop_pg("restart")
            yield 1.0
            w.start_pg(node)
            return True
        if k is Kind.START_PG:
            w.start_pg(node)
            yield 0.01
            return True
        if k is Kind.FOLLOW:
            w.follow(node, action.target)
            yield 0.005
            return True
        if k in (Kind.REWIND, Kind.REBUILD):
            assert action.target is not None
            node.unsynced = "in progress"
            self.stop_pg("re-sync")
            yield 1.0
            source = w.by_address(action.target)
            if k is Kind.REWIND and node.was_leader and node.pg.timeline == source.pg.timeline:
                # actions.Executor._rewind: after leading, "the same timeline" means another history.
                yield 0.5
                return False
            ok = w.resync(node, source, rebuild=k is Kind.REBUILD)
            if not ok:
                return False
            node.was_leader = False
            node.unsynced = None
            w.follow(node, action.target)
            w.start_pg(node)
            return True
        if k is Kind.PUBLISH_SYNC:
            doc = records.encode_sync(action.sync) if action.sync else None
            compares = [(keys.LEADER, "lease", node.memory.lease), (keys.SYNC, "mod", action.sync_revision or 0)]
            return (yield from self.etcd(lambda e: e.txn(compares, [(keys.SYNC, doc, 0)]), "publish_sync"))
        if k is Kind.APPLY_SYNC:
            yield from self.pg_call()
            node.pg.sync = action.sync or node.pg.sync
            return True
        if k is Kind.POST_STATUS:
            assert action.report is not None
            doc = records.encode_status(action.report, node.guid, {"address": node.address})
            puts = [(keys.STATUS + node.guid, doc, node.memory.lease)]
            compares = [(keys.STATUS + node.guid, "mod", action.status_revision or 0)]
            if action.leader_revision is not None:
                compares.append((keys.LEADER, "mod", action.leader_revision))
            what = "final report" if action.report.final else "report"
            return (yield from self.etcd(lambda e: e.txn(compares, puts), what))
        if k is Kind.HANDOVER:
            # A fast shutdown sends all WAL to the standbys streaming from us before it exits; the
            # key then moves to the heir, under its lease, with the position we stopped at.
            heir = action.leader
            assert heir is not None
            for m in w.nodes:
                if m is not node and w.streams_from(m, node) and node.pg.wal[:len(m.pg.wal)] == m.pg.wal:
                    m.pg.wal = list(node.pg.wal)
            position = node.pg.position()
            self.stop_pg("switchover")
            yield 0.5
            record = records.encode_leader(heir.guid, heir.address, w.now, handover=position)
            lid = node.memory.lease
            moved = [(keys.LEADER, record, heir.lease)]
            compares = [(keys.LEADER, "lease", lid), (keys.LEADER, "mod", action.leader_revision or 0)]
            return (yield from self.etcd(lambda e: e.txn(compares, moved), "handover"))
        if k is Kind.END_SWITCHOVER:
            yield from self.etcd(lambda e: e.delete(keys.CONTROL_SWITCHOVER), "end_switchover")
            return True
        return True

    def pg_call(self) -> Steps:
        pg = self.node.pg
        while pg.running and pg.frozen:
            yield 0.5
        if not pg.running or self.world.now < pg.accepting_at:
            raise RuntimeError("PostgreSQL is not running")
        yield 0.01

