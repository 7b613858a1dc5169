"""A load balancer in front of several Chef server frontends: Debian's HAProxy in TCP mode under runit.

TLS passes through to each frontend's nginx (so every frontend serves the certificate clients trust, see
docs/frontend-api.md), and a frontend is taken out while `GET /_status` over TLS does not answer 200: its API
killed or restarting, its HAProxy or its database connection gone. The master runs as root to bind 443 and
its worker drops to the `haproxy` user, as nginx's does. `render` decides, `configure` and `stop` drive.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from chef_backend.frontend import haproxy
from chef_backend.frontend.cli import FrontendError
from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths
from chef_backend.supervision.runit import ServiceSpec, Supervisor

NAME = "load-balancer"
BACKEND = "chef_frontends"
USER = "haproxy"

TEMPLATE = """\
# Rendered by chef_server.ctl.load_balancer: edits are overwritten.
global
    stats socket {socket} mode 600
    user {user}
    group {user}
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    # A busy frontend may take a while to answer /_status: slow is not dead.
    timeout check 5s
frontend chef_server
    bind {listen}
    default_backend {backend}
backend {backend}
    balance roundrobin
    option httpchk
    http-check send meth GET uri /_status ver HTTP/1.1 hdr Host {host}
    http-check expect status 200
    # Two failed checks take a frontend out; two good ones bring it back (no flapping on a restarting API).
    default-server check check-ssl verify none inter 1s fall 2 rise 2
{servers}
"""


@dataclass(frozen=True)
class LoadBalancer:
    dir: Path  # every file of the load balancer: configuration, runit tree, logs
    address: str
    port: int
    frontends: tuple[tuple[str, str], ...]  # (name, address) of each frontend, its TLS endpoint on `frontend_port`
    frontend_port: int = 443

    @property
    def config_file(self) -> Path:
        return self.dir / "haproxy.cfg"

    @property
    def stats_socket(self) -> Path:
        return self.dir / "haproxy.sock"

    @property
    def url(self) -> str:
        return f"https://{self.address}" + ("" if self.port == 443 else f":{self.port}")


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def render(lb: LoadBalancer) -> str:
    """haproxy.cfg: TCP on the load balancer's address, round robin over the frontends that answer /_status."""
    if not lb.frontends:
        raise FrontendError("a load balancer needs at least one frontend")
    servers = "\n".join(f"    server {name} {_hostport(address, lb.frontend_port)}" for name, address in lb.frontends)
    return TEMPLATE.format(socket=lb.stats_socket, user=USER, listen=_hostport(lb.address, lb.port),
                           backend=BACKEND, host=lb.address, servers=servers)


def service_spec(lb: LoadBalancer) -> ServiceSpec:
    """Master-worker HAProxy in the foreground; `sv 2` (SIGUSR2) reloads it without dropping connections."""
    run = f"#!/bin/sh\nexec 2>&1\nexec {haproxy.HAPROXY} -W -db -f {shlex.quote(str(lb.config_file))}\n"
    return ServiceSpec(name=NAME, run_script=run, log_dir=lb.dir / "log" / NAME, log_user=USER,
                       file_maxbytes=104857600, num_to_keep=10)


def up_frontends(rows: list[dict[str, str]]) -> list[str]:
    """The frontends HAProxy sends connections to whose last check passed, from its `show stat` rows (HAProxy
    starts every server UP before its first check)."""
    return [row["svname"] for row in rows if row.get("pxname") == BACKEND
            and row.get("svname") not in ("BACKEND", "FRONTEND") and row.get("status") == "UP"
            and row.get("check_status") == "L7OK"]


def configure(lb: LoadBalancer) -> list[str]:
    """Render, then start HAProxy (or reload it when its configuration changed); returns the frontends UP once
    its first checks are done. Safe to repeat."""
    fsutil.make_dir(lb.dir, mode=0o755)
    text = render(lb)
    changed = not lb.config_file.exists() or lb.config_file.read_text() != text
    fsutil.write_file(lb.config_file, text, mode=0o640, owner="root", group=USER)
    sup = Supervisor(NodePaths.under(lb.dir))
    fresh = NAME not in sup.installed()
    sup.install(service_spec(lb))
    sup.ensure_running()
    if sup.status(NAME).state != "run":
        sup.sv("up", NAME)
    elif changed and not fresh:
        sup.sv("2", NAME)
    if not haproxy.wait_socket(lb.stats_socket):
        raise FrontendError(f"the load balancer did not open {lb.stats_socket} within 10 s; "
                            f"see {lb.dir / 'log' / NAME / 'current'}")
    return wait_up(lb, len(lb.frontends))


def wait_up(lb: LoadBalancer, count: int, tries: int = 30) -> list[str]:
    """Poll the stats socket, 1 s apart, until `count` frontends are UP; the last view either way."""
    up: list[str] = []
    for _ in range(tries):
        try:
            up = up_frontends(haproxy.show_stat(lb.stats_socket))
        except OSError:
            up = []
        if len(up) >= count:
            break
        time.sleep(1)
    return up


def stop(directory: Path) -> bool:
    """Stop the load balancer and its supervision tree; False if it was not running."""
    sup = Supervisor(NodePaths.under(directory))
    if sup.runsvdir_pid() is None:
        return False
    if NAME in sup.installed():
        sup.sv("stop", NAME, wait=30)
    sup.shutdown()
    return True
