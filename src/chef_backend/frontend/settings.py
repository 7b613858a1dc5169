"""A frontend's HAProxy settings: Chef server's defaults (facts §4.1), then what chef-server.rb
says (`chef_backend_members`, `haproxy[...]`), then the command line."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from chef_backend.config import rbparser

DEFAULT_DIR = Path("/var/opt/chef-backend-frontend")


class FrontendConfigError(ValueError):
    """chef-server.rb or an option cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class FrontendSettings:
    members: tuple[str, ...] = ()
    listen: str = "0.0.0.0"
    local_postgresql_port: int = 5432
    remote_postgresql_port: int = 5432
    local_elasticsearch_port: int = 9200
    remote_elasticsearch_port: int = 9200
    leaderl_healthcheck_port: int = 7331
    etcd_port: int = 2379
    dir: Path = DEFAULT_DIR
    user: str = "haproxy"

    @property
    def haproxy_dir(self) -> Path:
        return self.dir / "haproxy"

    @property
    def config_file(self) -> Path:
        return self.haproxy_dir / "haproxy.cfg"

    @property
    def stats_socket(self) -> Path:
        return self.haproxy_dir / "haproxy.sock"


PORT_KEYS = ("local_postgresql_port", "remote_postgresql_port", "local_elasticsearch_port",
             "remote_elasticsearch_port", "leaderl_healthcheck_port", "etcd_port")


def from_server_rb(path: Path, base: FrontendSettings = FrontendSettings()) -> FrontendSettings:
    """Apply what a chef-server.rb (as gen-server-config writes it) sets for HAProxy."""
    return from_values(read_server_rb(path), str(path), base)


def read_server_rb(path: Path) -> dict[str, Any]:
    """chef-server.rb's settings by dotted key (`haproxy.listen`, `postgresql.db_superuser`)."""
    try:
        assignments = rbparser.parse(path.read_text())
    except OSError as exc:
        raise FrontendConfigError(f"cannot read {path}: {exc.strerror}") from None
    except rbparser.RbSyntaxError as exc:
        raise FrontendConfigError(f"{path}:{exc.line}: {exc.message}") from None
    return {a.key: a.value for a in assignments}


def from_values(values: dict[str, Any], where: str, base: FrontendSettings = FrontendSettings()) -> FrontendSettings:
    """The HAProxy settings of parsed chef-server.rb values (`where` names the file in errors)."""
    if values.get("use_chef_backend") is not True:
        raise FrontendConfigError(f"{where} does not set `use_chef_backend true`: it is not a chef-backend frontend's "
                                  "config (make it with chef-backend-ctl gen-server-config)")
    changes: dict[str, Any] = {}
    members = values.get("chef_backend_members")
    if members is not None:
        changes["members"] = _members(members, f"{where}: chef_backend_members")
    for key in ("listen", *PORT_KEYS):
        if f"haproxy.{key}" in values:
            changes[key] = values[f"haproxy.{key}"]
    return validated(replace(base, **changes), where)


def _members(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(m, str) and m.strip() for m in value):
        raise FrontendConfigError(f"{where} must be a non-empty list of backend addresses, "
                                  f'e.g. ["10.0.0.1", "10.0.0.2", "10.0.0.3"]')
    return tuple(m.strip() for m in value)


def validated(s: FrontendSettings, where: str) -> FrontendSettings:
    """Check types and ranges; every message names the setting and what it wants."""
    for f in fields(s):
        value = getattr(s, f.name)
        if f.name in PORT_KEYS and (not isinstance(value, int) or isinstance(value, bool)
                                    or not 0 < value < 65536):
            raise FrontendConfigError(f"{where}: haproxy['{f.name}'] must be a port number (1-65535), got {value!r}")
    if not isinstance(s.listen, str) or not s.listen or any(c.isspace() for c in s.listen):
        raise FrontendConfigError(f"{where}: haproxy['listen'] must be an address, got {s.listen!r}")
    if not s.members:
        raise FrontendConfigError("no backend members: give --members ADDR,ADDR,... or a chef-server.rb "
                                  "with chef_backend_members")
    return s


def parse_members_option(text: str) -> tuple[str, ...]:
    return _members([m for m in text.split(",") if m.strip()] or [""], "--members")
