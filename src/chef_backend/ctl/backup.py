"""`backup` and `restore` (facts §7): disaster recovery into a new cluster.

`backup` copies this node's PostgreSQL data (a base backup through replication, from a follower
unless --force) into /var/opt/chef-backup/chef-backend-backup-<time>.tar.gz (root, 0600), with
chef-backend.rb, the secrets file and a manifest. The archive holds the PostgreSQL passwords: the
roles inside the data carry them anyway, and `restore` keeps them, so that frontends' chef-server.rb
keeps working. Keep the archive as safe as the database itself.

`restore PATH` makes a fresh node the first member and leader of a new cluster holding that data,
with a new secrets file (new etcd token and cluster identity, the backup's PostgreSQL passwords);
the other nodes then join it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import psycopg

from chef_backend import __version__
from chef_backend.config.settings import load_text
from chef_backend.ctl import create_cluster
from chef_backend.ctl.context import Context, CtlError, add_compat_flags, confirm
from chef_backend.ctl.progress import Progress, tree_bytes
from chef_backend.host import fsutil
from chef_backend.host.httpcheck import http_status
from chef_backend.host.netloc import host_port
from chef_backend.secrets import Secrets, SecretsError
from chef_backend.services import etcd_certs, postgresql

MANIFEST = "manifest.json"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backup", help="archive this node's data under /var/opt/chef-backup/")
    b.add_argument("-f", "--force", action="store_true", help="also on the leader")
    b.add_argument("-y", "--yes", action="store_true", help="accepted for compatibility")
    b.add_argument("--timeout", type=int, default=600, metavar="SECS", help="give up after SECS (default 600)")
    add_compat_flags(b)
    b.set_defaults(func=run_backup)
    r = sub.add_parser("restore", help="create a new cluster from a backup archive")
    r.add_argument("path", metavar="PATH", help="a chef-backend-backup-*.tar.gz")
    r.add_argument("-p", "--publish-address", "--publish_address", dest="publish_address", metavar="ADDR")
    r.add_argument("-d", "--staging-dir", metavar="DIR",
                   help="where to unpack the archive first (default /var/opt/chef-backend-restore; removed after)")
    r.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    r.add_argument("--etcd-wait-time", type=int, default=30, metavar="SECS")
    add_compat_flags(r)
    r.set_defaults(func=run_restore)


# --- backup ------------------------------------------------------------------------------------------

def run_backup(args: argparse.Namespace) -> int:
    ctx = Context.load()
    ident = ctx.require_identity()
    s = ctx.settings
    if http_status(f"http://{host_port(s.http_address, s['leaderl.http_port'])}/leader", 2) == 200 and not args.force:
        raise CtlError("this node is the leader: run backup on a follower (or pass --force to load the leader)")
    secrets = ctx.secrets()
    deadline = time.monotonic() + args.timeout
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    fsutil.make_dir(ctx.paths.backup, mode=0o700)
    staging = ctx.paths.backup / f".chef-backend-backup-{stamp}.partial"
    archive = ctx.paths.backup / f"chef-backend-backup-{stamp}.tar.gz"
    layout = postgresql.PgLayout.of(s, ctx.paths)
    try:
        fsutil.make_dir(staging / "postgresql", mode=0o700)
        with psycopg.connect(postgresql.conninfo(s, s.publish_address, secrets.db_superuser_password),
                             autocommit=True) as conn:
            total = conn.execute("SELECT sum(pg_database_size(datname))::bigint FROM pg_database").fetchone()[0]
        argv = [layout.bin("pg_basebackup"), "-h", s.publish_address, "-p", str(s["postgresql.port"]),
                "-U", s["postgresql.replication_user"], "-D", str(staging / "postgresql"), "-Ft", "-X", "stream",
                "-c", "fast", "--no-password"]
        env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": secrets.replication_password, "PGSSLMODE": "require"}
        with Progress("backup", lambda: tree_bytes(staging), total):
            result = subprocess.run(argv, env=env, capture_output=True, text=True,
                                    timeout=max(1.0, deadline - time.monotonic()))
        if result.returncode != 0:
            raise CtlError(f"pg_basebackup failed: {result.stderr.strip().splitlines()[-1:]}")
        shutil.copy(ctx.paths.config_file, staging / "chef-backend.rb")
        fsutil.write_file(staging / "chef-backend-secrets.json", secrets.to_json(), mode=0o600)
        fsutil.write_file(staging / MANIFEST, json.dumps({
            "format": 1, "chef_backend": __version__, "created_at": time.time(), "node": ident.guid,
            "cluster_id": ident.cluster_id, "postgresql": postgresql.server_version(layout),
        }, indent=2) + "\n", mode=0o600)
        with Progress("compressing", lambda: archive.stat().st_size if archive.exists() else 0, None):
            fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                for item in sorted(staging.iterdir()):
                    if time.monotonic() > deadline:
                        raise subprocess.TimeoutExpired("tar", args.timeout)
                    tar.add(item, arcname=item.name)
    except subprocess.TimeoutExpired:
        archive.unlink(missing_ok=True)
        raise CtlError(f"the backup did not finish within {args.timeout}s; nothing was kept "
                       "(raise --timeout)") from None
    except (OSError, psycopg.Error, CtlError) as exc:
        archive.unlink(missing_ok=True)
        raise CtlError(f"backup failed: {exc}".splitlines()[0]) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Backup written to {archive} ({archive.stat().st_size / 1048576:.1f} MB)")
    return 0


# --- restore -----------------------------------------------------------------------------------------

def extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract only plain files and directories that stay inside `dest` (an archive is input)."""
    members = tar.getmembers()
    for m in members:
        target = (dest / m.name).resolve()
        if not (m.isfile() or m.isdir()) or (target != dest.resolve() and dest.resolve() not in target.parents):
            raise ValueError(f"refusing archive member {m.name!r}")
        m.mode &= 0o700 if m.isdir() else 0o600
    tar.extractall(dest, members=members)


