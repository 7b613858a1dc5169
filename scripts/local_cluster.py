#!/opt/chef-backend/embedded/bin/python3
"""A local highly available Chef server: a three-node backend cluster on 127.0.0.11-13 (each node under
/var/lib/chef-backend-local/nodeN), two Chef server frontends on it at https://127.0.0.21 and https://127.0.0.22
(under .../frontendN, one certificate shared by both), and a load balancer in front of them at https://127.0.0.30
(.../load-balancer); then an organization `demo` with an admin user `admin`, and knife's and chef-client's
configuration for them in .../chef.

    local_cluster.py up       create it (or start it again if it exists), print status, and write what it
                              started to <base>/cluster.json (tools and tests read that file); safe to repeat
    local_cluster.py down     stop the load balancer, the frontends and every node
    local_cluster.py destroy  stop and delete everything
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import requests

from chef_backend.host import fsutil
from chef_server.ctl import certificate, knife_config, load_balancer
from chef_server.ctl.client import ApiError, ChefClient

BASE = Path(os.environ.get("CHEF_BACKEND_LOCAL", "/var/lib/chef-backend-local"))
CTL = "/usr/local/bin/chef-backend-ctl"
SERVER_CTL = "/usr/local/bin/chef-server-ctl"
NODES = [(i, f"127.0.0.1{i}") for i in (1, 2, 3)]
SERVER_NAME = "chef-server.local"  # the name in the shared certificate, beside every address below
LB = load_balancer.LoadBalancer(dir=BASE / "load-balancer", address="127.0.0.30", port=443,
                                frontends=(("frontend-1", "127.0.0.21"), ("frontend-2", "127.0.0.22")))
CERTIFICATE = BASE / "ssl" / f"{SERVER_NAME}.crt"  # every frontend serves it: clients reach them through the LB
CERTIFICATE_KEY = BASE / "ssl" / f"{SERVER_NAME}.key"
KIT = knife_config.KnifeKit(directory=BASE / "chef", server_url=LB.url, org="demo", user="admin")


@dataclass(frozen=True)
class Frontend:
    name: str
    address: str

    @property
    def root(self) -> Path:
        return BASE / f"frontend{self.name.rsplit('-', 1)[1]}"

    @property
    def dir(self) -> Path:
        """The frontend's /var/opt/opscode, as on its own host."""
        return self.root / "var/opt/opscode"

    @property
    def etc(self) -> Path:
        """The frontend's /etc/opscode (chef-server.rb, pivotal.pem)."""
        return self.root / "etc/opscode"

    @property
    def server_rb(self) -> Path:
        return self.etc / "chef-server.rb"

    @property
    def url(self) -> str:
        return f"https://{self.address}"


FRONTENDS = [Frontend(name, address) for name, address in LB.frontends]


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


def ensure_certificate() -> None:
    """One self-signed certificate naming the load balancer and every frontend, made once."""
    addresses = [LB.address, *(fe.address for fe in FRONTENDS)]
    fsutil.make_dir(CERTIFICATE.parent, mode=0o755)
    certificate.ensure(CERTIFICATE, CERTIFICATE_KEY, SERVER_NAME, *addresses)


def start_frontend(fe: Frontend) -> None:
    """gen-server-config on a backend (once), the shared certificate in chef-server.rb, then
    `chef-server-ctl reconfigure` on the frontend (which waits until it answers /_status)."""
    if not fe.server_rb.exists():
        fe.etc.mkdir(parents=True, exist_ok=True)
        ctl(1, "gen-server-config", fe.name, "-f", str(fe.server_rb))
    text = fe.server_rb.read_text()
    if "nginx['ssl_certificate']" not in text:
        fe.server_rb.write_text(text + f"nginx['ssl_certificate'] = '{CERTIFICATE}'\n"
                                       f"nginx['ssl_certificate_key'] = '{CERTIFICATE_KEY}'\n")
    rc = subprocess.run([SERVER_CTL, "reconfigure", "--config", str(fe.server_rb), "--dir", str(fe.dir),
                         "--listen", fe.address]).returncode
    if rc != 0:
        sys.exit(f"chef-server-ctl reconfigure failed for the frontend on {fe.address}; see {fe.dir}/log/")


def start_load_balancer() -> None:
    up = load_balancer.configure(LB)
    if len(up) != len(FRONTENDS):
        sys.exit(f"the load balancer sees {len(up)} of {len(FRONTENDS)} frontends answering /_status "
                 f"(UP: {', '.join(up) or 'none'}); see {LB.dir}/log/")


def pivotal() -> ChefClient:
    """The superuser, through the load balancer, verifying the shared certificate."""
    key = (FRONTENDS[0].etc / "pivotal.pem").read_text()
    return ChefClient(LB.url, "pivotal", key, verify=str(CERTIFICATE))


def key_works(path: Path, name: str, request_path: str) -> bool:
    """Whether `path` holds a private key the server accepts for `name`: a signed GET of `request_path` is not
    refused as unauthenticated (a validator may not read much, but a 403 still proves its key)."""
    if not path.exists():
        return False
    try:
        ChefClient(LB.url, name, path.read_text(), verify=str(CERTIFICATE)).get(request_path)
    except ApiError as exc:
        return exc.status != 401
    return True


def write_key(path: Path, pem: str) -> None:
    fsutil.write_file(path, pem, mode=0o600)


def renew_key(api: ChefClient, keys_path: str, path: Path) -> None:
    """A new default key pair for an actor whose private key file is missing or stale (a re-run)."""
    write_key(path, api.put(f"{keys_path}/default", {"create_key": True})["private_key"])


