"""Where a frontend keeps its files: everything under one directory (`--dir`, default /var/opt/opscode, as
Chef's), so that several frontends can share a host; the superuser's key beside chef-server.rb
(/etc/opscode/pivotal.pem, as Chef keeps it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chef_backend.host.paths import NodePaths

DEFAULT_DIR = Path("/var/opt/opscode")
NGINX_WORKER_USER = "www-data"  # Debian's nginx user; the master binds 443 as root and drops to it
SERVICES = ("haproxy", "chef-server-api", "nginx")  # start order: the API needs HAProxy, nginx the API


@dataclass(frozen=True)
class Layout:
    dir: Path
    etc: Path  # the directory of chef-server.rb

    @property
    def runit(self) -> NodePaths:
        """The runit tree (`sv/`, `service/`) of this frontend's services."""
        return NodePaths.under(self.dir)

    def log_dir(self, service: str) -> Path:
        return self.dir / "log" / service

    @property
    def api_config(self) -> Path:
        """The API service's settings (JSON; holds the database password: root and the API user only)."""
        return self.dir / "chef-server-api" / "config.json"

    @property
    def nginx_dir(self) -> Path:
        return self.dir / "nginx"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx_dir / "nginx.conf"

    @property
    def nginx_temp(self) -> Path:
        """Request bodies and proxied responses nginx spools to disk (its workers write there)."""
        return self.nginx_dir / "tmp"

    def generated_certificate(self, fqdn: str) -> tuple[Path, Path]:
        """The self-signed certificate and key made on first reconfigure (Chef's nginx/ca/FQDN.crt)."""
        ca = self.nginx_dir / "ca"
        return ca / f"{fqdn}.crt", ca / f"{fqdn}.key"

    @property
    def pivotal_key(self) -> Path:
        return self.etc / "pivotal.pem"

    @property
    def pivotal_config(self) -> Path:
        """knife's configuration as the superuser, which Chef's runbooks pass as `-c /etc/opscode/pivotal.rb`."""
        return self.etc / "pivotal.rb"
