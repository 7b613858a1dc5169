"""`upgrade [--failover]` and `down-for-upgrade` (facts §7).

Rolling upgrade: install the new package on a node, then `upgrade` there; one node at a time,
followers first. `upgrade` re-renders the node with the new code, restarts its services and waits
until it is a synced follower again. On the leader `upgrade --failover` first hands leadership to
a synced follower (so failover must be on for that step). `down-for-upgrade` stops the leader
manager and PostgreSQL (etcd keeps running) for upgrades that need the whole cluster down.
"""

from __future__ import annotations

import argparse
import json

from chef_backend import __version__
from chef_backend.ctl import boot, leadership, waits
from chef_backend.ctl.context import Context, CtlError, add_compat_flags
from chef_backend.node.render import render_node
from chef_backend.supervision.runit import Supervisor


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upgrade", help="run the installed package's version on this node and rejoin")
    p.add_argument("--failover", action="store_true", help="on the leader: hand leadership over first")
    p.add_argument("--timeout", type=int, default=600, metavar="SECS", help="how long to wait for the rejoin")
    add_compat_flags(p)
    p.set_defaults(func=run_upgrade)
    d = sub.add_parser("down-for-upgrade", help="stop the leader manager and PostgreSQL for a full-downtime upgrade")
    d.set_defaults(func=run_down)


def running_version(ctx: Context) -> str:
    try:
        return str(json.loads(ctx.paths.manifest_file.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def run_upgrade(args: argparse.Namespace) -> int:
    ctx = Context.load()
    ident = ctx.require_identity()
    store, view = leadership.cluster_view(ctx)
    before = running_version(ctx)
    if view.leader is not None and view.leader.get("guid") == ident.guid:
        if not args.failover:
            raise CtlError("this node is the leader: run upgrade --failover (with cluster failover on) so that "
                           "leadership moves to a follower first")
        leadership.demote(ctx, store, view)
    # The members' client URLs from the cluster itself (a node from before etcd_endpoints.json has none).
    endpoints = [m["clientURLs"][0] for m in store.members() if m.get("clientURLs")]
    render_node(ctx.settings, ctx.secrets(), ident, ctx.paths, etcd_endpoints=endpoints)
    boot.clear_stopped(ctx.paths)
    supervisor = Supervisor(ctx.paths)
    supervisor.ensure_running()
    for name in ("leaderl", "postgresql", "etcd"):
        if name in supervisor.installed():
            supervisor.sv("force-stop", name, wait=60)
    for name in ("etcd", "leaderl"):  # the leader manager starts PostgreSQL in its role
        supervisor.sv("start", name)
    waits.etcd_healthy(ctx.store(), 60)
    if view.leader is None:  # the full-downtime path: the old leader's node comes back last
        print(f"Upgraded {ctx.settings.node_name} from {before} to {__version__}; the cluster has no leader "
              "yet: upgrade the remaining nodes, the former leader last.")
        return 0
    print(f"Waiting for {ctx.settings.node_name} to rejoin as a synced follower ...", flush=True)
    waits.node_synced(ctx.store(), ident.guid, args.timeout)
    print(f"Upgraded {ctx.settings.node_name} from {before} to {__version__}; it is a synced follower.")
    return 0


def run_down(args: argparse.Namespace) -> int:
    ctx = Context.load()
    ctx.require_identity()
    supervisor = Supervisor(ctx.paths)
    boot.mark_stopped(ctx.paths, "chef-backend-ctl down-for-upgrade")
    for name in ("leaderl", "postgresql"):
        if name in supervisor.installed() and supervisor.runsvdir_pid() is not None:
            supervisor.sv("force-stop", name, wait=60)
    print("The leader manager and PostgreSQL are stopped (etcd keeps running). Upgrade the package on every "
          "node, then run chef-backend-ctl upgrade on the followers and last on the former leader.")
    return 0