def add_to_group(api: ChefClient, org: str, group: str, user: str) -> None:
    current = api.get(f"/organizations/{org}/groups/{group}")
    if user in current.get("users", []):
        return
    api.put(f"/organizations/{org}/groups/{group}", {"groupname": group, "actors": {
        "users": [user, *current.get("users", [])], "clients": current.get("clients", []),
        "groups": current.get("groups", [])}})


def ensure_org_and_admin() -> None:
    """The org, its admin user (a member, in admins and billing-admins) and both private keys in the kit's
    directory; what exists is kept, a key file that does not work is replaced by a new key."""
    api = pivotal()
    fsutil.make_dir(KIT.directory, mode=0o700)
    try:
        api.get(f"/users/{KIT.user}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        user = api.post("/users", {"username": KIT.user, "first_name": "Admin", "last_name": "User",
                                   "display_name": "Admin User", "email": f"{KIT.user}@example.com",
                                   "password": secrets.token_urlsafe(24), "create_key": True})
        write_key(KIT.user_key, user["chef_key"]["private_key"])
    try:
        api.get(f"/organizations/{KIT.org}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        org = api.post("/organizations", {"name": KIT.org, "full_name": "Demo organization"})
        write_key(KIT.validator_key, org["private_key"])
    try:
        api.post(f"/organizations/{KIT.org}/users", {"username": KIT.user})
    except ApiError as exc:
        if exc.status != 409:  # already a member
            raise
    for group in ("admins", "billing-admins"):
        add_to_group(api, KIT.org, group, KIT.user)
    if not key_works(KIT.user_key, KIT.user, f"/users/{KIT.user}"):
        renew_key(api, f"/users/{KIT.user}/keys", KIT.user_key)
    if not key_works(KIT.validator_key, KIT.validator, f"/organizations/{KIT.org}/clients/{KIT.validator}"):
        renew_key(api, f"/organizations/{KIT.org}/clients/{KIT.validator}/keys", KIT.validator_key)


def write_kit() -> None:
    """knife's config.rb, chef-client's client.rb and the trusted certificate, beside the keys."""
    fsutil.make_dir(KIT.trusted_certs, mode=0o755)
    shutil.copyfile(CERTIFICATE, KIT.trusted_certs / CERTIFICATE.name)
    fsutil.write_file(KIT.knife_rb, knife_config.render_knife_rb(KIT), mode=0o644)
    fsutil.write_file(KIT.client_rb, knife_config.render_client_rb(KIT), mode=0o644)


def wait_status(url: str, timeout: float = 60) -> int:
    """GET URL (verifying the shared certificate) until it answers 200; the last status (0: no answer)."""
    deadline = time.monotonic() + timeout
    code = 0
    while time.monotonic() < deadline:
        try:
            code = requests.get(url, timeout=5, verify=str(CERTIFICATE)).status_code
        except requests.RequestException:
            code = 0
        if code == 200:
            break
        time.sleep(0.5)
    return code


def write_cluster_file() -> Path:
    """What `up` started, for tools and tests: no need to scrape the text it prints."""
    doc = {
        "chef_server_url": LB.url,
        "certificate": str(CERTIFICATE),
        "pivotal_key": str(FRONTENDS[0].etc / "pivotal.pem"),
        "superuser": "pivotal",
        "organization": {"name": KIT.org, "url": KIT.org_url, "validator": KIT.validator,
                         "validator_key": str(KIT.validator_key)},
        "admin": {"name": KIT.user, "key": str(KIT.user_key)},
        "knife_config": str(KIT.knife_rb),
        "client_config": str(KIT.client_rb),
        "load_balancer": {"address": LB.address, "url": LB.url, "dir": str(LB.dir)},
        "backends": [{"name": f"backend-{index}", "address": address,
                      "root": str(BASE / f"node{index}")} for index, address in NODES],
        "frontends": [{"name": fe.name, "address": fe.address, "url": fe.url, "dir": str(fe.dir),
                       "config": str(fe.server_rb), "certificate": str(CERTIFICATE)} for fe in FRONTENDS],
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
    ensure_certificate()
    for fe in FRONTENDS:
        start_frontend(fe)
    start_load_balancer()
    if wait_status(f"{LB.url}/_status") != 200:
        sys.exit(f"the load balancer does not answer 200 on {LB.url}/_status; see {LB.dir}/log/")
    ensure_org_and_admin()
    write_kit()
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
Two Chef server frontends on it: {", ".join(fe.url for fe in FRONTENDS)} (each: HAProxy to the leader, the API,
TLS), and a load balancer in front of them: {LB.url} (checks each frontend's /_status every second)
  Certificate:   {CERTIFICATE} (self-signed, shared by the frontends; names {SERVER_NAME} and the addresses)
  Superuser key: {FRONTENDS[0].etc / "pivotal.pem"} (user pivotal)
  Commands:      chef-server-ctl --dir {FRONTENDS[0].dir} status | user-create | org-create ...
Organization {KIT.org!r} with the admin user {KIT.user!r}:
  knife:         knife node list -c {KIT.knife_rb}   (or copy {KIT.directory} to ~/.chef)
  chef-client:   chef-client -c {KIT.client_rb}   (registers the node with the validator key)
  Keys:          {KIT.user_key} (user {KIT.user}), {KIT.validator_key} (validator)
  Stop / remove: {sys.argv[0]} down | destroy
  What it runs:  {info} (JSON: chef_server_url, keys, organization, backend, frontend and LB addresses)
""")


def down() -> None:
    load_balancer.stop(LB.dir)
    for fe in FRONTENDS:
        if fe.dir.exists():
            subprocess.run([SERVER_CTL, "stop", "--dir", str(fe.dir)], check=False)
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
    elif command in ("-h", "--help"):
        print(__doc__)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
