"""PostgreSQL on a backend node: configuration, initialisation, base backups, the run script.

Configuration lives beside the data directory, not in it (`<var>/postgresql/15/*.conf`), so that a
base backup copied from another node never brings that node's settings along. Two include files
are rewritten at run time by the leader manager: `standby.conf` (where to stream from; mode 0600
because it holds the replication password, like the original's recovery.conf) and `managed.conf`
(synchronous_standby_names).

PostgreSQL always boots as a hot standby (the run script creates `standby.signal`); only the leader
manager promotes it, after winning the election. A crash-restart on the leader therefore never
yields a writable node without a valid leader lease.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import psycopg.sql

from chef_backend.config.options import PG_MAJOR
from chef_backend.config.settings import Settings
from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths
from chef_backend.leader.timing import pg_restart_after_crash
from chef_backend.node import client_networks
from chef_backend.secrets import Secrets
from chef_backend.supervision.runit import CHPST, ServiceSpec

if TYPE_CHECKING:  # the leader manager never generates certificates: keep cryptography out of its memory
    from chef_backend.node.certificate import CertPaths

WAL_SEGMENT_MB = 16


@dataclass(frozen=True)
class PgLayout:
    """Where this node's PostgreSQL keeps everything."""

    bin_dir: Path
    base: Path
    user: str

    @classmethod
    def of(cls, settings: Settings, paths: NodePaths) -> PgLayout:
        return cls(Path(settings["postgresql.bin_dir"]), paths.pg_dir(PG_MAJOR), settings["postgresql.username"])

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def conf(self) -> Path:
        return self.base / "postgresql.conf"

    @property
    def hba(self) -> Path:
        return self.base / "pg_hba.conf"

    @property
    def standby_conf(self) -> Path:
        return self.base / "standby.conf"

    @property
    def replication_passfile(self) -> Path:
        return self.base / "replication.pgpass"

    @property
    def managed_conf(self) -> Path:
        return self.base / "managed.conf"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    def bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()


def slot_name(guid: str) -> str:
    """The replication slot a follower streams through on the leader."""
    return f"cb_{guid}"


def _memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)


def memory_settings(settings: Settings) -> tuple[str, str]:
    """shared_buffers and effective_cache_size: as set, or computed from this host's memory."""
    mem = _memory_mb()
    return (settings["postgresql.shared_buffers"] or f"{max(128, min(mem // 4, 8192))}MB",
            settings["postgresql.effective_cache_size"] or f"{max(256, mem // 2)}MB")


