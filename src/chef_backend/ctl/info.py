"""`version`, `gen-sample-backend-config` and `show-config`."""

from __future__ import annotations

import argparse
import ipaddress
import json

from chef_backend import __version__
from chef_backend.config.settings import ConfigError, Settings, sample_config
from chef_backend.ctl.context import Context, print_config_warnings
from chef_backend.host.addresses import addresses
from chef_backend.services import elasticsearch, postgresql


def add_parsers(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("version", help="print the installed version and its components").set_defaults(func=run_version)
    sub.add_parser(
        "gen-sample-backend-config", help="print every chef-backend.rb setting with its default"
    ).set_defaults(func=run_sample)
    sub.add_parser("show-config", help="print the effective settings of this node").set_defaults(func=run_show)


def run_version(args: argparse.Namespace) -> int:
    print(f"chef-backend {__version__}")
    manifest = Context.load().paths.manifest_file
    if manifest.exists():
        for name, version in json.loads(manifest.read_text())["software"].items():
            print(f"  {name} {version}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    print(sample_config(node_values()), end="")
    return 0


def node_values() -> Settings:
    """This node's settings with what the services would compute filled in, as the original printed
    them: its name, the address others would reach it at, memory-derived sizes."""
    try:
        settings = Context.load().settings
    except (OSError, ConfigError):
        settings = Settings.defaults()  # not readable (not root) or not valid: the defaults still help
    v = settings.values
    v["fqdn"] = settings.node_name
    if not v["publish_address"]:
        family = 6 if v["ip_version"] == "ipv6" else 4
        v["publish_address"] = next((a for a in addresses() if ipaddress.ip_address(a).version == family
                                     and not ipaddress.ip_address(a).is_loopback
                                     and not ipaddress.ip_address(a).is_link_local), None)
    v["postgresql.shared_buffers"], v["postgresql.effective_cache_size"] = postgresql.memory_settings(settings)
    v["elasticsearch.heap_size"] = elasticsearch.heap_mb(settings)
    return settings


def run_show(args: argparse.Namespace) -> int:
    settings = Context.load().settings
    print_config_warnings(settings)
    print(settings.render(), end="")
    return 0

