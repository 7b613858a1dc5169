"""chef-backend-ctl: the command line of a backend node."""

from __future__ import annotations

import argparse
import os
import sys

from chef_backend import __version__
from chef_backend.config.settings import ConfigError
from chef_backend.ctl import (
    backup,
    create_cluster,
    gather_logs,
    gen_server_config,
    info,
    join_cluster,
    leadership,
    node_lifecycle,
    reconfigure,
    services,
    status,
    upgrade,
)
from chef_backend.ctl.context import CtlError
from chef_backend.secrets import SecretsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chef-backend-ctl", description="Manage a chef-backend node.")
    parser.add_argument("--version", action="version", version=f"chef-backend {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    create_cluster.add_parser(sub)
    join_cluster.add_parser(sub)
    status.add_parsers(sub)
    gen_server_config.add_parser(sub)
    info.add_parsers(sub)
    services.add_parsers(sub)
    leadership.add_parsers(sub)
    node_lifecycle.add_parsers(sub)
    backup.add_parsers(sub)
    reconfigure.add_parser(sub)
    gather_logs.add_parser(sub)
    upgrade.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if os.geteuid() != 0 and args.subcommand not in ("gen-sample-backend-config", "version"):
        print("ERROR: chef-backend-ctl must run as root", file=sys.stderr)
        return 1
    try:
        return int(args.func(args))
    except (CtlError, ConfigError, SecretsError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
