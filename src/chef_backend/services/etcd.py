"""etcd on a backend node: its configuration file and runit service.

The member name is the node's 32-hex GUID, and its first peer URL is on the publish address, which
is what Chef frontends read from `GET /v2/members` (hence `enable-v2`). etcd logs its initial
cluster token at start, so it gets a one-way hash of the secrets file's token (unique per cluster
all the same), in a 0600 config file rather than on the command line.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from chef_backend.config.settings import Settings
from chef_backend.host import fsutil
from chef_backend.host.netloc import host_port
from chef_backend.host.paths import NodePaths
from chef_backend.secrets import Secrets
from chef_backend.services import etcd_tls
from chef_backend.supervision.runit import CHPST, ServiceSpec

USER = "chef-backend"


def _scheme(settings: Settings) -> str:
    return "https" if etcd_tls.enabled(settings) else "http"


def peer_url(settings: Settings, address: str | None = None) -> str:
    return f"{_scheme(settings)}://{host_port(address or settings.publish_address, settings['etcd.peer_port'])}"


def client_url(settings: Settings, address: str | None = None) -> str:
    return f"{_scheme(settings)}://{host_port(address or settings.publish_address, settings['etcd.client_port'])}"


def cluster_token(secrets: Secrets) -> str:
    """What etcd gets as its initial cluster token (and logs): derived, never the secret itself."""
    return hashlib.sha256(b"chef-backend etcd token " + secrets.etcd_initial_cluster_token.encode()).hexdigest()[:32]


def write_config(
    settings: Settings,
    paths: NodePaths,
    secrets: Secrets,
    guid: str,
    initial_cluster: dict[str, str],
    state: str,
    force_new_cluster: bool = False,
) -> None:
    """Render etcd.conf.yml (JSON is valid YAML) for a new (`state='new'`) or joining member;
    `force_new_cluster` makes this member, with its data, the only one (quorum-loss recovery)."""
    config = {
        "name": guid,
        "data-dir": str(paths.etcd_data),
        "listen-client-urls": ",".join([client_url(settings)] + ([client_url(settings, settings.local_address)]
                                                                  if settings.local_address else [])),
        "advertise-client-urls": client_url(settings),
        "listen-peer-urls": peer_url(settings),
        "initial-advertise-peer-urls": peer_url(settings),
        "initial-cluster": ",".join(f"{name}={url}" for name, url in initial_cluster.items()),
        "initial-cluster-state": state,
        "initial-cluster-token": cluster_token(secrets),
        "heartbeat-interval": settings["etcd.heartbeat_interval"],
        "election-timeout": settings["etcd.election_timeout"],
        "snapshot-count": settings["etcd.snapshot_count"],
        "strict-reconfig-check": True,
        # A member cut off keeps campaigning; without pre-vote its inflated term deposes the raft
        # leader when it comes back, and etcd (so every lease renewal) stalls for an election.
        "pre-vote": True,
        "enable-v2": True,
        "enable-grpc-gateway": True,  # the JSON gateway we talk to; off by default with a config file
        "logger": "zap",
        "log-outputs": ["stderr"],
    }
    if etcd_tls.enabled(settings):
        config.update(_transport_security(settings))
    if force_new_cluster:
        config["force-new-cluster"] = True
    fsutil.make_dir(paths.etcd_config.parent, USER, 0o750)
    fsutil.make_dir(paths.etcd_data, USER, 0o700)
    fsutil.write_file(paths.etcd_config, json.dumps(config, indent=2) + "\n", mode=0o600, owner=USER, group=USER)


def _transport_security(settings: Settings) -> dict[str, object]:
    """Client and peer ports: TLS, and a certificate from the cluster CA required of the other end."""
    cert, key = etcd_tls.server_files(settings)
    both = {"cert-file": str(cert), "key-file": str(key), "client-cert-auth": True,
            "trusted-ca-file": str(etcd_tls.ca_file(settings))}
    # AEAD suites with forward secrecy only (which also rules out TLS below 1.2).
    return {"client-transport-security": both, "peer-transport-security": dict(both),
            "cipher-suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]}


def service_spec(settings: Settings, paths: NodePaths) -> ServiceSpec:
    run = (
        "#!/bin/sh\n"
        "exec 2>&1\n"
        f"exec {CHPST} -e ./env -u {USER}:{USER} "
        f"ionice -c {settings['etcd.ionice.class']} -n {settings['etcd.ionice.level']} "
        f"{settings['etcd.binary']} --config-file {paths.etcd_config}\n"
    )
    return ServiceSpec(
        name="etcd",
        run_script=run,
        log_dir=settings.path("etcd.log_directory") or Path("/dev/null"),
        log_user=USER,
        file_maxbytes=settings["etcd.log_rotation.file_maxbytes"],
        num_to_keep=settings["etcd.log_rotation.num_to_keep"],
        environment=settings["etcd.environment"],
        # With client certificates required, etcd 3.4 warns of every request its JSON gateway
        # forwards (it does not use the gateway's certificate as an identity, nor do we need it to).
        log_drop=("*ignoring common name in gRPC-gateway proxy request*",) if etcd_tls.enabled(settings) else (),
    )


def version(settings: Settings) -> str:
    out = subprocess.run([settings["etcd.binary"], "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].split()[-1]
