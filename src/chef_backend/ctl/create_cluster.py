"""`chef-backend-ctl create-cluster`: bootstrap a new cluster whose first leader is this node."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from chef_backend.cluster import store as keys
from chef_backend.cluster.identity import NodeIdentity
from chef_backend.cluster.store import StoreError, describe
from chef_backend.ctl import preflight, quorum_recovery, waits
from chef_backend.ctl.context import Context, CtlError, add_compat_flags, confirm
from chef_backend.node.render import ensure_users, grant_pg_control, render_node
from chef_backend.secrets import Secrets
from chef_backend.services import etcd, etcd_certs, postgresql
from chef_backend.supervision.runit import Supervisor


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("create-cluster", help="create a new cluster with this node as its first leader")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--etcd-wait-time", type=int, default=30, metavar="SECS", help="how long to wait for etcd")
    p.add_argument(
        "--elasticsearch-wait-time",
        type=int,
        default=30,
        metavar="SECS",
        help="accepted for compatibility (the search node joins its cluster on its own)",
    )
    p.add_argument("--quorum-loss-recovery", action="store_true",
                   help="on the survivor of a two-node loss: re-form the cluster around this node")
    add_compat_flags(p)
    p.set_defaults(func=run)


def check_not_member(ctx: Context) -> None:
    """Refuse to create or join when this node already holds a cluster's data."""
    ident = ctx.identity
    if ident is not None:
        raise CtlError(
            f"this node is already a member of cluster {ident.cluster_id} as {ident.guid}; "
            "run chef-backend-ctl cleanse first to start over"
        )
    layout = postgresql.PgLayout.of(ctx.settings, ctx.paths)
    for leftover in (layout.data, ctx.paths.etcd_data / "member"):
        if leftover.exists() and any(leftover.iterdir()):
            raise CtlError(f"{leftover} holds data from an earlier install; run chef-backend-ctl cleanse first")


def common_preflight(ctx: Context) -> str:
    """Checks shared by create and join; returns the publish address."""
    address = ctx.settings.publish_address
    preflight.check_address_is_local(address)
    s = ctx.settings
    http_addr = s["leaderl.http_address"]
    preflight.check_ports_free(
        address,
        {"postgresql": s["postgresql.port"], "etcd client": s["etcd.client_port"], "etcd peer": s["etcd.peer_port"]},
    )
    preflight.check_ports_free(http_addr, {"leaderl http": s["leaderl.http_port"]})
    if s.local_address:  # etcdctl's and curl's defaults (see Settings.local_address)
        preflight.check_ports_free(s.local_address, {"etcd client": s["etcd.client_port"]})
    preflight.check_disk([ctx.paths.var, ctx.paths.log], s["leaderl.health_check.disk_min_space_mb"])
    return address


def run(args: argparse.Namespace) -> int:
    ctx = Context.load()
    if args.quorum_loss_recovery:
        return quorum_recovery.run(ctx, args)
    check_not_member(ctx)
    address = common_preflight(ctx)
    question = f"Create a new chef-backend cluster with this node ({address}) as its leader?"
    if not args.yes and not sys.stdin.isatty():
        # The original went ahead when no terminal could answer, and deployment scripts rely on it
        # (`create-cluster --accept-license`). Nothing is lost: check_not_member refused any data.
        print(f"{question} No terminal to ask: going ahead, as the original did (--yes says so).")
    else:
        confirm(question, args.yes)

    existing = ctx.secrets() if ctx.paths.secrets_file.exists() else None
    generated = existing is None
    secrets = etcd_certs.ensure_ca(ctx.settings, existing or Secrets.generate())
    if existing is not None and secrets is not existing:
        # The operator's own secrets file, now with the etcd CA that joining nodes need.
        ensure_users(ctx.settings)
        secrets.save(ctx.paths.secrets_file, ctx.settings["leaderl.runsv_group"])
    identity = form_cluster(ctx, secrets, generated, address, args.etcd_wait_time,
                            lambda layout: postgresql.initdb(ctx.settings, layout, secrets))
    print(f"Cluster {identity.cluster_id} created; this node ({identity.guid}) is its leader.")
    print(f"Copy {ctx.paths.secrets_file} to each other backend and run there:")
    print(f"  chef-backend-ctl join-cluster {address} -s /path/to/chef-backend-secrets.json")
    return 0


def form_cluster(ctx: Context, secrets: Secrets, write_secrets: bool, address: str, etcd_wait_time: int,
                 make_data: Callable[[postgresql.PgLayout], None]) -> NodeIdentity:
    """Make this node the first member and leader of a new cluster, with the data `make_data`
    puts in place (initdb, or a backup's); everything is rolled back if a step fails."""
    settings = ctx.settings
    identity = NodeIdentity.new(uuid.uuid4().hex, settings.node_name, address)
    try:
        if write_secrets:
            ensure_users(settings)
            secrets.save(ctx.paths.secrets_file, settings["leaderl.runsv_group"])
        render_node(
            settings,
            secrets,
            identity,
            ctx.paths,
            etcd_initial={identity.guid: etcd.peer_url(settings)},
            etcd_state="new",
            etcd_endpoints=[],
            search_members=[address],
            search_bootstrap=True,
        )
        layout = postgresql.PgLayout.of(settings, ctx.paths)
        print("Initialising PostgreSQL ...", flush=True)
        make_data(layout)
        supervisor = Supervisor(ctx.paths)
        supervisor.ensure_running()
        grant_pg_control(settings, ctx.paths)
        print("Starting etcd ...", flush=True)
        store = ctx.store()
        waits.etcd_healthy(store, etcd_wait_time)
        store.put(
            keys.CLUSTER,
            {"cluster_id": identity.cluster_id, "fingerprint": secrets.fingerprint, "created_at": time.time(),
             "md5_auth_cidr_addresses": settings["postgresql.md5_auth_cidr_addresses"]},
        )
        store.put(
            keys.NODES + identity.guid,
            identity.registration(settings["leaderl.http_port"], settings["postgresql.port"]),
        )
        identity.save(ctx.paths)
        print("Starting the leader manager ...", flush=True)
        supervisor.sv("up", "leaderl")
        waits.leader_ready(settings, timeout=90)
    except (CtlError, StoreError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        rollback(ctx, remove_secrets=write_secrets)
        raise CtlError(f"forming the cluster failed and was rolled back: {describe(exc)}") from None
    return identity


def rollback(ctx: Context, remove_secrets: bool) -> None:
    """Undo a failed create or join on this node: stop everything, remove what was written."""
    supervisor = Supervisor(ctx.paths)
    for name in ("leaderl", "postgresql", "etcd"):
        if name in supervisor.installed():
            supervisor.sv("force-stop", name, wait=20)
    supervisor.shutdown()
    for path in (ctx.paths.var, ctx.paths.sv_dir, ctx.paths.service_dir):
        shutil.rmtree(path, ignore_errors=True)
    if remove_secrets:
        ctx.paths.secrets_file.unlink(missing_ok=True)
