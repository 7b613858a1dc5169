"""`chef-server-ctl backup` and `restore`: the Chef data (every organization's objects, cookbook files, users,
keys and the superuser's key in `server_secrets`) is one PostgreSQL database, so a backup is a pg_dump of it
(custom format, one consistent snapshot while the server keeps serving) and a restore replays it in one
transaction. Search documents are derived: not backed up, rebuilt by reindex after a restore.

Decisions (file names, "is this database empty", error lines) are the pure functions at the top; the
drivers below run Debian's pg_dump, pg_restore and psql (postgresql-client).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from .. import config, server
from ..storage.migrate import MIGRATION_LOCK
from .reindex import reindex

DEFAULT_DIR = Path("/var/opt/chef-server/backups")
# Derived data: the search outbox is rebuilt by reindex after a restore (and names another cluster's queue).
DERIVED_TABLE_DATA = ("search_outbox",)


class BackupError(Exception):
    """Why a backup or restore did not happen (one line); nothing was written or changed."""


def default_path(now: datetime.datetime, directory: Path = DEFAULT_DIR) -> Path:
    """Where a backup goes without --file: a UTC timestamp that sorts by time."""
    return directory / f"chef-server-backup-{now.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}.dump"


def tool_error(stderr: str, fallback: str) -> str:
    """The first line a PostgreSQL tool printed, without its `pg_dump: error: ` prefix."""
    for line in stderr.splitlines():
        line = line.strip()
        if line:
            return re.sub(r"^(pg_dump: error: |pg_restore: error: |psql: error: |psql:<stdin>:\d+: )", "", line)
    return fallback


def nonempty_reason(orgs: list[str], users: list[str], superuser: str) -> str | None:
    """Why a restore would overwrite Chef data (None: the database holds at most the superuser)."""
    others = sorted(u for u in users if u != superuser)
    if not orgs and not others:
        return None
    held = []
    if orgs:
        held.append(f"{len(orgs)} organization(s) ({', '.join(sorted(orgs)[:3])}{', ...' if len(orgs) > 3 else ''})")
    if others:
        held.append(f"{len(others)} user(s) ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})")
    return " and ".join(held)


def restore_preamble() -> str:
    """Opens the restore's one transaction: no frontend migrates meanwhile, and the old schema (whatever
    migrations it has, so no list of tables here) goes; the dump then recreates everything."""
    return (f"SET client_min_messages = warning;\nBEGIN;\nSELECT pg_advisory_xact_lock({MIGRATION_LOCK});\n"
            "DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")


def backup(conninfo: str, path: Path) -> int:
    """pg_dump into a temp file beside `path` (0600: it holds private keys), then rename; returns the size."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise BackupError(f"cannot write in {path.parent}: {exc.strerror}") from exc
    os.close(fd)
    try:
        excluded = [f"--exclude-table-data={table}" for table in DERIVED_TABLE_DATA]
        done = subprocess.run(["pg_dump", "--format=custom", "--no-password", f"--file={tmp}", *excluded,
                               f"--dbname={conninfo}"], capture_output=True, text=True, errors="replace")
        if done.returncode:
            raise BackupError(f"pg_dump failed: {tool_error(done.stderr, f'exit {done.returncode}')}")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path.stat().st_size


def held_data(conninfo: str, superuser: str) -> str | None:
    """nonempty_reason for the database at `conninfo` (one without our schema yet is empty)."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
            orgs = [r[0] for r in conn.execute("SELECT name FROM orgs")] if "orgs" in tables else []
            users = [r[0] for r in conn.execute("SELECT username FROM users")] if "users" in tables else []
    except psycopg.Error as exc:
        raise BackupError(f"cannot read the database: {' '.join(str(exc).split())}") from exc
    return nonempty_reason(orgs, users, superuser)


def check_dump(path: Path) -> None:
    """Refuse a file pg_restore cannot read (its table of contents); damaged data is caught by the transaction."""
    if not os.access(path, os.R_OK):
        raise BackupError(f"cannot read {path}")
    done = subprocess.run(["pg_restore", "--list", str(path)], capture_output=True, text=True, errors="replace")
    if done.returncode:
        raise BackupError(f"{path} is not a readable backup: {tool_error(done.stderr, 'pg_restore failed')}")


def replay(conninfo: str, path: Path) -> None:
    """pg_restore's SQL streamed into psql inside restore_preamble's transaction, committed only when pg_restore
    read the whole dump and psql ran every statement; any failure rolls everything back.

    Not `pg_restore --single-transaction`: that cannot also drop the old schema (whose tables may differ from
    the dump's after later migrations) in the same transaction."""
    # binary: psql quotes the damaged data it choked on, which need not be UTF-8
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        psql = subprocess.Popen(["psql", "--no-psqlrc", "--quiet", "--no-password", "-v", "ON_ERROR_STOP=1",
                                 f"--dbname={conninfo}"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=psql_err)
        restore = subprocess.Popen(["pg_restore", "--no-owner", "--no-privileges", "--file=-", str(path)],
                                   stdout=subprocess.PIPE, stderr=restore_err)
        committed = killed = False
        try:
            psql.stdin.write(restore_preamble().encode())
            while chunk := restore.stdout.read(1 << 16):
                psql.stdin.write(chunk)
            if restore.wait() == 0:
                psql.stdin.write(b"COMMIT;\n")
                committed = True
        except BrokenPipeError:  # psql stopped at an error: the transaction is rolled back with its session
            pass
        finally:
            if restore.poll() is None:
                restore.kill()
                killed = True
            restore.wait()
            try:
                psql.stdin.close()
            except BrokenPipeError:
                pass
            psql.wait()
        restore_err.seek(0)
        psql_err.seek(0)
        restore_said, psql_said = (f.read().decode(errors="replace") for f in (restore_err, psql_err))
    if restore.returncode and not killed:
        raise BackupError(f"{path} is damaged, nothing changed: "
                          f"{tool_error(restore_said, f'pg_restore exit {restore.returncode}')}")
    if psql.returncode or not committed:
        raise BackupError(f"restore failed, nothing changed: {tool_error(psql_said, 'psql failed')}")


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise BackupError(f"{', '.join(missing)} not found: install Debian's postgresql-client")


def run_backup(args: argparse.Namespace, settings: config.Settings) -> int:
    require("pg_dump")
    if args.file:
        path = Path(args.file)
    else:
        path = default_path(datetime.datetime.now(datetime.UTC))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    size = backup(settings.db_conninfo, path.absolute())
    print(f"{path} ({size} bytes)")
    return 0


def run_restore(args: argparse.Namespace, settings: config.Settings) -> int:
    require("pg_restore", "psql")
    path = Path(args.path)
    check_dump(path)
    held = held_data(settings.db_conninfo, settings.superuser_name)
    if held and not args.force:
        raise BackupError(f"the database holds {held}: restore only into an empty cluster (or --force to replace "
                          "everything in it)")
    if not args.yes:
        if not sys.stdin.isatty():
            raise BackupError("restore replaces the Chef database: pass --yes when stdin is not a terminal")
        answer = input(f"Replace the Chef database with {path}? (Y/N) ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    replay(settings.db_conninfo, path)
    print(f"restored {path}")
    # The API's start work: newer migrations than the dump's, and the restored superuser's key into the file.
    server.prepare(settings)
    print(f"superuser key written to {settings.pivotal_key_path}")
    reindex(settings.db_conninfo, wait=not args.no_wait)
    return 0
