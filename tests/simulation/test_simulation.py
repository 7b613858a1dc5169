"""The leader managers' invariants under simulated faults (see tests/simulation/world.py).

A failure names its seed: `python -m tests.simulation SEED --trace` replays the schedule exactly.
"""

from __future__ import annotations

import pytest

from chef_backend.cluster import store as keys
from chef_backend.leader.state import SyncSet
from tests.simulation.models import PORTS
from tests.simulation.node import Node
from tests.simulation.world import RECEIVER_TIMEOUT, Outcome, Violation, World, run

# Seeds whose schedule broke an invariant before the path of issue 14 they name was closed (run
# against the step function as of b674984's policy, with this simulation): kept as regressions.
REGRESSIONS: dict[str, list[int]] = {
    "0: two 200s while the old leader cannot reach etcd": [89, 97, 244],
    "1: a member down, starting or replaying from a restartpoint counted at its short position": [302, 221, 57],
    "3: a detached member's WAL receiver still acknowledging the old leader": [230, 34, 108],
    "4: a restarted manager promoting on its previous run's key": [61, 110, 290],
    "9: a suspended VM resuming with a stale ready_until (CLOCK_MONOTONIC)": [11, 77, 91],
    # Found after the first round of fixes, by the convergence check:
    "8: a follower diverged on an older timeline, stuck forever": [437, 441, 453],
    "8: a follower on another timeline with the leader's timeline number, stuck forever": [782],
    "liveness: every candidate deferring to a node that may never lead": [136],
    # Found with operator switchovers, by the sweep after session 5:
    "10: a switchover to a member that had died; the old leader re-synced from it": [1585],
    "11: a manager paused between its claim and its promotion, promoting after another took over": [1599],
    # Found by the sweep after session 6 (pre-existing):
    "8: a follower on another timeline with the leader's timeline number and switch point, stuck forever": [2813],
    "6: a restarted leader manager publishing the stricter set before its members caught up": [2989],
    # Found with path 5's fix reverted on this code (sweep of seeds 5000-7827, one job): a
    # switchover's heir that missed the handover's flush, recorded as the last leader before it
    # promoted, later leading alone without commits another follower acknowledged:
    "5: the heir's stream cut before the handover; it refused, then led alone at the restart": [5205],
    "5: the heir killed just before the handover; restarted, it led alone once the key expired": [5845],
    "5: the heir killed just before the handover; rebooted, it led alone": [5947],
    "5: the heir's PostgreSQL paused (SIGSTOP) at the handover; it led alone once the key expired": [7027],
    # Found with path 7's fix reverted (sweep of seeds 0-2999, one job), by the check of commits
    # clients read ("visible"): the leader, cut off from everyone, stayed primary after its standbys
    # went quiet; its manager was paused (SIGSTOP) before HAProxy's next check, which got no answer
    # for 2 s, so sessions still reached it when the clients cancelled their commit waits:
    "7: a cut-off leader paused while still routed; cancelled commits read, the next leader without them": [2112],
    # Found by the same check on main's policy (path 7's fix in):
    "7: a just-promoted leader cut off at once; its readiness watcher kept 200 without standbys while its tick "
    "blocked in etcd, and clients read commits whose wait was cancelled": [323],
    "7: fenced at once without etcd and standbys, PostgreSQL restarted read-only while HAProxy still routed "
    "to it: clients read the commits that had waited at the fence": [43],
    # Found by the same check (15 of seeds 0-2999): a just-promoted leader answered 200 before any
    # standby held what it had at promotion; clients read it, it died, and the next leader lacked it.
    "reads: the old leader's last commit, which only the new leader had received, read and lost": [1090],
    "reads: a leader's own unacknowledged tail, re-promoted after a fence, read and lost": [1022],
    # Found by the sweep of seeds 6000-6898 on the policy above: the leader's PostgreSQL crashed while
    # commits waited for its stalled standbys, was started again at once and replayed them, and clients
    # still routed there by HAProxy read them before the node died:
    "7: a crashed primary started again while still routed; its unacknowledged tail read and lost": [6898],
    # Found by the sweep of seeds 9899-16259 on that policy: the leader's VM suspended; a follower's
    # final report counted by the taker, it saw the old leader answer again and retracted it just after
    # the takeover, then re-attached to the old leader anyway and acknowledged a commit the taker lacked:
    "2: a report retracted just after the takeover that counted it; the follower re-attached to the old "
    "leader": [16259],
    # Found by the sweep of seeds 16260-16291: two takeovers from one timeline chose the same number;
    # the last leader, with no synchronous standby confirmed, deferred to the older leader's longer
    # unacknowledged tail on it, and no node ever led again:
    "liveness: the last leader deferring to an older leader's tail on a timeline of the same number": [16291],
}
# Found since the model loses etcd answers (they replay with them):
FOUND_WITH_LOST_ANSWERS: dict[str, list[int]] = {
    # Every process of the leader killed, the host back 1.3 s later: its new manager started PostgreSQL
    # read-only at once, and clients still routed there by HAProxy read the old leader's last,
    # unacknowledged commit, which the next leader lacked:
    "7: a restarted manager on a node that led starting PostgreSQL while still routed": [19042],
}
# Found since the model carries standby replies as TCP does (they replay with the seed's own choices):
FOUND_WITH_REPLIES_MODELLED: dict[str, list[int]] = {
    # The leader and then the next one cut off; a partial heal let the second re-acquire the key
    # and publish a synchronous set with a member the third node had not counted, while the third
    # took over against the set it had read: the second acknowledged commits through that member
    # and the third promoted without them. Now a set is published only under our lease and a
    # takeover fails if the set changed since its reports were counted:
    "6: a synchronous set published after a takeover counted reports against the one before": [28534],
}

