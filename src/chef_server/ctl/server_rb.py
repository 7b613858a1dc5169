"""What a frontend's `/etc/opscode/chef-server.rb` (as `chef-backend-ctl gen-server-config` prints it) says
to `chef-server-ctl reconfigure`: the HAProxy settings (`chef_backend_members`, `haproxy[...]`, read by
chef_backend's frontend code), the PostgreSQL superuser erchef connects as, and the TLS endpoint."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chef_backend.frontend.settings import (
    FrontendConfigError,
    FrontendSettings,
    from_values,
    read_server_rb,
    validated,
)

DEFAULT_CONFIG = Path("/etc/opscode/chef-server.rb")


@dataclass(frozen=True)
class ServerConfig:
    fqdn: str
    haproxy: FrontendSettings
    db_superuser: str
    db_superuser_password: str
    ssl_certificate: Path | None = None  # nginx['ssl_certificate']; None: a generated self-signed one
    ssl_certificate_key: Path | None = None
    ssl_port: int = 443  # nginx['ssl_port']
    non_ssl_port: int = 80  # nginx['non_ssl_port']: redirects to https
    api_user: str = "opscode"  # opscode_erchef['user']
    api_port: int = 8000  # opscode_erchef['port']
    api_workers: int = 2  # opscode_erchef['workers']
    db_name: str = "opscode_chef"  # opscode_erchef['db_name']


def from_server_rb_values(values: dict[str, Any], where: str, base: FrontendSettings) -> ServerConfig:
    """The frontend's settings from parsed chef-server.rb values; every error names the setting."""
    haproxy = from_values(values, where, base)
    fqdn = values.get("fqdn")
    if not isinstance(fqdn, str) or not fqdn.strip() or any(c.isspace() for c in fqdn):
        raise FrontendConfigError(f"{where}: fqdn must be the frontend's host name, got {fqdn!r}")
    user = values.get("postgresql.db_superuser")
    password = values.get("postgresql.db_superuser_password")
    if not isinstance(user, str) or not user:
        raise FrontendConfigError(f"{where}: postgresql['db_superuser'] must name the cluster's PostgreSQL "
                                  "superuser (gen-server-config writes it)")
    if not isinstance(password, str) or not password:
        raise FrontendConfigError(f"{where}: postgresql['db_superuser_password'] must be set "
                                  "(gen-server-config writes it)")
    cert, key = values.get("nginx.ssl_certificate"), values.get("nginx.ssl_certificate_key")
    if (cert is None) != (key is None):
        raise FrontendConfigError(f"{where}: set both nginx['ssl_certificate'] and nginx['ssl_certificate_key'], "
                                  "or neither (a self-signed certificate is generated)")
    for name, value in (("ssl_certificate", cert), ("ssl_certificate_key", key)):
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            raise FrontendConfigError(f"{where}: nginx['{name}'] must be an absolute path, got {value!r}")
    ports = {}
    for key_name, default in (("nginx.ssl_port", 443), ("nginx.non_ssl_port", 80), ("opscode_erchef.port", 8000)):
        port = values.get(key_name, default)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise FrontendConfigError(f"{where}: {_ruby(key_name)} must be a port number (1-65535), got {port!r}")
        ports[key_name] = port
    workers = values.get("opscode_erchef.workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        raise FrontendConfigError(f"{where}: opscode_erchef['workers'] must be 1..64, got {workers!r}")
    names = {}
    for key_name, default in (("opscode_erchef.user", "opscode"), ("opscode_erchef.db_name", "opscode_chef")):
        value = values.get(key_name, default)
        if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,62}", value):
            raise FrontendConfigError(f"{where}: {_ruby(key_name)} must be a lower-case name, got {value!r}")
        names[key_name] = value
    return ServerConfig(fqdn=fqdn.strip(), haproxy=haproxy, db_superuser=user, db_superuser_password=password,
                        ssl_certificate=Path(cert) if cert else None, ssl_certificate_key=Path(key) if key else None,
                        ssl_port=ports["nginx.ssl_port"], non_ssl_port=ports["nginx.non_ssl_port"],
                        api_user=names["opscode_erchef.user"], api_port=ports["opscode_erchef.port"],
                        api_workers=workers, db_name=names["opscode_erchef.db_name"])


def _ruby(dotted: str) -> str:
    """`nginx.ssl_port` as operators write it: nginx['ssl_port']."""
    service, key = dotted.split(".", 1)
    return f"{service}['{key}']"


def load(path: Path, dir: Path, listen: str | None = None) -> ServerConfig:
    """Read chef-server.rb; `listen` (the --listen option) overrides haproxy['listen'] for every service."""
    config = from_server_rb_values(read_server_rb(path), str(path), FrontendSettings(dir=dir))
    if listen:
        config = replace(config, haproxy=validated(replace(config.haproxy, listen=listen), "--listen"))
    return config
