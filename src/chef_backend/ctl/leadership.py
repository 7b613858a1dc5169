"""Leadership control: promote, demote, force-leader, failover switches and history (facts §2)."""

from __future__ import annotations

import argparse
import datetime
import time

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Store, StoreError, describe
from chef_backend.cluster.view import ClusterView, NodeView
from chef_backend.ctl.context import Context, CtlError

STATES = {"on": True, "true": True, "enabled": True, "off": False, "false": False, "disabled": False}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="make NODE (name, IP or GUID) the leader, without losing a commit")
    p.add_argument("node", metavar="NODE")
    p.set_defaults(func=run_promote)
    sub.add_parser("demote", help="hand leadership from the current leader to the best follower"
                   ).set_defaults(func=run_demote)
    sub.add_parser("force-leader", help="make this node leader, only while the cluster has none"
                   ).set_defaults(func=run_force_leader)
    for name, helptext in (("set-cluster-failover", "turn automatic failover on or off for the cluster"),
                           ("set-node-failover", "let this node become leader automatically, or not")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("state", metavar="STATE", help="on|off|true|false|enabled|disabled")
        p.set_defaults(func=run_set_failover, scope=name)
    sub.add_parser("history", help="print the leadership changes, oldest first").set_defaults(func=run_history)


def cluster_view(ctx: Context) -> tuple[Store, ClusterView]:
    ctx.require_identity()
    store = ctx.store()
    try:
        return store, ClusterView.read(store, with_etcd_health=False)
    except (StoreError, OSError) as exc:
        raise CtlError(f"cannot read the cluster state from etcd ({describe(exc)})") from None


def _timeout(ctx: Context) -> float:
    return float(ctx.settings["leaderl.control_worker_timeout_seconds"])


def _switch(ctx: Context, store: Store, view: ClusterView, target: NodeView) -> None:
    leader = view.leader or {}
    if view.failover == "off":
        raise CtlError("automatic failover is turned off for the cluster (set-cluster-failover on first)")
    if target.guid in view.blocked:
        raise CtlError(f"failover is turned off for {target.name} (set-node-failover on, on that node)")
    if not target.eligible or target.pg_state != "synced":
        reasons = "; ".join(target.reasons) or f"PostgreSQL is {target.pg_state}"
        raise CtlError(f"{target.name} cannot become leader now: {reasons}")
    request = {"source": leader["guid"], "target": target.guid, "at": time.time()}
    last_refusal = store.get(keys.CONTROL_SWITCHOVER_REFUSED)
    if not store.create(keys.CONTROL_SWITCHOVER, request):
        raise CtlError("another promote/demote is already in progress; wait for it or check cluster-status")
    deadline = time.monotonic() + _timeout(ctx)
    started = time.monotonic()
    try:
        while time.monotonic() < deadline:
            snap = store.snapshot()
            now_leader = snap.value(keys.LEADER) or {}
            if now_leader.get("guid") == target.guid and snap.get(keys.CONTROL_SWITCHOVER) is None:
                print(f"{target.name} ({target.address}) is now the leader "
                      f"(took {time.monotonic() - started:.1f}s)")
                return
            if snap.get(keys.CONTROL_SWITCHOVER) is None and now_leader.get("guid") != target.guid:
                refusal = snap.get(keys.CONTROL_SWITCHOVER_REFUSED)
                if refusal is not None and (last_refusal is None or refusal.mod_revision > last_refusal.mod_revision):
                    said = refusal.value.get("reason") if isinstance(refusal.value, dict) else None  # leader/records.py
                    reason = str(said or "refused by the leader").replace(target.guid, target.name)
                    raise CtlError(f"{target.name} did not become leader: {reason}")
                break
            time.sleep(0.1)
    finally:
        store.delete(keys.CONTROL_SWITCHOVER)
    raise CtlError(f"{target.name} did not become leader within {_timeout(ctx):.0f}s; see cluster-status "
                   "and chef-backend-ctl tail leaderl on the leader")


def run_promote(args: argparse.Namespace) -> int:
    ctx = Context.load()
    store, view = cluster_view(ctx)
    target = view.node(args.node)
    if target is None:
        names = ", ".join(f"{n.name} ({n.address})" for n in view.nodes)
        raise CtlError(f"no node {args.node!r} in this cluster; nodes: {names}")
    if view.leader is None:
        # The original's runbook for a cluster left waiting: promote one of the nodes. Here that is
        # force-leader for that node, refused when another node reports a later position.
        ahead = ahead_of(view, target)
        if ahead:
            raise CtlError(f"the cluster has no leader, and {', '.join(ahead)} reported a later position than "
                           f"{target.name}: promote that node instead (or, accepting the loss of what only it "
                           f"has, run chef-backend-ctl force-leader on {target.name})")
        print(f"The cluster has no leader: making {target.name} ({target.address}) the leader.")
        force(ctx, store, target.guid, f"{target.name} is now the leader")
        return 0
    if view.leader["guid"] == target.guid:
        raise CtlError(f"{target.name} is already the leader")
    _switch(ctx, store, view, target)
    return 0


def run_demote(args: argparse.Namespace) -> int:
    ctx = Context.load()
    store, view = cluster_view(ctx)
    demote(ctx, store, view)
    return 0


def demote(ctx: Context, store: Store, view: ClusterView) -> None:
    """Hand leadership to the most advanced synced, eligible follower."""
    if view.leader is None:
        raise CtlError("the cluster has no leader to demote")
    candidates = [n for n in view.nodes if n.guid != view.leader["guid"] and n.eligible
                  and n.pg_state == "synced" and n.guid not in view.blocked]
    if not candidates:
        raise CtlError("no follower can take over now (none is synced and eligible); see cluster-status")

    def position(n: NodeView) -> tuple[int, int]:
        pos = (n.status or {}).get("position") or {}
        return int(pos.get("timeline", 0)), int(pos.get("lsn", 0))

    _switch(ctx, store, view, max(candidates, key=position))


def ahead_of(view: ClusterView, target: NodeView) -> list[str]:
    """Names of the nodes whose last reported PostgreSQL position is later than `target`'s."""
    def position(n: NodeView) -> tuple[int, int]:
        pos = (n.status or {}).get("position") or {}
        return int(pos.get("timeline", 0)), int(pos.get("lsn", 0))

    return [n.name for n in view.nodes if n.guid != target.guid and n.status and position(n) > position(target)]


def run_force_leader(args: argparse.Namespace) -> int:
    ctx = Context.load()
    ident = ctx.require_identity()
    store, view = cluster_view(ctx)
    if view.leader is not None:
        leader = view.node(view.leader["guid"])
        raise CtlError(f"the cluster already has a leader ({leader.name if leader else view.leader['guid']}); "
                       "force-leader only applies while there is none")
    force(ctx, store, ident.guid, "this node is now the leader")
    return 0


def force(ctx: Context, store: Store, guid: str, done: str) -> None:
    """Have the node `guid` take leadership while there is none (its manager reads the request)."""
    store.put(keys.CONTROL_FORCE, guid)
    deadline = time.monotonic() + _timeout(ctx)
    while time.monotonic() < deadline:
        leader = store.get(keys.LEADER)
        if leader is not None:
            store.delete(keys.CONTROL_FORCE)
            if leader.value.get("guid") == guid:
                print(done)
                return
            raise CtlError("another node became leader meanwhile")
        time.sleep(0.2)
    store.delete(keys.CONTROL_FORCE)
    raise CtlError(f"the node did not become leader within {_timeout(ctx):.0f}s; "
                   "see chef-backend-ctl tail leaderl there (is its PostgreSQL running?)")


def run_set_failover(args: argparse.Namespace) -> int:
    state = STATES.get(args.state.lower())
    if state is None:
        raise CtlError(f"STATE must be one of {'|'.join(STATES)}, not {args.state!r}")
    ctx = Context.load()
    ident = ctx.require_identity()
    store, view = cluster_view(ctx)
    if args.scope == "set-cluster-failover":
        store.put(keys.CONTROL_FAILOVER, "on" if state else "off")
        print(f"automatic failover is now {'on' if state else 'off'} for the cluster")
        return 0
    blocked = [g for g in view.blocked if g != ident.guid] + ([] if state else [ident.guid])
    store.put(keys.CONTROL_BLOCKED, blocked)
    print(f"automatic failover to this node is now {'on' if state else 'off'}")
    return 0


def run_history(args: argparse.Namespace) -> int:
    ctx = Context.load()
    _, view = cluster_view(ctx)
    names = {n.guid: n.name for n in view.nodes}
    for entry in view.history:
        at = datetime.datetime.fromtimestamp(entry["at"], datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        who = names.get(entry["guid"], entry["guid"])
        print(f"{at}  {who:<20} {entry.get('address', ''):<16} {entry.get('reason', '')}")
    return 0
