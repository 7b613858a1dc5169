"""etcd.tls: the cluster CA in the secrets file, each node's certificates, etcd's configuration."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from chef_backend.config.settings import ConfigError, Settings, load_text
from chef_backend.host.paths import NodePaths
from chef_backend.secrets import Secrets, SecretsError
from chef_backend.services import etcd, etcd_certs, etcd_tls


def settings(tmp_path: Path, tls: bool = True, address: str = "10.1.2.3") -> Settings:
    return load_text(f"publish_address '{address}'\nfqdn 'node-a'\netcd.tls = {str(tls).lower()}\n"
                     f"ssl.data_dir = '{tmp_path}/ssl'\nleaderl.username = 'root'\nssl.key_length = 2048\n")


@pytest.fixture(autouse=True)
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(etcd, "USER", "root")


@pytest.fixture(scope="module")
def cluster_secrets(tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    return etcd_certs.ensure_ca(settings(tmp_path_factory.mktemp("ca")), Secrets.generate())


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_ca_is_made_only_when_asked_for(tmp_path: Path, cluster_secrets: Secrets) -> None:
    plain = Secrets.generate()
    assert etcd_certs.ensure_ca(settings(tmp_path, tls=False), plain) is plain
    assert cluster_secrets.etcd_ca_certificate and cluster_secrets.etcd_ca_key
    assert etcd_certs.ensure_ca(settings(tmp_path), cluster_secrets) is cluster_secrets
    ca = x509.load_pem_x509_certificate(cluster_secrets.etcd_ca_certificate.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_ca_survives_the_secrets_file_and_is_scrubbed(cluster_secrets: Secrets) -> None:
    again = Secrets.parse(cluster_secrets.to_json(), "secrets.json")
    assert again == cluster_secrets
    assert again.fingerprint == cluster_secrets.fingerprint
    assert cluster_secrets.etcd_ca_key in cluster_secrets.all_values()
    assert Secrets.parse(Secrets.generate().to_json(), "x").etcd_ca_certificate is None


@pytest.mark.parametrize("change", [
    {"ca_key": None},
    {"ca_certificate": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"},
    {"ca_key": "garbage"},
    {"ca_certificate": 42},
])
def test_a_broken_ca_in_the_secrets_file_is_refused(cluster_secrets: Secrets, change: dict) -> None:
    doc = json.loads(cluster_secrets.to_json())
    doc["etcd"].update(change)
    doc["etcd"] = {k: v for k, v in doc["etcd"].items() if v is not None}
    with pytest.raises(SecretsError, match=r"etcd\.ca_certificate and etcd\.ca_key must both be PEM"):
        Secrets.parse(json.dumps(doc), "secrets.json")


def test_a_node_must_agree_with_its_cluster(tmp_path: Path, cluster_secrets: Secrets) -> None:
    etcd_tls.check_consistent(settings(tmp_path), cluster_secrets)
    etcd_tls.check_consistent(settings(tmp_path, tls=False), Secrets.generate())
    with pytest.raises(ConfigError, match=r"set etcd\.tls = true"):
        etcd_tls.check_consistent(settings(tmp_path, tls=False), cluster_secrets)
    with pytest.raises(ConfigError, match=r"set etcd\.tls = false"):
        etcd_tls.check_consistent(settings(tmp_path), Secrets.generate())


def test_node_certificates_come_from_the_cluster_ca(tmp_path: Path, cluster_secrets: Secrets) -> None:
    s = settings(tmp_path)
    etcd_certs.ensure_node_certificates(s, cluster_secrets)
    ca = load(etcd_tls.ca_file(s))
    server_cert, server_key = etcd_tls.server_files(s)
    client = etcd_tls.client_tls(s)
    assert client is not None
    for path in (server_cert, Path(client.cert)):
        load(path).verify_directly_issued_by(ca)
    server = load(server_cert)
    ips = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.IPAddress)
    assert ipaddress.ip_address("10.1.2.3") in ips
    uses = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(uses) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert list(load(Path(client.cert)).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert oct(server_key.stat().st_mode & 0o777) == "0o600"
    assert oct(Path(client.key).stat().st_mode & 0o777) == "0o600"


def test_certificates_are_kept_unless_they_no_longer_fit(tmp_path: Path, cluster_secrets: Secrets) -> None:
    s = settings(tmp_path)
    etcd_certs.ensure_node_certificates(s, cluster_secrets)
    server_cert, _ = etcd_tls.server_files(s)
    first = server_cert.read_bytes()
    etcd_certs.ensure_node_certificates(s, cluster_secrets)
    assert server_cert.read_bytes() == first  # same CA, same address: kept
    etcd_certs.ensure_node_certificates(settings(tmp_path, address="10.1.2.4"), cluster_secrets)
    assert server_cert.read_bytes() != first  # a new publish address: reissued
    other = etcd_certs.ensure_ca(settings(tmp_path), Secrets.generate())
    etcd_certs.ensure_node_certificates(settings(tmp_path, address="10.1.2.4"), other)
    load(server_cert).verify_directly_issued_by(load(etcd_tls.ca_file(s)))  # another CA: reissued


def test_etcd_requires_certificates_on_both_ports(tmp_path: Path, cluster_secrets: Secrets,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(tmp_path)
    paths = NodePaths.under(tmp_path / "root")
    monkeypatch.setattr("chef_backend.host.fsutil.chown", lambda *a, **k: None)
    etcd.write_config(s, paths, cluster_secrets, "g" * 32, {"g" * 32: etcd.peer_url(s)}, "new")
    config = json.loads(paths.etcd_config.read_text())
    assert config["listen-client-urls"] == "https://10.1.2.3:2379,https://127.0.0.1:2379"  # etcdctl's default too
    assert config["initial-cluster"] == f"{'g' * 32}=https://10.1.2.3:2380"
    for side in ("client-transport-security", "peer-transport-security"):
        assert config[side]["client-cert-auth"] is True
        assert config[side]["trusted-ca-file"] == str(etcd_tls.ca_file(s))
    plain = settings(tmp_path, tls=False)
    etcd.write_config(plain, paths, Secrets.generate(), "g" * 32, {"g" * 32: etcd.peer_url(plain)}, "new")
    config = json.loads(paths.etcd_config.read_text())
    assert config["listen-client-urls"] == "http://10.1.2.3:2379,http://127.0.0.1:2379"
    assert "client-transport-security" not in config
    assert etcd.service_spec(s, paths).log_drop and not etcd.service_spec(plain, paths).log_drop


def test_a_ca_of_the_right_shape_but_unreadable_is_refused_cleanly(tmp_path: Path, cluster_secrets: Secrets) -> None:
    garbled = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    broken = Secrets.parse(cluster_secrets.to_json().replace(
        json.dumps(cluster_secrets.etcd_ca_certificate)[1:-1], json.dumps(garbled)[1:-1]), "secrets.json")
    with pytest.raises(SecretsError, match=r"etcd CA .* cannot be read"):
        etcd_certs.ensure_node_certificates(settings(tmp_path), broken)
