"""What a frontend's `/etc/opscode/chef-server.rb` (as `chef-backend-ctl gen-server-config` prints it) says
to `chef-server-ctl reconfigure`: the HAProxy settings (`chef_backend_members`, `haproxy[...]`, read by
chef_backend's frontend code), the PostgreSQL superuser erchef connects as, and the TLS endpoint."""

from __future__ import annotations

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
    port = values.get("nginx.ssl_port", 443)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise FrontendConfigError(f"{where}: nginx['ssl_port'] must be a port number (1-65535), got {port!r}")
    return ServerConfig(fqdn=fqdn.strip(), haproxy=haproxy, db_superuser=user, db_superuser_password=password,
                        ssl_certificate=Path(cert) if cert else None, ssl_certificate_key=Path(key) if key else None,
                        ssl_port=port)


def load(path: Path, dir: Path, listen: str | None = None) -> ServerConfig:
    """Read chef-server.rb; `listen` (the --listen option) overrides haproxy['listen'] for every service."""
    config = from_server_rb_values(read_server_rb(path), str(path), FrontendSettings(dir=dir))
    if listen:
        config = replace(config, haproxy=validated(replace(config.haproxy, listen=listen), "--listen"))
    return config
