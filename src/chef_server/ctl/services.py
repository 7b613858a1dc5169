"""`chef-server-ctl status|start|stop|restart|tail [SERVICE]`: the frontend's runit services, with sv's answers."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from chef_backend.frontend import haproxy
from chef_backend.frontend.cli import FrontendError
from chef_backend.supervision.runit import Supervisor

from .. import config
from . import health
from .layout import SERVICES, Layout


def _layout(args: argparse.Namespace) -> Layout:
    return Layout(dir=Path(args.dir).absolute(), etc=Path("/etc/opscode"))


def _chosen(sup: Supervisor, service: str | None) -> list[str]:
    installed = [name for name in SERVICES if name in sup.installed()]
    if not installed:
        raise FrontendError(f"no services under {sup.paths.service_dir}: run chef-server-ctl reconfigure first")
    if service is None:
        return installed
    if service not in installed:
        raise FrontendError(f"unknown service {service!r}; this frontend runs {', '.join(installed)}")
    return [service]


def status(args: argparse.Namespace) -> int:
    """sv's line per service, where HAProxy routes, the leader, the API's /_status and search's cluster health;
    non-zero unless all run, one backend is UP and the API and search are healthy."""
    layout = _layout(args)
    sup = Supervisor(layout.runit)
    ok = True
    for name in _chosen(sup, args.service):
        state = sup.status(name)
        print(state.raw)
        ok &= state.state == "run"
    judged = []  # (healthy, line), printed after the services
    if args.service in (None, "haproxy") and sup.status("haproxy").state == "run":
        try:
            up = haproxy.up_servers(haproxy.show_stat(layout.dir / "haproxy" / "haproxy.sock"))
        except OSError as exc:
            print(f"haproxy: cannot read its stats socket: {exc}")
            return 1
        for backend, servers in up.items():
            print(f"{backend}: UP {', '.join(servers) or '(none)'}")
        ok &= all(len(v) == 1 for v in up.values())
        judged.append(health.judge_leader(up))
    if args.service != "nginx":
        try:
            settings = config.load(str(layout.api_config))
        except (OSError, ValueError) as exc:
            print(f"chef-server-api: cannot read its settings {layout.api_config}: {exc}")
            return 1
        if args.service in (None, "chef-server-api"):
            judged.append(health.api_health(settings.listen_host, settings.listen_port))
        if args.service in (None, "haproxy"):  # search is reached through HAProxy's search port
            judged.append(health.search_health(settings.search_url))
    for healthy, line in judged:
        print(line)
        ok &= healthy
    return 0 if ok else 1


def start(args: argparse.Namespace) -> int:
    sup = Supervisor(_layout(args).runit)
    names = _chosen(sup, args.service)
    sup.ensure_running()
    for name in names:
        print(sup.sv("up", name).stdout.strip() or f"{name}: started")
    return 0


def stop(args: argparse.Namespace) -> int:
    """Stop one service, or all of them and the supervision tree (nothing of this frontend keeps running)."""
    sup = Supervisor(_layout(args).runit)
    names = _chosen(sup, args.service)
    if sup.runsvdir_pid() is None:
        print("not running")
        return 0
    for name in reversed(names):
        print(sup.sv("stop", name, wait=30).stdout.strip())
    if args.service is None:
        sup.shutdown()
    return 0


def restart(args: argparse.Namespace) -> int:
    sup = Supervisor(_layout(args).runit)
    names = _chosen(sup, args.service)
    sup.ensure_running()
    for name in names:
        print(sup.sv("restart", name, wait=30).stdout.strip())
    return 0


def tail(args: argparse.Namespace) -> int:
    """Follow the services' logs (svlogd's `current` files), as Chef's `tail` does."""
    layout = _layout(args)
    names = _chosen(Supervisor(layout.runit), args.service)
    files = [str(layout.log_dir(name) / "current") for name in names]
    os.execvp("tail", ["tail", "-F", *files])
    return 0
