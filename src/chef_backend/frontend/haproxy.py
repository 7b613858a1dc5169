"""Chef Infra Server's HAProxy for a chef-backend cluster (facts §4.2), supervised by runit, and
the reconfigure-time wait for exactly one UP backend (facts §4.4)."""

from __future__ import annotations

import csv
import shlex
import socket
import time
from pathlib import Path

from chef_backend.frontend.discovery import Backend
from chef_backend.frontend.settings import FrontendSettings
from chef_backend.host.netloc import host_port, url_host
from chef_backend.supervision.runit import CHPST, ServiceSpec

HAPROXY = "/usr/sbin/haproxy"
BACKENDS = ("chef_backend_postgresql", "chef_backend_elasticsearch")

TEMPLATE = """\
global
    stats socket {socket} mode 600
defaults
    timeout connect 5s
    timeout tunnel 300s
    timeout client-fin 1s
    timeout server-fin 1s
    timeout client 50s
    timeout server 50s
    timeout check 1s
frontend postgresql
    bind {listen}:{local_pg}
    mode tcp
    default_backend chef_backend_postgresql
frontend elasticsearch
    bind {listen}:{local_es}
    mode tcp
    default_backend chef_backend_elasticsearch
backend chef_backend_postgresql
    mode tcp
    option httpchk
    option redispatch 1
    http-check send meth GET uri /leader ver HTTP/1.1 hdr Host localhost:{leaderl}
    default-server inter 2s downinter 250ms rise 1 fall 1 on-marked-down shutdown-sessions {observe}
{pg_servers}
backend chef_backend_elasticsearch
    mode tcp
    option httpchk
    option redispatch 1
    http-check send meth GET uri /leader ver HTTP/1.1 hdr Host localhost:{leaderl}
    default-server inter 2s downinter 250ms rise 1 fall 1 {observe}
{es_servers}
"""


# Beyond Chef's template: a member whose PostgreSQL or search refuses a connection (stopped, as at a
# switchover, or dead) is taken out at once rather than at its next check, and the connection is
# retried on a member that is UP (answering /leader with 200) or fails at once if none is, instead
# of HAProxy's three retries a second apart.
OBSERVE = "observe layer4 error-limit 1 on-error mark-down"
# Also beyond Chef's template, `timeout check 1s`: without it a check waits `inter` (2 s) for an
# answer, so a member whose leader manager is frozen (SIGSTOP, a suspended VM) got sessions for up
# to 4 s after its last 200 — long enough for a client that cancels a commit's wait for the standbys
# to read a commit the next leader will not have (issue 14, path 7). /leader answers from memory in
# milliseconds; leader/timing.py's frontends_route_after_200() counts on this bound.


def render(s: FrontendSettings, backends: list[Backend]) -> str:
    """haproxy.cfg: data to each member's PostgreSQL and search ports, health from its /leader."""
    def servers(port: int) -> str:
        return "\n".join(f"    server {b.name} {host_port(b.address, port)} check port {s.leaderl_healthcheck_port}"
                         for b in backends)

    return TEMPLATE.format(
        socket=s.stats_socket, listen=url_host(s.listen), local_pg=s.local_postgresql_port,
        local_es=s.local_elasticsearch_port, leaderl=s.leaderl_healthcheck_port, observe=OBSERVE,
        pg_servers=servers(s.remote_postgresql_port), es_servers=servers(s.remote_elasticsearch_port),
    )


def service_spec(s: FrontendSettings) -> ServiceSpec:
    """HAProxy in master-worker mode in the foreground: `sv 2` (SIGUSR2) reloads it without
    dropping the connections it holds."""
    run = (
        "#!/bin/sh\nexec 2>&1\n"
        f"exec {CHPST} -u {s.user}:{s.user} {HAPROXY} -W -db -f {shlex.quote(str(s.config_file))}\n"
    )
    return ServiceSpec(name="haproxy", run_script=run, log_dir=s.dir / "log" / "haproxy", log_user=s.user,
                       file_maxbytes=104857600, num_to_keep=10)


def show_stat(stats_socket: Path, timeout: float = 2.0) -> list[dict[str, str]]:
    """HAProxy's `show stat` rows (one per frontend, server and backend)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise OSError(f"unexpected answer from {stats_socket}: {data[:80]!r}")
    return list(csv.DictReader([lines[0][2:], *lines[1:]]))


def up_servers(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """For each of our backends, the servers HAProxy routes to."""
    up: dict[str, list[str]] = {b: [] for b in BACKENDS}
    for row in rows:
        if row.get("pxname") in up and row.get("svname") not in ("BACKEND", "FRONTEND") and row.get("status") == "UP":
            up[row["pxname"]].append(row["svname"])
    return up


def wait_socket(stats_socket: Path, tries: int = 10) -> bool:
    """Chef's wait for the stats socket: 10 tries, 1 s apart."""
    for _ in range(tries):
        try:
            show_stat(stats_socket)
            return True
        except OSError:
            time.sleep(1)
    return False


def wait_one_leader(stats_socket: Path, tries: int = 10, interval: float = 2.0) -> dict[str, list[str]]:
    """Poll until exactly one server is UP in both backends (HAProxy starts with all of them UP
    and takes 2-3 s to mark the followers DOWN). Returns the last view either way."""
    up: dict[str, list[str]] = {}
    for attempt in range(tries):
        try:
            up = up_servers(show_stat(stats_socket))
        except OSError:
            up = {}
        if up and all(len(servers) == 1 for servers in up.values()) and len(set(map(tuple, up.values()))) == 1:
            return up
        if attempt < tries - 1:
            time.sleep(interval)
    return up
