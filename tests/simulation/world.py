"""The simulated cluster: nodes, etcd, the network, clients, a seeded fault schedule, and the
invariants checked after every event.

`run(seed)` is deterministic: the same seed gives the same schedule and the same outcome, so a
failing seed replays exactly (`python -m tests.simulation SEED --trace`).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chef_backend.cluster import store as keys
from chef_backend.leader.pg import HeartbeatLog
from chef_backend.leader.state import Memory
from chef_backend.leader.timing import pg_restart_after_crash
from tests.simulation.models import PORTS, Etcd, HAProxy, Network
from tests.simulation.node import Manager, Node

REPLICATION_TICK = 0.1
WRITE_EVERY = 0.1
COMMIT_WAIT = 5.0  # a client cancels a commit that waits for its standbys longer (the cancel hole)
RECEIVER_TIMEOUT = 10.0  # wal_receiver_timeout
WAL_SENDER_TIMEOUT = 10.0  # wal_sender_timeout: a walsender that heard nothing for this long ends
STATUS_INTERVAL = 1.0  # wal_receiver_status_interval: a receiver that gets nothing still replies this often
SETTLE_SECONDS = 60.0  # the last minute of a schedule has no faults: the cluster must settle
# ...and if it has not by then (a leader key that waits out its dead holder's TTL, then a rewind and
# one of the model's slow starts of up to 30 s), the schedule runs on until it has, this long at most.
CONVERGE_GRACE_SECONDS = 60.0
SWITCHOVER_TIMEOUT = 30.0  # leaderl.control_worker_timeout_seconds: how long `promote` waits
READ_EVERY = 0.25  # clients read through HAProxy this often
# Each Chef frontend's HAProxy checks /leader on every member (frontend/haproxy.py: `inter 2s
# downinter 250ms rise 1 fall 1 on-marked-down shutdown-sessions`, `timeout check 1s`): a check of a
# frozen manager fails after the check timeout, one of a host that is down after the connect
# timeout, min(`timeout connect`, `inter`) = 2 s.
HAPROXY_INTER = 2.0
HAPROXY_CHECK_TIMEOUT = 1.0
HAPROXY_DOWNINTER = 0.25
FRONTENDS = 2
# With lost answers on, the chance that etcd's answer to one request it carried out never comes
# (a schedule sends a few thousand while its faults last).
LOST_ANSWER_CHANCE = 0.002
# With late replies on, the chance that a standby's reply is held up by TCP retransmissions (one to
# three lost segments: 0.2 to 1.4 s); the replies it sends after it wait behind it.
LATE_REPLY_CHANCE = 0.01
# With late effects on, the chance that an etcd request is held up on its way (its sender gives up
# and resends it elsewhere) and takes effect up to LATE_EFFECT_MAX seconds later.
LATE_EFFECT_CHANCE = 0.002
LATE_EFFECT_MAX = 10.0


class Violation(Exception):
    """An invariant broke: the message says which, when and where."""


@dataclass
class Outcome:
    seed: int
    violation: str | None
    schedule: list[str]
    trace: list[str]
    commits: int
    acknowledged: int
    promotions: int


@dataclass
class World:
    seed: int
    size: int = 3
    ttl: float = 30.0
    duration: float = 150.0
    faults: bool = True
    keep_trace: bool = False
    # The invariants checked: one 200, one writable primary, acknowledged commits on every later leader,
    # reads through HAProxy up to date, commits a client read kept like acknowledged ones, convergence.
    checks: frozenset[str] = frozenset({"200", "writable", "acks", "reads", "visible", "converge"})
    calm: bool = False  # the faults have ended
    reject: bool = False  # cuts answer with a reset (nftables reject) rather than silence (drop)
    commit_wait: float = COMMIT_WAIT  # the clients' statement_timeout, as far as commit waits go
    now: float = 0.0
    rng: random.Random = field(init=False)  # latencies, restartpoints: what the models decide
    frng: random.Random = field(init=False)  # the fault schedule, on its own stream so that it does not
    # change when the code under test behaves differently (a seed names the same schedule before and after a fix)
    orng: random.Random = field(init=False)  # the operator's switchovers: a stream of their own, too
    hrng: random.Random = field(init=False)  # when each HAProxy's checks fall: and a stream of its own
    lrng: random.Random = field(init=False)  # which etcd answers are lost: one more
    trng: random.Random = field(init=False)  # which standby replies come late: and one more
    drng: random.Random = field(init=False)  # which etcd requests take effect late: and another
    nodes: list[Node] = field(init=False)
    etcd: Etcd = field(default_factory=Etcd)
    network: Network = field(default_factory=Network)
    queue: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    seq: int = 0
    schedule: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    next_record: int = 0
    acknowledged: dict[int, float] = field(default_factory=dict)  # commit id -> when
    # Commits a client sent through HAProxy (to a node answering 200) and saw acknowledged: a read
    # through HAProxy afterwards must find each of them.
    seen_by_clients: dict[int, float] = field(default_factory=dict)
    # Commits a client read through HAProxy (on a server its last check found up): as good as
    # acknowledged, even when their wait for the standbys was cancelled.
    read_by_clients: dict[int, tuple[float, str]] = field(default_factory=dict)  # commit id -> when, where
    proxies: list[HAProxy] = field(default_factory=list)
    read_upto: dict[int, tuple[list, int]] = field(default_factory=dict)  # node -> (its WAL, how far all was read)
    promotions: list[tuple[float, int, frozenset[int]]] = field(default_factory=list)  # (when, node, commits)
    commits: int = 0
    lose_response: Callable[[Node, Any], bool] | None = None  # a scenario's choice of answers that never come
    hold_up: Callable[[Node, str], float | None] | None = None  # a scenario's choice of requests taking effect late
    lost_answers: float = 0.0  # the chance that etcd's answer to a request it carried out is lost
    late_replies: float = 0.0  # the chance that a standby's reply is held up by retransmissions
    late_effects: float = 0.0  # the chance that an etcd request takes effect only after its sender gave up

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.frng = random.Random(self.seed * 7919 + 1)
        self.orng = random.Random(self.seed * 104729 + 3)
        self.hrng = random.Random(self.seed * 15485863 + 5)
        self.lrng = random.Random(self.seed * 2750159 + 7)
        self.trng = random.Random(self.seed * 179424673 + 11)
        self.drng = random.Random(self.seed * 87178291 + 13)
        self.proxies = [HAProxy(f"fe{k + 1}") for k in range(FRONTENDS)]
        self.nodes = [Node(i, f"{i + 1:x}" * 32, f"10.0.0.{i + 1}") for i in range(self.size)]
        for n in self.nodes:
            n.offset = self.rng.uniform(0, 1000)
            n.rate = 1 + self.rng.uniform(-0.001, 0.001)
            self.etcd.put(keys.NODES + n.guid, {"guid": n.guid, "address": n.address})

    # -- scheduling ----------------------------------------------------------------------------------
    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (t, self.seq, fn))

    def spawn(self, node: Node) -> None:
        manager = Manager(self, node)
        self.thread(node, manager, manager.run(), "resume")
        self.thread(node, manager, manager.watch(), "resume_watch")

    def thread(self, node: Node, manager: Manager, gen: Any, slot: str) -> None:
        """Run one of a manager's threads; a frozen (SIGSTOP) process's threads wait for SIGCONT."""

        def resume() -> None:
            if not manager.alive():
                return
            if node.manager_frozen or not node.host_up:
                setattr(node, slot, resume)
                return
            try:
                delay = next(gen)
            except StopIteration:
                return
            self.at(self.now + delay, resume)

        self.at(self.now, resume)

    def log(self, node: Node, *what: Any) -> None:
        if self.keep_trace:
            self.trace.append(f"{self.now:8.3f} n{node.index} " + " ".join(str(w) for w in what))

    def note(self, text: str) -> None:
        self.schedule.append(f"{self.now:8.3f} {text}")
        if self.keep_trace:
            self.trace.append(f"{self.now:8.3f} ** {text}")

    def by_address(self, address: str) -> Node:
        return next(n for n in self.nodes if n.address == address)

    # -- etcd availability ----------------------------------------------------------------------------
    def response_lost(self, node: Node, result: Any) -> bool:
        """Whether the answer to a request etcd has just carried out never reaches `node`: a
        scenario's choice, or while the faults last, at random (drawn on a stream of its own, so
        that a schedule without a lost answer is the same as before answers could be lost)."""
        if self.lose_response is not None:
            return self.lose_response(node, result)
        lost = not self.calm and self.lost_answers > 0 and self.lrng.random() < self.lost_answers
        if lost:
            self.note(f"etcd's answer to n{node.index} is lost")
        return lost

    def effect_delay(self, node: Node, what: str) -> float | None:
        """While the faults last, now and then: how much later a request etcd received takes effect
        (a proposal held up on its way to the raft leader, a member stalled on its disk). Its
        sender hears nothing and gives up; linearizability allows the request to take effect at any
        time after it was sent, even after the sender's next requests."""
        if self.hold_up is not None:
            return self.hold_up(node, what)
        if self.calm or self.late_effects <= 0 or self.drng.random() >= self.late_effects:
            return None
        delay = self.drng.uniform(0.5, LATE_EFFECT_MAX)
        self.note(f"n{node.index}'s etcd request is held up: no answer, it takes effect {delay:.1f}s later")
        return delay

    def take_effect_late(self, node: Node, op: Callable[[Etcd], Any]) -> None:
        self.etcd.expire(self.now)
        result = op(self.etcd)
        self.note(f"n{node.index}'s held-up etcd request takes effect: {str(result)[:40]}")

    def etcd_member_serves(self, i: int) -> bool:
        """Whether member i is in a connected majority of live members (so raft has a leader)."""
        live = [j for j, n in enumerate(self.nodes) if n.host_up and n.etcd_up]
        if i not in live:
            return False
        group = [j for j in live if self.network.ok(i, j, "etcd")]
        # Members that i reaches and that reach each other (a clique, approximated from i's view).
        clique = [j for j in group if all(self.network.ok(j, k, "etcd") for k in group)]
        return i in clique and len(clique) > self.size // 2

    # -- PostgreSQL operations ------------------------------------------------------------------------
    def stop_pg(self, node: Node, why: str) -> None:
        pg = node.pg
        pg.want_up = why in ("crash",)  # runit restarts a crashed server, not one stopped on purpose
        if why in ("crash", "killed"):
            pg.finish_until = self.now + math.ceil(pg_restart_after_crash())
        if pg.running:
            self.log(node, "pg stopped:", why)
        pg.running = False
        pg.receiver, pg.receiver_connected = None, False
        pg.pending.clear()
        pg.replies.clear()
        pg.inflight.clear()  # the walsenders are gone: what was on its way is refused

    def start_pg(self, node: Node) -> None:
        pg = node.pg
        if pg.running:
            return
        if self.now < pg.finish_until:
            # `sv up` while runsv runs the service's finish: it starts the server once that is over.
            pg.want_up = True
            self.at(pg.finish_until, lambda: self.start_pg(node) if node.host_up and pg.want_up else None)
            return
        pg.running, pg.in_recovery = True, True  # always boots as a standby
        pg.starts += 1
        # Replay restarts from the last restartpoint: somewhere before the end of the local WAL.
        pg.replayed = self.rng.randint(max(0, len(pg.wal) - 200), len(pg.wal))
        # Crash recovery before it accepts connections: usually quick, sometimes slow.
        pg.accepting_at = self.now + (self.rng.uniform(5.0, 30.0) if self.rng.random() < 0.2 else
                                      self.rng.uniform(0.2, 1.0))
        pg.receiving_since_start = False
        pg.receiver, pg.receiver_connected = pg.conninfo, False
        pg.receiver_heard = self.now

    def follow(self, node: Node, target: str | None) -> None:
        pg = node.pg
        pg.conninfo = target
        if pg.running and pg.receiver != target and self.now >= pg.receiver_linger_until:
            pg.receiver, pg.receiver_connected = target, False
            pg.receiver_heard = self.now

    def promote(self, node: Node) -> None:
        pg = node.pg
        if not pg.in_recovery:
            return
        pg.wal = pg.wal[: max(pg.replayed, len(pg.wal))]
        self.next_record += 1
        pg.wal.append(("p", self.next_record))
        pg.in_recovery = False
        pg.receiver, pg.receiver_connected, pg.conninfo = None, False, None
        pg.replies.clear()
        pg.inflight.clear()
        node.promoted_at = self.now
        have = frozenset(r for kind, r in pg.wal if kind == "c")
        self.note(f"n{node.index} promoted at {pg.position()}")
        missing = [c for c in self.acknowledged if c not in have]
        if missing and "acks" in self.checks:
            raise Violation(f"n{node.index} promoted without acknowledged commits {sorted(missing)[:5]} "
                            f"({len(missing)} in all)")
        missing = sorted(c for c in self.read_by_clients if c not in have)
        if missing and "visible" in self.checks:
            when, where = self.read_by_clients[missing[0]]
            raise Violation(f"n{node.index} promoted without commits clients read {missing[:5]} "
                            f"({len(missing)} in all; the first read at {when:.3f} on {where})")
        self.promotions.append((self.now, node.index, have))

    def resync(self, node: Node, source: Node, rebuild: bool) -> bool:
        if not (source.host_up and source.pg.running and not source.pg.frozen
                and self.network.ok(node.index, source.index, "pg")):
            return False
        if not rebuild and node.pg.timeline == source.pg.timeline:
            # pg_rewind compares timelines by number: "source and target cluster are on the same
            # timeline", nothing to do, even when the two histories differ (two nodes that promoted
            # from the same timeline without hearing of each other both call theirs N + 1).
            return True
        # pg_rewind truncates to the common prefix and streams the rest: the source's WAL, as a copy.
        node.pg.wal = list(source.pg.wal)
        node.pg.replayed = len(node.pg.wal)
        return True

    # -- the data plane -------------------------------------------------------------------------------
    def replicate(self) -> None:
        for n in self.nodes:
            # The fence thread (Manager.fence_on_time): by its belief, once a step has set a deadline.
            if n.host_up and n.manager_up and not n.manager_frozen and n.may_be_primary and n.pg.running \
                    and n.memory.last_obs is not None and n.clock(self.now) >= n.deadline:
                self.stop_pg(n, "lease deadline passed (the fence thread)")
            pg = n.pg
            if not (n.host_up and pg.running) or pg.frozen or self.now < pg.accepting_at:
                continue
            if pg.in_recovery:
                self.stream(n)
                if not getattr(n, "replay_stalled", False):
                    pg.replayed = min(len(pg.wal), pg.replayed + 5)  # 50 records/s
            else:
                self.deliver_replies(n)
                for g in [g for g, (_, _, heard) in pg.replies.items() if self.now - heard > WAL_SENDER_TIMEOUT]:
                    del pg.replies[g]  # the walsender ends, and its connection with what was on its way
                    pg.inflight = [e for e in pg.inflight if e[1] != g]
                self.acknowledge(n)
        self.at(self.now + REPLICATION_TICK, self.replicate)

    def stream(self, n: Node) -> None:
        pg = n.pg
        if pg.receiver != pg.conninfo and self.now >= pg.receiver_linger_until:
            pg.receiver, pg.receiver_connected = pg.conninfo, False
            pg.receiver_heard = self.now
        if pg.receiver is None:
            return
        up = self.by_address(pg.receiver)
        upg = up.pg
        reachable = (up.host_up and upg.running and not upg.frozen and up is not n and self.now >= upg.accepting_at
                     and self.network.delivers(up.index, n.index, "pg"))
        if (pg.receiver_connected and up.host_up and (not upg.running or upg.starts != pg.receiver_upstream_start)
                and self.network.delivers(up.index, n.index, "pg")):
            # The server it streamed from exited, and its host runs (or booted again): the kernel
            # closed the connection (FIN, or RST to the receiver's next reply), which the receiver
            # hears as soon as that gets through, not after wal_receiver_timeout.
            pg.receiver_connected = False
        # Records are unique and keep their index, so equal last records mean equal prefixes.
        if reachable and len(upg.wal) >= len(pg.wal) and (not pg.wal or upg.wal[len(pg.wal) - 1] == pg.wal[-1]):
            pg.wal.extend(upg.wal[len(pg.wal):])
            if not pg.receiver_connected:
                pg.receiver_upstream_start = upg.starts
            pg.receiver_connected, pg.receiver_heard = True, self.now
            pg.receiving_since_start = True
            self.send_reply(n, up)
        elif reachable:
            pg.receiver_connected = False  # diverged: the receiver fails and retries
        elif self.now - pg.receiver_heard > RECEIVER_TIMEOUT:
            pg.receiver_connected = False
        elif pg.receiver_connected and up.host_up and upg.running and self.now - pg.status_sent >= STATUS_INTERVAL:
            # Nothing comes from the primary (a cut, a frozen server), yet the receiver does not know
            # its connection is dead and keeps replying: the primary gets those once TCP gets through.
            self.send_reply(n, up)

    def send_reply(self, n: Node, up: Node) -> None:
        """Standby n's WAL receiver replies to `up` with its flush position. TCP delivers in order,
        and only while segments and their acknowledgements both get through (a sender that hears no
        acknowledgement only retransmits what it sent first): a reply sent while either direction
        is cut arrives once both work again (unless the walsender ended first), and one held up by
        retransmissions holds up those sent after it."""
        pg, upg = n.pg, up.pg
        pg.status_sent = self.now
        if upg.in_recovery:
            return  # a cascading walsender: its replies count for nothing here
        if self.reject and not self.network.ok(n.index, up.index, "pg"):
            pg.receiver_connected = False  # the cut resets the connection
            upg.inflight = [e for e in upg.inflight if e[1] != n.guid]
            return
        delay = 0.0
        if self.late_replies > 0 and not self.calm and self.trng.random() < self.late_replies:
            delay = self.trng.uniform(0.2, 1.4)
        queued = [e[0] for e in upg.inflight if e[1] == n.guid]
        upg.inflight.append((max([self.now + delay, *queued]), n.guid, len(pg.wal), self.now))
        self.deliver_replies(up)

    def deliver_replies(self, up: Node) -> None:
        """Replies that reach `up`'s running server now, each standby's in the order it sent them."""
        upg, keep, held = up.pg, [], set()
        if upg.frozen:
            return  # in the socket buffers until the walsender runs again
        for entry in upg.inflight:
            not_before, guid, flush, sent = entry
            src = next(m for m in self.nodes if m.guid == guid)
            if guid in held or self.now < not_before or not self.network.ok(src.index, up.index, "pg"):
                held.add(guid)
                keep.append(entry)
            else:
                upg.replies[guid] = (flush, sent, self.now)
        upg.inflight = keep

    def acknowledge(self, n: Node) -> None:
        pg = n.pg
        keep = []
        for index, issued, routed in pg.pending:
            if pg.acks(index, self.now):
                commit = pg.wal[index][1]
                self.acknowledged[commit] = self.now
                if routed:
                    self.seen_by_clients[commit] = self.now
                for when, other, have in self.promotions:
                    if other != n.index and when > n.promoted_at and commit not in have and "acks" in self.checks:
                        raise Violation(f"n{n.index} acknowledged commit {commit} after n{other} was promoted "
                                        f"(at {when:.3f}) without it")
            elif self.now - issued < self.commit_wait:
                keep.append((index, issued, routed))
        pg.pending = keep

    def heartbeat(self, n: Node) -> None:
        """The leader manager's heartbeat: a WAL record that is no commit."""
        self.next_record += 1
        n.pg.wal.append(("h", self.next_record))

    def write(self) -> None:
        """Clients write to every primary they reach (stale connections included)."""
        for n in self.nodes:
            pg = n.pg
            if n.host_up and pg.primary() and not pg.frozen:
                self.next_record += 1
                self.commits += 1
                pg.wal.append(("c", self.next_record))
                pg.pending.append((len(pg.wal) - 1, self.now, n.answers_200(self.now)))
        self.at(self.now + WRITE_EVERY, self.write)

    # -- invariants -----------------------------------------------------------------------------------
    def check(self) -> None:
        ok = [n.index for n in self.nodes if n.answers_200(self.now)]
        if len(ok) > 1 and "200" in self.checks:
            raise Violation(f"two nodes answer 200 on /leader: {ok}")
        # Only primaries can be writable; the rarer case of two is worth the streams' cost.
        primaries = [n for n in self.nodes if n.pg.primary()]
        writable = [n.index for n in primaries if self.writable(n)] if len(primaries) > 1 else []
        if len(writable) > 1 and "writable" in self.checks:
            raise Violation(f"two writable primaries: {writable}")

    def read(self) -> None:
        """Clients read through HAProxy. They see every commit visible on a server some frontend's
        HAProxy routes to (its last check found it up: also an old primary that stopped answering 200
        since), and a commit they read counts as acknowledged: no later leader may lack it. Whichever
        node answers 200 must show every commit a client saw acknowledged or read (a fenced or cut-off
        old primary answering 200 serves stale data)."""
        if "visible" in self.checks:
            for i in sorted(set().union(*(p.up for p in self.proxies))):
                n = self.nodes[i]
                pg = n.pg
                if not (n.host_up and pg.running and not pg.frozen and self.now >= pg.accepting_at):
                    continue  # no session: refused, or hanging on a frozen server
                for c in self.unread(n):
                    self.read_by_clients[c] = (self.now, f"n{i}, {'primary' if pg.primary() else 'standby'}")
                    if not pg.primary():
                        continue  # a standby's records may be a later leader's own
                    for when, other, have in self.promotions:
                        if other != n.index and when > n.promoted_at and c not in have:
                            raise Violation(f"n{n.index} showed commit {c} to a client after n{other} was promoted "
                                            f"(at {when:.3f}) without it")
        must = ({**self.seen_by_clients} if "reads" in self.checks else {}) | \
            (self.read_by_clients if "visible" in self.checks else {})
        if must:
            for n in self.nodes:
                if n.answers_200(self.now) and n.pg.running and not n.pg.frozen:
                    have = {r for kind, r in n.pg.wal if kind == "c"}
                    missing = [c for c in must if c not in have]
                    if missing:
                        raise Violation(f"n{n.index} answers 200 without commits clients saw acknowledged or read "
                                        f"{sorted(missing)[:5]} ({len(missing)} in all): a stale read")
        self.at(self.now + READ_EVERY, self.read)

    def unread(self, n: Node) -> list[int]:
        """The commits visible on n that no client read yet. A primary's commit that waits for its
        standbys is not visible (its transaction is still in the proc array); once the wait ends,
        acknowledged or cancelled ("the transaction has already committed locally"), it is. A hot
        standby shows what it replayed. The WAL below the first commit still waiting at the last
        look is known to be read (as long as it is the same list)."""
        pg = n.pg
        end = pg.replayed if pg.in_recovery else len(pg.wal)
        wal, upto = self.read_upto.get(n.index, (None, 0))
        start = upto if wal is pg.wal and upto <= end else 0
        waiting = {i for i, _, _ in pg.pending}
        new = [r for i, (kind, r) in enumerate(pg.wal[start:end], start)
               if kind == "c" and i not in waiting and r not in self.read_by_clients]
        self.read_upto[n.index] = (pg.wal, min([end, *(i for i in waiting if i >= start)]))
        return new

    def health_check(self, proxy: HAProxy, n: Node) -> None:
        """One check of n's /leader by a frontend's HAProxy. A stopped manager refuses at once; a
        frozen one (SIGSTOP, a suspended VM) leaves it unanswered until the check timeout, a host
        that is down until the connect timeout. The next check follows `inter` after an up verdict,
        `downinter` after a down one."""
        sent = self.now
        gives_up = sent + (HAPROXY_CHECK_TIMEOUT if n.host_up else HAPROXY_INTER)

        def verdict() -> None:
            silent = not n.host_up or (n.manager_up and n.manager_frozen)
            if silent and self.now < gives_up:
                # A SIGCONT answers the connection waiting in the backlog; a host that is down stays silent.
                self.at(gives_up if not n.host_up else min(self.now + 0.05, gives_up), verdict)
                return
            up = not silent and n.answers_200(self.now)
            if up != (n.index in proxy.up) and self.keep_trace:
                self.trace.append(f"{self.now:8.3f} ** {proxy.name} marks n{n.index} {'up' if up else 'down'}")
            if up:
                proxy.up.add(n.index)
            else:
                proxy.up.discard(n.index)  # on-marked-down shutdown-sessions
            self.at(self.now + (HAPROXY_INTER if up else HAPROXY_DOWNINTER), lambda: self.health_check(proxy, n))

        self.at(self.now + 0.002, verdict)

    def writable(self, n: Node) -> bool:
        pg = n.pg
        if not (n.host_up and pg.primary() and not pg.frozen):
            return False
        if not pg.sync.members:
            return True
        # Could acknowledge a commit now: enough of its synchronous standbys stream from it.
        live = sum(1 for m in self.nodes if m.guid in pg.sync.members and self.streams_from(m, n))
        return live >= pg.sync.quorum

    def streams_from(self, m: Node, n: Node) -> bool:
        pg = m.pg
        return (m.host_up and pg.running and not pg.frozen and pg.receiver == n.address and pg.receiver_connected
                and self.network.delivers(n.index, m.index, "pg") and self.network.delivers(m.index, n.index, "pg"))

    # -- faults ---------------------------------------------------------------------------------------
    def fault(self) -> None:
        if self.calm:
            return
        rng = self.frng
        leaders = [m for m in self.nodes if m.pg.primary() and m.host_up]
        at_leader, n = rng.random() < 0.5, rng.choice(self.nodes)
        if at_leader and leaders:
            n = leaders[0]
        i = n.index
        others = [m.index for m in self.nodes if m.index != i]
        hold = rng.choice((1.0, 3.0, 8.0, 20.0, 40.0)) * rng.uniform(0.5, 1.5)
        kind = rng.choice(("isolate", "isolate", "partial_heal", "one_port", "ingress", "kill_node",
                           "kill_manager", "kill_manager_pg", "stop_manager", "stop_pg", "suspend_host",
                           "replay_conflict", "crash_pg", "isolate_pair", "stall_then_lose", "stall_then_lose",
                           "power_loss", "conflict_then_isolate", "conflict_then_isolate"))
        if kind in ("stall_then_lose", "power_loss", "conflict_then_isolate"):
            self.compound(kind, n, [self.nodes[j] for j in others], hold)
            self.at(self.now + rng.expovariate(1 / 12.0), self.fault)
            return
        if kind in ("isolate", "partial_heal", "ingress", "isolate_pair"):
            targets = [rng.choice(others)] if kind == "isolate_pair" else others
            cuts = {(j, i, p) for j in targets for p in PORTS}
            if kind != "ingress":
                cuts |= {(i, j, p) for j in targets for p in PORTS}
            self.network.cut |= cuts
            self.note(f"{kind} n{i} from {targets} for {hold:.1f}s")
            if kind == "partial_heal":
                j = rng.choice(others)
                part = {c for c in cuts if j in (c[0], c[1])}
                self.at(self.now + hold / 3, lambda: self.heal(part, f"partial heal n{i}<->n{j}"))
            self.at(self.now + hold, lambda: self.heal(cuts, f"heal n{i}"))
        elif kind == "one_port":
            j, port = rng.choice(others), rng.choice(PORTS)
            cuts = {(i, j, port), (j, i, port)} if rng.random() < 0.5 else {(i, j, port)}
            self.network.cut |= cuts
            self.note(f"cut {sorted(cuts)} for {hold:.1f}s")
            self.at(self.now + hold, lambda: self.heal(cuts, f"heal {sorted(cuts)}"))
        elif kind == "kill_node":
            self.note(f"kill -9 every process of n{i}; back after {hold:.1f}s")
            self.kill(n, manager=True, pg=True, etcd=True)
            n.host_up = False
            self.at(self.now + hold, lambda: self.boot(n, host=True))
        elif kind in ("kill_manager", "kill_manager_pg"):
            self.note(f"kill -9 n{i}'s manager{' and PostgreSQL' if kind == 'kill_manager_pg' else ''}")
            self.kill(n, manager=True, pg=kind == "kill_manager_pg", etcd=False)
            self.at(self.now + rng.uniform(0.5, 3.0), lambda: self.boot(n, host=False))
        elif kind == "stop_manager":
            self.note(f"SIGSTOP n{i}'s manager for {hold:.1f}s")
            n.manager_frozen = True
            self.at(self.now + hold, lambda: self.thaw(n, f"SIGCONT n{i}'s manager"))
        elif kind == "stop_pg":
            self.note(f"SIGSTOP n{i}'s PostgreSQL for {hold:.1f}s")
            n.pg.frozen = True
            self.at(self.now + hold, lambda: self.pg_thaw(n))
        elif kind == "suspend_host":
            self.note(f"suspend n{i} (VM) for {hold:.1f}s")
            n.manager_frozen, n.pg.frozen = True, True
            self.at(self.now + hold, lambda: (self.pg_thaw(n), self.thaw(n, f"resume n{i}")))
        elif kind == "replay_conflict":
            self.note(f"replay conflict on n{i} for {hold:.1f}s")
            n.replay_stalled = True  # type: ignore[attr-defined]
            n.pg.receiver_linger_until = self.now + hold
            self.at(self.now + hold, lambda: setattr(n, "replay_stalled", False))
        elif kind == "crash_pg":
            self.note(f"PostgreSQL of n{i} crashes; runit restarts it")
            self.stop_pg(n, "crash")
            self.at(self.now + rng.uniform(0.5, 3.0), lambda: self.start_pg(n) if n.host_up and n.pg.want_up else None)
        self.at(self.now + rng.expovariate(1 / 12.0), self.fault)

    # -- the operator -------------------------------------------------------------------------------
    def operator(self) -> None:
        """Now and then `chef-backend-ctl promote` to a follower that status shows eligible and
        streaming, as the command checks; it waits for the move or gives up and closes the request."""
        if self.calm:
            return
        rng = self.orng
        self.at(self.now + rng.expovariate(1 / 45.0), self.operator)
        if not any(self.etcd_member_serves(i) for i in range(self.size)):
            return
        leader = self.etcd.kv.get(keys.LEADER)
        if leader is None or keys.CONTROL_SWITCHOVER in self.etcd.kv:
            return
        source = leader.value.get("guid")
        target = rng.choice([n for n in self.nodes if n.guid != source])
        status = self.etcd.kv.get(keys.STATUS + target.guid)
        doc = status.value if status else {}
        if not (doc.get("eligible") and (doc.get("pg") or {}).get("streaming")):
            return
        self.etcd.put(keys.CONTROL_SWITCHOVER, {"source": source, "target": target.guid})
        self.note(f"promote n{target.index} (switchover from the leader)")
        self.at(self.now + 0.1, lambda: self.await_switchover(target, self.now + SWITCHOVER_TIMEOUT))

    def await_switchover(self, target: Node, give_up: float) -> None:
        leader = self.etcd.kv.get(keys.LEADER)
        pending = keys.CONTROL_SWITCHOVER in self.etcd.kv
        done = leader is not None and leader.value.get("guid") == target.guid and not pending
        if done or not pending or self.now >= give_up:
            self.etcd.delete(keys.CONTROL_SWITCHOVER)  # the command closes its request whatever happened
            self.note(f"promote n{target.index}: {'done' if done else 'gave up'}")
            return
        self.at(self.now + 0.1, lambda: self.await_switchover(target, give_up))

    def compound(self, kind: str, n: Node, others: list[Node], hold: float) -> None:
        """Faults that take several steps to hurt, each step at a random moment."""
        rng, i = self.frng, n.index
        b, c = rng.sample(others, 2)
        if kind == "stall_then_lose":
            # c stops receiving (its commits are acknowledged through b alone), then b's PostgreSQL
            # freezes, crashes or loses power with n, then n dies.
            stall = {(i, c.index, "pg")}
            self.network.cut |= stall
            self.note(f"cut n{i}->n{c.index} pg (n{c.index} stalls)")
            self.at(self.now + 60, lambda: self.heal(stall, f"heal n{i}->n{c.index} pg"))
            t = self.now + rng.uniform(1.0, 8.0)
            how = rng.choice(("freeze", "crash", "power"))
            self.at(t, lambda: self.lose(b, how, rng.uniform(5.0, 40.0)))
            self.at(t + rng.uniform(0.0, 3.0), lambda: self.lose(n, "power", rng.uniform(20.0, 60.0)))
        elif kind == "power_loss":
            victims = [n, *rng.sample(others, rng.randint(1, len(others)))]
            for v in victims:
                self.lose(v, "power", rng.uniform(1.0, 30.0))
        elif kind == "conflict_then_isolate":
            # b's replay conflicts (its WAL receiver outlives a detachment); n is cut off from
            # everyone; later only n<->b's PostgreSQL port comes back.
            self.note(f"replay conflict on n{b.index} for {hold + 30:.1f}s")
            b.replay_stalled = True  # type: ignore[attr-defined]
            b.pg.receiver_linger_until = self.now + hold + 30
            self.at(self.now + hold + 30, lambda: setattr(b, "replay_stalled", False))
            cuts = {(x, y, p) for m in others for (x, y) in ((i, m.index), (m.index, i)) for p in PORTS}
            self.network.cut |= cuts
            self.note(f"isolate n{i} for 40s")
            back = {(i, b.index, "pg"), (b.index, i, "pg")}
            self.at(self.now + rng.uniform(5.0, 30.0), lambda: self.heal(back, f"heal n{i}<->n{b.index} pg"))
            self.at(self.now + 40, lambda: self.heal(cuts, f"heal n{i}"))

    def lose(self, n: Node, how: str, back_after: float) -> None:
        if self.calm:
            return
        if how == "freeze":
            self.note(f"SIGSTOP n{n.index}'s PostgreSQL for {back_after:.1f}s")
            n.pg.frozen = True
            self.at(self.now + back_after, lambda: self.pg_thaw(n))
        elif how == "crash":
            self.note(f"PostgreSQL of n{n.index} crashes; back after {back_after:.1f}s")
            self.stop_pg(n, "crash")
            self.at(self.now + back_after, lambda: self.start_pg(n) if n.host_up and n.pg.want_up else None)
        elif n.host_up:
            self.note(f"power loss of n{n.index}; back after {back_after:.1f}s")
            self.kill(n, manager=True, pg=True, etcd=True)
            n.host_up = False
            self.at(self.now + back_after, lambda: self.boot(n, host=True))

    def settle(self) -> None:
        """The faults end: every cut healed, every process running again."""
        self.calm = True
        self.note("faults end: everything healed and running")
        self.network.cut.clear()
        for n in self.nodes:
            n.replay_stalled = False  # type: ignore[attr-defined]
            n.pg.receiver_linger_until = 0.0
            if n.pg.frozen:
                self.pg_thaw(n)
            if n.manager_frozen:
                self.thaw(n, f"SIGCONT n{n.index}")
            if not n.host_up or not n.manager_up:
                self.boot(n, host=not n.host_up)

    def awaits_convergence(self) -> bool:
        """Whether the run must go on for the cluster to converge (after the faults ended)."""
        return "converge" in self.checks and self.calm and self.converged() is not None

    def converged(self) -> str | None:
        """Why the cluster has not settled on one leader that every other node streams from."""
        leaders = [n for n in self.nodes if n.answers_200(self.now)]
        if len(leaders) != 1:
            return f"{len(leaders)} nodes answer 200 after the faults ended"
        lead = leaders[0]
        for n in self.nodes:
            if n is lead:
                continue
            pg = n.pg
            if not (pg.running and pg.in_recovery and pg.receiver == lead.address and pg.receiver_connected):
                return f"n{n.index} does not stream from the leader n{lead.index} after the faults ended"
        return None

    def heal(self, cuts: set[tuple[int, int, str]], what: str) -> None:
        self.network.cut -= cuts
        self.note(what)

    def kill(self, n: Node, manager: bool, pg: bool, etcd: bool) -> None:
        if manager:
            n.generation += 1
            n.manager_up = False
            n.ready_until = n.deadline = 0.0
            n.may_be_primary = False
        if pg:
            self.stop_pg(n, "killed")
        if etcd:
            n.etcd_up = False

    def boot(self, n: Node, host: bool) -> None:
        if self.calm and n.host_up and n.manager_up:
            return  # already brought back when the faults ended
        self.note(f"n{n.index} {'boots' if host else 'manager restarts'}")
        n.generation += 1  # whatever manager ran there is gone
        n.host_up = n.etcd_up = n.manager_up = True
        if host:
            n.pg.finish_until = 0.0  # a new runsv: no finish pending
        n.manager_frozen = n.pg.frozen = False
        n.memory = Memory(following=n.pg.conninfo, applied_sync=n.pg.sync)
        n.may_be_primary = False
        n.beats = HeartbeatLog()
        self.spawn(n)

    def thaw(self, n: Node, what: str) -> None:
        self.note(what)
        n.manager_frozen = False
        for slot in ("resume", "resume_watch"):
            resume = getattr(n, slot, None)
            if resume is not None:
                setattr(n, slot, None)
                self.at(self.now, resume)

    def pg_thaw(self, n: Node) -> None:
        n.pg.frozen = False

    # -- running --------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        for n in self.nodes:
            self.spawn(n)
        self.at(0.0, self.replicate)
        self.at(0.0, self.write)
        self.at(0.0, self.read)
        for proxy in self.proxies:
            for n in self.nodes:
                self.at(self.hrng.uniform(0, HAPROXY_DOWNINTER), lambda proxy=proxy, n=n: self.health_check(proxy, n))
        if self.faults:
            self.at(25.0, self.fault)
            self.at(30.0 + self.orng.uniform(0, 30.0), self.operator)
            self.at(self.duration - SETTLE_SECONDS, self.settle)
        violation = None
        try:
            while self.queue:
                t, _, fn = heapq.heappop(self.queue)
                if t > self.duration and (t > self.duration + CONVERGE_GRACE_SECONDS or not self.awaits_convergence()):
                    break
                self.now = t
                fn()
                self.check()
            why = self.converged() if "converge" in self.checks and self.calm else None
            if why is not None:
                raise Violation(why)
        except Violation as exc:
            violation = f"t={self.now:.3f}: {exc}"
        return Outcome(self.seed, violation, self.schedule, self.trace, self.commits, len(self.acknowledged),
                       len(self.promotions))


