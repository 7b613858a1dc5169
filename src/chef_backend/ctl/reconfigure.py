"""`reconfigure`: apply chef-backend.rb to a running node.

Every file is rendered again; what changed is printed (secrets hidden while `hide_sensitive` is
true). Then each service gets the least disruptive treatment that applies the change: PostgreSQL
reloads, and restarts only for settings that need it (pending_restart); etcd restarts (one member
at a time keeps quorum); the leader manager re-reads its settings on SIGHUP, so a leader keeps its
leadership. A stopped node (uninstall) is started again.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from pathlib import Path

import psycopg

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import StoreError
from chef_backend.cluster.view import ClusterView
from chef_backend.ctl import boot, waits
from chef_backend.ctl import services as services_cmd
from chef_backend.ctl.context import Context, CtlError, print_config_warnings
from chef_backend.host.addresses import interfaces
from chef_backend.host.paths import NodePaths
from chef_backend.node import client_networks
from chef_backend.node.render import render_node
from chef_backend.secrets import Secrets
from chef_backend.services import postgresql
from chef_backend.supervision.runit import Supervisor


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconfigure", help="apply chef-backend.rb: render, reload or restart what changed")
    p.set_defaults(func=run)


def managed_files(ctx: Context) -> dict[str, Path]:
    """Every file reconfigure renders, by the service it belongs to."""
    paths: NodePaths = ctx.paths
    layout = postgresql.PgLayout.of(ctx.settings, paths)
    files = {"postgresql": [layout.conf, layout.hba], "etcd": [paths.etcd_config], "leaderl": [paths.leaderl_config]}
    found: dict[str, Path] = {}
    for service, items in files.items():
        for path in items:
            found[f"{service}:{path}"] = path
    for sv in sorted(paths.sv_dir.glob("*")):
        for path in [sv / "run", sv / "log" / "run", *sorted((sv / "env").glob("*"))]:
            found[f"{sv.name}-run:{path}"] = path
    return found


def snapshot(files: dict[str, Path]) -> dict[str, str]:
    out = {}
    for key, path in files.items():
        try:
            out[key] = path.read_text()
        except (OSError, UnicodeDecodeError):
            out[key] = ""
    return out


def masked(text: str, secrets: Secrets, hide: bool) -> str:
    if hide:
        for value in secrets.all_values():
            text = text.replace(value, "<hidden>")
    return text


def check_client_networks(ctx: Context) -> list[str] | None:
    """Refuse a postgresql.md5_auth_cidr_addresses that would shut out the cluster's own members
    (client_networks says why that alone is dangerous); warn about entries the cluster's list had.
    Returns the list the cluster last applied (None if etcd cannot say)."""
    try:
        store = ctx.store()
        cluster = store.get(keys.CLUSTER)
        members = [n.address for n in ClusterView.read(store, with_etcd_health=False).nodes]
    except (StoreError, OSError):
        return None  # etcd unreachable: the render itself is still worth doing
    applied = cluster.value.get("md5_auth_cidr_addresses") if cluster and isinstance(cluster.value, dict) else None
    ours = list(ctx.settings["postgresql.md5_auth_cidr_addresses"])
    why = client_networks.refusal(ours, members, interfaces())
    if why:
        raise CtlError(why)
    gone = client_networks.dropped(ours, applied)
    if gone:
        print(f"WARNING: postgresql.md5_auth_cidr_addresses no longer has {', '.join(gone)} (the list the cluster "
              "last applied): clients there are refused by this node whenever it leads; make the change on every "
              "node", file=sys.stderr)
    return applied


def record_client_networks(ctx: Context, applied: list[str] | None) -> None:
    """Remember the list this node applied as the cluster's (join-cluster and the next reconfigure
    compare with it)."""
    ours = list(ctx.settings["postgresql.md5_auth_cidr_addresses"])
    if applied is None or list(applied) == ours:
        return
    try:
        store = ctx.store()
        cluster = store.get(keys.CLUSTER)
        if cluster and isinstance(cluster.value, dict):
            store.put(keys.CLUSTER, dict(cluster.value, md5_auth_cidr_addresses=ours))
    except (StoreError, OSError):
        pass


def run(args: argparse.Namespace) -> int:
    ctx = Context.load()
    print_config_warnings(ctx.settings)
    ident = ctx.identity
    if ident is None:
        # The original's reconfigure converged a fresh install without error, and deployment
        # cookbooks run it before create-cluster/join-cluster. There is nothing to render yet: the
        # node's files need the cluster's secrets and identity.
        print(f"{ctx.paths.config_file} is valid. This node is not part of a cluster yet, so there is "
              "nothing to apply: run chef-backend-ctl create-cluster or join-cluster.")
        return 0
    secrets = ctx.secrets()
    applied = check_client_networks(ctx)
    files = managed_files(ctx)
    before = snapshot(files)
    render_node(ctx.settings, secrets, ident, ctx.paths)
    files = managed_files(ctx)
    after = snapshot(files)
    hide = ctx.settings["hide_sensitive"]
    changed = sorted(k for k in after if before.get(k) != after[k])
    for key in changed:
        path = str(files[key])
        diff = difflib.unified_diff(masked(before.get(key, ""), secrets, hide).splitlines(),
                                    masked(after[key], secrets, hide).splitlines(), path, path, lineterm="", n=0)
        print("\n".join(line for line in diff if not line.startswith("@@")))
    services = {k.split(":", 1)[0] for k in changed}

    supervisor = Supervisor(ctx.paths)
    was_down = supervisor.runsvdir_pid() is None
    actions = []
    boot.clear_stopped(ctx.paths)  # reconfigure brings a stopped node back, and boot then keeps it up
    if was_down:
        services_cmd.start(ctx, supervisor, services_cmd.ordered(supervisor, None), all_services=True)
        actions.append("started the node's services (they were stopped)")
    for name in sorted(s.removesuffix("-run") for s in services if s.endswith("-run")):
        if name in supervisor.installed() and name != "postgresql":
            supervisor.sv("restart", name)
            actions.append(f"restarted {name} (its service definition changed)")
    if "etcd" in services and "etcd-run" not in services:
        supervisor.sv("restart", "etcd")
        waits.etcd_healthy(ctx.store(), 30)
        actions.append("restarted etcd")
    if "leaderl" in services and not any(a.startswith("restarted leaderl") for a in actions):
        supervisor.sv("hup", "leaderl")
        actions.append("leaderl re-read its settings (no leadership change)")
    if "postgresql" in services or "postgresql-run" in services:
        actions.append(apply_postgresql(ctx, secrets, supervisor, restart="postgresql-run" in services))
    record_client_networks(ctx, applied)
    print("Nothing changed." if not changed and not was_down else "\n".join(actions) or "Configuration rendered.")
    return 0


def apply_postgresql(ctx: Context, secrets: Secrets, supervisor: Supervisor, restart: bool) -> str:
    """Reload PostgreSQL; restart it only if a changed setting needs that (or its service did)."""
    s = ctx.settings
    try:
        with psycopg.connect(postgresql.conninfo(s, s.publish_address, secrets.db_superuser_password),
                             autocommit=True) as conn:
            before = conn.execute("SELECT pg_conf_load_time()").fetchone()[0]
            conn.execute("SELECT pg_reload_conf()")
            # The reload is asynchronous: wait until this session has read the new files.
            deadline = time.monotonic() + 10
            while conn.execute("SELECT pg_conf_load_time()").fetchone()[0] == before and time.monotonic() < deadline:
                time.sleep(0.1)
            pending = [r[0] for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart").fetchall()]
            leader = not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            # The followers get the new hashes through replication.
            rehashed = postgresql.rehash_passwords(conn, s, secrets) if leader else []
    except psycopg.Error:
        return "PostgreSQL is not running; it starts with the new settings"
    note = (f"; stored the passwords of {', '.join(rehashed)} as {s['postgresql.password_encryption']}"
            if rehashed else "")
    if not pending and not restart:
        return "reloaded PostgreSQL" + note
    # On the leader its manager starts PostgreSQL again and keeps leading (a brief write pause).
    supervisor.sv("restart", "postgresql", wait=60)
    return f"restarted PostgreSQL ({', '.join(pending) or 'its service definition changed'} needs a restart){note}"
