"""Load and validate chef-backend.rb into the effective settings of a node."""

from __future__ import annotations

import difflib
import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chef_backend.config.options import OPTIONS, Option
from chef_backend.config.rbparser import Assignment, RbSyntaxError, format_value, parse
from chef_backend.host.paths import host_path


class ConfigError(ValueError):
    """A problem in chef-backend.rb; str() is the one-line message for the operator."""


_TYPE_NAMES = {
    "string": "a string",
    "path": "a string (a path)",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "an array",
    "hash": "a hash",
    "string_or_int": "a string or an integer",
}


def _type_ok(opt: Option, value: Any) -> bool:
    if value is None:
        return opt.nullable
    t = opt.type
    if t in ("string", "path"):
        return isinstance(value, str)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "array":
        return isinstance(value, list)
    if t == "hash":
        return isinstance(value, dict)
    if t == "string_or_int":
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    raise AssertionError(t)


def _ruby_type(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "a hash"


def nearest_key(key: str) -> str | None:
    """The valid option closest to a misspelt one, if any is close."""
    matches = difflib.get_close_matches(key, list(OPTIONS), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # A right leaf under a wrong service (or the reverse) still deserves a hint.
    leaf = key.rsplit(".", 1)[-1]
    leaves = [k for k in OPTIONS if k.rsplit(".", 1)[-1] == leaf]
    return leaves[0] if leaves else None


@dataclass
class Settings:
    """The effective settings: defaults overlaid with what chef-backend.rb sets."""

    values: dict[str, Any] = field(default_factory=dict)
    explicit: set[str] = field(default_factory=set)
    source: Path | None = None

    @classmethod
    def defaults(cls) -> Settings:
        return cls({k: _copy(o.default) for k, o in OPTIONS.items()})

    def get(self, key: str) -> Any:
        if key not in self.values:
            raise KeyError(f"no such option {key}")
        return self.values[key]

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def path(self, key: str) -> Path | None:
        """A path option mapped onto this node's root (see chef_backend.host.paths)."""
        value = self.get(key)
        return None if value is None else host_path(value)

    @property
    def publish_address(self) -> str:
        addr = self.values["publish_address"]
        if not addr:
            raise ConfigError("publish_address is not set: add  publish_address 'IP'  to chef-backend.rb")
        return str(addr)

    @property
    def node_name(self) -> str:
        return str(self.values["fqdn"] or socket.getfqdn())

    @property
    def http_address(self) -> str:
        """Where this node's leader manager can be reached (its bind address unless a wildcard)."""
        addr = str(self.values["leaderl.http_address"])
        return self.publish_address if addr in ("0.0.0.0", "::") else addr

    def service_enabled(self, service: str) -> bool:
        return bool(self.values[f"{service}.enable"])

    def render(self) -> str:
        """The effective settings, one `key = value` line each (show-config)."""
        return "".join(f"{k} = {format_value(v)}\n" for k, v in sorted(self.values.items()))


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _check(assign: Assignment, where: str) -> None:
    opt = OPTIONS.get(assign.key)
    if opt is None:
        hint = nearest_key(assign.key)
        suffix = f"; did you mean '{hint}'?" if hint else "; see chef-backend-ctl gen-sample-backend-config"
        raise ConfigError(f"{where}:{assign.line}: unknown option '{assign.key}'{suffix}")
    if not _type_ok(opt, assign.value):
        null = " or nil" if opt.nullable else ""
        raise ConfigError(
            f"{where}:{assign.line}: {assign.key} must be {_TYPE_NAMES[opt.type]}{null}, "
            f"not {_ruby_type(assign.value)} ({format_value(assign.value)})"
        )
    _check_value(opt, assign.value, f"{where}:{assign.line}")


def _check_value(opt: Option, value: Any, where: str) -> None:
    key = opt.key
    if value is None:
        return
    if key == "ip_version" and value not in ("ipv4", "ipv6"):
        raise ConfigError(f"{where}: ip_version must be 'ipv4' or 'ipv6', not {format_value(value)}")
    if key in ("publish_address", "vip"):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be an IP address, not {format_value(value)}") from None
    if key.endswith("_port") or key.endswith(".port"):
        if not 1 <= value <= 65535:
            raise ConfigError(f"{where}: {key} must be a port number between 1 and 65535, not {value}")
    if opt.type == "array" and key.endswith(("md5_auth_cidr_addresses", "disk_paths")):
        bad = [v for v in value if not isinstance(v, str) or not v or any(c.isspace() for c in v)]
        if bad:
            raise ConfigError(f"{where}: {key} must list non-empty strings without spaces, not {format_value(bad[0])}")
    if opt.type == "hash":
        bad_keys = [k for k in value if not str(k).replace("_", "").isalnum()]
        if bad_keys:
            raise ConfigError(f"{where}: {key} has an invalid variable name {format_value(bad_keys[0])}")
    positive = (
        "leader_ttl_seconds",
        "interval_seconds",
        "db_timeout",
        "file_maxbytes",
        "num_to_keep",
        "heartbeat_interval",
        "election_timeout",
        "max_connections",
        "http_acceptors",
    )
    if key.endswith(positive) and isinstance(value, int) and value <= 0:
        raise ConfigError(f"{where}: {key} must be greater than 0, not {value}")


def _cross_checks(settings: Settings, where: str) -> None:
    hb = settings["etcd.heartbeat_interval"]
    el = settings["etcd.election_timeout"]
    if el < 5 * hb:
        raise ConfigError(
            f"{where}: etcd.election_timeout ({el}) must be at least 5 times etcd.heartbeat_interval ({hb})"
        )
    if settings["leaderl.leader_ttl_seconds"] < 4:
        raise ConfigError(f"{where}: leaderl.leader_ttl_seconds must be at least 4 (fencing needs a margin)")


def load_text(text: str, where: str = "chef-backend.rb") -> Settings:
    """Parse and validate chef-backend.rb text; raise ConfigError with file:line on any problem."""
    try:
        assignments = parse(text)
    except RbSyntaxError as exc:
        raise ConfigError(f"{where}:{exc.line}: {exc.message}") from None
    settings = Settings.defaults()
    for assign in assignments:
        _check(assign, where)
        settings.values[assign.key] = assign.value
        settings.explicit.add(assign.key)
    _cross_checks(settings, where)
    return settings


def load(path: Path) -> Settings:
    """Load chef-backend.rb from `path`; a missing file means all defaults."""
    if not path.exists():
        return Settings.defaults()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    settings = load_text(text, str(path))
    settings.source = path
    return settings


def sample_config() -> str:
    """Every option with its default, as gen-sample-backend-config prints it."""
    lines = ["# chef-backend.rb: every setting with its default. Uncomment and edit what you need.\n"]
    for key, opt in OPTIONS.items():
        lines.append(f"# {opt.doc}\n")
        lines.append(f"{key} = {format_value(opt.default)}\n")
    return "".join(lines)
