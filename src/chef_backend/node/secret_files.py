"""Every file that holds a password or a key, with the owner, group and mode it must have.

The seed's table, adapted to our paths: the secrets JSON `root:chef_pgsql 0640`, the leader
manager's config and PostgreSQL's standby settings `chef_pgsql 0600`, and likewise etcd's config
(`chef-backend 0600`), the node's generated TLS key (`chef_pgsql 0600`) and, with etcd.tls,
the etcd server and client keys. Files are written with
these modes; `enforce` restores them (create, join, reconfigure) and `loosened` lets `status`
warn when someone changed them.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from chef_backend.config.settings import Settings
from chef_backend.host.paths import NodePaths
from chef_backend.services import etcd, etcd_tls, postgresql


@dataclass(frozen=True)
class SecretFile:
    path: Path
    owner: str
    group: str
    mode: int
    holds: str


def secret_files(settings: Settings, paths: NodePaths) -> list[SecretFile]:
    """The secret files this node has (or will have)."""
    pg_user = settings["postgresql.username"]
    layout = postgresql.PgLayout.of(settings, paths)
    files = [
        SecretFile(paths.secrets_file, "root", settings["leaderl.runsv_group"], 0o640, "the cluster's passwords"),
        SecretFile(paths.leaderl_config, settings["leaderl.username"], settings["leaderl.username"], 0o600,
                   "the superuser password"),
        SecretFile(layout.replication_passfile, pg_user, pg_user, 0o600, "the replication password"),
        SecretFile(layout.standby_conf, pg_user, pg_user, 0o600, "where replication connects"),
        SecretFile(paths.etcd_config, etcd.USER, etcd.USER, 0o600, "etcd's settings"),
    ]
    if not settings.path("ssl.certificate_key"):
        data_dir = settings.path("ssl.data_dir")
        if data_dir is not None:
            files.append(SecretFile(data_dir / f"{settings.node_name}.key", pg_user, pg_user, 0o600,
                                    "the node's TLS key"))
    if etcd_tls.enabled(settings):
        _, server_key = etcd_tls.server_files(settings)
        client = etcd_tls.client_tls(settings)
        assert client is not None
        files += [SecretFile(server_key, etcd.USER, etcd.USER, 0o600, "etcd's TLS key"),
                  SecretFile(Path(client.key), settings["leaderl.username"], settings["leaderl.username"], 0o600,
                             "the etcd client key")]
    return files


def loosened(files: list[SecretFile]) -> list[str]:
    """One line per existing secret file whose owner, group or mode differs from the table."""
    problems = []
    for f in files:
        try:
            st = f.path.stat()
        except FileNotFoundError:
            continue
        owner = _name(pwd.getpwuid, st.st_uid)
        group = _name(grp.getgrgid, st.st_gid)
        mode = stat.S_IMODE(st.st_mode)
        if (owner, group, mode) != (f.owner, f.group, f.mode):
            problems.append(f"{f.path} (holds {f.holds}) is {owner}:{group} {mode:04o}, "
                            f"must be {f.owner}:{f.group} {f.mode:04o}")
    return problems


def enforce(files: list[SecretFile]) -> None:
    """Give every existing secret file its owner, group and mode."""
    for f in files:
        if f.path.exists():
            os.chown(f.path, pwd.getpwnam(f.owner).pw_uid, grp.getgrnam(f.group).gr_gid)
            os.chmod(f.path, f.mode)


def _name(lookup, ident: int) -> str:
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)