CI_SEEDS = range(60)


def fail(outcome) -> str:
    return f"seed {outcome.seed}: {outcome.violation}\n" + "\n".join(outcome.schedule)


def isolate_leader(world: World) -> Node:
    """Cut whichever node is primary off from every other node (all ports, both ways); returns it."""
    leader = next(n for n in world.nodes if n.pg.primary())
    i, size = leader.index, len(world.nodes)
    world.network.cut |= {(a, b, p) for a in range(size) for b in range(size) if (a == i) != (b == i) for p in PORTS}
    world.note(f"isolate n{i}")
    return leader


def kill_every_process(world: World, node: Node) -> None:
    """kill -9 of every process of a node (its host stays down until the faults end)."""
    world.note(f"kill -9 every process of n{node.index}")
    world.kill(node, manager=True, pg=True, etcd=True)
    node.host_up = False


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_random_schedule(seed: int) -> None:
    outcome = run(seed)
    assert outcome.violation is None, fail(outcome)


@pytest.mark.parametrize(("path", "seed", "lost_answers"),
                         [(p, s, False) for p, seeds in REGRESSIONS.items() for s in seeds]
                         + [(p, s, True) for p, seeds in FOUND_WITH_LOST_ANSWERS.items() for s in seeds]
                         + [(p, s, None) for p, seeds in FOUND_WITH_REPLIES_MODELLED.items() for s in seeds])
def test_seed_that_found_a_path_of_issue_14(path: str, seed: int, lost_answers: bool | None) -> None:
    outcome = run(seed, lost_answers=lost_answers, late_effects=False)  # as found
    assert outcome.violation is None, f"path {path}: " + fail(outcome)


@pytest.mark.parametrize("reject", [False, True])
@pytest.mark.parametrize("ttl", [30.0, 10.0])
def test_path0_leader_cut_off_from_everyone(ttl: float, reject: bool) -> None:
    """Issue 14, path 0: the leader cut off from both followers (all ports, both directions) while
    the clients still reach it; with `reject`, the cut answers with resets, which look like a
    dead process to the new leader's probe."""
    world = World(7, ttl=ttl, faults=False, duration=90, reject=reject)
    world.at(30.0, lambda: isolate_leader(world))
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2  # a new leader was elected


