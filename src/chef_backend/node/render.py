"""Render every file a node runs from: chef-backend.rb + secrets + identity → services.

Used by create-cluster, join-cluster and reconfigure. Idempotent: running it again with the same
inputs changes nothing.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata

from chef_backend import __version__
from chef_backend.cluster import endpoints as known_endpoints
from chef_backend.cluster.identity import NodeIdentity
from chef_backend.config.settings import Settings
from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths
from chef_backend.leader.config import ManagerConfig
from chef_backend.node.certificate import ensure_certificate
from chef_backend.node.secret_files import enforce, secret_files
from chef_backend.secrets import Secrets
from chef_backend.services import elasticsearch, etcd, etcd_certs, etcd_tls, leaderl, postgresql
from chef_backend.supervision.runit import Supervisor


def ensure_users(settings: Settings) -> None:
    """Service users of the seed's table: PostgreSQL and leaderl as chef_pgsql, etcd and search as chef-backend."""
    for user in {settings["postgresql.username"], settings["leaderl.username"], etcd.USER}:
        fsutil.ensure_user(user)
    fsutil.ensure_user(settings["leaderl.runsv_group"])


def render_node(
    settings: Settings,
    secrets: Secrets,
    identity: NodeIdentity,
    paths: NodePaths,
    etcd_initial: dict[str, str] | None = None,
    etcd_state: str = "existing",
    etcd_endpoints: list[str] | None = None,
    search_members: list[str] | None = None,
    search_bootstrap: bool = False,
) -> None:
    """Write every configuration file and runit service of this node. `search_members` are the
    addresses the search node looks for its cluster at (default: as configured); with
    `search_bootstrap` it forms a new search cluster."""
    etcd_tls.check_consistent(settings, secrets)
    ensure_users(settings)
    pg_user = settings["postgresql.username"]
    for d in (paths.etc, paths.var, paths.log, paths.opt):
        fsutil.make_dir(d, mode=0o755)
    fsutil.make_dir(paths.leaderl_data.parent, settings["leaderl.username"], 0o750)
    fsutil.make_dir(paths.leaderl_data, settings["leaderl.username"], 0o700)

    cert = ensure_certificate(settings, pg_user)
    layout = postgresql.PgLayout.of(settings, paths)
    postgresql.write_config(settings, layout, cert, identity.guid)
    postgresql.write_replication_passfile(settings, layout, secrets)

    if etcd_initial is None:
        previous = json.loads(paths.etcd_config.read_text())
        etcd_initial = dict(item.split("=", 1) for item in previous["initial-cluster"].split(","))
        etcd_state = previous["initial-cluster-state"]
    etcd_certs.ensure_node_certificates(settings, secrets)
    etcd.write_config(settings, paths, secrets, identity.guid, etcd_initial, etcd_state)

    if etcd_endpoints is None:
        etcd_endpoints = known_endpoints.load(paths)
    else:
        known_endpoints.save(paths, etcd_endpoints)
    local = etcd.client_url(settings)
    endpoints = [local, *(e for e in (etcd_endpoints or []) if e != local)]
    ManagerConfig(settings, secrets, identity, tuple(endpoints)).save(
        paths.leaderl_config, settings["leaderl.username"]
    )

    if settings.service_enabled("elasticsearch"):
        elasticsearch.check_installed(settings)
        members = search_members or elasticsearch.configured_members(paths) or [settings.publish_address]
        elasticsearch.write_config(settings, paths, secrets, identity.guid, members, search_bootstrap)

    supervisor = Supervisor(paths)
    specs = [
        elasticsearch.service_spec(settings, paths),
        etcd.service_spec(settings, paths),
        postgresql.service_spec(settings, layout),
        leaderl.service_spec(settings, paths),
    ]
    for spec in specs:
        if settings.service_enabled(spec.name):
            supervisor.install(spec)
        else:
            supervisor.remove(spec.name)
    write_manifest(settings, paths)
    # Also a secrets file the operator copied in with a loose mode (scp keeps 0644).
    enforce(secret_files(settings, paths))


def grant_pg_control(settings: Settings, paths: NodePaths) -> None:
    """Let the leader manager (not root) drive the postgresql service through `sv`."""
    user = settings["leaderl.username"]
    supervise = paths.sv_dir / "postgresql" / "supervise"
    fsutil.chown(supervise, user)
    for item in supervise.iterdir():
        fsutil.chown(item, user)


def _dpkg_version(package: str) -> str | None:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return out.stdout.strip() or None


def write_manifest(settings: Settings, paths: NodePaths) -> None:
    """version-manifest.json: the versions of everything this node runs."""
    layout = postgresql.PgLayout.of(settings, paths)
    software = {
        "chef-backend": __version__,
        "python": platform.python_version(),
        "postgresql": postgresql.server_version(layout),
        "etcd": etcd.version(settings),
        "runit": _dpkg_version("runit"),
        "search": elasticsearch.version(settings),
    }
    for dist in ("psycopg", "etcd3gw", "h11", "cryptography"):
        try:
            software[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            software[dist] = None
    doc = {"name": "chef-backend", "version": __version__, "software": software}
    fsutil.write_file(paths.manifest_file, json.dumps(doc, indent=2) + "\n")
