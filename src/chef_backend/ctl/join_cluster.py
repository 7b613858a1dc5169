"""`chef-backend-ctl join-cluster PEER`: add this node to the cluster PEER belongs to.

Everything that can refuse the join is checked before anything changes, on this node or any
other: the secrets (fingerprint and passwords), the address, the clock, the disk. Only then is
the etcd member added, the leader's data copied through this node's own replication slot, and
the leader manager started; a failure after that point is rolled back on both sides.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

import psycopg

from chef_backend.cluster import store as keys
from chef_backend.cluster.identity import NodeIdentity
from chef_backend.cluster.store import Snapshot, Store, StoreError, describe
from chef_backend.cluster.view import ClusterView
from chef_backend.config.rbparser import format_value
from chef_backend.config.settings import ConfigError, Settings, load_text
from chef_backend.ctl import preflight, waits
from chef_backend.ctl.context import Context, CtlError, add_compat_flags, confirm
from chef_backend.ctl.create_cluster import check_not_member, common_preflight, rollback
from chef_backend.ctl.node_lifecycle import stop_everything, wipe_node_state
from chef_backend.ctl.progress import Progress, tree_bytes
from chef_backend.host import fsutil
from chef_backend.host.addresses import interfaces
from chef_backend.host.netloc import host_port
from chef_backend.node import client_networks
from chef_backend.node.render import ensure_users, grant_pg_control, render_node
from chef_backend.secrets import Secrets, SecretsError
from chef_backend.services import etcd, etcd_certs, etcd_tls, postgresql
from chef_backend.supervision.runit import Supervisor


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("join-cluster", help="join the cluster that PEER belongs to")
    p.add_argument("peer", metavar="PEER", help="address of any member (leader or follower)")
    p.add_argument(
        "-s",
        "--secrets-file-path",
        dest="secrets",
        metavar="PATH",
        help="absolute path of the cluster's chef-backend-secrets.json",
    )
    p.add_argument(
        "-p",
        "--publish-address",
        "--publish_address",
        dest="publish_address",
        metavar="ADDR",
        help="this node's address (when chef-backend.rb does not set publish_address)",
    )
    p.add_argument("-i", "--vip-interface", dest="vip_interface", help="legacy; written to chef-backend.rb")
    p.add_argument("--recovery", action="store_true", help="re-join a node removed with remove-node")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    add_compat_flags(p)
    p.set_defaults(func=run)


def choose_address(ctx: Context, given: str | None, assume_yes: bool) -> tuple[str, bool]:
    """The publish address and whether chef-backend.rb must be written with it."""
    configured = ctx.settings["publish_address"]
    if given and configured:
        raise CtlError(
            f"chef-backend.rb already sets publish_address {configured}; "
            "drop -p/--publish-address (join-cluster never overwrites chef-backend.rb)"
        )
    if configured:
        return str(configured), False
    if given:
        try:
            ipaddress.ip_address(given)
        except ValueError:
            raise CtlError(f"--publish-address {given!r} is not an IP address") from None
        return given, True
    candidates = preflight.local_addresses()
    if assume_yes or not sys.stdin.isatty():
        raise CtlError(
            "no publish address: set publish_address in chef-backend.rb or pass -p ADDR"
            + (f" (this host has {', '.join(candidates)})" if candidates else "")
        )
    print("Which address should the other nodes and the frontends use for this node?")
    for i, addr in enumerate(candidates, 1):
        print(f"  {i}) {addr}")
    answer = input("Number or address: ").strip()
    if answer.isdigit() and 1 <= int(answer) <= len(candidates):
        return candidates[int(answer) - 1], True
    try:
        ipaddress.ip_address(answer)
    except ValueError:
        raise CtlError(f"{answer!r} is not one of the choices nor an IP address") from None
    return answer, True


def read_cluster(peer: str, settings: Settings) -> tuple[Store, Snapshot]:
    """The cluster's state, read through PEER's etcd, and a store over every member."""
    store = Store([etcd.client_url(settings, peer)], timeout=5, tls=etcd_tls.client_tls(settings))
    settings_port = settings["etcd.client_port"]
    try:
        snap = store.snapshot()
        members = store.members()
    except (StoreError, OSError) as exc:
        raise CtlError(
            f"cannot reach etcd at {host_port(peer, settings_port)} ({exc.__class__.__name__}); "
            "check PEER's address and that chef-backend runs there"
        ) from None
    urls = [m["clientURLs"][0] for m in members if m.get("clientURLs")]
    return store.with_endpoints(urls or store.endpoints), snap


def check_membership(snap: Snapshot, address: str, peer: str, secrets: Secrets) -> dict:
    cluster = snap.value(keys.CLUSTER)
    if not isinstance(cluster, dict):
        raise CtlError(f"{peer} is not part of a chef-backend cluster (no cluster record in its etcd)")
    if cluster.get("fingerprint") != secrets.fingerprint:
        raise CtlError(
            "the secrets file does not belong to this cluster (its fingerprint differs); copy "
            "chef-backend-secrets.json again from a current member"
        )
    for guid, entry in snap.under(keys.NODES).items():
        if entry.value.get("address") == address:
            raise CtlError(
                f"{address} is already a member of the cluster (node {guid}); "
                "remove it first with chef-backend-ctl remove-node, or use another address"
            )
    leader = snap.value(keys.LEADER)
    if not isinstance(leader, dict):
        raise CtlError("the cluster has no leader right now; wait until cluster-status shows one, then retry")
    return leader


def etcd_client_certificates(ctx: Context, secrets: Secrets) -> None:
    """With etcd.tls, this node's etcd certificates, issued before it first talks to the cluster."""
    if etcd_tls.enabled(ctx.settings):
        ensure_users(ctx.settings)
        etcd_certs.ensure_node_certificates(ctx.settings, secrets)


