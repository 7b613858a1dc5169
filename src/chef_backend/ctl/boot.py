"""`boot`: what the boot-time unit runs (chef_backend.host.boot), and `boot --shutdown` at system stop.

After a power loss every process of the node is gone and only its files remain. `boot` starts the
node's runsvdir and its services, as `chef-backend-ctl start` does; the leader manager then
recovers PostgreSQL (crash recovery, rewind or a fresh copy) and the node rejoins in whatever role
the cluster gives it. A node the operator stopped on purpose (`stop`, `uninstall`,
`down-for-upgrade`) stays down until they start it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chef_backend.ctl import services
from chef_backend.ctl.context import Context
from chef_backend.host.paths import NodePaths
from chef_backend.supervision.runit import Supervisor


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("boot", help="what the boot-time unit runs: start this node unless it was stopped on purpose")
    p.add_argument("--shutdown", action="store_true", help="at system stop: stop the node cleanly")
    p.set_defaults(func=run)


def stopped_marker(paths: NodePaths) -> Path:
    """Present while the operator keeps the node stopped (boot leaves it down)."""
    return paths.var / "stopped-by-operator"


def mark_stopped(paths: NodePaths, why: str) -> None:
    if paths.var.is_dir():
        stopped_marker(paths).write_text(why + "\n")


def clear_stopped(paths: NodePaths) -> None:
    stopped_marker(paths).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    ctx = Context.load()
    supervisor = Supervisor(ctx.paths)
    if ctx.identity is None:
        print("This node is not part of a cluster: nothing to start.")
        return 0
    names = services.ordered(supervisor, None)
    if args.shutdown:
        return 0 if services.stop(supervisor, names, all_services=True) else 1
    marker = stopped_marker(ctx.paths)
    if marker.exists():
        print(f"Left stopped ({marker.read_text().strip()}); chef-backend-ctl start brings it up.")
        return 0
    return 0 if services.start(ctx, supervisor, names, all_services=True) else 1
