"""`pgsql-follow LEADER_IP [--force-basebackup]`: re-sync this node's PostgreSQL from the leader by hand.

The original's failure runbooks stop the leader manager and run this (with PSQL_INTERNAL_OK=true)
when a node's re-sync failed or the WAL it needs is gone. Here the leader manager re-syncs by itself
(rewind, else a fresh copy, retried every 15 s); this is the manual form of the same steps: pg_rewind,
or a base backup with --force-basebackup or when rewinding fails. It only ever overwrites a node
that is not the leader, from the node that is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess

import psycopg

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import StoreError
from chef_backend.ctl import join_cluster
from chef_backend.ctl.context import Context, CtlError
from chef_backend.services import postgresql
from chef_backend.supervision.runit import Supervisor


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pgsql-follow", help="re-sync this node's PostgreSQL from the leader (leader manager stopped)")
    p.add_argument("leader", metavar="LEADER_IP", help="the current leader's address")
    p.add_argument("--force-basebackup", action="store_true",
                   help="copy the leader's data afresh (when the WAL this node needs is gone)")
    p.set_defaults(func=run)


def check_target(leader: dict | None, my_guid: str, given: str) -> str:
    """The leader's address if `given` names it and this node is not it; else why not (CtlError)."""
    if leader is None:
        raise CtlError("the cluster has no leader to follow; see chef-backend-ctl cluster-status")
    if leader.get("guid") == my_guid:
        raise CtlError("this node is the leader; pgsql-follow would overwrite the cluster's data")
    address = str(leader.get("address"))
    if given != address:
        raise CtlError(f"{given} is not the leader; the leader is {address}: chef-backend-ctl pgsql-follow {address}")
    return address


def rewind(ctx: Context, layout: postgresql.PgLayout, password: str, leader: str) -> str | None:
    """pg_rewind this node's data onto the leader's timeline; None on success, else why not."""
    s = ctx.settings
    try:
        with psycopg.connect(postgresql.conninfo(s, leader, password, timeout_s=5), autocommit=True) as conn:
            conn.execute("CHECKPOINT")  # pg_rewind reads the leader's timeline from its control file
    except psycopg.Error as exc:
        return f"cannot reach the leader's PostgreSQL: {str(exc).strip().splitlines()[0]}"
    source = (f"host={leader} port={s['postgresql.port']} user={s['postgresql.db_superuser']} dbname=postgres "
              "connect_timeout=5")
    out = subprocess.run(
        postgresql.as_pg_user(layout, [layout.bin("pg_rewind"), f"--target-pgdata={layout.data}",
                                       f"--source-server={source}"]),
        text=True, input="", capture_output=True, timeout=3600,
        env={"PATH": "/usr/bin:/bin", "PGPASSWORD": password},
    )
    if out.returncode != 0:
        return (out.stderr or out.stdout).strip().splitlines()[-1] if (out.stderr or out.stdout).strip() else "failed"
    (layout.data / "postgresql.auto.conf").unlink(missing_ok=True)
    return None


def run(args: argparse.Namespace) -> int:
    ctx = Context.load()
    ident = ctx.require_identity()
    supervisor = Supervisor(ctx.paths)
    if supervisor.status("leaderl").state == "run":
        raise CtlError("the leader manager is running and re-syncs this node by itself; to do it by hand, "
                       "chef-backend-ctl stop leaderl first")
    try:
        leader = ctx.store().get(keys.LEADER)
    except (StoreError, OSError) as exc:
        raise CtlError(f"cannot read the leader from etcd ({exc})") from None
    address = check_target(leader.value if leader else None, ident.guid, args.leader)
    if os.environ.get("PSQL_INTERNAL_OK") != "true":
        print("(PSQL_INTERNAL_OK=true is not needed here: the checks above keep the leader's data safe)")
    secrets = ctx.secrets()
    layout = postgresql.PgLayout.of(ctx.settings, ctx.paths)
    markers = ctx.paths.leaderl_data
    supervisor.sv("stop", "postgresql", wait=60)
    why = "--force-basebackup" if args.force_basebackup else rewind(ctx, layout, secrets.db_superuser_password, address)
    if why is None:
        print(f"Rewound this node's PostgreSQL onto {address}'s timeline (pg_rewind).")
        postgresql.write_standby_conf(layout, postgresql.render_standby_conf(ctx.settings, layout, address,
                                                                             ident.guid))
    else:
        print(f"Copying the leader's data afresh ({why}).")
        aside = layout.base / "data.pgsql-follow"
        shutil.rmtree(aside, ignore_errors=True)
        if layout.data.exists():
            layout.data.rename(aside)
        try:
            join_cluster.copy_leader_data(ctx, secrets, address, ident.guid)
        except Exception:
            shutil.rmtree(layout.data, ignore_errors=True)
            if aside.exists():
                aside.rename(layout.data)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    for marker in ("was_leader", "unsynced"):
        (markers / marker).unlink(missing_ok=True)
    supervisor.sv("start", "postgresql", wait=60)
    print(f"PostgreSQL follows {address}. Start the leader manager: chef-backend-ctl start leaderl")
    return 0
