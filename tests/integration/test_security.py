"""Secrets stay secret (file modes, logs, ps, command output) and the leader manager's HTTP port
holds up against hostile clients."""

from __future__ import annotations

import json
import os
import resource
import socket
import time
from pathlib import Path

import pytest

from chef_backend.host.httpcheck import http_status
from tests.support.harness import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("security") as c:
        yield c


def secret_values(cluster: Cluster) -> dict[str, str]:
    doc = json.loads(cluster.nodes[0].secrets_file.read_text())
    return {f"{section}.{key}": value for section, values in doc.items() if isinstance(values, dict)
            for key, value in values.items() if isinstance(value, str) and len(value) >= 16}


def test_secret_files_have_the_seed_owners_and_modes(cluster: Cluster) -> None:
    for node in cluster.nodes:
        etc, var = node.root / "etc/chef-backend", node.root / "var/opt/chef-backend"
        expected = {
            etc / "chef-backend-secrets.json": ("root", "chef_pgsql", 0o640),
            var / "leaderl/data/leaderl.json": ("chef_pgsql", "chef_pgsql", 0o600),
            var / "etcd/etcd.conf.yml": ("chef-backend", "chef-backend", 0o600),
            var / "postgresql/15/replication.pgpass": ("chef_pgsql", "chef_pgsql", 0o600),
        }
        expected.update({p: ("chef_pgsql", "chef_pgsql", 0o600) for p in var.glob("postgresql/*/standby.conf")})
        expected.update({p: ("chef_pgsql", "chef_pgsql", 0o600) for p in (var / "ssl").glob("*.key")})
        assert len(expected) >= 5, sorted(expected)  # standby.conf only once the node followed someone
        for path, (owner, group, mode) in expected.items():
            st = path.stat()
            got = (_user(st.st_uid), _group(st.st_gid), st.st_mode & 0o777)
            assert got == (owner, group, mode), (str(path), got)


def test_status_warns_when_a_secret_file_is_loosened(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    node.secrets_file.chmod(0o644)
    try:
        result = node.ctl("status", check=False)
        assert (f"WARNING: {node.secrets_file} (holds the cluster's passwords) is root:chef_pgsql 0644, "
                "must be root:chef_pgsql 0640") in result.stderr
    finally:
        node.secrets_file.chmod(0o640)
    assert "WARNING" not in node.ctl("status", check=False).stderr


def test_no_secret_in_logs_command_output_or_process_arguments(cluster: Cluster) -> None:
    """After a bootstrap, a switchover and back, and a follower restart: grep everything."""
    leader = cluster.wait_leader()
    other = next(n for n in cluster.nodes if n is not leader)
    other.ctl("promote", other.name)
    cluster.wait_for(lambda: other.leader_code() == 200, 60, "the switchover")
    leader.ctl("restart", "leaderl")
    cluster.wait_healthy()
    outputs = {" ".join(args): node.ctl(*args, check=False) for node in cluster.nodes
               for args in (["status"], ["cluster-status"], ["cluster-status", "--json"], ["show-config"],
                            ["gen-sample-backend-config"], ["join-cluster", "127.0.0.11", "--yes"])}
    places: dict[str, bytes] = {f"`{cmd}`": (r.stdout + r.stderr).encode() for cmd, r in outputs.items()}
    for node in cluster.nodes:
        for path in (node.root / "var/log/chef-backend").rglob("*"):
            if path.is_file():
                places[str(path)] = path.read_bytes()
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                places[f"ps {pid.name}"] = (pid / "cmdline").read_bytes()
            except OSError:
                pass
    assert sum(1 for p in places if "/var/log/" in p) >= 9
    leaks = [f"{name} in {where}" for name, value in secret_values(cluster).items()
             for where, data in places.items() if value.encode() in data]
    assert leaks == []


# --- the leader manager's HTTP port ------------------------------------------------------------------

def raw_exchange(address: str, payload: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection((address, 7331), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass  # the server may close on us mid-way: what it answered still counts
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError:
            pass
        return data


@pytest.mark.parametrize(("payload", "status"), [
    (b"\x00\xff garbage\r\n\r\n", b"400"),
    (b"GET /leader HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", b"431"),
    (b"POST /leader HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"b" * 200_000, b"4"),
    (b"GET /leader HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"4"),
    (b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"404"),
    (b"GET /leader HTTP/2.0\r\nHost: x\r\n\r\n", b"505"),
])
def test_malformed_requests_get_an_error_and_nothing_breaks(cluster: Cluster, payload: bytes, status: bytes) -> None:
    node = cluster.nodes[0]
    answer = raw_exchange(node.address, payload)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:100]
    assert node.leader_code() in (200, 503)


def test_leader_keeps_answering_with_1000_idle_connections_held_open(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle: list[socket.socket] = []
    try:
        for i in range(1000):
            sock = socket.create_connection((leader.address, 7331), timeout=5)
            if i % 2:
                sock.sendall(b"GET /leader HTTP/1.1\r\nHost: x\r\n")  # half a request, never finished
            idle.append(sock)
        times = []
        for _ in range(100):
            started = time.monotonic()
            assert http_status(f"http://{leader.address}:7331/leader", 2) == 200
            times.append(time.monotonic() - started)
            time.sleep(0.02)
        # Within 100 ms, allowing a few scheduling hiccups on a shared 2-core machine; never near
        # HAProxy's 2 s check interval.
        slow = sorted(round(t, 3) for t in times if t > 0.1)
        assert len(slow) <= 5 and max(times) < 1.0, f"/leader slower than 100 ms: {slow}"
        assert all(n.leader_code() in (200, 503) for n in cluster.nodes)
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _user(uid: int) -> str:
    import pwd

    return pwd.getpwuid(uid).pw_name


def _group(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def test_join_outputs_do_not_echo_the_environment() -> None:
    # Guards the test above: the ctl must not put secrets in its environment either.
    assert "PGPASSWORD" not in os.environ
