"""Where a node keeps its files.

Every path follows the original layout (`/etc/chef-backend`, `/var/opt/chef-backend/<service>`,
`/var/log/chef-backend/<service>`, `/opt/chef-backend/service`). The environment variable
`CHEF_BACKEND_ROOT=DIR` prefixes all of them with DIR, so that several nodes can share one host
(tests, the local demo cluster) exactly as if each had its own file system.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def root() -> Path:
    """The prefix for every node path: `/` unless CHEF_BACKEND_ROOT is set."""
    return Path(os.environ.get("CHEF_BACKEND_ROOT", "/") or "/")


def host_path(path: str | os.PathLike[str]) -> Path:
    """Map an absolute path of the original layout onto this node's root."""
    p = Path(path)
    if not p.is_absolute():
        return p
    return root() / p.relative_to("/")


@dataclass(frozen=True)
class NodePaths:
    """The fixed (not configurable) locations of one node."""

    etc: Path
    var: Path
    log: Path
    opt: Path
    backup: Path

    @classmethod
    def current(cls) -> NodePaths:
        """The paths of the node selected by CHEF_BACKEND_ROOT."""
        return cls(
            etc=host_path("/etc/chef-backend"),
            var=host_path("/var/opt/chef-backend"),
            log=host_path("/var/log/chef-backend"),
            opt=host_path("/opt/chef-backend"),
            backup=host_path("/var/opt/chef-backup"),
        )

    @classmethod
    def under(cls, base: Path) -> NodePaths:
        """Everything in one directory: a frontend host's HAProxy, supervised like a node's services."""
        return cls(etc=base / "etc", var=base, log=base / "log", opt=base, backup=base / "backup")

    @property
    def config_file(self) -> Path:
        return self.etc / "chef-backend.rb"

    @property
    def secrets_file(self) -> Path:
        return self.etc / "chef-backend-secrets.json"

    @property
    def node_file(self) -> Path:
        """This node's identity (GUID, cluster id); present once it created or joined a cluster."""
        return self.var / "node.json"

    @property
    def service_dir(self) -> Path:
        """runsvdir's directory: one link per enabled service."""
        return self.opt / "service"

    @property
    def sv_dir(self) -> Path:
        """The runit service definitions."""
        return self.opt / "sv"

    @property
    def manifest_file(self) -> Path:
        return self.opt / "version-manifest.json"

    @property
    def runsvdir_pidfile(self) -> Path:
        return self.var / "runsvdir.pid"

    @property
    def leaderl_data(self) -> Path:
        return self.var / "leaderl" / "data"

    @property
    def leaderl_config(self) -> Path:
        """The leader manager's settings including passwords (the original's sys.config)."""
        return self.leaderl_data / "leaderl.json"

    @property
    def etcd_endpoints_file(self) -> Path:
        """The other etcd members' client URLs this node learnt when it joined (node-owned input)."""
        return self.var / "etcd_endpoints.json"

    @property
    def etcd_data(self) -> Path:
        return self.var / "etcd" / "data"

    @property
    def etcd_config(self) -> Path:
        return self.var / "etcd" / "etcd.conf.yml"

    def pg_dir(self, major: int) -> Path:
        return self.var / "postgresql" / str(major)