@pytest.mark.parametrize("stagger", [0.3, 1.3, 2.5])
@pytest.mark.parametrize("seed", range(1, 4))
def test_path0_a_leader_whose_followers_hear_nothing_from_it_stops_answering_200(seed: int, stagger: float) -> None:
    """The leader's packets to its followers are dropped (all ports), theirs to it still arrive: their
    WAL receivers hear nothing until their timeout (10 s), and their replies, which TCP cannot get
    through without the leader's acknowledgements, queue up. The leader must turn 503 before clients
    cancel its waiting commits and read them through HAProxy. (A first version of the model let
    those replies through, as if TCP needed no acknowledgements, and the rule that counted a standby
    fresh while its replies changed then failed here; real processes showed the stall instead:
    tests/faults, test_asymmetric_cut_of_the_leader[output].)"""
    world = World(seed, ttl=30.0, faults=False, duration=90)

    def cut_from(leader: Node, follower: Node) -> None:
        world.network.cut |= {(leader.index, follower.index, p) for p in PORTS}
        world.note(f"n{leader.index}'s packets to n{follower.index} dropped")

    def cut() -> None:
        leader = next(n for n in world.nodes if n.pg.primary())
        first, second = (n for n in world.nodes if n is not leader)
        cut_from(leader, first)
        world.at(world.now + stagger, lambda: cut_from(leader, second))

    world.at(30.0, cut)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2  # a new leader was elected


@pytest.mark.parametrize("seed", range(1, 5))
def test_path0_replies_that_arrive_after_a_heal_do_not_bring_the_old_leader_back(seed: int) -> None:
    """The leader cut off from everyone while every standby reply is held up by retransmissions; a
    moment after a follower took the key over, the old leader's link to one follower comes back and
    the replies queued on it arrive in a burst. They say nothing of when that follower last received
    anything: the old leader must not count it as streaming again."""
    world = World(seed, ttl=30.0, faults=False, duration=90, late_replies=1.0)
    old: list[Node] = []

    def heal_when_taken() -> None:
        entry = world.etcd.kv.get(keys.LEADER)
        if entry is not None and entry.value.get("guid") != old[0].guid:
            other = next(n for n in world.nodes if n is not old[0] and n.guid != entry.value.get("guid"))
            back = {c for c in world.network.cut if other.index in c[:2] and old[0].index in c[:2]}
            world.at(world.now + 0.3, lambda: world.heal(back, f"heal n{old[0].index}<->n{other.index}"))
        else:
            world.at(world.now + 0.01, heal_when_taken)

    def cut() -> None:
        old.append(isolate_leader(world))
        heal_when_taken()

    world.at(30.0, cut)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2


@pytest.mark.parametrize("reject", [False, True])
@pytest.mark.parametrize("seed", range(1, 6))
def test_path2_partial_heal_while_the_followers_elect(seed: int, reject: bool) -> None:
    """Issue 14, path 2: the leader cut off from both followers; the one that defers during the tie
    grace is reconnected to it the moment its final report is posted, so it re-attaches while the
    other counts that report. (Before the fix seed 1 lost acknowledged commits; with resets,
    seed 5 also showed the fenced old leader promoting again on its still-valid key.)"""
    world = World(seed, ttl=30.0, faults=False, duration=90, reject=reject)
    lead: list[int] = []

    def cut() -> None:
        lead.append(isolate_leader(world).index)
        world.at(world.now + 0.05, watch)

    def watch() -> None:
        late = max((n for n in world.nodes if n.index != lead[0]), key=lambda n: n.guid)
        status = world.etcd.kv.get(keys.STATUS + late.guid)
        if status is not None and status.value.get("final"):
            world.network.cut -= {c for c in world.network.cut if {c[0], c[1]} == {lead[0], late.index}}
            world.note(f"heal n{lead[0]}<->n{late.index} once n{late.index} reported")
        else:
            world.at(world.now + 0.05, watch)

    world.at(30.0, cut)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)