def unpack(path: Path, staging: Path) -> tuple[dict, Secrets]:
    """Check and unpack an archive; returns its manifest and secrets."""
    if not path.is_file():
        raise CtlError(f"{path} does not exist")
    shutil.rmtree(staging, ignore_errors=True)
    fsutil.make_dir(staging, mode=0o700)
    try:
        with tarfile.open(path, "r:gz") as tar, Progress("unpacking", lambda: tree_bytes(staging), None):
            extract(tar, staging)
        manifest = json.loads((staging / MANIFEST).read_text())
        secrets = Secrets.load(staging / "chef-backend-secrets.json")
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise CtlError(f"{path} is not a chef-backend backup archive ({exc})") from None
    except SecretsError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise CtlError(f"{path}: {exc}") from None
    if not (staging / "postgresql" / "base.tar").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise CtlError(f"{path} holds no PostgreSQL base backup")
    return manifest, secrets


def place_data(staging: Path, layout: postgresql.PgLayout) -> None:
    """The backup's data directory, as PostgreSQL's user, without its own config files."""
    fsutil.make_dir(layout.base, layout.user, 0o700)
    fsutil.make_dir(layout.data, layout.user, 0o700)
    with tarfile.open(staging / "postgresql" / "base.tar") as tar:
        extract(tar, layout.data)
    wal = staging / "postgresql" / "pg_wal.tar"
    if wal.exists():
        with tarfile.open(wal) as tar:
            extract(tar, layout.data / "pg_wal")
    for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf", "standby.signal"):
        (layout.data / name).unlink(missing_ok=True)
    subprocess.run(["chown", "-R", f"{layout.user}:{layout.user}", str(layout.data)], check=True)
    os.chmod(layout.data, 0o700)


def run_restore(args: argparse.Namespace) -> int:
    ctx = Context.load()
    create_cluster.check_not_member(ctx)
    configured = ctx.settings["publish_address"]
    if args.publish_address and configured and args.publish_address != configured:
        raise CtlError(f"chef-backend.rb already sets publish_address {configured}; drop --publish-address")
    address = args.publish_address or configured
    if not address:
        raise CtlError("no publish address: set publish_address in chef-backend.rb or pass --publish-address ADDR")
    if not configured:
        text = f"publish_address '{address}'\n" + (ctx.paths.config_file.read_text()
                                                   if ctx.paths.config_file.exists() else "")
        ctx.settings = load_text(text, str(ctx.paths.config_file))
        fsutil.write_file(ctx.paths.config_file, text, mode=0o644)
    create_cluster.common_preflight(ctx)
    path = Path(args.path).absolute()
    staging = Path(args.staging_dir).absolute() if args.staging_dir else ctx.paths.var.parent / "chef-backend-restore"
    manifest, old = unpack(path, staging)
    confirm(f"Create a new cluster on this node ({address}) from the backup of {time.ctime(manifest['created_at'])}?",
            args.yes)
    # New cluster identity and etcd token; the data's own PostgreSQL passwords.
    secrets = etcd_certs.ensure_ca(ctx.settings, dataclasses.replace(
        Secrets.generate(), db_superuser_password=old.db_superuser_password,
        replication_password=old.replication_password))
    try:
        identity = create_cluster.form_cluster(ctx, secrets, True, address, args.etcd_wait_time,
                                               lambda layout: place_data(staging, layout))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Restored {path} into new cluster {identity.cluster_id}; this node leads it.")
    print(f"Copy {ctx.paths.secrets_file} to each other backend and run there:")
    print(f"  chef-backend-ctl join-cluster {address} -s /path/to/chef-backend-secrets.json")
    print("The search index starts empty: on one frontend, run chef-server-ctl reindex --all")
    return 0
