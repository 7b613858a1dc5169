"""IPv6 addresses where they meet URLs, host:port forms and pg_hba.conf: the pure parts of a
cluster on IPv6 (tests/integration/test_ipv6.py runs one)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_backend.config.settings import load_text
from chef_backend.ctl.gen_server_config import member_list
from chef_backend.frontend.discovery import Backend, discover, parse_members
from chef_backend.frontend.haproxy import render
from chef_backend.frontend.settings import FrontendSettings, from_server_rb
from chef_backend.host.netloc import host_port, url_host
from chef_backend.node.client_networks import hba_address
from chef_backend.secrets import Secrets
from chef_backend.services import elasticsearch, etcd
from chef_backend.services.postgresql import render_hba


@pytest.mark.parametrize(("address", "want"), [
    ("10.0.0.1", "10.0.0.1:80"),
    ("backend1.example.com", "backend1.example.com:80"),
    ("fd00:cb::11", "[fd00:cb::11]:80"),
    ("::", "[::]:80"),
    ("[fd00:cb::11]", "[fd00:cb::11]:80"),  # already bracketed: not twice
])
def test_host_port_brackets_ipv6_literals_only(address: str, want: str) -> None:
    assert host_port(address, 80) == want


@given(st.ip_addresses(), st.integers(1, 65535))
def test_a_url_from_any_address_parses_back_to_it(ip, port: int) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(f"http://{host_port(str(ip), port)}/leader")
    assert ipaddress.ip_address(parts.hostname) == ip and parts.port == port
    assert url_host(url_host(str(ip))) == url_host(str(ip))


@pytest.mark.parametrize(("entry", "want"), [
    ("fd00:cb::12", "fd00:cb::12/128"),
    ("10.0.0.1", "10.0.0.1/32"),
    ("fd00:cb::/64", "fd00:cb::/64"),
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("samehost", "samehost"),
    ("backend1.example.com", "backend1.example.com"),
])
def test_a_single_address_gets_its_host_mask_in_pg_hba(entry: str, want: str) -> None:
    assert hba_address(entry) == want


def test_pg_hba_never_has_a_bare_address() -> None:
    s = load_text("publish_address 'fd00:cb::11'\n"
                  "postgresql.md5_auth_cidr_addresses = ['samehost', 'fd00:cb::12', 'fd00:cb::/64']\n")
    lines = [line.split() for line in render_hba(s).splitlines() if not line.startswith("#")]
    assert [line[3] for line in lines] == ["samehost", "samehost", "fd00:cb::12/128", "fd00:cb::12/128",
                                           "fd00:cb::/64", "fd00:cb::/64"]
    assert all(line[4] == "md5" for line in lines)


def test_etcd_urls_of_an_ipv6_node() -> None:
    s = load_text("publish_address 'fd00:cb::11'\n")
    assert etcd.peer_url(s) == "http://[fd00:cb::11]:2380"
    assert etcd.client_url(s) == "http://[fd00:cb::11]:2379"
    assert etcd.client_url(s, s.local_address) == "http://[::1]:2379"


def test_search_on_ipv6_binds_the_literal_and_seeds_bracketed() -> None:
    s = load_text("publish_address 'fd00:cb::11'\n")
    doc = json.loads(elasticsearch.render_config(s, Secrets.generate(), "g" * 32, ["fd00:cb::11", "fd00:cb::12"],
                                                 False, elasticsearch.Engine("opensearch", "2.19.6", None)))
    assert doc["network.host"] == "fd00:cb::11"
    assert doc["network.bind_host"] == ["fd00:cb::11", "::1"]
    assert doc["discovery.seed_hosts"] == ["[fd00:cb::11]:9300", "[fd00:cb::12]:9300"]


def test_search_seed_hosts_file_brackets_ipv6(tmp_path: Path) -> None:
    from chef_backend.host.paths import NodePaths

    paths = NodePaths.under(tmp_path)
    elasticsearch.config_dir(paths).mkdir(parents=True)
    elasticsearch.write_seed_hosts(paths, ["fd00:cb::12", "10.0.0.1"])
    assert elasticsearch.seed_hosts_file(paths).read_text() == "10.0.0.1:9300\n[fd00:cb::12]:9300\n"


def test_a_frontend_routes_to_ipv6_members_discovered_through_etcd() -> None:
    doc = {"members": [{"id": "1", "name": "a" * 32, "peerURLs": ["http://[fd00:cb::11]:2380"]},
                       {"id": "2", "name": "b" * 32, "peerURLs": ["http://[fd00:cb::12]:2380"]}]}
    backends = parse_members(doc)
    assert backends == [Backend("a" * 32, "fd00:cb::11"), Backend("b" * 32, "fd00:cb::12")]
    cfg = render(FrontendSettings(members=("fd00:cb::11",), listen="fd00:cb::21", dir=Path("/fe")), backends)
    assert "    bind [fd00:cb::21]:5432\n" in cfg
    assert f"    server {'a' * 32} [fd00:cb::11]:5432 check port 7331\n" in cfg
    assert f"    server {'b' * 32} [fd00:cb::12]:9200 check port 7331\n" in cfg


def test_gen_server_config_brackets_ipv6_members_for_chefs_etcd_urls(tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    line = member_list(["fd00:cb::11", "10.0.0.2"])
    assert line == '"[fd00:cb::11]", "10.0.0.2"'
    # Chef's frontend: Chef::HTTP.new("http://#{member}:#{port}"), the member as written.
    assert urlsplit("http://[fd00:cb::11]:2379").hostname == "fd00:cb::11"
    rb = tmp_path / "chef-server.rb"
    rb.write_text(f"use_chef_backend true\nchef_backend_members [{line}]\n")
    s = from_server_rb(rb)
    assert s.members == ("[fd00:cb::11]", "10.0.0.2")
    # No etcd answers (port 1 refuses): the static list, still a valid HAProxy address.
    fallback = discover(list(s.members), etcd_port=1, timeout=1)
    assert fallback.source == "static"
    assert "    server backend0 [fd00:cb::11]:5432 check port 7331\n" in render(s, fallback.backends)