@pytest.mark.parametrize("seed", range(1, 4))
def test_path6_a_joining_member_raises_the_quorum_before_anyone_caught_up(seed: int) -> None:
    """Issue 14, path 6: on five nodes (the fifth not registered yet), two followers stall so that
    commits are acknowledged by the third alone (ANY 1 of 3); the fifth registers (ANY 2); the
    leader and that third follower die. Before the fix (seed 1) the two stalled followers formed
    the new fence group (2 of 3) and one of them led without those commits."""
    world = World(seed, size=5, ttl=30.0, faults=False, duration=90)
    late = world.nodes[4]
    world.etcd.delete(keys.NODES + late.guid)  # its etcd member runs, nothing else yet
    world.at(0.0, lambda: world.kill(late, manager=True, pg=True, etcd=False))
    chosen: list = []

    def stall() -> None:
        lead = next(n for n in world.nodes if n.pg.primary())
        others = [n for n in world.nodes[:4] if n is not lead]
        chosen.extend((lead, others[-1]))
        world.network.cut |= {(lead.index, n.index, "pg") for n in others[:-1]}
        world.note(f"n{lead.index}'s WAL reaches n{others[-1].index} only")

    def join() -> None:
        world.etcd.put(keys.NODES + late.guid, {"guid": late.guid, "address": late.address})
        world.note(f"n{late.index} registers")

    def lose() -> None:
        for n in chosen:
            kill_every_process(world, n)

    world.at(30.0, stall)
    world.at(33.0, join)
    world.at(38.0, lose)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)


@pytest.mark.parametrize("seed", range(1, 4))
def test_path5_a_refused_heir_is_not_the_last_leader(seed: int) -> None:
    """Issue 14, path 5: the heir's PostgreSQL link is cut just before a switchover, so the handover's
    flush misses it and it refuses to promote (short of the handover position); the other follower,
    the only one with the last commits, dies. With the heir recorded as the last leader at the
    handover (the fix reverted), it then led alone without them, for each of these seeds; the old
    leader, which holds every commit, must stay the last leader until the heir claims the key."""
    world = World(seed, size=3, ttl=30.0, faults=False, duration=90)
    roles: dict = {}

    def cut() -> None:
        lead = next(n for n in world.nodes if n.pg.primary())
        heir, other = [n for n in world.nodes if n is not lead]
        roles.update(lead=lead, heir=heir, other=other)
        world.network.cut |= {(lead.index, heir.index, "pg"), (heir.index, lead.index, "pg")}
        world.note(f"cut n{lead.index}<->n{heir.index} pg")

    def switchover() -> None:
        world.etcd.put(keys.CONTROL_SWITCHOVER, {"source": roles["lead"].guid, "target": roles["heir"].guid})
        world.note(f"promote n{roles['heir'].index}")

    world.at(30.0, cut)
    world.at(30.5, switchover)
    world.at(32.0, lambda: kill_every_process(world, roles["other"]))
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)


