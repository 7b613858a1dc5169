#!/usr/bin/env python3
"""A local three-node cluster on 127.0.0.11-13, each node under /var/lib/chef-backend-local/nodeN.

    local_cluster.py up       create it (or start it again if it exists), print status, and write
                              what it started to <base>/cluster.json (tools and tests read that file)
    local_cluster.py down     stop every node
    local_cluster.py destroy  stop and delete everything
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE = Path(os.environ.get("CHEF_BACKEND_LOCAL", "/var/lib/chef-backend-local"))
CTL = "/usr/local/bin/chef-backend-ctl"
NODES = [(i, f"127.0.0.1{i}") for i in (1, 2, 3)]


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


def write_cluster_file() -> Path:
    """What `up` started, for tools and tests: no need to scrape the text it prints."""
    doc = {
        "backends": [{"name": f"backend-{index}", "address": address,
                      "root": str(BASE / f"node{index}")} for index, address in NODES],
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
    info = write_cluster_file()
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
  Stop / remove: {sys.argv[0]} down | destroy
  What it runs:  {info} (JSON: backend addresses, ports, secrets file)
""")


def down() -> None:
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