def run(seed: int, size: int | None = None, ttl: float | None = None, trace: bool = False,
        duration: float = 150.0, checks: frozenset[str] | None = None, lost_answers: bool | None = None,
        late_replies: bool | None = None, late_effects: bool | None = None) -> Outcome:
    """One schedule. Size and TTL, unless given, follow from the seed (3 or 5 nodes; TTL 30 or 10), and
    so do whether etcd's answers are lost now and then (`lost_answers`: half of the seeds; False
    replays a seed found before lost answers were modelled as it was found) and whether standbys'
    replies are held up by retransmissions now and then (`late_replies`: half of the seeds, drawn
    apart from the other), and whether etcd requests take effect late now and then (`late_effects`:
    half of the seeds, drawn apart; False replays a seed found before they were modelled)."""
    pick = random.Random(seed ^ 0x5EED)
    size = size or pick.choice((3, 3, 5))
    ttl = ttl or pick.choice((30.0, 10.0))
    reject = pick.random() < 0.5
    if lost_answers is None:
        lost_answers = random.Random(seed ^ 0xA115).random() < 0.5
    if late_replies is None:
        late_replies = random.Random(seed ^ 0x1A7E).random() < 0.5
    if late_effects is None:
        late_effects = random.Random(seed ^ 0xDE1A).random() < 0.5
    world = World(seed, size=size, ttl=ttl, duration=duration, keep_trace=trace, reject=reject,
                  lost_answers=LOST_ANSWER_CHANCE if lost_answers else 0.0,
                  late_replies=LATE_REPLY_CHANCE if late_replies else 0.0,
                  late_effects=LATE_EFFECT_CHANCE if late_effects else 0.0)
    if checks is not None:
        world.checks = checks
    return world.run()