@pytest.mark.parametrize("offset", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("ttl", [30.0, 10.0])
def test_path7_a_leader_fenced_at_once_serves_nothing_until_the_frontends_moved(ttl: float, offset: float) -> None:
    """Issue 14, path 7: the leader cut off from everyone (with resets) while clients reach it fences
    at once rather than at its lease deadline. A frontend's HAProxy whose last check saw 200 keeps
    opening sessions to it for up to 2 s; PostgreSQL restarted read-only at its next tick showed
    them the commits that had waited for the standbys at the fence, and the new leader promoted
    without them (this schedule at these offsets, before the fenced leader waited for the frontends)."""
    world = World(2, ttl=ttl, faults=False, duration=90, reject=True)
    world.at(30.0 + offset, lambda: isolate_leader(world))
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2


@pytest.mark.parametrize("ttl", [30.0, 10.0])
@pytest.mark.parametrize("seed", range(1, 4))
def test_path7_a_leader_cut_off_and_then_paused_has_fenced_before_a_cancelled_commit_is_read(seed: int,
                                                                                          ttl: float) -> None:
    """Issue 14, path 7: the leader is cut off from everyone (with resets) while clients reach it, and
    its manager is paused (SIGSTOP) 3 s later, after its standbys went quiet. A frontend's HAProxy
    check of the paused manager gets no answer until its timeout, so sessions still go to it; 5 s
    after the cut the clients cancel their commit waits and read those commits there, and the new
    leader promotes without them. With the fix reverted (the leader stays primary until its lease
    deadline) every one of these schedules failed; with it the leader fenced before the pause."""
    outcome = cut_then_pause(World(seed, ttl=ttl, faults=False, duration=90, reject=True), pause_after=3.0)
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2


@pytest.mark.parametrize("ttl", [30.0, 10.0])
def test_path7_a_manager_paused_before_its_fence_is_out_of_haproxy_before_a_4_s_statement_timeout(ttl: float) -> None:
    """The rest of path 7's hole: paused 1 s after the cut, before its tick fenced, the old leader stays
    primary, and only the frontends' HAProxy stops sessions reaching it: at its next check (`inter`,
    2 s) once that check has failed. A check used to wait `inter` again for an answer (no `timeout
    check`), so sessions reached it until 4 s after its last 200: clients whose statement_timeout is
    4 s cancelled their commit waits and read them there first (seed 18, both TTLs). With `timeout
    check 1s` the frontends have let go by 3 s after its last 200. Over 20 seeds × 2 TTLs × 11 pause
    offsets (0.8–1.3 s), clients cancelling after 4 / 3.5 / 3 s read a commit the next leader lacked in
    22 / 298 / 408 of 440 schedules before, and in 0 / 0 / 22 with the timeout (none at 5 s, the
    model's default, either way)."""
    world = World(18, ttl=ttl, faults=False, duration=70, reject=True, commit_wait=4.0)
    outcome = cut_then_pause(world, pause_after=1.0)
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2


@pytest.mark.parametrize("ttl", [30.0, 10.0])
@pytest.mark.parametrize(("seed", "crash_after"), [(1, 0.1), (2, 0.6), (5, 0.3)])
def test_path7_a_crashed_primary_comes_back_only_once_the_frontends_moved(seed: int, crash_after: float,
                                                                         ttl: float) -> None:
    """The leader's standbys stop receiving (its PostgreSQL port cut both ways), then its PostgreSQL
    crashes with commits waiting for them; runit starts it again half a second later and it replays
    them, while a frontend's HAProxy whose last check saw 200 still opens sessions to it: clients read
    those commits, the node dies, and the next leader promotes without them. Found by seed 6898 of a
    sweep (the leader manager itself started PostgreSQL at once). Closed by runit's pause after an exit
    nobody asked for (the PostgreSQL service's `finish`, `timing.pg_restart_after_crash`; with
    `restart_after_crash = off` a backend crash is such an exit too) and the leader manager's own
    starts waiting while the frontends may route here. Without the pause 20 of 60 such schedules
    (seeds 1-10, both TTLs, crashes 0.1/0.3/0.6 s after the cut) failed, these among them."""
    world = World(seed, ttl=ttl, faults=False, duration=90, reject=True)
    lead: list[Node] = []

    def stall() -> None:
        lead.append(next(n for n in world.nodes if n.pg.primary()))
        i = lead[0].index
        others = [m.index for m in world.nodes if m.index != i]
        world.network.cut |= {(a, b, "pg") for m in others for a, b in ((i, m), (m, i))}
        world.note(f"cut n{i}'s PostgreSQL from its standbys")

    def crash() -> None:
        world.note(f"PostgreSQL of n{lead[0].index} crashes; runit restarts it")
        world.stop_pg(lead[0], "crash")
        world.at(world.now + 0.5, lambda: world.start_pg(lead[0]) if lead[0].pg.want_up else None)

    world.at(30.0, stall)
    world.at(30.0 + crash_after, crash)
    world.at(40.0, lambda: kill_every_process(world, lead[0]))
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)


def cut_then_pause(world: World, pause_after: float) -> Outcome:
    """Isolate the leader at 30 s and SIGSTOP its manager `pause_after` later, for 8 s."""
    lead: list[Node] = []

    def cut() -> None:
        lead.append(isolate_leader(world))

    def pause() -> None:
        world.note(f"SIGSTOP n{lead[0].index}'s manager for 8s")
        lead[0].manager_frozen = True
        world.at(world.now + 8.0, lambda: world.thaw(lead[0], f"SIGCONT n{lead[0].index}'s manager"))

    world.at(30.0, cut)
    world.at(30.0 + pause_after, pause)
    return world.run()