def _size(value: int | str, unit_mb: int = 1) -> str:
    return f"{value * unit_mb}MB" if isinstance(value, int) else value


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def render_conf(settings: Settings, layout: PgLayout, cert: CertPaths, guid: str) -> str:
    """postgresql.conf from every postgresql.* setting."""
    s = settings
    shared_buffers, cache = memory_settings(s)
    wal_level = {"hot_standby": "replica", "archive": "replica"}.get(
        s["postgresql.wal_level"], s["postgresql.wal_level"]
    )
    lines = {
        "data_directory": _q(str(layout.data)),
        "hba_file": _q(str(layout.hba)),
        "listen_addresses": _q(settings.publish_address),
        "port": s["postgresql.port"],
        "unix_socket_directories": _q(str(layout.socket_dir)),
        "cluster_name": _q(f"chef-backend-{guid[:8]}"),
        "max_connections": s["postgresql.max_connections"],
        "password_encryption": _q(s["postgresql.password_encryption"]),
        "ssl": "on",
        "ssl_cert_file": _q(str(cert.certificate)),
        "ssl_key_file": _q(str(cert.key)),
        "ssl_ciphers": _q(s["ssl.ciphers"]),
        "shared_buffers": _size(shared_buffers),
        "effective_cache_size": _size(cache),
        "work_mem": _q(s["postgresql.work_mem"]),
        "wal_level": wal_level,
        "wal_log_hints": s["postgresql.wal_log_hints"],
        "max_wal_senders": s["postgresql.max_wal_senders"],
        "max_replication_slots": s["postgresql.max_replication_slots"],
        "wal_keep_size": f"{s['postgresql.wal_keep_segments'] * WAL_SEGMENT_MB}MB",
        "max_wal_size": _size(s["postgresql.max_wal_size"], WAL_SEGMENT_MB),
        "min_wal_size": _size(s["postgresql.min_wal_size"], WAL_SEGMENT_MB),
        "checkpoint_completion_target": s["postgresql.checkpoint_completion_target"],
        "checkpoint_timeout": _q(s["postgresql.checkpoint_timeout"]),
        "checkpoint_warning": _q(s["postgresql.checkpoint_warning"]),
        "archive_mode": s["postgresql.archive_mode"],
        "archive_command": _q(s["postgresql.archive_command"]),
        "archive_timeout": s["postgresql.archive_timeout"],
        "hot_standby": s["postgresql.hot_standby"],
        "hot_standby_feedback": "on",
        # After a backend crash PostgreSQL would reinitialise in place and come back as it was — a
        # primary, showing at once the commits that waited for the standbys. Exiting instead lets runit
        # start it as a standby after a pause, and the leader manager decide (see service_spec).
        "restart_after_crash": "off",
        # Followers notice a dead leader, and the leader a dead follower, within seconds.
        "wal_receiver_status_interval": "'1s'",
        "wal_receiver_timeout": "'10s'",
        "wal_sender_timeout": "'10s'",
        # A follower re-pointed to a new leader reconnects within a quarter second, not five.
        "wal_retrieve_retry_interval": "'250ms'",
        "recovery_target_timeline": "'latest'",
        "tcp_keepalives_idle": s["postgresql.keepalives_idle"],
        "tcp_keepalives_interval": s["postgresql.keepalives_interval"],
        "tcp_keepalives_count": s["postgresql.keepalives_count"],
        "log_checkpoints": "on" if s["postgresql.log_checkpoints"] else "off",
        "log_min_duration_statement": s["postgresql.log_min_duration_statement"],
        "logging_collector": "off",
        "log_line_prefix": "'%m [%p] %q%u@%d '",
    }
    body = "".join(f"{k} = {v}\n" for k, v in lines.items())
    return (
        "# Generated by chef-backend-ctl from chef-backend.rb; edits are overwritten.\n"
        + body
        + f"include_if_exists = {_q(str(layout.managed_conf))}\n"
        + f"include_if_exists = {_q(str(layout.standby_conf))}\n"
    )


def render_hba(settings: Settings) -> str:
    """pg_hba.conf: exactly two lines per postgresql.md5_auth_cidr_addresses entry (seed)."""
    repl = settings["postgresql.replication_user"]
    out = ["# Generated by chef-backend-ctl from postgresql.md5_auth_cidr_addresses.\n"]
    for entry in settings["postgresql.md5_auth_cidr_addresses"]:
        addr = client_networks.hba_address(entry)
        out.append(f"{'host':<8}{'all':<12}{'all':<12}{addr:<23}md5\n")
        out.append(f"{'hostssl':<8}{'replication':<12}{repl:<12}{addr:<23}md5\n")
    return "".join(out)


def render_standby_conf(settings: Settings, layout: PgLayout, leader_host: str | None, guid: str) -> str:
    """Where a follower streams from; an empty primary_conninfo means "wait, follow no one".

    The password stays in the passfile: PostgreSQL logs primary_conninfo whenever it changes."""
    if leader_host is None:
        return "primary_conninfo = ''\nprimary_slot_name = ''\n"
    conninfo = (
        f"host={leader_host} port={settings['postgresql.port']} user={settings['postgresql.replication_user']} "
        f"passfile={layout.replication_passfile} sslmode=require application_name={guid} "
        f"connect_timeout=5 keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=2"
    )
    return f"primary_conninfo = {_q(conninfo)}\nprimary_slot_name = {_q(slot_name(guid))}\n"


def configured_upstream(layout: PgLayout) -> str | None:
    """The host standby.conf streams from, None when it follows no one (or does not exist)."""
    try:
        text = layout.standby_conf.read_text()
    except OSError:
        return None
    m = re.search(r"primary_conninfo = '[^']*\bhost=(\S+)", text)
    return m.group(1) if m else None


