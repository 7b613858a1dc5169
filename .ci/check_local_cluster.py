"""CI: check that the cluster the README's first command started really works.

Reads the JSON file `scripts/local_cluster.py up` wrote, then: exactly one node answers 200 on
`GET :7331/leader`; a row written on that leader is read back on every other node; the frontend
answers 200 on `/_status` through HTTPS (its certificate verified) and a request signed with the
pivotal key. Exits non-zero with one line naming what failed.

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


def check_frontend(doc: dict) -> None:
    """The Chef server the first command started: unsigned /_status, then a signed request as pivotal."""
    url = doc["chef_server_url"]
    certificate = doc["frontends"][0]["certificate"]
    try:
        status = requests.get(f"{url}/_status", verify=certificate, timeout=10)
    except requests.RequestException as exc:
        sys.exit(f"FAIL: {url}/_status: {exc}")
    if status.status_code != 200:
        sys.exit(f"FAIL: {url}/_status answered {status.status_code}: {status.text[:200]}")
    with open(doc["pivotal_key"]) as f:
        api = ChefClient(url, doc["superuser"], f.read(), verify=certificate)
    try:
        user = api.get(f"/users/{doc['superuser']}")
    except (ApiError, requests.RequestException) as exc:
        sys.exit(f"FAIL: signed GET {url}/users/{doc['superuser']} with {doc['pivotal_key']}: {exc}")
    print(f"OK: frontend {url}: /_status 200 through TLS; signed as {user.get('username')} with {doc['pivotal_key']}")


if __name__ == "__main__":
    main(sys.argv[1])