def test_a_seed_replays_exactly() -> None:
    first, second = run(11, trace=True), run(11, trace=True)
    assert first.trace == second.trace and first.schedule == second.schedule


def test_without_faults_every_commit_is_acknowledged_and_one_leader_is_elected() -> None:
    outcome = World(3, faults=False, duration=30).run()
    assert outcome.violation is None and outcome.promotions == 1
    assert outcome.acknowledged >= outcome.commits - 2  # the last ones may still be in flight


@pytest.mark.parametrize("seed", range(1, 4))
def test_a_switchover_moves_leadership_without_losing_a_commit(seed: int) -> None:
    """`chef-backend-ctl promote` under a continuous write load: the old leader hands the key over
    after a fast shutdown, the heir promotes, and every invariant holds (no commit lost, one 200)."""
    world = World(seed, faults=False, duration=60)
    heir: list = []

    def promote() -> None:
        lead = next(n for n in world.nodes if n.pg.primary())
        heir.append(next(n for n in world.nodes if n is not lead))
        world.etcd.put(keys.CONTROL_SWITCHOVER, {"source": lead.guid, "target": heir[0].guid})
        world.await_switchover(heir[0], world.now + 30.0)

    world.at(30.0, promote)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert outcome.promotions == 2 and heir[0].pg.primary() and heir[0].answers_200(world.now)
    assert any("done" in line for line in outcome.schedule)


def test_a_node_answering_200_without_a_commit_clients_saw_is_a_stale_read() -> None:
    world = World(1, faults=False)
    node = world.nodes[0]
    node.pg.running, node.pg.in_recovery, node.pg.wal = True, False, [("c", 1)]
    node.ready_until = node.deadline = float("inf")
    world.seen_by_clients = {1: 0.5, 2: 0.6}
    with pytest.raises(Violation, match="stale read"):
        world.read()


def test_a_commit_clients_read_must_be_on_every_later_leader() -> None:
    """A commit waiting for its standbys is invisible; once its wait is cancelled, a session HAProxy
    routes to the primary reads it, and from then on it counts as acknowledged."""
    world = World(1, faults=False)
    old, new = world.nodes[0], world.nodes[1]
    old.pg.running, old.pg.in_recovery, old.pg.wal = True, False, [("c", 1), ("c", 2)]
    old.pg.sync = SyncSet((new.guid,), 1)
    old.pg.pending = [(1, 0.0, False)]  # commit 2 waits for the standby
    world.proxies[0].up = {0}  # the last check saw 200; the node may answer 503 by now
    world.read()
    assert set(world.read_by_clients) == {1}
    world.now = 6.0
    world.acknowledge(old)  # the wait is cancelled: committed locally, visible
    world.read()
    assert set(world.read_by_clients) == {1, 2} and not world.acknowledged
    new.pg.running, new.pg.wal = True, [("c", 1)]
    with pytest.raises(Violation, match="without commits clients read \\[2\\]"):
        world.promote(new)


@pytest.mark.parametrize("seed", range(1, 9))
def test_a_takeover_whose_answer_is_lost_still_holds(seed: int) -> None:
    """The leader cut off from both followers (with resets); the transaction by which one takes the key
    over is carried out, but its answer is lost: the Store sends it again to the next member, where its
    compare fails. The taker must still answer 503 for the whole takeover hold, as long as the old leader
    may keep answering 200. (Without the hold on a takeover that seemed to fail, every seed here had the
    taker at 200 0.44-1.49 s after the transaction, before its hold would have ended.)"""
    world = World(seed, ttl=30.0, faults=False, duration=70, reject=True)
    taken: list[tuple[Node, float]] = []
    old: list[int] = []  # the old leader's key (its create revision: a takeover keeps it)
    first_200: list[float] = []
    holds: list[float] = []  # at the first 200: the taker's hold's end (0: never held) and its clock
    clocks: list[float] = []

    def takeover_answer_lost(node: Node, result: object) -> bool:
        entry = world.etcd.kv.get(keys.LEADER)
        if taken or result is not True or entry is None or entry.create_revision != old[0] \
                or entry.value.get("guid") != node.guid:
            return False
        taken.append((node, world.now))
        world.note(f"the answer to n{node.index}'s takeover is lost")
        world.at(world.now, watch)
        return True

    def watch() -> None:
        node, _ = taken[0]
        if node.answers_200(world.now):
            first_200.append(world.now)
            holds.append(node.memory.hold_until)
            clocks.append(node.clock(world.now))
        else:
            world.at(world.now + 0.01, watch)

    def cut() -> None:
        isolate_leader(world)
        old.append(world.etcd.kv[keys.LEADER].create_revision)
        world.lose_response = takeover_answer_lost

    world.at(30.0, cut)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert taken and first_200, "the scenario did not happen"
    # The hold was set (it runs from when the counted standbys went quiet, which is before the
    # takeover), and the taker answered 200 only once it had ended.
    assert 0 < holds[0] <= clocks[0], fail(outcome)


