"""`chef-server-ctl reconfigure` on a frontend host (127.0.0.21) of a real three-node cluster: HAProxy to the
leader, the API service and nginx's TLS endpoint under runit; signed requests through HTTPS; and a kill -9 of
the backend leader answered with 503s, then success again, never a 4xx and no acknowledged write lost."""

from __future__ import annotations

import os
import stat
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from chef_server.ctl.client import ApiError, ChefClient, sign_headers
from tests.support.harness import Cluster

CTL = os.environ.get("CHEF_SERVER_CTL", "/opt/chef-backend/embedded/bin/chef-server-ctl")
ADDRESS = "127.0.0.21"
URL = f"https://{ADDRESS}"
FQDN = "fe1.example.com"
RECOVERY_BOUND_S = 120  # after the leader node dies, requests succeed again within this


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("chef-server-frontend") as c:
        yield c


class Frontend:
    def __init__(self, cluster: Cluster) -> None:
        self.root = cluster.base / "fe1"
        self.dir = self.root / "var/opt/opscode"
        self.server_rb = self.root / "etc/opscode/chef-server.rb"
        self.pivotal_key = self.root / "etc/opscode/pivotal.pem"
        self.certificate = self.dir / f"nginx/ca/{FQDN}.crt"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([CTL, *args], text=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"chef-server-ctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def reconfigure(self) -> subprocess.CompletedProcess[str]:
        return self.ctl("reconfigure", "--config", str(self.server_rb), "--dir", str(self.dir), "--listen", ADDRESS)

    def client(self) -> ChefClient:
        return ChefClient(URL, "pivotal", self.pivotal_key.read_text(), verify=str(self.certificate))


@pytest.fixture(scope="module")
def frontend(cluster: Cluster):
    fe = Frontend(cluster)
    fe.server_rb.parent.mkdir(parents=True)
    cluster.nodes[1].ctl("gen-server-config", FQDN, "-f", str(fe.server_rb))
    try:
        fe.reconfigure_output = fe.reconfigure().stdout
        yield fe
    finally:
        fe.ctl("stop", "--dir", str(fe.dir), check=False)


def test_reconfigure_gives_a_running_frontend(frontend: Frontend) -> None:
    out = frontend.reconfigure_output
    assert "HAProxy routes PostgreSQL and search to the leader" in out and f"Chef server ready: {URL}" in out
    # The self-signed certificate names the address: verified against it, not merely ignored.
    resp = requests.get(f"{URL}/_status", verify=str(frontend.certificate), timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "pong"
    assert stat.S_IMODE(frontend.pivotal_key.stat().st_mode) == 0o600
    # Chef's runbooks run knife as the superuser with -c /etc/opscode/pivotal.rb.
    assert str(frontend.pivotal_key) in frontend.pivotal_key.with_name("pivotal.rb").read_text()
    result = frontend.ctl("status", "--dir", str(frontend.dir), check=False)
    status = result.stdout.splitlines()
    assert [line.split(":")[0:2] for line in status[:3]] == [["run", " haproxy"], ["run", " chef-server-api"],
                                                             ["run", " nginx"]]
    assert status[3].startswith("chef_backend_postgresql: UP ")
    assert "chef-server-api: ok" in result.stdout and any(line.startswith("leader: ") for line in status)
    # These backends run without search (the integration tests' default): status names that, and only
    # that, as what is wrong.
    assert "search: unreachable" in result.stdout and result.returncode == 1


def test_services_run_as_their_own_users(frontend: Frontend) -> None:
    def users_of(program: bytes) -> set[str]:
        found = set()
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                if cmdline.startswith(program) and str(frontend.dir).encode() in cmdline:
                    found.add(Path(f"/proc/{entry.name}").owner())
            except (OSError, KeyError):
                continue
        return found

    assert users_of(b"/usr/sbin/haproxy") == {"haproxy"}
    assert users_of(b"/opt/chef-backend/embedded/bin/python") == {"opscode"}  # the API and its workers


def test_signed_user_and_org_create_through_https(frontend: Frontend) -> None:
    api = frontend.client()
    user = api.post("/users", {"username": "alice", "first_name": "Alice", "last_name": "Doe",
                               "display_name": "Alice Doe", "email": "alice@example.com", "password": "p4ssw0rd!",
                               "create_key": True})
    assert user["uri"] == f"{URL}/users/alice" and "private_key" in user["chef_key"]
    org = api.post("/organizations", {"name": "acme", "full_name": "Acme"})
    assert org["clientname"] == "acme-validator" and "BEGIN RSA PRIVATE KEY" in org["private_key"]
    assert api.get("/organizations/acme")["full_name"] == "Acme"
    # The operator's commands, signing as pivotal with the key reconfigure wrote, against the same frontend.
    frontend.ctl("--dir", str(frontend.dir), "--key", str(frontend.pivotal_key), "user-create", "bob", "Bob", "Roe",
                 "bob@example.com", "p4ssw0rd!", "-f", str(frontend.root / "bob.pem"))
    frontend.ctl("--dir", str(frontend.dir), "--key", str(frontend.pivotal_key), "org-create", "beta", "Beta",
                 "-a", "bob", "-f", str(frontend.root / "beta-validator.pem"))
    listed = frontend.ctl("--dir", str(frontend.dir), "--key", str(frontend.pivotal_key), "org-list").stdout.split()
    assert listed == ["acme", "beta"]


def test_an_oversized_body_through_nginx_is_chefs_413(frontend: Frontend) -> None:
    """The API reads a refused body to its end: answering before it would close the connection under
    nginx, which would turn the 413 into a 502 (and so into our 503)."""
    api = frontend.client()
    with pytest.raises(ApiError) as refused:
        api.post("/organizations/acme/nodes", {"name": "big", "normal": {"blob": "x" * 3_000_000}})
    assert refused.value.status == 413 and "no more than 2000000 bytes" in refused.value.message
    assert api.post("/organizations/acme/nodes", {"name": "small"})["uri"].endswith("/nodes/small")


def test_a_second_reconfigure_changes_nothing(frontend: Frontend) -> None:
    before = frontend.ctl("status", "--dir", str(frontend.dir), check=False).stdout  # 1: no search here
    out = frontend.reconfigure().stdout
    assert "reloaded" not in out and ": restart" not in out and ": hup" not in out
    after = frontend.ctl("status", "--dir", str(frontend.dir), check=False).stdout
    pids = [line.split("(pid ")[1].split(")")[0] for line in before.splitlines()[:3]]
    assert pids == [line.split("(pid ")[1].split(")")[0] for line in after.splitlines()[:3]]


def test_stop_and_start(frontend: Frontend) -> None:
    frontend.ctl("stop", "--dir", str(frontend.dir))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{URL}/_status", verify=False, timeout=5)
    frontend.ctl("start", "--dir", str(frontend.dir))
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(f"{URL}/_status", verify=False, timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the frontend did not answer 200 on /_status after start"
        time.sleep(0.5)


def signed(session: requests.Session, key, verify: str, method: str, path: str, body: object = None) -> int:
    """The status of one signed request as pivotal; 0 for a connection error."""
    data = b"" if body is None else orjson.dumps(body)
    headers = sign_headers(key, "pivotal", method, path, data)
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        return session.request(method, URL + path, data=data, headers=headers, timeout=30,
                               verify=verify).status_code
    except requests.RequestException:
        return 0


def test_kill_9_of_the_backend_leader_gives_503s_then_success_never_4xx(cluster: Cluster, frontend: Frontend) -> None:
    """During the failover a request gets 503 or, when the new leader is up within the API pool's 5-s wait
    for a connection, simply waits; never a 4xx, never a 502 or a reset."""
    key = serialization.load_pem_private_key(frontend.pivotal_key.read_bytes(), password=None)
    session = requests.Session()
    verify = str(frontend.certificate)
    acknowledged: list[str] = []
    codes: list[int] = []

    def one_round() -> bool:
        """A write (a new client in acme) then a read; True when both succeed."""
        name = f"c-{uuid.uuid4().hex[:12]}"
        write = signed(session, key, verify, "POST", "/organizations/acme/clients", {"name": name})
        if write == 201:
            acknowledged.append(name)
        read = signed(session, key, verify, "GET", "/organizations/acme")
        codes.extend([write, read])
        return write == 201 and read == 200

    for _ in range(5):
        assert one_round()
    old = cluster.wait_leader()
    old.crash()
    killed_at = time.monotonic()
    successes = 0
    while successes < 20:  # recovered: 20 rounds in a row succeed
        successes = successes + 1 if one_round() else 0
        assert time.monotonic() - killed_at < RECOVERY_BOUND_S, f"no recovery; codes {sorted(set(codes))}"
    assert cluster.wait_leader() is not old
    assert not [c for c in codes if 400 <= c < 500], f"4xx during the failover: {sorted(set(codes))}"
    assert set(codes) <= {200, 201, 503}, sorted(set(codes))  # nginx and the API stay up: no 502, no reset
    # Every acknowledged write is there after the failover.
    listed = ChefClient(URL, "pivotal", frontend.pivotal_key.read_text(),
                        verify=str(frontend.certificate)).get("/organizations/acme/clients")
    assert not [n for n in acknowledged if n not in listed]