def write_replication_passfile(settings: Settings, layout: PgLayout, secrets: Secrets) -> None:
    """The replication password in libpq's passfile format (0600, PostgreSQL's user)."""
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(":", "\\:")

    line = f"*:*:*:{esc(settings['postgresql.replication_user'])}:{esc(secrets.replication_password)}\n"
    fsutil.write_file(layout.replication_passfile, line, mode=0o600, owner=layout.user, group=layout.user)


def write_standby_conf(layout: PgLayout, content: str) -> bool:
    """Rewrite standby.conf (0600); True if it changed."""
    return fsutil.write_file(layout.standby_conf, content, mode=0o600, owner=layout.user, group=layout.user)


def write_managed_conf(layout: PgLayout, synchronous_standby_names: str) -> bool:
    """Rewrite managed.conf; True if it changed."""
    content = f"synchronous_standby_names = {_q(synchronous_standby_names)}\n"
    return fsutil.write_file(layout.managed_conf, content, mode=0o644, owner=layout.user, group=layout.user)


def write_config(settings: Settings, layout: PgLayout, cert: CertPaths, guid: str) -> None:
    """postgresql.conf and pg_hba.conf, owned by the PostgreSQL user."""
    fsutil.make_dir(layout.base, layout.user, 0o700)
    fsutil.make_dir(layout.socket_dir, layout.user, 0o755)
    fsutil.write_file(layout.conf, render_conf(settings, layout, cert, guid), owner=layout.user, group=layout.user)
    fsutil.write_file(layout.hba, render_hba(settings), mode=0o640, owner=layout.user, group=layout.user)
    if not layout.managed_conf.exists():
        write_managed_conf(layout, "")


def as_pg_user(layout: PgLayout, argv: list[str]) -> list[str]:
    """argv run as the PostgreSQL user: through chpst from root, as-is from the leader manager."""
    if os.geteuid() == 0:
        return [CHPST, "-u", f"{layout.user}:{layout.user}", *argv]
    return argv