def prepare_recovery(ctx: Context, peer: str) -> None:
    """`--recovery`: re-join with this node's existing chef-backend.rb (and secrets file), after
    remove-node. State left from its earlier membership is wiped; a node still registered is refused."""
    ident = ctx.identity
    if ident is None:
        return
    _, snap = read_cluster(peer, ctx.settings)
    if ident.guid in snap.under(keys.NODES):
        raise CtlError(f"this node is still a member of the cluster ({ident.guid}); run "
                       f"chef-backend-ctl remove-node {ctx.settings.node_name} on another node first")
    print("Removing this node's state from its earlier membership ...", flush=True)
    stop_everything(ctx.paths)
    wipe_node_state(ctx.paths)


def check_hba(ctx: Context, snap: Snapshot, address: str) -> None:
    """Refuse a postgresql.md5_auth_cidr_addresses that shuts out the cluster's members (once this
    node leads they replicate from it); a list other than the cluster's is only warned about, as
    the seed's procedure changes the list node by node."""
    members = [n.address for n in ClusterView.from_snapshot(snap).nodes]
    ours = list(ctx.settings["postgresql.md5_auth_cidr_addresses"])
    why = client_networks.refusal(ours, [*members, address], interfaces())
    if why:
        raise CtlError(why)
    cluster = snap.value(keys.CLUSTER)
    theirs = cluster.get("md5_auth_cidr_addresses") if isinstance(cluster, dict) else None
    if theirs is not None and list(theirs) != ours:
        print(f"WARNING: postgresql.md5_auth_cidr_addresses is {ours} here and {list(theirs)} on the cluster; "
              "frontends must be let in by every node", file=sys.stderr)


