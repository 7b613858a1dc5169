"""runit-style service commands: start, stop, restart, tail, service-list and the signals."""

from __future__ import annotations

import argparse
import os
import sys

from chef_backend.ctl import boot
from chef_backend.ctl.context import Context, CtlError
from chef_backend.supervision.runit import Supervisor

# Start order; stop goes the other way. The leader manager stops first so that a leader hands
# over cleanly (it stops its own PostgreSQL, then releases the key).
ORDER = ("etcd", "postgresql", "elasticsearch", "leaderl")
SIGNALS = {"once": "once", "hup": "hup", "int": "interrupt", "kill": "kill", "term": "term"}
STOP_WAIT = {"leaderl": 90, "postgresql": 60, "etcd": 20}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for name, helptext in (
        ("start", "start services"),
        ("stop", "stop services"),
        ("restart", "restart services"),
        ("tail", "follow service logs"),
    ):
        p = sub.add_parser(name, help=f"{helptext} (all, or SERVICE)")
        p.add_argument("service", nargs="?", metavar="SERVICE")
        p.set_defaults(func=run, command=name)
    for name in SIGNALS:
        p = sub.add_parser(name, help=f"send {name} to services (runit)")
        p.add_argument("service", nargs="?", metavar="SERVICE")
        p.set_defaults(func=run, command=name)
    sub.add_parser("service-list", help="list services (* = enabled)").set_defaults(func=run_list)


def ordered(supervisor: Supervisor, service: str | None) -> list[str]:
    installed = supervisor.installed()
    if service is not None:
        if service not in installed:
            known = ", ".join(installed) or "none (run create-cluster or join-cluster first)"
            raise CtlError(f"unknown service {service!r}; services on this node: {known}")
        return [service]
    return [s for s in ORDER if s in installed]


def report(result_stdout: str, result_stderr: str) -> bool:
    out = (result_stdout or result_stderr).strip()
    if out:
        print(out)
    return out.startswith("ok:")


def start(ctx: Context, supervisor: Supervisor, names: list[str], all_services: bool) -> bool:
    from chef_backend.node.render import grant_pg_control

    supervisor.ensure_running()
    if "postgresql" in supervisor.installed():
        grant_pg_control(ctx.settings, ctx.paths)
    ok = True
    for name in names:
        if all_services and name == "postgresql":
            continue  # the leader manager starts PostgreSQL once it knows in which role
        r = supervisor.sv("start", name)
        ok &= report(r.stdout, r.stderr)
    if all_services and "postgresql" in names:
        up = supervisor.wait_state("postgresql", "run", 30)
        r = supervisor.sv("status", "postgresql")
        print(("ok: " if up else "timeout: ") + r.stdout.strip())
        ok &= up
    return ok


def stop(supervisor: Supervisor, names: list[str], all_services: bool) -> bool:
    ok = True
    for name in reversed(names):
        if supervisor.runsvdir_pid() is None and not supervisor.installed():
            break
        r = supervisor.sv("force-stop", name, wait=STOP_WAIT.get(name, 30))
        ok &= report(r.stdout, r.stderr)
    if all_services:
        supervisor.shutdown()
    return ok


def run(args: argparse.Namespace) -> int:
    ctx = Context.load()
    supervisor = Supervisor(ctx.paths)
    names = ordered(supervisor, args.service)
    all_services = args.service is None
    if args.command == "tail":
        logs = [str(ctx.settings.path(f"{n}.log_directory")) + "/current" for n in names]
        os.execvp("tail", ["tail", "-n", "20", "-F", *logs])
    if args.command == "start":
        boot.clear_stopped(ctx.paths)
        ok = start(ctx, supervisor, names, all_services)
    elif args.command == "stop":
        if all_services:
            boot.mark_stopped(ctx.paths, "chef-backend-ctl stop")
        ok = stop(supervisor, names, all_services)
    elif args.command == "restart":
        ok = stop(supervisor, names, all_services)
        ok &= start(ctx, supervisor, names, all_services)
    else:
        supervisor.ensure_running()
        ok = True
        for name in names:
            r = supervisor.sv(SIGNALS[args.command], name)
            ok &= report(r.stdout, r.stderr) or r.returncode == 0
    return 0 if ok else 1


def run_list(args: argparse.Namespace) -> int:
    ctx = Context.load()
    installed = set(Supervisor(ctx.paths).installed())
    for name in ("elasticsearch", "etcd", "leaderl", "postgresql"):
        if ctx.settings.service_enabled(name) and name in installed:
            print(f"{name}*")
        elif name != "elasticsearch":
            print(name)
    sys.stdout.flush()
    return 0
