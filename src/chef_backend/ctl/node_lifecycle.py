"""Taking a node out and wiping it: `remove-node`, `cleanse`, `uninstall` (facts §2, §5.4).

Replacing a node lost for good: `remove-node NAME` on a survivor, `cleanse` on the lost node
(its config is kept under /root/chef-backend-cleanse-*), copy that config back to
/etc/chef-backend, then `join-cluster LEADER --recovery`.
"""

from __future__ import annotations

import argparse
import shutil
import time

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Store, StoreError, describe
from chef_backend.cluster.view import ClusterView
from chef_backend.ctl import boot
from chef_backend.ctl.context import Context, CtlError, add_compat_flags, confirm
from chef_backend.host.httpcheck import REFUSED, http_status
from chef_backend.host.netloc import host_port
from chef_backend.host.paths import NodePaths, host_path
from chef_backend.supervision.runit import Supervisor


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("remove-node", help="take a stopped node out of the cluster (run on another node)")
    p.add_argument("node", metavar="NODE", help="the node's name, GUID or address")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    add_compat_flags(p)
    p.set_defaults(func=run_remove_node)
    c = sub.add_parser("cleanse", help="stop everything and delete this node's data, config and logs")
    c.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    add_compat_flags(c)
    c.set_defaults(func=run_cleanse)
    u = sub.add_parser("uninstall", help="stop every service and runsvdir, keeping all data")
    u.set_defaults(func=run_uninstall)


def still_running(ctx: Context, store: Store, view: ClusterView, guid: str) -> str | None:
    """Why the node looks alive (its leader manager or etcd member answers, or it keeps posting
    its status), or None. A node that just died still has a status until its lease expires
    (the TTL): wait that long rather than refuse."""
    node = next(n for n in view.nodes if n.guid == guid)
    if http_status(f"http://{host_port(node.address, node.http_port)}/status", 2) not in (None, REFUSED):
        return f"its leader manager answers on {host_port(node.address, node.http_port)}"
    member = [m for m in view.etcd_members if m.get("name") == guid]
    if member and store.member_health(member).get(guid):
        return "its etcd member answers"
    if node.status is not None:
        ttl = ctx.settings["leaderl.leader_ttl_seconds"]
        print(f"Waiting up to {ttl + 5}s for {node.name}'s last status to expire ...", flush=True)
        deadline = time.monotonic() + ttl + 5
        while store.get(keys.STATUS + guid) is not None:
            if time.monotonic() > deadline:
                return "it keeps posting its status (its leader manager runs)"
            time.sleep(0.5)
    return None


def run_remove_node(args: argparse.Namespace) -> int:
    ctx = Context.load()
    me = ctx.require_identity()
    store = ctx.store()
    try:
        view = ClusterView.read(store)
    except (StoreError, OSError) as exc:
        raise CtlError(f"cannot read the cluster from etcd ({describe(exc)}); does etcd have quorum? "
                       "(status; with two nodes lost, see create-cluster --quorum-loss-recovery)") from None
    target = view.node(args.node)
    if target is None:
        names = ", ".join(n.name for n in view.nodes)
        raise CtlError(f"no node {args.node!r} in the cluster (members: {names})")
    if target.guid == me.guid:
        raise CtlError("a node cannot remove itself: run remove-node on another member")
    alive = still_running(ctx, store, view, target.guid)
    if alive:
        raise CtlError(f"{target.name} is still running ({alive}); stop it first "
                       f"(chef-backend-ctl stop on {target.name}) or power it off")
    if isinstance(view.leader, dict) and view.leader.get("guid") == target.guid:
        raise CtlError(f"{target.name} still holds the leader key; wait for a new leader (cluster-status), then retry")
    confirm(f"Remove {target.name} ({target.address}, {target.guid}) from the cluster?", args.yes)
    members = [m for m in view.etcd_members
               if m.get("name") == target.guid or any(target.address in u for u in m.get("peerURLs", []))]
    try:
        for m in members:
            store.member_remove(m["ID"])
        store.delete(keys.NODES + target.guid)
        store.delete(keys.STATUS + target.guid)
        blocked = [g for g in view.blocked if g != target.guid]
        if blocked != list(view.blocked):
            store.put(keys.CONTROL_BLOCKED, blocked)
    except (StoreError, OSError) as exc:
        raise CtlError(f"etcd refused the removal ({describe(exc)}); check status and retry") from None
    print(f"Removed {target.name} ({target.guid}) from the cluster; {len(view.nodes) - 1} nodes remain. "
          f"To bring it back: cleanse it, then join-cluster --recovery.")
    return 0


def stop_everything(paths: NodePaths) -> None:
    """Stop every service and the node's runsvdir."""
    supervisor = Supervisor(paths)
    for name in ("leaderl", "postgresql", "etcd", "elasticsearch"):
        if name in supervisor.installed() and supervisor.runsvdir_pid() is not None:
            supervisor.sv("force-stop", name, wait=60)
    supervisor.shutdown()


def wipe_node_state(paths: NodePaths) -> None:
    """Delete data, logs and services (what create/join made), keeping /etc/chef-backend."""
    for path in (paths.var, paths.log, paths.service_dir, paths.sv_dir, paths.manifest_file):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def run_cleanse(args: argparse.Namespace) -> int:
    paths = NodePaths.current()
    confirm("Stop every chef-backend service on this node and delete its data, configuration and logs? "
            "(the configuration is kept under /root/chef-backend-cleanse-*)", args.yes)
    stop_everything(paths)
    saved = host_path(f"/root/chef-backend-cleanse-{time.strftime('%Y-%m-%dT%H%M%S')}")
    if paths.etc.is_dir():
        saved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(paths.etc, saved)
        saved.chmod(0o700)
    wipe_node_state(paths)
    if paths.etc.is_dir():
        shutil.rmtree(paths.etc)
    print("Cleansed this node." + (f" Its configuration is saved in {saved}." if saved.exists() else ""))
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    paths = NodePaths.current()
    boot.mark_stopped(paths, "chef-backend-ctl uninstall")
    stop_everything(paths)
    print("Stopped every service and runsvdir; data and configuration are kept "
          "(chef-backend-ctl reconfigure brings the node back).")
    return 0

