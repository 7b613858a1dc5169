"""`chef-server-ctl reconfigure`: make this host a running frontend from /etc/opscode/chef-server.rb.

Steps, each safe to repeat: the local HAProxy to the cluster's leader (chef_backend's frontend code, shared
as is); the database; the schema and the superuser (once per cluster, whoever comes first); the API
service and the TLS endpoint under runit; then a check through HTTPS.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import sys
import time
from dataclasses import asdict

import psycopg
import requests
from psycopg import sql

from chef_backend.frontend import cli as haproxy_cli
from chef_backend.frontend.settings import FrontendConfigError
from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths
from chef_backend.supervision.runit import CHPST, ServiceSpec, Supervisor

from .. import config, server
from . import https
from .server_rb import FrontendPaths, ServerConfigError, ServerSettings, parse

API_SERVICE = "opscode-erchef"
SERVICES = ("haproxy", API_SERVICE, "https")


class ReconfigureError(Exception):
    """What failed, in one line."""


def supervisor(paths: FrontendPaths) -> Supervisor:
    return Supervisor(NodePaths.under(paths.var))


def load_settings(paths: FrontendPaths) -> ServerSettings:
    try:
        text = paths.server_rb.read_text()
    except OSError as exc:
        raise ReconfigureError(f"cannot read {paths.server_rb}: {exc.strerror} "
                               "(write it with chef-backend-ctl gen-server-config FQDN -f FILE)") from None
    try:
        return parse(text, default_fqdn=socket.getfqdn())
    except ServerConfigError as exc:
        raise ReconfigureError(f"{paths.server_rb}: {exc}") from None


def route_to_leader(paths: FrontendPaths, tries: int) -> None:
    """The local HAProxy, exactly as chef-backend-frontend reconfigure sets it up."""
    args = argparse.Namespace(config=str(paths.server_rb), dir=str(paths.var), members=None, listen=None, user=None,
                              tries=tries, func=haproxy_cli.reconfigure)
    try:
        haproxy_cli.reconfigure(args)
    except (haproxy_cli.FrontendError, FrontendConfigError) as exc:
        raise ReconfigureError(f"HAProxy: {exc}") from None


def ensure_database(s: ServerSettings, tries: int = 30) -> None:
    """Create the API's database on the cluster (through HAProxy) if it does not exist yet."""
    for attempt in range(tries):
        try:
            with psycopg.connect(s.conninfo("postgres"), autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.db_name,)).fetchone() is None:
                    try:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.db_name)))
                        print(f"created database {s.db_name}")
                    except psycopg.errors.DuplicateDatabase:
                        pass  # another frontend just did
            return
        except psycopg.OperationalError as exc:
            if attempt == tries - 1:
                raise ReconfigureError(f"cannot reach PostgreSQL at {s.db_host}:{s.db_port}: "
                                       f"{' '.join(str(exc).split())}") from None
            time.sleep(1)


def api_settings(s: ServerSettings) -> config.Settings:
    """The service's settings; it does not write the superuser's key (reconfigure does, as root)."""
    return config.Settings(db_conninfo=s.conninfo(), listen_host=s.api_listen, listen_port=s.api_port,
                           workers=s.api_workers, pivotal_key_path="")


def api_service(paths: FrontendPaths, user: str) -> ServiceSpec:
    run = ("#!/bin/sh\nexec 2>&1\n"
           f"exec {CHPST} -u {user}:{user} {shlex.quote(sys.executable)} -m chef_server.server "
           f"--config {shlex.quote(str(paths.api_config))}\n")
    return ServiceSpec(name=API_SERVICE, run_script=run, log_dir=paths.log / API_SERVICE, log_user=user,
                       file_maxbytes=104857600, num_to_keep=10)


def start_or_restart(sup: Supervisor, name: str, changed: bool) -> None:
    if sup.status(name).state != "run":
        sup.sv("up", name)
    elif changed:
        sup.sv("restart", name)


def wait_https(s: ServerSettings, timeout: float = 60.0) -> None:
    host = "127.0.0.1" if s.tls_listen in ("0.0.0.0", "::") else s.tls_listen
    url = f"https://{host}:{s.ssl_port}/_status"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, verify=False, timeout=5, headers={"Host": s.fqdn})
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as exc:
            last = exc.__class__.__name__
        time.sleep(0.5)
    raise ReconfigureError(f"{url} did not answer 200 within {timeout:.0f} s ({last}); see {s.fqdn}'s logs "
                           "under /var/log/opscode")


def reconfigure(paths: FrontendPaths, tries: int = 10) -> int:
    s = load_settings(paths)
    route_to_leader(paths, tries)
    ensure_database(s)
    fsutil.ensure_user(s.api_user)
    settings = api_settings(s)
    try:
        server.prepare(config.Settings(**{**asdict(settings), "pivotal_key_path": str(paths.pivotal_key)}))
    except psycopg.Error as exc:
        raise ReconfigureError(f"schema or superuser: {' '.join(str(exc).split())}") from None
    api_changed = fsutil.write_file(paths.api_config, json.dumps(asdict(settings), indent=2) + "\n", mode=0o640,
                                    owner="root", group=s.api_user)
    pem = https.ensure_pem(s, paths.var)
    tls_config = paths.var / "https" / "haproxy.cfg"
    tls_changed = fsutil.write_file(tls_config, https.render(s, pem), mode=0o640)
    sup = supervisor(paths)
    sup.install(api_service(paths, s.api_user))
    sup.install(https.service_spec(tls_config, paths.log / "https"))
    sup.ensure_running()
    start_or_restart(sup, API_SERVICE, api_changed)
    start_or_restart(sup, "https", tls_changed)
    wait_https(s)
    print(f"Chef Infra Server API: https://{s.fqdn}:{s.ssl_port} (superuser key {paths.pivotal_key})")
    return 0


def status(paths: FrontendPaths) -> int:
    sup = supervisor(paths)
    worst = 0
    for name in SERVICES:
        state = sup.status(name)
        print(f"{state.state}: {name}" + (f": (pid {state.pid}) {state.seconds}s" if state.pid else ""))
        worst = worst or int(state.state != "run")
    return worst


def control(paths: FrontendPaths, command: str, service: str | None) -> int:
    """start/stop/restart one service or all (stop of all also stops runit's tree)."""
    sup = supervisor(paths)
    names = [service] if service else list(SERVICES)
    if command in ("start", "restart"):
        sup.ensure_running()
    sv_command = {"start": "up", "stop": "down", "restart": "restart"}[command]
    failed = 0
    for name in names:
        result = sup.sv(sv_command, name)
        print((result.stdout or result.stderr).strip())
        failed = failed or result.returncode
    if command == "stop" and not service:
        sup.shutdown()
    return 1 if failed else 0
