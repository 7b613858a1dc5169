"""What a frontend's /etc/opscode/chef-server.rb (from `chef-backend-ctl gen-server-config`) says about the
API service and its TLS endpoint, with Chef's defaults; and where a frontend keeps its files.

HAProxy's own settings (members, ports, listen) are read by chef_backend.frontend.settings, shared as is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chef_backend.config import rbparser


class ServerConfigError(ValueError):
    """chef-server.rb cannot be used; the message names the setting."""


@dataclass(frozen=True)
class FrontendPaths:
    """Chef's layout (/etc/opscode, /var/opt/opscode, /var/log/opscode); CHEF_SERVER_ROOT=DIR puts it under DIR."""

    etc: Path
    var: Path
    log: Path

    @classmethod
    def current(cls) -> FrontendPaths:
        root = Path(os.environ.get("CHEF_SERVER_ROOT", "/"))
        return cls(etc=root / "etc/opscode", var=root / "var/opt/opscode", log=root / "var/log/opscode")

    @property
    def server_rb(self) -> Path:
        return self.etc / "chef-server.rb"

    @property
    def api_config(self) -> Path:
        return self.etc / "chef-server-api.json"

    @property
    def pivotal_key(self) -> Path:
        return self.etc / "pivotal.pem"


@dataclass(frozen=True)
class ServerSettings:
    fqdn: str
    db_host: str
    db_port: int
    db_user: str
    db_password: str
    db_name: str
    api_listen: str
    api_port: int
    api_workers: int
    api_user: str
    tls_listen: str
    ssl_port: int
    non_ssl_port: int
    ssl_certificate: str | None
    ssl_certificate_key: str | None

    def conninfo(self, dbname: str | None = None) -> str:
        parts = {"host": self.db_host, "port": self.db_port, "dbname": dbname or self.db_name, "user": self.db_user,
                 "password": self.db_password, "connect_timeout": 5}
        return " ".join(f"{k}={_quote(str(v))}" for k, v in parts.items())


def _quote(value: str) -> str:
    """A libpq conninfo value."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _get(values: dict[str, Any], key: str, default: Any, kind: type) -> Any:
    value = values.get(key, default)
    if kind is int and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536):
        raise ServerConfigError(f"{key.replace('.', '[')}{']' if '.' in key else ''} must be a port number, "
                                f"got {value!r}")
    if kind is str and (not isinstance(value, str) or not value):
        raise ServerConfigError(f"{key} must be a non-empty string, got {value!r}")
    return value


def parse(text: str, default_fqdn: str) -> ServerSettings:
    """The API and TLS settings of a chef-server.rb (pure). The local HAProxy's address is the default
    for the API and TLS endpoint, so several frontends can share one host on loopback addresses."""
    try:
        values = {a.key: a.value for a in rbparser.parse(text)}
    except rbparser.RbSyntaxError as exc:
        raise ServerConfigError(f"line {exc.line}: {exc.message}") from None
    host_listen = values.get("haproxy.listen", "0.0.0.0")
    local = "127.0.0.1" if host_listen in ("0.0.0.0", "::") else host_listen
    password = values.get("postgresql.db_superuser_password")
    if not isinstance(password, str):
        raise ServerConfigError("postgresql['db_superuser_password'] is missing (chef-backend-ctl gen-server-config "
                                "writes it)")
    cert, key = values.get("nginx.ssl_certificate"), values.get("nginx.ssl_certificate_key")
    if (cert is None) != (key is None):
        raise ServerConfigError("set both nginx['ssl_certificate'] and nginx['ssl_certificate_key'], or neither")
    workers = values.get("opscode_erchef.workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        raise ServerConfigError(f"opscode_erchef['workers'] must be 1..64, got {workers!r}")
    return ServerSettings(
        fqdn=_get(values, "fqdn", default_fqdn, str),
        db_host=_get(values, "postgresql.vip", local, str),
        db_port=_get(values, "haproxy.local_postgresql_port", 5432, int),
        db_user=_get(values, "postgresql.db_superuser", "opscode-pgsql", str),
        db_password=password,
        db_name=_get(values, "opscode_erchef.db_name", "opscode_chef", str),
        api_listen=_get(values, "opscode_erchef.listen", local, str),
        api_port=_get(values, "opscode_erchef.port", 8000, int),
        api_workers=workers,
        api_user=_get(values, "opscode_erchef.user", "opscode", str),
        tls_listen=_get(values, "nginx.listen", host_listen, str),
        ssl_port=_get(values, "nginx.ssl_port", 443, int),
        non_ssl_port=_get(values, "nginx.non_ssl_port", 80, int),
        ssl_certificate=cert,
        ssl_certificate_key=key,
    )
