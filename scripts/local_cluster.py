#!/usr/bin/env python3
"""A local three-node cluster on 127.0.0.11-13, each node under /var/lib/chef-backend-local/nodeN, and one
Chef server frontend on it at https://127.0.0.21 (under /var/lib/chef-backend-local/frontend1).

    local_cluster.py up       create it (or start it again if it exists), start the frontend, print status,
                              and write what it started to <base>/cluster.json (tools and tests read that file)
    local_cluster.py down     stop the frontend and every node
    local_cluster.py destroy  stop and delete everything
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE = Path(os.environ.get("CHEF_BACKEND_LOCAL", "/var/lib/chef-backend-local"))
CTL = "/usr/local/bin/chef-backend-ctl"
SERVER_CTL = "/usr/local/bin/chef-server-ctl"
NODES = [(i, f"127.0.0.1{i}") for i in (1, 2, 3)]
FRONTEND = ("frontend-1", "127.0.0.21")
FE_ROOT = BASE / "frontend1"
FE_DIR = FE_ROOT / "var/opt/opscode"  # the frontend's /var/opt/opscode and /etc/opscode, as on its own host
FE_ETC = FE_ROOT / "etc/opscode"


def ctl(index: int, *args: str, check: bool = True) -> int:
    env = dict(os.environ, CHEF_BACKEND_ROOT=str(BASE / f"node{index}"))
    rc = subprocess.run([CTL, *args], env=env).returncode
    if check and rc != 0:
        sys.exit(f"chef-backend-ctl {' '.join(args)} failed on node {index}")
    return rc


def write_config(index: int, address: str) -> None:
    rb = BASE / f"node{index}" / "etc/chef-backend/chef-backend.rb"
    if rb.exists():
        return
    rb.parent.mkdir(parents=True, exist_ok=True)
    rb.write_text(f"publish_address '{address}'\nfqdn 'backend-{index}'\nleaderl.http_address = '{address}'\n"
                  "postgresql.shared_buffers = '128MB'\n"
                  "elasticsearch.heap_size = 256  # three search nodes share this host\n")


def wait_search_nodes(count: int, timeout: float = 120) -> None:
    """The last joined node's search JVM takes a few seconds more: show the cluster once it is in."""
    url = f"http://{NODES[0][1]}:9200/_cluster/health?wait_for_nodes={count}&timeout=5s"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                if json.loads(resp.read()).get("number_of_nodes") == count:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(1)


def start_frontend() -> str:
    """gen-server-config on a backend (once), then `chef-server-ctl reconfigure` on the frontend; its URL."""
    name, address = FRONTEND
    server_rb = FE_ETC / "chef-server.rb"
    if not server_rb.exists():
        FE_ETC.mkdir(parents=True, exist_ok=True)
        ctl(1, "gen-server-config", name, "-f", str(server_rb))
    rc = subprocess.run([SERVER_CTL, "reconfigure", "--config", str(server_rb), "--dir", str(FE_DIR),
                         "--listen", address]).returncode
    if rc != 0:
        sys.exit(f"chef-server-ctl reconfigure failed for the frontend on {address}")
    url = f"https://{address}"
    if wait_https(f"{url}/_status") != 200:
        sys.exit(f"the frontend does not answer 200 on {url}/_status; see {FE_DIR}/log/")
    return url


def wait_https(url: str, timeout: float = 60) -> int:
    """GET through the frontend's self-signed TLS endpoint until 200; the last status (0: no answer)."""
    context = ssl.create_default_context(cafile=str(certificate()))
    deadline = time.monotonic() + timeout
    code = 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as resp:
                code = resp.status
        except urllib.error.HTTPError as err:
            code = err.code
        except OSError:
            code = 0
        if code == 200:
            break
        time.sleep(0.5)
    return code


def certificate() -> Path:
    return FE_DIR / f"nginx/ca/{FRONTEND[0]}.crt"


def write_cluster_file(chef_server_url: str) -> Path:
    """What `up` started, for tools and tests: no need to scrape the text it prints."""
    name, address = FRONTEND
    doc = {
        "chef_server_url": chef_server_url,
        "pivotal_key": str(FE_ETC / "pivotal.pem"),
        "superuser": "pivotal",
        "backends": [{"name": f"backend-{index}", "address": address,
                      "root": str(BASE / f"node{index}")} for index, address in NODES],
        "frontends": [{"name": name, "address": address, "url": chef_server_url, "dir": str(FE_DIR),
                       "config": str(FE_ETC / "chef-server.rb"), "certificate": str(certificate())}],
        "ports": {"postgresql": 5432, "leader_check": 7331, "etcd": 2379, "search": 9200},
        "secrets_file": str(BASE / "node1/etc/chef-backend/chef-backend-secrets.json"),
        "postgresql_superuser": "chef_pgsql",
    }
    path = BASE / "cluster.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def up() -> None:
    BASE.mkdir(parents=True, exist_ok=True)
    BASE.chmod(0o755)
    for index, address in NODES:
        write_config(index, address)
    created = (BASE / "node1/var/opt/chef-backend/node.json").exists()
    if not created:
        ctl(1, "create-cluster", "--yes")
        secrets = BASE / "secrets.json"
        shutil.copy(BASE / "node1/etc/chef-backend/chef-backend-secrets.json", secrets)
        for index, _ in NODES[1:]:
            ctl(index, "join-cluster", "127.0.0.11", "-s", str(secrets), "--yes")
        secrets.unlink()
    else:
        for index, _ in NODES:
            ctl(index, "start")
    wait_search_nodes(len(NODES))
    url = start_frontend()
    info = write_cluster_file(url)
    print()
    ctl(1, "status", check=False)
    print()
    ctl(1, "cluster-status", check=False)
    print(f"""
A three-node chef-backend cluster runs on 127.0.0.11, 127.0.0.12 and 127.0.0.13.
  Leader check:  curl -i http://127.0.0.11:7331/leader      (200 on the leader, 503 elsewhere)
  PostgreSQL:    psql "host=<leader> user=chef_pgsql dbname=postgres", with the password
                 postgresql.db_superuser_password of {BASE}/node1/etc/chef-backend/chef-backend-secrets.json
  Commands:      CHEF_BACKEND_ROOT={BASE}/node1 chef-backend-ctl status | cluster-status | gen-server-config FQDN
A Chef server frontend on it: {url} (HAProxy to the leader, the API, TLS with a self-signed certificate)
  Certificate:   {certificate()}
  Superuser key: {FE_ETC / "pivotal.pem"} (user pivotal)
  Commands:      chef-server-ctl --dir {FE_DIR} status | user-create | org-create ...
  Stop / remove: {sys.argv[0]} down | destroy
  What it runs:  {info} (JSON: chef_server_url, pivotal_key, backend and frontend addresses, ports)
""")


def down() -> None:
    if FE_DIR.exists():
        subprocess.run([SERVER_CTL, "stop", "--dir", str(FE_DIR)], check=False)
    for index, _ in NODES:
        if (BASE / f"node{index}").exists():
            ctl(index, "stop", check=False)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "up"
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "destroy":
        down()
        shutil.rmtree(BASE, ignore_errors=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
