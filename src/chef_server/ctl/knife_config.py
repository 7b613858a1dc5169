"""The files a workstation and a node need to use a Chef server: knife's `config.rb` (an org's admin user) and
chef-client's `client.rb` (registration with the org's validator), both trusting the server's certificate
through `trusted_certs_dir`, as `knife ssl fetch` would leave it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KnifeKit:
    directory: Path  # what ~/.chef is on a workstation: config.rb, client.rb, the keys, trusted_certs/
    server_url: str  # the server's base URL (the load balancer)
    org: str
    user: str

    @property
    def org_url(self) -> str:
        return f"{self.server_url.rstrip('/')}/organizations/{self.org}"

    @property
    def validator(self) -> str:
        return f"{self.org}-validator"

    @property
    def user_key(self) -> Path:
        return self.directory / f"{self.user}.pem"

    @property
    def validator_key(self) -> Path:
        return self.directory / f"{self.validator}.pem"

    @property
    def trusted_certs(self) -> Path:
        return self.directory / "trusted_certs"

    @property
    def knife_rb(self) -> Path:
        return self.directory / "config.rb"

    @property
    def client_rb(self) -> Path:
        return self.directory / "client.rb"


def _ruby_string(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_knife_rb(kit: KnifeKit) -> str:
    """knife's configuration: the admin user of the org, on the server's URL."""
    return (
        "# knife as the organization's admin user: knife node list -c THIS_FILE (or copy this directory to ~/.chef)\n"
        f"node_name              {_ruby_string(kit.user)}\n"
        f"client_key             {_ruby_string(kit.user_key)}\n"
        f"chef_server_url        {_ruby_string(kit.org_url)}\n"
        f"validation_client_name {_ruby_string(kit.validator)}\n"
        f"validation_key         {_ruby_string(kit.validator_key)}\n"
        f"trusted_certs_dir      {_ruby_string(kit.trusted_certs)}\n"
    )


def render_client_rb(kit: KnifeKit) -> str:
    """chef-client's configuration for a new node: it registers itself with the validator key on its first run."""
    return (
        "# chef-client on a node: chef-client -c THIS_FILE registers the node (client key in /etc/chef/client.pem)\n"
        f"chef_server_url        {_ruby_string(kit.org_url)}\n"
        f"validation_client_name {_ruby_string(kit.validator)}\n"
        f"validation_key         {_ruby_string(kit.validator_key)}\n"
        f"trusted_certs_dir      {_ruby_string(kit.trusted_certs)}\n"
    )


def render_pivotal_rb(server_url: str, key: Path) -> str:
    """`pivotal.rb` as a Chef server frontend leaves it: knife as the superuser on this frontend's own
    TLS endpoint (its certificate may name another host, hence no verification)."""
    return (
        f"node_name        'pivotal'\n"
        f"chef_server_url  {_ruby_string(server_url)}\n"
        f"chef_server_root {_ruby_string(server_url)}\n"
        f"no_proxy         '127.0.0.1'\n"
        f"client_key       {_ruby_string(key)}\n"
        "ssl_verify_mode  :verify_none\n"
    )
