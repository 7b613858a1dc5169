"""etcd over TLS with client certificates (`etcd.tls = true`, ours; beyond the seed).

The cluster gets its own certificate authority at create-cluster, kept in the secrets file (the
one thing a joining node is given). Each node then issues itself, under ssl.data_dir/etcd/:

    ca.crt                      the cluster CA's certificate (0644)
    server.crt / server.key     etcd's, for its client and peer ports (key chef-backend 0600)
    client.crt / client.key     the leader manager's and the ctl's client certificate
                                (key leaderl.username 0600)

etcd then requires a certificate from that CA of every client and every peer, so a host that can
reach 2379/2380 but holds no certificate can neither read nor write the cluster's state. The
choice is made for the whole cluster at create-cluster: a node whose setting differs from its
secrets file is refused at join and reconfigure. Issuing the certificates is etcd_certs' job (kept
apart: the leader manager needs only these paths, and not the memory of a crypto library).
"""

from __future__ import annotations

from pathlib import Path

from chef_backend.cluster.store import ClientTls
from chef_backend.config.settings import ConfigError, Settings
from chef_backend.secrets import Secrets


def enabled(settings: Settings) -> bool:
    return bool(settings["etcd.tls"])


def directory(settings: Settings) -> Path:
    data_dir = settings.path("ssl.data_dir")
    assert data_dir is not None
    return data_dir / "etcd"


def ca_file(settings: Settings) -> Path:
    return directory(settings) / "ca.crt"


def server_files(settings: Settings) -> tuple[Path, Path]:
    return directory(settings) / "server.crt", directory(settings) / "server.key"


def client_tls(settings: Settings) -> ClientTls | None:
    """What a client of this node's etcd presents and trusts; None without etcd.tls."""
    if not enabled(settings):
        return None
    d = directory(settings)
    return ClientTls(ca=str(d / "ca.crt"), cert=str(d / "client.crt"), key=str(d / "client.key"))


def check_consistent(settings: Settings, secrets: Secrets) -> None:
    """Refuse a node whose etcd.tls differs from its cluster's (told by the secrets file)."""
    has_ca = secrets.etcd_ca_certificate is not None
    if enabled(settings) and not has_ca:
        raise ConfigError("etcd.tls = true, but this cluster's etcd runs without TLS (its secrets file holds no "
                          "etcd CA); TLS is chosen at create-cluster: set etcd.tls = false in chef-backend.rb")
    if has_ca and not enabled(settings):
        raise ConfigError("this cluster's etcd requires TLS client certificates (its secrets file holds the etcd "
                          "CA): set etcd.tls = true in chef-backend.rb")
