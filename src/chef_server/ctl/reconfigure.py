"""`chef-server-ctl reconfigure`: make this host a frontend of the chef-backend cluster named in chef-server.rb.

In order: HAProxy routing to the cluster's leader (chef_backend's frontend code, as `chef-backend-frontend
reconfigure` does it), the database and schema (as root, once per cluster: migrations under an advisory
lock, the superuser and its key written beside chef-server.rb), the API service, then the TLS endpoint;
all under one runit tree. Running it again applies a changed chef-server.rb or member list.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import requests
import urllib3
from psycopg import errors, sql

from chef_backend.frontend.cli import FrontendError, configure_haproxy, unreachable_parent
from chef_backend.host import fsutil
from chef_backend.supervision.runit import ServiceSpec, Supervisor

from .. import server
from . import api_service, certificate, knife_config, nginx, server_rb
from .layout import NGINX_WORKER_USER, Layout


def layout_of(args: argparse.Namespace) -> Layout:
    return Layout(dir=Path(args.dir).absolute(), etc=Path(args.config).absolute().parent)


def ensure_database(config: server_rb.ServerConfig, timeout: float = 30.0) -> None:
    """Create erchef's database on the cluster unless it exists (two frontends may race: both are fine)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(api_service.db_conninfo(config, "postgres"), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (config.db_name,)).fetchone()
                if not exists:
                    try:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config.db_name)))
                        print(f"created database {config.db_name}")
                    except (errors.DuplicateDatabase, errors.UniqueViolation):
                        pass  # another frontend just did
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                reason = " ".join(str(exc).split())
                raise FrontendError(f"cannot reach PostgreSQL through HAProxy: {reason}") from None
            time.sleep(1)


def install(sup: Supervisor, spec: ServiceSpec, config_changed: bool) -> bool:
    """Install a service definition; True if the service was installed before and its run script or
    configuration changed (a newly installed one starts with the new configuration anyway)."""
    run = sup.paths.sv_dir / spec.name / "run"
    fresh = spec.name not in sup.installed()
    before = run.read_text() if run.exists() else None
    sup.install(spec)
    return not fresh and (config_changed or before != spec.run_script)


def start_or_apply(sup: Supervisor, name: str, changed: bool, apply: str) -> None:
    """Start a stopped service; send `apply` (an sv command) to a running one whose configuration changed."""
    if sup.status(name).state != "run":
        sup.sv("up", name)
    elif changed:
        sup.sv(apply, name)
        print(f"{name}: {apply} for the new configuration")


def wait_status(url: str, timeout: float = 90.0) -> int:
    """Poll GET /_status through the TLS endpoint until it answers 200; returns the last status (0: no answer)."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # our own self-signed certificate
    deadline = time.monotonic() + timeout
    code = 0
    while time.monotonic() < deadline:
        try:
            code = requests.get(url, timeout=5, verify=False).status_code
        except requests.RequestException:
            code = 0
        if code == 200:
            break
        time.sleep(0.5)
    return code


def reconfigure(args: argparse.Namespace) -> int:
    layout = layout_of(args)
    config = server_rb.load(Path(args.config), layout.dir, args.listen)
    sup = Supervisor(layout.runit)

    print(configure_haproxy(config.haproxy, supervisor_of=lambda _: sup, tries=args.tries))

    user = config.api_user
    fsutil.ensure_user(user)
    for path in (Path(sys.executable), Path(sys.executable).resolve(), layout.dir):
        blocked = unreachable_parent(path, user)
        if blocked is not None:
            raise FrontendError(f"the API runs as {user}, which cannot enter {blocked}: install the package where "
                                "it can (scripts/setup: /opt/chef-backend/embedded), and give a --dir it can reach")
    ensure_database(config)
    if args.workers:
        config = replace(config, api_workers=args.workers)
    settings = api_service.settings(config, layout)
    fsutil.make_dir(layout.api_config.parent, mode=0o755)
    api_changed = fsutil.write_file(layout.api_config, api_service.settings_json(settings), mode=0o640,
                                    owner="root", group=user)
    try:
        server.prepare(settings)
    except (OSError, psycopg.Error) as exc:
        raise FrontendError(f"cannot prepare the database: {' '.join(str(exc).split())}") from None
    api_changed = install(sup, api_service.service_spec(layout, sys.executable, user), api_changed)

    if config.ssl_certificate and config.ssl_certificate_key:
        cert, key = config.ssl_certificate, config.ssl_certificate_key
        for path in (cert, key):
            if not path.is_file():
                raise FrontendError(f"{path} (nginx['ssl_certificate'] or ['ssl_certificate_key']) does not exist")
        origin = "from chef-server.rb"
    else:
        cert, key = layout.generated_certificate(config.fqdn)
        origin = "generated, self-signed" if certificate.ensure(cert, key, config.fqdn, config.haproxy.listen) \
            else "self-signed"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        fsutil.make_dir(layout.nginx_temp / sub, NGINX_WORKER_USER, 0o700)
    nginx_changed = fsutil.write_file(layout.nginx_conf, nginx.render(config, layout, cert, key))
    nginx_changed = install(sup, nginx.service_spec(layout, user), nginx_changed)

    sup.ensure_running()
    start_or_apply(sup, api_service.NAME, api_changed, "restart")
    start_or_apply(sup, nginx.NAME, nginx_changed, "hup")

    host = api_service.local_address(config.haproxy.listen)
    base = f"https://{nginx.listen_directive(host, config.ssl_port)}".removesuffix(":443")
    code = wait_status(base + "/_status")
    if code != 200:
        raise FrontendError(f"{base}/_status answered {code or 'nothing'} after 90 s; see "
                            f"{layout.log_dir(api_service.NAME)}/current and {layout.log_dir(nginx.NAME)}/current")
    print(f"chef-server-api: http://{host}:{config.api_port} ({settings.workers} workers)")
    print(f"TLS endpoint: {base} (certificate {cert}, {origin})")
    fsutil.write_file(layout.pivotal_config, knife_config.render_pivotal_rb(base, layout.pivotal_key), mode=0o600)
    print(f"superuser key: {layout.pivotal_key} (knife: -c {layout.pivotal_config})")
    print(f"Chef server ready: {base}")
    return 0
