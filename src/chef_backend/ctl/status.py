"""`status` and `cluster-status`, in the shapes support tooling parses (facts §2).

status rows match `^(\\w+)\\s+(\\w+)\\s+\\(pid (\\w+)\\)\\s+(\\d+d \\d+h \\d+m \\d+s)\\s+(.*)$`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from chef_backend.cluster.store import StoreError
from chef_backend.cluster.view import ClusterView, NodeView
from chef_backend.config.settings import Settings
from chef_backend.ctl.context import Context, CtlError
from chef_backend.host.paths import host_path
from chef_backend.node.secret_files import loosened, secret_files
from chef_backend.services import elasticsearch
from chef_backend.supervision.runit import ServiceStatus, Supervisor


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="this node's services and the cluster's health")
    p.add_argument("service", nargs="?", help="one service, or 'disk'")
    p.add_argument("--simple", action="store_true", help="raw runit status lines")
    p.set_defaults(func=run_status)
    c = sub.add_parser("cluster-status", help="every node's role and replication state")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=run_cluster_status)


def duration(seconds: int) -> str:
    d, rem = divmod(max(0, seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}d {h}h {m}m {s}s"


def local_state(st: ServiceStatus) -> str:
    if st.state == "run" and st.pid:
        return f"running (pid {st.pid})"
    return "down"


def leaderl_summary(view: ClusterView) -> str:
    roles = [n.role for n in view.nodes]
    leader = roles.count("leader")
    follower = roles.count("follower")
    waiting = len(roles) - leader - follower
    return f"leader: {leader}; waiting: {waiting}; follower: {follower}; total: {len(roles)}"


def postgresql_summary(view: ClusterView) -> str:
    states = [n.pg_state for n in view.nodes]
    leader = states.count("leader")
    synced = states.count("synced")
    offline = states.count("offline")
    syncing = len(states) - leader - synced - offline
    return f"leader: {leader}; offline: {offline}; syncing: {syncing}; synced: {synced}"


def etcd_summary(view: ClusterView) -> str:
    total = len(view.etcd_members)
    healthy = sum(1 for ok in view.etcd_healthy.values() if ok)
    color = "green" if healthy == total else ("yellow" if healthy > total // 2 else "red")
    return f"health: {color}; healthy nodes: {healthy}/{total}"


def disks_local(ctx: Context) -> tuple[str, bool]:
    min_mb = ctx.settings["leaderl.health_check.disk_min_space_mb"]
    parts, ok = [], True
    for raw in ctx.settings["leaderl.health_check.disk_paths"]:
        try:
            free = shutil.disk_usage(host_path(raw)).free // (1024 * 1024)
            good = free >= min_mb
        except OSError:
            good = False
        ok &= good
        parts.append(f"{raw}: {'OK' if good else 'LOW'}")
    return "; ".join(parts), ok


def disks_summary(view: ClusterView) -> str:
    reporting = [n for n in view.nodes if n.status is not None]
    healthy = sum(1 for n in reporting if not n.status.get("disks", {}).get("problems"))  # type: ignore[union-attr]
    color = "green" if healthy == len(view.nodes) else ("yellow" if healthy else "red")
    return f"health: {color}; healthy nodes: {healthy}/{len(view.nodes)}"


def read_view(ctx: Context) -> tuple[ClusterView | None, str]:
    try:
        return ClusterView.read(ctx.store(timeout=2)), ""
    except (StoreError, OSError) as exc:
        return None, f"error: cannot read cluster state from etcd ({exc.__class__.__name__})"


def run_status(args: argparse.Namespace) -> int:
    ctx = Context.load()
    ctx.require_identity()
    supervisor = Supervisor(ctx.paths)
    services = supervisor.installed()
    if args.service and args.service != "disk" and args.service not in services:
        raise CtlError(f"unknown service {args.service!r}; this node runs {', '.join(services)}")
    if args.simple:
        for name in services if not args.service else [args.service]:
            print(supervisor.status(name).raw)
        return 0
    view, error = read_view(ctx)
    rows: list[tuple[str, str, str, str]] = []
    all_up = True
    for name in services:
        st = supervisor.status(name)
        all_up &= st.state == "run"
        if view is None:
            dist = error
        elif name == "leaderl":
            dist = leaderl_summary(view)
        elif name == "postgresql":
            dist = postgresql_summary(view)
        elif name == "etcd":
            dist = etcd_summary(view)
        elif name == "elasticsearch":
            dist = search_summary(ctx.settings, view)
        else:
            dist = ""
        if args.service in (None, name):
            rows.append((name, local_state(st), duration(st.seconds), dist))
    if args.service != "disk":
        print_table(["Service", "Local Status", "Time in State", "Distributed Node Status"], rows)
        for problem in loosened(secret_files(ctx.settings, ctx.paths)):
            print(f"WARNING: {problem}; chef-backend-ctl reconfigure restores it", file=sys.stderr)
    if args.service in (None, "disk"):
        local, ok = disks_local(ctx)
        print()
        print_table(
            ["System", "Local Status", "Distributed Node Status"],
            [("disks", local, disks_summary(view) if view else error)],
        )
        all_up &= ok
    return 0 if all_up and view is not None else 1


def print_table(header: list[str], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [tuple(header), *rows]) for i in range(len(header))]
    for row in [tuple(header), *rows]:
        cells = [str(c).ljust(widths[i]) for i, c in enumerate(row[:-1])]
        print("  ".join([*cells, str(row[-1])]).rstrip())


def search_role(settings: Settings, n: NodeView, manager: str | None, members: set[str] | None) -> str:
    """The ES column: the search cluster's elected manager is `master` (as in the original).
    A node is `offline` unless it is in the search cluster as this node's search node sees it
    (`members`), or, when that does not answer, unless its leader manager last reported search."""
    if not settings.service_enabled("elasticsearch"):
        return "disabled"
    reported = n.status is not None and bool(n.status.get("search"))
    if not (n.guid in members if members is not None else reported):
        return "offline"
    return "master" if n.guid == manager else "not_master"


def search_summary(settings: Settings, view: ClusterView) -> str:
    health = elasticsearch.health(settings)
    if health is None:
        return "error: the local search node does not answer"
    return f"state: {health.get('status')}; nodes online: {health.get('number_of_nodes')}/{len(view.nodes)}"


def node_json(view: ClusterView, n: NodeView, es: str = "disabled") -> dict[str, Any]:
    st = n.status or {}
    return {
        "name": n.name,
        "ip": n.address,
        "guid": n.guid,
        "role": n.role,
        "pg": n.pg_state,
        "es": es,
        "eligible": n.eligible,
        "ineligible_reasons": n.reasons if not n.eligible else [],
        "following": (st.get("pg") or {}).get("upstream"),
        "failover": "off" if n.guid in view.blocked else "on",
        "position": st.get("position"),
        "reason": st.get("reason"),
    }


def run_cluster_status(args: argparse.Namespace) -> int:
    ctx = Context.load()
    ctx.require_identity()
    view, error = read_view(ctx)
    if view is None:
        raise CtlError(error.removeprefix("error: "))
    enabled = ctx.settings.service_enabled("elasticsearch")
    manager = elasticsearch.cluster_manager(ctx.settings) if enabled else None
    members = elasticsearch.cluster_nodes(ctx.settings) if enabled else None
    es = {n.guid: search_role(ctx.settings, n, manager, members) for n in view.nodes}
    if args.json:
        doc = {
            "cluster_id": (view.cluster or {}).get("cluster_id"),
            "leader": (view.leader or {}).get("guid"),
            "failover": view.failover,
            "synchronous": view.sync,
            "nodes": [node_json(view, n, es[n.guid]) for n in view.nodes],
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
        return 0
    rows = []
    for n in view.nodes:
        pg = "follower" if n.pg_state == "synced" else n.pg_state  # the original's PG column
        rows.append((n.name, n.address, n.guid, n.role, pg, es[n.guid], "yes" if n.eligible else "no"))
    print_table(["Name", "IP", "GUID", "Role", "PG", "ES", "Eligible"], rows)
    notes = [f"  {n.name} ({n.address}): {'; '.join(n.reasons)}" for n in view.nodes if not n.eligible]
    if notes:
        print("\nIneligible for leadership:")
        print("\n".join(notes))
    if view.failover == "off":
        print("\nAutomatic failover is turned off for the cluster.")
    return 0
