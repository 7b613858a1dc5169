"""The API service under runit (`chef-server-api`, granian workers): its settings and run script.

It reaches PostgreSQL through the frontend's local HAProxy as erchef does, as the cluster's PostgreSQL
superuser named in chef-server.rb, and listens where nginx (the TLS endpoint) proxies to.
"""

from __future__ import annotations

import dataclasses
import json
import shlex

from psycopg.conninfo import make_conninfo

from chef_backend.supervision.runit import CHPST, ServiceSpec

from ..config import Settings
from .layout import Layout
from .server_rb import ServerConfig

NAME = "chef-server-api"


def local_address(listen: str) -> str:
    """Where this host's own services are reached: the listen address, or loopback when it is a wildcard."""
    return "127.0.0.1" if listen in ("0.0.0.0", "::", "*", "") else listen


def db_conninfo(config: ServerConfig, dbname: str | None = None) -> str:
    """libpq connection string through the local HAProxy to the leader's PostgreSQL (erchef's database unless
    `dbname`)."""
    return make_conninfo(host=local_address(config.haproxy.listen), port=config.haproxy.local_postgresql_port,
                         dbname=dbname or config.db_name, user=config.db_superuser,
                         password=config.db_superuser_password, connect_timeout=5)


def settings(config: ServerConfig, layout: Layout) -> Settings:
    """The API service's settings; chef-server-ctl's API commands read the same file. Search goes, like the
    database, through the local HAProxy where it listens (not always 127.0.0.1: `--listen`)."""
    host = local_address(config.haproxy.listen)
    search_host = f"[{host}]" if ":" in host else host
    return Settings(db_conninfo=db_conninfo(config), listen_host=host, listen_port=config.api_port,
                    workers=config.api_workers, pivotal_key_path=str(layout.pivotal_key),
                    search_url=f"http://{search_host}:{config.haproxy.local_elasticsearch_port}")


def settings_json(s: Settings) -> str:
    return json.dumps(dataclasses.asdict(s), indent=2, sort_keys=True) + "\n"


def service_spec(layout: Layout, python: str, user: str) -> ServiceSpec:
    """Run as the API user. reconfigure (as root) already migrated the schema and wrote the superuser's key;
    the emptied CHEF_SERVER_PIVOTAL_KEY_PATH keeps the service from rewriting a file only root may write."""
    run = (
        "#!/bin/sh\nexec 2>&1\nexport CHEF_SERVER_PIVOTAL_KEY_PATH=\n"
        f"exec {CHPST} -u {user}:{user} {shlex.quote(python)} -m chef_server.server "
        f"--config {shlex.quote(str(layout.api_config))}\n"
    )
    return ServiceSpec(name=NAME, run_script=run, log_dir=layout.log_dir(NAME), log_user=user,
                       file_maxbytes=104857600, num_to_keep=10)