@pytest.mark.parametrize("ttl", [30.0, 10.0])
@pytest.mark.parametrize("seed", range(1, 4))
def test_a_leader_whose_manager_and_postgresql_die_on_a_live_host_is_taken_over_before_its_lease_ends(
    seed: int, ttl: float
) -> None:
    """kill -9 of the leader's manager and PostgreSQL, its host (and etcd member) up: the kernel
    closes the replication connections at once, so the followers see the stream end at their next
    look rather than after wal_receiver_timeout, detach, and one takes over on the fast path while the
    old lease still runs. Every invariant holds on the way."""
    world = World(seed, ttl=ttl, faults=False, duration=70)
    killed: list[tuple[Node, float]] = []
    first_200: list[float] = []

    def kill() -> None:
        lead = next(n for n in world.nodes if n.pg.primary())
        killed.append((lead, world.now))
        world.note(f"kill -9 n{lead.index}'s manager and PostgreSQL (host up)")
        world.kill(lead, manager=True, pg=True, etcd=False)
        world.at(world.now, watch)

    def watch() -> None:
        if any(n.answers_200(world.now) for n in world.nodes if n is not killed[0][0]):
            first_200.append(world.now)
        else:
            world.at(world.now + 0.05, watch)

    world.at(30.0, kill)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert first_200, "no one took over"
    # Before the model closed the connections of a server killed on a live host, the followers
    # waited out wal_receiver_timeout: 11-13.5 s to the first 200 on these seeds; 2.0-2.4 s since.
    assert first_200[0] - killed[0][1] < RECEIVER_TIMEOUT, fail(outcome)


@pytest.mark.parametrize("hold", [0.3, 4.0])
@pytest.mark.parametrize("reject", [False, True])
@pytest.mark.parametrize("seed", range(1, 6))
def test_a_final_report_that_takes_effect_after_its_node_re_attached_is_not_counted(seed: int, reject: bool,
                                                                                    hold: float) -> None:
    """The leader cut off from both followers. One follower's final report reaches etcd but is held
    up there (its answer never comes) while that follower hears the leader again and re-attaches; the
    report takes effect `hold` seconds later: before the follower re-attaches, or after, while it
    streams from the old leader again and commits are acknowledged through it. The other follower
    must not count that report once its node re-attached: a takeover on it would promote without
    those commits. (Before the fix, 8 of the 10 runs with 4 s lost acknowledged commits.)"""
    world = World(seed, ttl=30.0, faults=False, duration=90, reject=reject)
    lead: list[int] = []
    held: list[float] = []

    def cut() -> None:
        lead.append(isolate_leader(world).index)

    def hold_up(node: Node, what: str) -> float | None:
        if held or what != "final report" or not lead or node.index == lead[0]:
            return None
        held.append(world.now)
        world.network.cut -= {c for c in world.network.cut if {c[0], c[1]} == {lead[0], node.index}}
        world.note(f"n{node.index}'s final report is held up in etcd; heal n{lead[0]}<->n{node.index}")
        return hold

    world.hold_up = hold_up
    world.at(30.0, cut)
    outcome = world.run()
    assert held, "the scenario did not happen"
    assert outcome.violation is None, fail(outcome)


