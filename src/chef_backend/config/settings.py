"""Load and validate chef-backend.rb into the effective settings of a node."""

from __future__ import annotations

import difflib
import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chef_backend.config import compat
from chef_backend.config.options import OPTIONS, Option
from chef_backend.config.rbparser import Assignment, RbSyntaxError, format_value, parse
from chef_backend.host.paths import host_path
from chef_backend.node import client_networks


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
    # One line per setting from the original that has no effect here (reconfigure and show-config print them).
    warnings: list[str] = field(default_factory=list)

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

    @property
    def local_address(self) -> str | None:
        """The loopback address etcd and search also listen on, so that the original's runbook commands
        (`etcdctl`, `curl localhost:9200`) work with their defaults; None when the publish address is
        itself a loopback address (several nodes sharing one host would clash there)."""
        addr = self.values["publish_address"]
        if not addr or ipaddress.ip_address(addr).is_loopback:
            return None
        return "::1" if ipaddress.ip_address(addr).version == 6 else "127.0.0.1"

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


def _check(assign: Assignment, where: str, warnings: list[str]) -> tuple[str, Any] | None:
    """The option and value an assignment sets (None for a key of the original that means nothing
    here, which adds a warning); ConfigError for a key no version of the original knew or a bad value."""
    key = compat.RENAMED.get(assign.key, assign.key)
    at = f"{where}:{assign.line}"
    if assign.key in compat.RETIRED:
        warnings.append(f"{at}: {assign.key} is accepted but has no effect: {compat.RETIRED[assign.key]}")
        return None
    opt = OPTIONS.get(key)
    if opt is None:
        hint = nearest_key(assign.key)
        suffix = f"; did you mean '{hint}'?" if hint else "; see chef-backend-ctl gen-sample-backend-config"
        raise ConfigError(f"{at}: unknown option '{assign.key}'{suffix}")
    if opt.no_effect:
        # Whatever form the original took (an Erlang term for ibrowse_options), since nothing reads it.
        warnings.append(f"{at}: {opt.key} is accepted but has no effect: {opt.no_effect}")
        return key, assign.value if _type_ok(opt, assign.value) else _copy(opt.default)
    value = compat.coerce(opt, assign.value)
    if not _type_ok(opt, value):
        null = " or nil" if opt.nullable else ""
        raise ConfigError(
            f"{at}: {key} must be {_TYPE_NAMES[opt.type]}{null}, "
            f"not {_ruby_type(assign.value)} ({format_value(assign.value)})"
        )
    _check_value(opt, value, at)
    return key, value


def _check_value(opt: Option, value: Any, where: str) -> None:
    key = opt.key
    if value is None:
        return
    if key == "ip_version" and value not in ("ipv4", "ipv6"):
        raise ConfigError(f"{where}: ip_version must be 'ipv4' or 'ipv6', not {format_value(value)}")
    if key == "postgresql.password_encryption" and value not in ("md5", "scram-sha-256"):
        raise ConfigError(f"{where}: {key} must be 'md5' or 'scram-sha-256', not {format_value(value)}")
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
    if key == "postgresql.md5_auth_cidr_addresses":
        # PostgreSQL keeps its old pg_hba.conf on reload, but would not start with a bad line.
        for entry in value:
            why = client_networks.invalid_entry(entry)
            if why:
                raise ConfigError(f"{where}: {key}: {why}")
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
        checked = _check(assign, where, settings.warnings)
        if checked:
            settings.values[checked[0]] = checked[1]
            settings.explicit.add(checked[0])
    _cross_checks(settings, where)
    _apply_ip_version(settings, where)
    return settings


def _apply_ip_version(settings: Settings, where: str) -> None:
    """ip_version picks the wildcard the leader manager listens on (0.0.0.0 or ::). The family of
    publish_address decides where the two disagree, since every listener binds that address."""
    addr = settings["publish_address"]
    if addr:
        family = f"ipv{ipaddress.ip_address(addr).version}"
        if family != settings["ip_version"]:
            if "ip_version" in settings.explicit:
                settings.warnings.append(f"{where}: ip_version is {format_value(settings['ip_version'])} but "
                                         f"publish_address {addr} is {family}: working as for {family!r}")
            settings.values["ip_version"] = family
    if settings["ip_version"] == "ipv6" and "leaderl.http_address" not in settings.explicit:
        settings.values["leaderl.http_address"] = "::"


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


def sample_config(settings: Settings | None = None) -> str:
    """Every option with its value on this node (its default where nothing sets or computes it), as
    gen-sample-backend-config prints it. An option kept only for the original's files says so."""
    settings = settings or Settings.defaults()
    lines = ["# chef-backend.rb: every setting with its value on this node. Keep what you need.\n"]
    for key, opt in OPTIONS.items():
        lines.append(f"# {opt.doc}\n")
        if opt.no_effect:
            lines.append(f"# Accepted, no effect: {opt.no_effect}.\n")
        lines.append(f"{key} = {format_value(settings.values[key])}\n")
    return "".join(lines)
