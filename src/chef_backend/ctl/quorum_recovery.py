"""`create-cluster --quorum-loss-recovery`: re-form the cluster around the one surviving node.

With two of three nodes lost, etcd has no quorum and nothing can be elected. The survivor (which
the operator judges the most current; restore a backup first otherwise) restarts its etcd member
with `force-new-cluster`, keeping its data but dropping every other member, and becomes the leader
of what is then a one-node cluster. The etcd token in the secrets file is replaced, so a secrets
file copied before the recovery is refused at join (its fingerprint no longer matches); the
PostgreSQL passwords stay, so frontends keep working. Fresh nodes then join with the new file.
The search service starts a new, empty cluster on the survivor: reindex from a frontend
(`chef-server-ctl reindex --all`) once the new nodes joined.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets as _random
import shutil

from chef_backend.cluster import store as keys
from chef_backend.cluster.identity import NodeIdentity
from chef_backend.cluster.store import Store, StoreError, describe
from chef_backend.ctl import waits
from chef_backend.ctl.context import Context, CtlError, confirm
from chef_backend.node.render import render_node
from chef_backend.secrets import Secrets
from chef_backend.services import elasticsearch, etcd
from chef_backend.supervision.runit import Supervisor


def restart_etcd(ctx: Context, secrets: Secrets, ident: NodeIdentity, wait: int, force: bool) -> Store:
    """Restart this node's etcd as the only member of its cluster."""
    supervisor = Supervisor(ctx.paths)
    supervisor.sv("force-stop", "etcd", wait=30)
    etcd.write_config(ctx.settings, ctx.paths, secrets, ident.guid, {ident.guid: etcd.peer_url(ctx.settings)},
                      "existing", force_new_cluster=force)
    supervisor.sv("start", "etcd")
    store = ctx.store(timeout=3, local_only=True)
    waits.etcd_healthy(store, wait)
    return store


def reset_records(store: Store, ident: NodeIdentity, secrets: Secrets) -> list[str]:
    """Drop every other node from the cluster's records and let this one lead; returns their names."""
    snap = store.snapshot()
    gone = []
    for guid, entry in snap.under(keys.NODES).items():
        if guid != ident.guid:
            gone.append(str(entry.value.get("name", guid)) if isinstance(entry.value, dict) else guid)
            store.delete(keys.NODES + guid)
    for guid in snap.under(keys.STATUS):
        if guid != ident.guid:
            store.delete(keys.STATUS + guid)
    cluster = snap.value(keys.CLUSTER)
    store.put(keys.CLUSTER, dict(cluster if isinstance(cluster, dict) else {}, fingerprint=secrets.fingerprint,
                                 quorum_loss_recovery_by=ident.guid))
    # The old synchronous set is gone with its members: nothing but this node's own data counts.
    for key in (keys.LEADER, keys.CONTROL_SWITCHOVER, keys.CONTROL_BLOCKED):
        store.delete(key)
    store.put(keys.SYNC, {"members": [], "quorum": 0})
    store.put(keys.CONTROL_FORCE, ident.guid)
    return gone


def reset_search(ctx: Context) -> None:
    """The search cluster lost its quorum too; its index is rebuilt from the database by the
    frontends (chef-server-ctl reindex), so this node starts a new, empty one."""
    supervisor = Supervisor(ctx.paths)
    if "elasticsearch" in supervisor.installed():
        supervisor.sv("force-stop", "elasticsearch", wait=60)
    shutil.rmtree(elasticsearch.data_dir(ctx.paths), ignore_errors=True)


def run(ctx: Context, args: argparse.Namespace) -> int:
    ident = ctx.identity
    if ident is None:
        raise CtlError("--quorum-loss-recovery runs on a surviving member, and this node is not part of a "
                       "cluster (on a fresh node: restore a backup, or create-cluster without the flag)")
    confirm("Make this node the only member of the cluster, keeping its data (every other member is dropped "
            "and must join again with the new secrets file)?", args.yes)
    supervisor = Supervisor(ctx.paths)
    supervisor.ensure_running()
    supervisor.sv("force-stop", "leaderl", wait=60)
    old = ctx.secrets()
    new = dataclasses.replace(old, etcd_initial_cluster_token=_random.token_hex(50))
    try:
        store = restart_etcd(ctx, new, ident, args.etcd_wait_time, force=True)
        gone = reset_records(store, ident, new)
        new.save(ctx.paths.secrets_file, ctx.settings["leaderl.runsv_group"])
        restart_etcd(ctx, new, ident, args.etcd_wait_time, force=False)
        reset_search(ctx)
        render_node(ctx.settings, new, ident, ctx.paths, etcd_endpoints=[],
                    search_members=[ctx.settings.publish_address], search_bootstrap=True)
        if ctx.settings.service_enabled("elasticsearch"):
            supervisor.sv("start", "elasticsearch")
        supervisor.sv("start", "leaderl")
        waits.leader_ready(ctx.settings, timeout=120)
        ctx.store(timeout=3, local_only=True).delete(keys.CONTROL_FORCE)
    except (StoreError, OSError) as exc:
        raise CtlError(f"quorum-loss recovery failed: {describe(exc)}; see chef-backend-ctl tail etcd") from None
    print(f"This node ({ident.guid}) now leads a one-node cluster; dropped: {', '.join(gone) or 'none'}.")
    print(f"The secrets file changed: copy {ctx.paths.secrets_file} to each new node and run there:")
    print(f"  chef-backend-ctl join-cluster {ctx.settings.publish_address} -s /path/to/chef-backend-secrets.json")
    print("The search index starts empty (its cluster lost its quorum too): once search is green, on one "
          "frontend run chef-server-ctl reindex --all")
    return 0
