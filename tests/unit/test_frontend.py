"""The frontend glue's pure parts: reading etcd's member list, chef-server.rb, HAProxy's config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_backend.config.settings import load_text
from chef_backend.ctl.gen_server_config import fill
from chef_backend.frontend.discovery import Backend, parse_members
from chef_backend.frontend.haproxy import render, up_servers
from chef_backend.frontend.settings import FrontendConfigError, FrontendSettings, from_server_rb

ETCD = {"members": [
    {"id": "2f74e8c0e2bda03", "name": "4ba4ae0a6686cf6b67590e621459f1e2",
     "peerURLs": ["http://192.168.33.216:2380"], "clientURLs": ["http://192.168.33.216:2379"]},
    {"id": "8e9e05c52164694d", "name": "", "peerURLs": ["https://10.0.0.7:2380"], "clientURLs": []},
    {"id": "91bc3c398fb3c146", "name": "x", "peerURLs": []},
]}


def test_members_become_guid_and_peer_host_and_unstarted_ones_get_a_valid_name() -> None:
    assert parse_members(ETCD) == [Backend("4ba4ae0a6686cf6b67590e621459f1e2", "192.168.33.216"),
                                   Backend("member-8e9e05c52164694d", "10.0.0.7")]


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=20))
def test_any_json_answer_is_read_or_refused_cleanly(doc: object) -> None:
    try:
        parse_members({"members": doc} if isinstance(doc, list) else doc)
    except ValueError:
        pass


def server_rb(tmp_path: Path, extra: str = "", backend_rb: str = "") -> Path:
    text = fill(load_text(backend_rb), "fe1.example.com", '"10.0.0.1", "10.0.0.2"', "p" * 100)
    path = tmp_path / "chef-server.rb"
    path.write_text(text + extra)
    return path


def test_gen_server_config_output_configures_a_frontend(tmp_path: Path) -> None:
    extra = "haproxy['listen'] = '127.0.0.5'\nhaproxy['local_postgresql_port'] = 6432\n"
    s = from_server_rb(server_rb(tmp_path, extra))
    assert s.members == ("10.0.0.1", "10.0.0.2") and s.listen == "127.0.0.5"
    assert s.local_postgresql_port == 6432 and s.remote_postgresql_port == 5432


@pytest.mark.parametrize(("extra", "message"), [
    ("haproxy['etcd_port'] = 0\n", "etcd_port'] must be a port number"),
    ("chef_backend_members []\n", "chef_backend_members must be a non-empty list"),
    ("use_chef_backend false\n", "use_chef_backend true"),
    ("haproxy['listen' = 1\n", "chef-server.rb:"),
])
def test_bad_chef_server_rb_is_refused_with_what_to_fix(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(FrontendConfigError) as err:
        from_server_rb(server_rb(tmp_path, extra))
    assert message in str(err.value)


def test_haproxy_config_is_chef_servers() -> None:
    s = FrontendSettings(members=("a",), listen="127.0.0.21", dir=Path("/fe"))
    cfg = render(s, [Backend("g1", "10.0.0.1"), Backend("g2", "fd00::2")])
    assert "    stats socket /fe/haproxy/haproxy.sock mode 600\n" in cfg
    assert "    bind 127.0.0.21:5432\n" in cfg and "    bind 127.0.0.21:9200\n" in cfg
    assert "    server g1 10.0.0.1:5432 check port 7331\n" in cfg
    assert "    server g2 [fd00::2]:9200 check port 7331\n" in cfg
    assert cfg.count("http-check send meth GET uri /leader ver HTTP/1.1 hdr Host localhost:7331") == 2
    assert cfg.count("on-marked-down shutdown-sessions") == 1  # PostgreSQL only, as in Chef's template
    # Ours: a member refusing a connection is marked down at once, the connection retried on another
    # member that is UP (answering /leader with 200).
    assert cfg.count("observe layer4 error-limit 1 on-error mark-down") == 2
    assert cfg.count("option redispatch 1") == 2


def test_up_servers_reads_show_stat_rows() -> None:
    rows = [{"pxname": "chef_backend_postgresql", "svname": "g1", "status": "UP"},
            {"pxname": "chef_backend_postgresql", "svname": "g2", "status": "DOWN"},
            {"pxname": "chef_backend_postgresql", "svname": "BACKEND", "status": "UP"},
            {"pxname": "chef_backend_elasticsearch", "svname": "g1", "status": "UP"}]
    assert up_servers(rows) == {"chef_backend_postgresql": ["g1"], "chef_backend_elasticsearch": ["g1"]}


def test_non_default_backend_ports_reach_the_frontends_haproxy(tmp_path: Path) -> None:
    backend_rb = ("postgresql.port = 5433\nelasticsearch.port = 9201\nleaderl.http_port = 7332\n"
                  "etcd.client_port = 2479\n")
    path = server_rb(tmp_path, backend_rb=backend_rb)
    text = path.read_text()
    # Chef's search client goes to its own HAProxy, which listens on the local port.
    assert "opscode_solr4['external_url'] = 'http://127.0.0.1:9200'" in text
    s = from_server_rb(path)
    assert (s.remote_postgresql_port, s.remote_elasticsearch_port, s.leaderl_healthcheck_port, s.etcd_port) == (
        5433, 9201, 7332, 2479)
    cfg = render(s, [Backend("a" * 32, "10.0.0.1")])
    assert "bind 0.0.0.0:9200" in cfg and f"server {'a' * 32} 10.0.0.1:9201 check port 7332" in cfg
    assert f"server {'a' * 32} 10.0.0.1:5433 check port 7332" in cfg and "hdr Host localhost:7332" in cfg


def test_default_ports_give_the_originals_output_unchanged(tmp_path: Path) -> None:
    text = server_rb(tmp_path).read_text()
    assert "leaderl_healthcheck_port" not in text and "etcd_port" not in text
    assert "haproxy['remote_elasticsearch_port'] = 9200\n\n# postgresql is external" in text