def _switchover_with_a_held_up_handover(seed: int, reject: bool, lands_after: float | None) -> tuple[World, Outcome]:
    """A switchover whose handover (the key moved to the heir) reaches etcd but is held up there on
    every member the Store tries: the old leader, told nothing, refuses the switchover, starts
    PostgreSQL again (as a standby: it always boots as one) and claims its key to promote. The
    handover lands `lands_after` seconds after the first tick whose plan claims (None: never)."""
    world = World(seed, ttl=30.0, faults=False, duration=70, reject=reject, keep_trace=True)
    sent: list[float] = []
    claimed = [] if lands_after is None else [_first_claim_after_the_handover(seed, reject)]

    def promote() -> None:
        lead = next(n for n in world.nodes if n.pg.primary())
        heir = next(n for n in world.nodes if n is not lead)
        world.etcd.put(keys.CONTROL_SWITCHOVER, {"source": lead.guid, "target": heir.guid})
        world.note(f"promote n{heir.index}")
        world.await_switchover(heir, world.now + 30.0)

    def hold_up(node: Node, what: str) -> float | None:
        if what != "handover" or (sent and world.now > sent[0] + 10.0):
            return None
        sent.append(world.now)
        world.note(f"n{node.index}'s handover is held up in etcd")
        return claimed[0] + (lands_after or 0.0) - world.now if claimed else 1000.0

    world.hold_up = hold_up
    world.at(30.0, promote)
    return world, world.run()


def _first_claim_after_the_handover(seed: int, reject: bool) -> float:
    world, _ = _switchover_with_a_held_up_handover(seed, reject, None)
    lead = next(i for i, n in enumerate(world.nodes) if n.was_leader and n.pg.primary())
    return next(float(line.split()[0]) for line in world.trace
                if line.split()[1] == f"n{lead}" and float(line.split()[0]) > 30.0 and "'claim'" in line)


@pytest.mark.parametrize("reject", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 4])
def test_a_handover_that_lands_while_the_old_leader_claims_its_key_again_leaves_one_primary(seed: int,
                                                                                             reject: bool) -> None:
    """The handover lands just after the old leader's tick read its key and decided to claim it (and
    promote). The claim fails (the key is the heir's now) and nothing may be promoted: the heir
    promotes, and a second primary beside it could acknowledge commits through the standbys still
    streaming from it. (Before the fix the plan went on after the failed claim: the old leader
    promoted on every one of these runs.)"""
    world, outcome = _switchover_with_a_held_up_handover(seed, reject, 0.001)
    assert outcome.violation is None, fail(outcome)
    landed = [float(line.split()[0]) for line in world.trace if "held-up etcd request takes effect: True" in line]
    assert landed, "the scenario did not happen"
    heir = world.etcd.kv[keys.LEADER].value["guid"]
    late = [(when, i) for when, i, _ in world.promotions if when > landed[0] and world.nodes[i].guid != heir]
    assert not late, fail(outcome)


@pytest.mark.parametrize("ttl", [30.0, 10.0])
@pytest.mark.parametrize("seed", range(1, 4))
def test_a_leader_whose_manager_alone_restarts_keeps_leading_without_a_stop(seed: int, ttl: float) -> None:
    """kill -9 of the leader's manager alone; runit starts it again moments later. Its PostgreSQL runs
    on as the primary: the new manager takes its previous run's key over under its own lease, and no
    one fails over. (The model's fence thread once looked at the truth rather than at the manager's
    belief, and stopped that primary before the new manager's first step: every run failed over.)"""
    world = World(seed, ttl=ttl, faults=False, duration=80)
    lead: list[Node] = []

    def kill() -> None:
        lead.append(next(n for n in world.nodes if n.pg.primary()))
        world.note(f"kill -9 n{lead[0].index}'s manager")
        world.kill(lead[0], manager=True, pg=False, etcd=False)
        world.at(world.now + 1.0, lambda: world.boot(lead[0], host=False))

    world.at(30.0, kill)
    outcome = world.run()
    assert outcome.violation is None, fail(outcome)
    assert [i for when, i, _ in world.promotions if when > 30.0] == [], fail(outcome)
    assert lead[0].pg.primary() and lead[0].answers_200(world.now), fail(outcome)
