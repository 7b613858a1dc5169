"""`etcd.tls = true`: etcd's client and peer ports take only certificates of the cluster's own CA,
the leader manager and the ctl work through them, and a node configured otherwise is refused."""

from __future__ import annotations

import datetime
import json
import shutil
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.test_refusals import assert_refused, join
from tests.support.harness import Cluster, Node

pytestmark = pytest.mark.integration

FRONTEND_CMD = "/usr/local/bin/chef-backend-frontend"


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("etcd-tls", extra_config="etcd.tls = true\n") as c:
        yield c


def etcd_config(node: Node) -> Path:
    return node.root / "var/opt/chef-backend/etcd/etcd.conf.yml"


def tls_dir(node: Node) -> Path:
    return node.root / "var/opt/chef-backend/ssl/etcd"


def fetch(url: str, context: ssl.SSLContext | None = None) -> dict:
    with urllib.request.urlopen(url, timeout=5, context=context) as resp:
        return json.loads(resp.read())


def client_context(node: Node, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls_dir(node) / "ca.crt"))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def foreign_certificate(base: Path) -> tuple[Path, Path]:
    """A client certificate from a CA that is not the cluster's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "intruder")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = base / "intruder.crt", base / "intruder.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_the_cluster_runs_with_etcd_over_tls(cluster: Cluster) -> None:
    status = cluster.nodes[1].ctl("status").stdout
    assert "etcd" in status
    doc = cluster.cluster_status()
    assert sorted(n["pg"] for n in doc["nodes"]) == ["leader", "synced", "synced"]
    for node in cluster.nodes:
        members = fetch(f"https://{node.address}:2379/v2/members",
                        client_context(node, tls_dir(node) / "client.crt", tls_dir(node) / "client.key"))
        assert sorted(m["peerURLs"][0] for m in members["members"]) == [
            f"https://{n.address}:2380" for n in cluster.nodes]
        config = json.loads(etcd_config(node).read_text())
        assert config["client-transport-security"]["client-cert-auth"] is True
        assert config["peer-transport-security"]["client-cert-auth"] is True


def test_etcd_refuses_clients_and_peers_without_a_cluster_certificate(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        fetch(f"http://{node.address}:2379/v2/members")  # plain HTTP on a TLS port
    cert, key = foreign_certificate(cluster.base)
    for port in (2379, 2380):
        for context in (client_context(node), client_context(node, cert, key)):
            with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError, OSError)):
                fetch(f"https://{node.address}:{port}/version", context)


def test_keys_have_their_owners_and_modes(cluster: Cluster) -> None:
    d = tls_dir(cluster.nodes[2])
    for name, owner in (("server.key", "chef-backend"), ("client.key", "chef_pgsql")):
        st = (d / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert __import__("pwd").getpwuid(st.st_uid).pw_name == owner
    assert "loosened" not in cluster.nodes[2].ctl("status").stdout.lower()
    ca_key = json.loads(cluster.nodes[0].secrets_file.read_text())["etcd"]["ca_key"]
    assert "PRIVATE KEY" in ca_key
    for node in cluster.nodes:
        for log in (node.root / "var/log/chef-backend").rglob("current"):
            assert ca_key.splitlines()[1] not in log.read_text(errors="replace"), log


def test_a_switchover_goes_through_etcd_over_tls(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    target = next(n for n in cluster.nodes if n is not leader)
    target.ctl("promote", target.name)
    cluster.wait_for(lambda: cluster.leaders() == [target], 60, f"{target.name} to lead")
    cluster.wait_healthy()


def test_a_frontend_routes_by_the_member_list_when_etcd_needs_certificates(cluster: Cluster) -> None:
    """Chef frontends read /v2/members over plain HTTP; with etcd.tls they fall back to the
    configured members, which routes as well (HAProxy checks /leader on each)."""
    fe = cluster.base / "fe"
    members = ",".join(n.address for n in cluster.nodes)
    try:
        result = subprocess.run([FRONTEND_CMD, "reconfigure", "--members", members, "--listen", "127.0.0.27",
                                 "--dir", str(fe)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert cluster.wait_leader().address in result.stdout
    finally:
        subprocess.run([FRONTEND_CMD, "stop", "--dir", str(fe)], capture_output=True, timeout=60)


def test_a_node_without_etcd_tls_is_refused_at_join(cluster: Cluster, newcomer: Node) -> None:
    result = join(newcomer, secrets=str(cluster.secrets_copy))
    assert_refused(result, "set etcd.tls = true")
    assert newcomer.processes() == set()
    assert len(cluster.cluster_status()["nodes"]) == 3


def test_turning_etcd_tls_off_is_refused_at_reconfigure(cluster: Cluster) -> None:
    node = cluster.nodes[2]
    before = node.config_file.read_text()
    conf_before = etcd_config(node).read_text()
    try:
        node.config_file.write_text(before.replace("etcd.tls = true", "etcd.tls = false"))
        assert_refused(node.ctl("reconfigure", check=False), "set etcd.tls = true")
        assert etcd_config(node).read_text() == conf_before
    finally:
        node.config_file.write_text(before)
    cluster.wait_healthy()


def test_quorum_loss_recovery_keeps_the_ca_and_rebuilds_over_tls(cluster: Cluster) -> None:
    """Two nodes destroyed: the survivor re-forms the cluster (new etcd token, same CA), and two
    fresh nodes join it over TLS with the new secrets file."""
    survivor = cluster.wait_leader()
    ca_before = json.loads(survivor.secrets_file.read_text())["etcd"]["ca_certificate"]
    lost = cluster.lose_all_but(survivor)
    survivor.ctl("create-cluster", "--quorum-loss-recovery", "--yes")
    assert json.loads(survivor.secrets_file.read_text())["etcd"]["ca_certificate"] == ca_before
    shutil.copy(survivor.secrets_file, cluster.secrets_copy)
    for node in lost:
        node.ctl("join-cluster", survivor.address, "-s", str(cluster.secrets_copy), "--yes")
    cluster.wait_healthy()
    for node in cluster.nodes:
        assert json.loads(etcd_config(node).read_text())["initial-advertise-peer-urls"].startswith("https://")
