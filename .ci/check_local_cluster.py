"""CI: check that the cluster the README's first command started really works.

Reads the JSON file `scripts/local_cluster.py up` wrote, then: exactly one node answers 200 on
`GET :7331/leader`; a row written on that leader is read back on every other node; each frontend and
the load balancer answer 200 on `/_status` through HTTPS (the shared certificate verified); through the
load balancer, a request signed with the pivotal key and one signed as the org's admin user with the
key the knife configuration names work; a node written through the first frontend is read back through
the second and found by a search. Exits non-zero with one line naming what failed.

    /opt/chef-backend/embedded/bin/python .ci/check_local_cluster.py /var/lib/chef-backend-local/cluster.json
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.error
import urllib.request

import psycopg
import requests

from chef_server.ctl.client import ApiError, ChefClient


def leader_code(address: str, port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/leader", timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def main(path: str) -> None:
    with open(path) as f:
        doc = json.load(f)
    with open(doc["secrets_file"]) as f:
        password = json.load(f)["postgresql"]["db_superuser_password"]
    ports = doc["ports"]
    addresses = [b["address"] for b in doc["backends"]]
    codes = {a: leader_code(a, ports["leader_check"]) for a in addresses}
    leaders = [a for a, code in codes.items() if code == 200]
    if len(leaders) != 1:
        sys.exit(f"FAIL: expected exactly one node answering 200 on /leader, got {codes}")
    leader = leaders[0]

    def connect(address: str) -> psycopg.Connection:
        return psycopg.connect(host=address, port=ports["postgresql"], user=doc["postgresql_superuser"],
                               password=password, dbname="postgres", connect_timeout=5, autocommit=True)

    token = secrets.token_hex(8)
    with connect(leader) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ci_check (token text PRIMARY KEY)")
        conn.execute("INSERT INTO ci_check VALUES (%s)", (token,))
    for follower in (a for a in addresses if a != leader):
        deadline = time.monotonic() + 30
        while True:
            with connect(follower) as conn:
                if conn.execute("SELECT 1 FROM ci_check WHERE token = %s", (token,)).fetchone():
                    break
            if time.monotonic() > deadline:
                sys.exit(f"FAIL: the row written on the leader {leader} never reached {follower}")
            time.sleep(0.5)
    print(f"OK: leader {leader} (the only 200 of {len(addresses)}); its write read back on every follower")
    check_frontend(doc)


def status_ok(url: str, certificate: str) -> None:
    try:
        status = requests.get(f"{url}/_status", verify=certificate, timeout=10)
    except requests.RequestException as exc:
        sys.exit(f"FAIL: {url}/_status: {exc}")
    if status.status_code != 200:
        sys.exit(f"FAIL: {url}/_status answered {status.status_code}: {status.text[:200]}")


def knife_setting(config_rb: str, name: str) -> str:
    """A quoted setting of the knife configuration local_cluster.py wrote (one `name 'value'` per line)."""
    with open(config_rb) as f:
        lines = f.read().splitlines()
    for line in lines:
        words = line.split(None, 1)
        if words and words[0] == name:
            return words[1].strip().strip("'")
    sys.exit(f"FAIL: {config_rb} does not set {name}")


def check_frontend(doc: dict) -> None:
    """The Chef server the first command started: each frontend's and the load balancer's unsigned
    /_status, then signed requests through the load balancer as pivotal and as the admin user of the
    knife configuration, and a node written through one frontend read through the other."""
    url = doc["chef_server_url"]
    certificate = doc["certificate"]
    for fe in doc["frontends"]:
        status_ok(fe["url"], certificate)
    status_ok(url, certificate)
    with open(doc["pivotal_key"]) as f:
        api = ChefClient(url, doc["superuser"], f.read(), verify=certificate)
    try:
        user = api.get(f"/users/{doc['superuser']}")
    except (ApiError, requests.RequestException) as exc:
        sys.exit(f"FAIL: signed GET {url}/users/{doc['superuser']} with {doc['pivotal_key']}: {exc}")
    print(f"OK: frontends {', '.join(fe['url'] for fe in doc['frontends'])} and the load balancer {url}: "
          f"/_status 200 through TLS; signed as {user.get('username')} with {doc['pivotal_key']}")

    knife_rb = doc["knife_config"]
    org_url, admin = knife_setting(knife_rb, "chef_server_url"), knife_setting(knife_rb, "node_name")
    if not org_url.startswith(url + "/organizations/"):
        sys.exit(f"FAIL: {knife_rb}: chef_server_url {org_url} is not an organization on {url}")
    with open(knife_setting(knife_rb, "client_key")) as f:
        key = f.read()
    org_path = org_url.removeprefix(url)
    try:
        ChefClient(url, admin, key, verify=certificate).get(f"{org_path}/nodes")
    except (ApiError, requests.RequestException) as exc:
        sys.exit(f"FAIL: signed GET {org_url}/nodes as {admin} (the knife configuration {knife_rb}): {exc}")
    node = f"ci-check-{secrets.token_hex(4)}"
    first, second = doc["frontends"][0]["url"], doc["frontends"][1]["url"]
    body = {"name": node, "chef_type": "node", "json_class": "Chef::Node", "chef_environment": "_default",
            "run_list": [], "normal": {"written_through": first}}
    try:
        ChefClient(first, admin, key, verify=certificate).post(f"{org_path}/nodes", body)
        read = ChefClient(second, admin, key, verify=certificate).get(f"{org_path}/nodes/{node}")
    except (ApiError, requests.RequestException) as exc:
        sys.exit(f"FAIL: node {node} written through {first}, read through {second}: {exc}")
    if read.get("normal") != body["normal"]:
        sys.exit(f"FAIL: node {node} read through {second} differs: {read}")
    print(f"OK: signed as {admin} through {url} with {knife_rb}; node {node} written through {first}, "
          f"read back through {second}")
    search = ChefClient(url, admin, key, verify=certificate)
    deadline = time.monotonic() + 60  # indexed before the write was answered; visible after the engine's refresh
    while True:
        try:
            rows = search.get(f"{org_path}/search/node?q=name:{node}")["rows"]
        except (ApiError, requests.RequestException) as exc:
            sys.exit(f"FAIL: search for node {node} through {url}: {exc}")
        if [r.get("name") for r in rows] == [node]:
            break
        if time.monotonic() > deadline:
            sys.exit(f"FAIL: node {node} is not found by a search through {url} (rows: {rows})")
        time.sleep(1)
    print(f"OK: node {node} found by search through {url}")


if __name__ == "__main__":
    main(sys.argv[1])
