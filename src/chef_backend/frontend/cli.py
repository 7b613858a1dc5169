"""chef-backend-frontend: run on a Chef server frontend host to reach the backend cluster.

    chef-backend-frontend reconfigure [--config chef-server.rb] [--members A,B,C] [--listen ADDR] [--dir DIR]
    chef-backend-frontend status [--dir DIR]
    chef-backend-frontend stop [--dir DIR]

`reconfigure` does what `chef-server-ctl reconfigure` does for HAProxy on a chef-backend
frontend: discover the members through etcd (static list as fallback), render HAProxy's config,
start or reload HAProxy under runit, and wait until exactly one backend (the leader) is UP.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from dataclasses import replace
from pathlib import Path

from chef_backend.frontend import haproxy
from chef_backend.frontend.discovery import discover
from chef_backend.frontend.settings import (
    DEFAULT_DIR,
    FrontendConfigError,
    FrontendSettings,
    from_server_rb,
    parse_members_option,
    validated,
)
from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths
from chef_backend.supervision.runit import Supervisor


class FrontendError(Exception):
    """A failure the operator sees as one line."""


def supervisor(s: FrontendSettings) -> Supervisor:
    return Supervisor(NodePaths.under(s.dir))


def unreachable_parent(path: Path, user: str) -> Path | None:
    """The first existing parent of `path` that `user` may not enter (search permission)."""
    uid = fsutil.uid(user)
    groups = set(os.getgrouplist(user, pwd.getpwuid(uid).pw_gid))
    for parent in reversed(path.parents):
        try:
            st = parent.stat()
        except FileNotFoundError:
            return None
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return parent
    return None


def settings_from(args: argparse.Namespace) -> FrontendSettings:
    s = FrontendSettings(dir=Path(args.dir).absolute())
    if getattr(args, "config", None):
        s = from_server_rb(Path(args.config), s)
    if getattr(args, "members", None):
        s = replace(s, members=parse_members_option(args.members))
    if getattr(args, "listen", None):
        s = replace(s, listen=args.listen)
    if getattr(args, "user", None):
        s = replace(s, user=args.user)
    return validated(s, "options") if getattr(args, "func", None) is reconfigure else s


def reconfigure(args: argparse.Namespace) -> int:
    print(configure_haproxy(settings_from(args), supervisor_of=supervisor, tries=args.tries))
    return 0


def configure_haproxy(s: FrontendSettings, supervisor_of, tries: int = 10) -> str:
    """Discover the members, render HAProxy's config, start or reload HAProxy under the runit tree
    `supervisor_of(s)` gives, and wait until exactly one backend is UP; returns the line naming it.
    `chef-server-ctl reconfigure` runs this too, with the API service and TLS endpoint beside it."""
    try:
        fsutil.uid(s.user)
    except KeyError:
        raise FrontendError(f"user {s.user!r} does not exist: install Debian's haproxy package "
                            "or give --user") from None
    blocked = unreachable_parent(s.dir, s.user)
    if blocked is not None:
        raise FrontendError(f"HAProxy runs as {s.user}, which cannot enter {blocked}: choose a --dir it can reach")
    found = discover(list(s.members), s.etcd_port)
    for warning in found.warnings:
        print(f"WARNING: member discovery: {warning}", file=sys.stderr)
    if found.source == "static":
        print(f"WARNING: no member answered on etcd port {s.etcd_port}; using the static list", file=sys.stderr)
    print(f"backends (from {found.source}): " + ", ".join(f"{b.name} {b.address}" for b in found.backends))

    fsutil.make_dir(s.haproxy_dir, s.user, 0o750)
    text = haproxy.render(s, found.backends)
    changed = not s.config_file.exists() or s.config_file.read_text() != text
    fsutil.write_file(s.config_file, text, mode=0o640, owner="root", group=s.user)
    sup = supervisor_of(s)
    fresh = "haproxy" not in sup.installed()  # runsv starts it with this very configuration
    sup.install(haproxy.service_spec(s))
    sup.ensure_running()
    if sup.status("haproxy").state != "run":
        sup.sv("up", "haproxy")
    elif changed and not fresh:
        sup.sv("2", "haproxy")  # SIGUSR2: the master re-reads the configuration
        print("HAProxy reloaded with the new configuration")
    log = s.dir / "log" / "haproxy" / "current"
    if not haproxy.wait_socket(s.stats_socket):
        raise FrontendError(f"HAProxy did not open its stats socket {s.stats_socket} within 10 s; see {log}")
    up = haproxy.wait_one_leader(s.stats_socket, tries=tries)
    leaders = {tuple(servers) for servers in up.values()}
    if len(leaders) == 1 and len(next(iter(leaders))) == 1:
        name = next(iter(leaders))[0]
        address = next((b.address for b in found.backends if b.name == name), "?")
        return f"HAProxy routes PostgreSQL and search to the leader: {name} ({address})"
    if all(not servers for servers in up.values()):
        raise FrontendError("no backend answers 200 on /leader: the cluster has no ready leader "
                            "(chef-backend-ctl cluster-status on a backend tells why)")
    raise FrontendError(f"HAProxy still showing multiple active backends: {up}")


def status(args: argparse.Namespace) -> int:
    s = settings_from(args)
    state = supervisor(s).status("haproxy")
    print(f"haproxy: {state.state}" + (f" (pid {state.pid}) {state.seconds}s" if state.pid else ""))
    if state.state != "run":
        return 1
    try:
        up = haproxy.up_servers(haproxy.show_stat(s.stats_socket))
    except OSError as exc:
        raise FrontendError(f"cannot read HAProxy's stats socket {s.stats_socket}: {exc}") from None
    for backend, servers in up.items():
        print(f"{backend}: UP {', '.join(servers) or '(none)'}")
    return 0 if all(len(v) == 1 for v in up.values()) else 1


def stop(args: argparse.Namespace) -> int:
    s = settings_from(args)
    sup = supervisor(s)
    if sup.runsvdir_pid() is None:
        print("haproxy: not running")
        return 0
    sup.shutdown()
    print("haproxy: stopped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chef-backend-frontend",
                                     description="Route a Chef server frontend to the chef-backend leader.")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dir", default=str(DEFAULT_DIR), help=f"where HAProxy's files live (default {DEFAULT_DIR})")
        p.set_defaults(func=func)
        return p

    p = add("reconfigure", reconfigure, "discover the members, (re)start HAProxy, wait for the leader")
    p.add_argument("--config", metavar="FILE", help="a chef-server.rb from gen-server-config")
    p.add_argument("--members", metavar="A,B,C", help="backend addresses (instead of chef_backend_members)")
    p.add_argument("--listen", metavar="ADDR", help="address HAProxy binds (haproxy['listen'], default 0.0.0.0)")
    p.add_argument("--user", help="user HAProxy runs as (default haproxy)")
    p.add_argument("--tries", type=int, default=10, help="checks, 2 s apart, for exactly one UP backend")
    add("status", status, "show which backend HAProxy routes to")
    add("stop", stop, "stop HAProxy")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if os.geteuid() != 0:
        print("ERROR: chef-backend-frontend must run as root", file=sys.stderr)
        return 1
    try:
        return int(args.func(args))
    except (FrontendError, FrontendConfigError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