def check_passwords(ctx: Context, leader_host: str, secrets: Secrets) -> None:
    """Prove both passwords against the leader before anything changes."""
    s = ctx.settings
    base = f"host={leader_host} port={s['postgresql.port']} dbname=postgres connect_timeout=5 sslmode=require"
    try:
        psycopg.connect(f"{base} user={s['postgresql.db_superuser']}", password=secrets.db_superuser_password).close()
    except psycopg.OperationalError as exc:
        raise CtlError(
            f"the leader {leader_host} refused the superuser password from the secrets file "
            f"({_first_line(exc)}); copy chef-backend-secrets.json again from a current member"
        ) from None
    try:
        psycopg.connect(
            f"{base} user={s['postgresql.replication_user']} replication=true", password=secrets.replication_password
        ).close()
    except psycopg.OperationalError as exc:
        raise CtlError(
            f"the leader {leader_host} refused replication ({_first_line(exc)}); check the secrets "
            "file and that postgresql.md5_auth_cidr_addresses lets this node in"
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else exc.__class__.__name__


def run(args: argparse.Namespace) -> int:
    ctx = Context.load()
    if args.recovery and not ctx.paths.config_file.exists():
        raise CtlError(f"--recovery re-joins with this node's chef-backend.rb, and there is none at "
                       f"{ctx.paths.config_file}; copy it back from /root/chef-backend-cleanse-* first")
    secrets_path = Path(args.secrets) if args.secrets else ctx.paths.secrets_file
    if not secrets_path.is_absolute():
        raise CtlError(f"-s {args.secrets}: give an absolute path")
    try:
        secrets = Secrets.load(secrets_path)
    except SecretsError as exc:
        raise CtlError(str(exc)) from None
    etcd_tls.check_consistent(ctx.settings, secrets)
    if args.recovery:
        etcd_client_certificates(ctx, secrets)
        prepare_recovery(ctx, args.peer)
    check_not_member(ctx)
    address, write_rb = choose_address(ctx, args.publish_address, args.yes)
    if write_rb:
        ctx.settings.values["publish_address"] = address
    preflight.check_address_is_local(address)
    s = ctx.settings
    etcd_client_certificates(ctx, secrets)
    store, snap = read_cluster(args.peer, s)
    leader = check_membership(snap, address, args.peer, secrets)
    check_hba(ctx, snap, address)
    common_preflight(ctx)
    check_passwords(ctx, leader["address"], secrets)
    peers = {
        e.value.get("name", g): f"http://{host_port(e.value['address'], e.value.get('http_port', 7331))}/status"
        for g, e in snap.under(keys.NODES).items()
    }
    preflight.check_clock_drift(peers)
    confirm(
        f"Join this node ({address}) to cluster {snap.value(keys.CLUSTER)['cluster_id']} (leader {leader['address']})?",
        args.yes,
    )

    identity = NodeIdentity.new(snap.value(keys.CLUSTER)["cluster_id"], s.node_name, address)
    rb_before = ctx.paths.config_file.read_text() if ctx.paths.config_file.exists() else None
    secrets_written = False
    member_id: str | None = None
    try:
        ensure_users(s)
        if write_rb:
            write_publish_address(ctx, address, args.vip_interface)
        if secrets_path.resolve() != ctx.paths.secrets_file.resolve():
            secrets.save(ctx.paths.secrets_file, s["leaderl.runsv_group"])
            secrets_written = True
        members = store.members()
        initial = {m["name"]: m["peerURLs"][0] for m in members if m.get("name") and m.get("peerURLs")}
        initial[identity.guid] = etcd.peer_url(s)
        endpoints = [m["clientURLs"][0] for m in members if m.get("clientURLs")]
        search_members = [e.value["address"] for e in snap.under(keys.NODES).values() if isinstance(e.value, dict)]
        render_node(
            s, secrets, identity, ctx.paths, etcd_initial=initial, etcd_state="existing", etcd_endpoints=endpoints,
            search_members=[*search_members, address],
        )
        member_id = store.member_add(etcd.peer_url(s))["ID"]
        print(f"Added etcd member {identity.guid}; starting etcd ...", flush=True)
        supervisor = Supervisor(ctx.paths)
        supervisor.ensure_running()
        grant_pg_control(s, ctx.paths)
        local = ctx.store()
        waits.etcd_healthy(local, 60)
        local.put(keys.NODES + identity.guid, identity.registration(s["leaderl.http_port"], s["postgresql.port"]))
        copy_leader_data(ctx, secrets, leader["address"], identity.guid)
        identity.save(ctx.paths)
        supervisor.sv("up", "leaderl")
        print("Waiting for this node to stream from the leader ...", flush=True)
        waits.node_synced(local, identity.guid, 120)
    except (CtlError, StoreError, OSError, RuntimeError, psycopg.Error) as exc:
        undo_join(ctx, store, identity, member_id, leader["address"], secrets)
        if write_rb:
            restore_rb(ctx, rb_before)
        rollback(ctx, remove_secrets=secrets_written)
        raise CtlError(f"join-cluster failed and was rolled back: {describe(exc)}") from None
    print(f"Joined cluster {identity.cluster_id} as {identity.guid}.")
    print(
        f"Remove the copy of the secrets file you passed with -s ({secrets_path}) once every node has joined."
        if args.secrets
        else ""
    )
    return 0


def copy_leader_data(ctx: Context, secrets: Secrets, leader_host: str, guid: str) -> None:
    s = ctx.settings
    layout = postgresql.PgLayout.of(s, ctx.paths)
    slot = postgresql.slot_name(guid)
    with psycopg.connect(
        postgresql.conninfo(s, leader_host, secrets.db_superuser_password, timeout_s=5), autocommit=True
    ) as conn:
        total = conn.execute("SELECT sum(pg_database_size(datname))::bigint FROM pg_database").fetchone()[0]
        exists = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if not exists:
            try:
                conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
            except psycopg.errors.DuplicateObject:
                pass  # the leader's manager created it meanwhile (it makes one per registered node)
    unsynced = ctx.paths.leaderl_data / "unsynced"
    fsutil.write_file(unsynced, f"initial sync from {leader_host} in progress\n", owner=s["leaderl.username"])
    print(f"Copying the leader's data from {leader_host} (pg_basebackup) ...", flush=True)
    with Progress("base backup", lambda: tree_bytes(layout.data), total):
        postgresql.basebackup(s, layout, secrets, leader_host, guid)
    content = postgresql.render_standby_conf(s, layout, leader_host, guid)
    postgresql.write_standby_conf(layout, content)
    unsynced.unlink()


def undo_join(
    ctx: Context, store: Store, identity: NodeIdentity, member_id: str | None, leader_host: str, secrets: Secrets
) -> None:
    """Take back what a failed join changed on the cluster's side."""
    supervisor = Supervisor(ctx.paths)
    for name in ("leaderl", "postgresql", "etcd"):
        if name in supervisor.installed():
            supervisor.sv("force-stop", name, wait=20)
    try:
        if member_id is not None:
            store.member_remove(member_id)
        store.delete(keys.NODES + identity.guid)
        store.delete(keys.STATUS + identity.guid)
    except (StoreError, OSError) as exc:
        print(f"warning: could not remove this node's etcd records: {exc}", file=sys.stderr)
    try:
        with psycopg.connect(
            postgresql.conninfo(ctx.settings, leader_host, secrets.db_superuser_password), autocommit=True
        ) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s AND NOT active",
                (postgresql.slot_name(identity.guid),),
            )
    except psycopg.Error:
        pass


def write_publish_address(ctx: Context, address: str, vip_interface: str | None) -> None:
    """Record the chosen address in chef-backend.rb (as the original does after a prompt)."""
    path = ctx.paths.config_file
    old = path.read_text() if path.exists() else ""
    lines = [f"publish_address {format_value(address)}\n"]
    if vip_interface:
        lines.append(f"vip_interface {format_value(vip_interface)}\n")
    new = "".join(lines) + old
    try:
        load_text(new, str(path))
    except ConfigError as exc:
        raise CtlError(str(exc)) from None
    fsutil.write_file(path, new, mode=0o644)


def restore_rb(ctx: Context, before: str | None) -> None:
    if before is None:
        ctx.paths.config_file.unlink(missing_ok=True)
    else:
        fsutil.write_file(ctx.paths.config_file, before, mode=0o644)
