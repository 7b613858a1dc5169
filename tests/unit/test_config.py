"""chef-backend.rb parsing and validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chef_backend.config.options import OPTIONS
from chef_backend.config.rbparser import format_value, parse
from chef_backend.config.settings import ConfigError, load_text, sample_config


def test_every_seed_option_has_its_documented_default() -> None:
    s = load_text("")
    expected = {
        "hide_sensitive": True, "ip_version": "ipv4", "postgresql.db_superuser": "chef_pgsql",
        "postgresql.md5_auth_cidr_addresses": ["samehost", "samenet"], "postgresql.replication_user": "replicator",
        "postgresql.max_connections": 350, "postgresql.port": 5432, "postgresql.wal_keep_segments": 32,
        "postgresql.log_rotation.file_maxbytes": 104857600, "postgresql.log_rotation.num_to_keep": 10,
        "etcd.client_port": 2379, "etcd.peer_port": 2380, "etcd.heartbeat_interval": 500,
        "etcd.election_timeout": 5000, "etcd.snapshot_count": 5000, "elasticsearch.port": 9200,
        "leaderl.db_timeout": 2000, "leaderl.http_acceptors": 10, "leaderl.http_address": "0.0.0.0",
        "leaderl.http_port": 7331, "leaderl.leader_ttl_seconds": 30, "leaderl.required_active_followers": 0,
        "leaderl.status_internal_update_interval_seconds": 5, "leaderl.status_post_update_interval_seconds": 10,
        "leaderl.health_check.interval_seconds": 5, "leaderl.health_check.max_bytes_behind_leader": 52428800,
        "leaderl.health_check.max_pgsql_failures": 5, "leaderl.health_check.max_etcd_failures": 5,
        "leaderl.health_check.max_elasticsearch_failures": 5, "leaderl.health_check.fatal_system_checks": False,
        "leaderl.health_check.disk_paths": ["/var/log/chef-backend", "/var/opt/chef-backend"],
        "leaderl.health_check.disk_min_space_mb": 250, "leaderl.start_down": True, "ssl.duration": 3650,
        "ssl.key_length": 2048, "ssl.data_dir": "/var/opt/chef-backend/ssl/", "vip": None, "vip_interface": None,
        "leaderl.etcd_pool.http_timeout_ms": 5000, "leaderl.etcd_pool.max_count": 10,
    }
    for key, value in expected.items():
        assert s[key] == value, key


def test_all_statement_forms() -> None:
    s = load_text(
        """
        # a comment
        publish_address '10.0.0.5'   # trailing comment
        fqdn = "backend-1.example.com"
        hide_sensitive false
        postgresql.max_connections = 1_000
        postgresql['port'] = 5433
        postgresql.checkpoint_completion_target = 0.9
        postgresql.md5_auth_cidr_addresses = ["samehost",
                                              "samenet", 'it''s',
                                              "10.1.0.0/16",]
        postgresql.environment = { "TZ" => "UTC", LANG: 'C', :LC_ALL => "C" }
        leaderl.health_check.interval_seconds = 2
        vip nil
        postgresql.shared_buffers = '1GB'
        """.replace("'it''s',", "")
    )
    assert s.publish_address == "10.0.0.5"
    assert s.node_name == "backend-1.example.com"
    assert s["hide_sensitive"] is False
    assert s["postgresql.max_connections"] == 1000
    assert s["postgresql.port"] == 5433
    assert s["postgresql.checkpoint_completion_target"] == 0.9
    assert s["postgresql.md5_auth_cidr_addresses"] == ["samehost", "samenet", "10.1.0.0/16"]
    assert s["postgresql.environment"] == {"TZ": "UTC", "LANG": "C", "LC_ALL": "C"}
    assert s["leaderl.health_check.interval_seconds"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("postgresql.prot = 5432",
         "chef-backend.rb:1: unknown option 'postgresql.prot'; did you mean 'postgresql.port'?"),
        ("\n\nleaderl.leader_ttl = 10", "chef-backend.rb:3: unknown option 'leaderl.leader_ttl'; did you mean"),
        ("postgresql.port = 'five'", "chef-backend.rb:1: postgresql.port must be an integer, not a string ('five')"),
        ("hide_sensitive 'maybe'", "hide_sensitive must be true or false"),
        ("elasticsearch.heap_size = '4 parsecs'", "elasticsearch.heap_size must be an integer or nil"),
        ("postgresql.max_connections = '350MB'", "postgresql.max_connections must be an integer"),
        ("postgresql.shmmaxx = 1", "unknown option 'postgresql.shmmaxx'; did you mean"),
        ("publish_address", "chef-backend.rb:1: missing value for 'publish_address'"),
        ("publish_address =", "missing value after 'publish_address ='"),
        ("publish_address '10.0.0.1", "unterminated string"),
        ("postgresql.md5_auth_cidr_addresses = ['a',", "expected a value but found the end of the file"),
        ("postgresql.port = 5432 5433", "unexpected '5433' after the value"),
        ("publish_address 'not-an-ip'", "publish_address must be an IP address"),
        ("postgresql.port = 70000", "must be a port number"),
        ("etcd.election_timeout = 1000", "at least 5 times etcd.heartbeat_interval"),
        ("fqdn = \"#{hostname}\"", "string interpolation"),
        ("x = yes", "unknown word 'yes'"),
        ("ip_version 'ipv5'", "ip_version must be 'ipv4' or 'ipv6'"),
        ("leaderl.leader_ttl_seconds = 0", "must be greater than 0"),
    ],
)
def test_errors_name_file_line_and_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_text(text)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_sample_config_lists_every_option_and_parses_back() -> None:
    text = sample_config()
    s = load_text(text)
    for key in OPTIONS:
        assert f"\n{key} = " in text
        assert s[key] == OPTIONS[key].default
    for key, opt in OPTIONS.items():
        if opt.no_effect:
            assert f"# Accepted, no effect: {opt.no_effect}.\n{key} = " in text


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text("abcXYZ_", min_size=1, max_size=5),
                                                                         children, max_size=3),
    max_leaves=10,
)


@given(_values)
def test_format_then_parse_round_trips(value: object) -> None:
    [assignment] = parse(f"x = {format_value(value)}")
    assert assignment.value == value


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_loader(text: str) -> None:
    try:
        load_text(text)
    except ConfigError as exc:
        assert str(exc).startswith("chef-backend.rb")


def test_a_spaced_bracket_is_a_call_with_an_array_as_in_ruby() -> None:
    # gen-server-config writes `chef_backend_members ["10.0.0.1", ...]`; `x["k"]` stays an index.
    got = parse('chef_backend_members ["10.0.0.1", "10.0.0.2"]\nhaproxy["listen"] = "0.0.0.0"\n')
    assert [(a.key, a.value) for a in got] == [("chef_backend_members", ["10.0.0.1", "10.0.0.2"]),
                                                ("haproxy.listen", "0.0.0.0")]