def _run(argv: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool; a failure becomes a RuntimeError carrying the tool's own message."""
    result = subprocess.run(argv, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(f"{what} failed: {detail[-1] if detail else f'exit {result.returncode}'}")
    return result


def initdb(settings: Settings, layout: PgLayout, secrets: Secrets) -> None:
    """A new data directory whose superuser has the cluster's password, plus the replication role.

    Passwords never appear on a command line: the superuser's goes through a file readable only by
    the PostgreSQL user (deleted right after), the replication user's through stdin.
    """
    fsutil.make_dir(layout.base, layout.user, 0o700)
    fsutil.make_dir(layout.data, layout.user, 0o700)
    pwfile = layout.base / ".initdb-pw"
    fsutil.write_file(pwfile, secrets.db_superuser_password + "\n", mode=0o600, owner=layout.user, group=layout.user)
    try:
        _run(
            as_pg_user(layout, [layout.bin("initdb"), "-D", str(layout.data), "-U", settings["postgresql.db_superuser"],
                              f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                              "--data-checksums"]),
            "initdb",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    # initdb's own config files are unused: ours live beside the data directory.
    for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
        (layout.data / name).unlink(missing_ok=True)
    repl = settings["postgresql.replication_user"]
    # initdb hashed the superuser's password with its own default (SCRAM); hash both roles' passwords
    # the way postgresql.password_encryption says (frontends' clients may only speak MD5).
    sql = (f'CREATE ROLE "{repl}" WITH REPLICATION LOGIN PASSWORD {_q(secrets.replication_password)};\n'
           f'ALTER ROLE "{settings["postgresql.db_superuser"]}" PASSWORD {_q(secrets.db_superuser_password)};\n')
    _run(
        as_pg_user(layout, [layout.bin("postgres"), "--single", "-D", str(layout.data), "-c",
                          f"config_file={layout.conf}", "-c", "log_min_messages=warning", "postgres"]),
        "creating the replication role",
        input=sql,
    )


def rehash_passwords(conn: psycopg.Connection, settings: Settings, secrets: Secrets) -> list[str]:
    """On the leader: store the superuser's and the replication user's passwords hashed as
    postgresql.password_encryption says, where they are not; returns the roles changed. The hash is
    made here (libpq), so no password travels or reaches a log."""
    wanted = settings["postgresql.password_encryption"]
    prefix = "SCRAM-SHA-256$" if wanted == "scram-sha-256" else "md5"
    changed = []
    for role, password in ((settings["postgresql.db_superuser"], secrets.db_superuser_password),
                           (settings["postgresql.replication_user"], secrets.replication_password)):
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
        if row is None or (row[0] or "").startswith(prefix):
            continue
        hashed = conn.pgconn.encrypt_password(password.encode(), role.encode(), wanted.encode()).decode()
        conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(psycopg.sql.Identifier(role),
                                                                      psycopg.sql.Literal(hashed)))
        changed.append(role)
    return changed


def basebackup(settings: Settings, layout: PgLayout, secrets: Secrets, leader_host: str, guid: str) -> None:
    """Copy the leader's data directory through this node's replication slot."""
    fsutil.make_dir(layout.data, layout.user, 0o700)
    env = {
        "PATH": "/usr/bin:/bin",
        "PGPASSWORD": secrets.replication_password,
        "PGSSLMODE": "require",
        "PGCONNECT_TIMEOUT": "10",
    }
    argv = [layout.bin("pg_basebackup"), "-h", leader_host, "-p", str(settings["postgresql.port"]),
            "-U", settings["postgresql.replication_user"], "-D", str(layout.data), "-X", "stream",
            "-S", slot_name(guid), "-c", "fast", "--no-password"]
    _run(as_pg_user(layout, argv), f"pg_basebackup from {leader_host}", env=env)
    for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf", "standby.signal"):
        (layout.data / name).unlink(missing_ok=True)


def service_spec(settings: Settings, layout: PgLayout) -> ServiceSpec:
    """The runit service: always boots as a hot standby; 'down' is a fast shutdown (SIGINT)."""
    data = shlex.quote(str(layout.data))
    run = (
        "#!/bin/sh\n"
        "exec 2>&1\n"
        f"{CHPST} -u {layout.user}:{layout.user} touch {data}/standby.signal || exit 1\n"
        f"exec {CHPST} -e ./env -u {layout.user}:{layout.user} {layout.bin('postgres')} -D {data} "
        f"-c config_file={shlex.quote(str(layout.conf))}\n"
    )
    # runit's 'down' sends TERM, which PostgreSQL treats as a *smart* shutdown that waits for every
    # client to leave. A fast shutdown (INT) is what an operator expects from `stop`.
    fast_stop = '#!/bin/sh\nkill -INT "$(cat supervise/pid)" 2>/dev/null\nexit 0\n'
    # A stop we asked for (fast or immediate shutdown) exits 0. Any other exit — a crash, a kill -9, a
    # backend that died (`restart_after_crash = off`) — waits before runit starts it again: see
    # timing.pg_restart_after_crash (issue 14, path 7: commits that waited for the standbys at the crash
    # become visible on restart, and the frontends may still route here).
    pause = math.ceil(pg_restart_after_crash())
    finish = f'#!/bin/sh\n# $1: the exit code of ./run, -1 when a signal ended it\n[ "$1" = 0 ] || exec sleep {pause}\n'
    return ServiceSpec(
        name="postgresql",
        run_script=run,
        log_dir=settings.path("postgresql.log_directory") or Path("/dev/null"),
        log_user=layout.user,
        file_maxbytes=settings["postgresql.log_rotation.file_maxbytes"],
        num_to_keep=settings["postgresql.log_rotation.num_to_keep"],
        control={"d": fast_stop, "t": fast_stop},
        finish_script=finish,
        start_down=True,  # the leader manager decides when PostgreSQL may run
        environment=settings["postgresql.environment"],
    )


def conninfo(settings: Settings, host: str, password: str, dbname: str = "postgres", timeout_s: int = 2) -> str:
    """A libpq connection string for the superuser (password passed in the string, never argv)."""
    return (
        f"host={host} port={settings['postgresql.port']} user={settings['postgresql.db_superuser']} "
        f"password={password} dbname={dbname} connect_timeout={max(1, timeout_s)} sslmode=prefer "
        f"application_name=chef-backend"
    )


def server_version(layout: PgLayout) -> str:
    out = subprocess.run([layout.bin("postgres"), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().split()[-1]
