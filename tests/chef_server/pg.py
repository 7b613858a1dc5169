"""A throw-away PostgreSQL server for the frontend's tests: initdb as the postgres user in a temp dir."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg

HOST = os.environ.get("CHEF_FE_TEST_PG_HOST", "127.0.0.31")  # the frontend tests' address (backend tests own .11-.14)
PORT = 5432


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql)")
    return os.path.dirname(found[-1])


class Postgres:
    """initdb + postgres as the `postgres` user, listening on HOST:PORT, trust authentication."""

    def __init__(self, host: str = HOST, port: int = PORT):
        self.host, self.port = host, port
        self.base = tempfile.mkdtemp(prefix="chef-fe-pg-")
        self.data = os.path.join(self.base, "data")
        self.proc: subprocess.Popen | None = None
        self.user = pwd.getpwnam("postgres")

    def _as_postgres(self, args: list[str], **kw) -> subprocess.Popen:
        def demote():
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)
        preexec = demote if os.geteuid() == 0 else None
        return subprocess.Popen(args, preexec_fn=preexec, **kw)

    def start(self) -> None:
        """initdb, run, and create the opscode_chef database."""
        if os.geteuid() == 0:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        initdb = self._as_postgres([f"{_bindir()}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                                    "--no-sync", "-E", "UTF8"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = initdb.communicate(timeout=120)
        if initdb.returncode:
            raise RuntimeError(f"initdb failed: {err.decode()}")
        self.run()
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE opscode_chef")

    def run(self) -> None:
        """Start the postmaster on the existing data directory and wait until it answers."""
        bindir = _bindir()
        log_path = os.path.join(self.base, "log")
        with open(log_path, "wb") as log:
            self.proc = self._as_postgres(
                [f"{bindir}/postgres", "-D", self.data, "-h", self.host, "-p", str(self.port), "-k", self.base,
                 "-c", "fsync=off", "-c", "max_connections=200"], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    with open(log_path) as log:
                        raise RuntimeError(f"postgres did not start: {log.read()}") from exc
                time.sleep(0.2)

    def halt(self) -> None:
        """Stop the postmaster, keeping the data: an outage (fast shutdown: SIGINT drops every connection)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)

    def dsn(self, dbname: str = "opscode_chef") -> str:
        return f"host={self.host} port={self.port} dbname={dbname} user=postgres"

    def stop(self) -> None:
        """Stop the postmaster and remove everything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)
