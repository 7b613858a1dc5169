"""chef-backend-ctl: the command line of a backend node."""

from __future__ import annotations

import argparse
import os
import sys

from chef_backend import __version__
from chef_backend.config.settings import ConfigError
from chef_backend.ctl import (
    backup,
    boot,
    create_cluster,
    gather_logs,
    gen_server_config,
    info,
    join_cluster,
    leadership,
    node_lifecycle,
    pgsql_follow,
    reconfigure,
    services,
    status,
    upgrade,
)
from chef_backend.ctl.context import CtlError, add_compat_flags
from chef_backend.secrets import SecretsError

# Flags deployment tooling passes to the original on every command, before or after the subcommand.
GLOBAL_FLAGS = ("--accept-license", "--quiet", "--verbose")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chef-backend-ctl", description="Manage a chef-backend node.")
    parser.add_argument("--version", action="version", version=f"chef-backend {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    h = sub.add_parser("help", help="list the commands, or show one command's options")
    h.add_argument("topic", nargs="?", metavar="COMMAND")
    h.set_defaults(func=lambda args: run_help(parser, args.topic))
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
    pgsql_follow.add_parser(sub)
    boot.add_parser(sub)
    for command in sub.choices.values():
        add_compat_flags(command)
    return parser


def run_help(parser: argparse.ArgumentParser, topic: str | None) -> int:
    """`help` lists the commands; `help COMMAND` shows that command's options."""
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if topic is None:
        parser.print_help()
        return 0
    if topic not in commands:
        raise CtlError(f"no command {topic!r}; chef-backend-ctl help lists them")
    commands[topic].print_help()
    return 0


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Move --accept-license/--quiet/--verbose (and -y/--yes) given before the subcommand to after it,
    where every command accepts them."""
    leading: list[str] = []
    rest = list(argv)
    while rest and rest[0] in (*GLOBAL_FLAGS, "-y", "--yes"):
        leading.append(rest.pop(0))
    if not rest or not leading:
        return list(argv)
    return [rest[0], *leading, *rest[1:]]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(hoist_global_flags(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if os.geteuid() != 0 and args.subcommand not in ("gen-sample-backend-config", "version", "help"):
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
