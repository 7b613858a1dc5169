"""chef-backend.rb files written for the original: its keys and value forms load, mapped or warned."""

from __future__ import annotations

from typing import Any

import pytest

from chef_backend.config.options import OPTIONS
from chef_backend.config.settings import ConfigError, Settings, load_text, sample_config

# What the original's `gen-sample-backend-config` printed on a node (its documented example; the
# ciphers line, elided there, written out).
ORIGINAL_SAMPLE = """\
fqdn = 'be1'
hide_sensitive = true
ip_version = 'ipv4'
publish_address = '10.0.2.15'
vip = '10.0.2.15'
vip_interface = 'eth0'
etcd.client_port = 2379
etcd.enable = true
etcd.log_directory = '/var/log/chef-backend/etcd'
etcd.peer_port = 2380
etcd.log_rotation.file_maxbytes = 104857600
etcd.log_rotation.num_to_keep = 10
postgresql.archive_command = ''
postgresql.archive_mode = 'off'
postgresql.archive_timeout = 0
postgresql.checkpoint_completion_target = 0.5
postgresql.checkpoint_timeout = '5min'
postgresql.checkpoint_warning = '30s'
postgresql.data_dir = '/var/opt/chef-backend/postgresql/9.5/data'
postgresql.db_superuser = 'chef_pgsql'
postgresql.effective_cache_size = '496MB'
postgresql.enable = true
postgresql.hot_standby = 'on'
postgresql.keepalives_count = 2
postgresql.keepalives_idle = 60
postgresql.keepalives_interval = 15
postgresql.log_directory = '/var/log/chef-backend/postgresql/9.5'
postgresql.log_min_duration_statement = -1
postgresql.max_connections = 350
postgresql.max_replication_slots = 12
postgresql.max_wal_senders = 12
postgresql.max_wal_size = 64
postgresql.md5_auth_cidr_addresses = '["samehost", "samenet"]'
postgresql.min_wal_size = 5
postgresql.port = 5432
postgresql.replication_user = 'replicator'
postgresql.shared_buffers = '248MB'
postgresql.shmall = 4194304
postgresql.shmmax = 17179869184
postgresql.username = 'chef_pgsql'
postgresql.wal_keep_segments = 32
postgresql.wal_level = 'hot_standby'
postgresql.wal_log_hints = 'on'
postgresql.work_mem = '8MB'
postgresql.log_rotation.file_maxbytes = 104857600
postgresql.log_rotation.num_to_keep = 10
elasticsearch.data_dir = '/var/opt/chef-backend/elasticsearch/data'
elasticsearch.enable = true
elasticsearch.heap_size = 248
elasticsearch.jvm_opts = ''
elasticsearch.log_directory = '/var/log/chef-backend/elasticsearch'
elasticsearch.new_size = 32
elasticsearch.plugins_directory = '/var/opt/chef-backend/elasticsearch/plugins'
elasticsearch.port = 9200
elasticsearch.scripts_directory = '/var/opt/chef-backend/elasticsearch/scripts'
elasticsearch.temp_directory = '/var/opt/chef-backend/elasticsearch/'
elasticsearch.log_rotation.file_maxbytes = 104857600
elasticsearch.log_rotation.num_to_keep = 10
leaderl.control_worker_timeout_seconds = 30
leaderl.db_timeout = 2000
leaderl.enable = true
leaderl.health_check_interval_seconds = 2
leaderl.leader_ttl_seconds = 10
leaderl.log_directory = '/var/log/chef-backend/leaderl'
leaderl.status_internal_update_interval_seconds = 5
leaderl.status_post_update_interval_seconds = 10
leaderl.log_rotation.file_maxbytes = 104857600
leaderl.log_rotation.max_messages_per_second = 1000
leaderl.log_rotation.num_to_keep = 10
leaderl.etcd_pool.cull_interval_seconds = 60
leaderl.etcd_pool.http_timeout_ms = 5000
leaderl.etcd_pool.ibrowse_options = '{inactivity_timeout, infinity}'
leaderl.etcd_pool.init_count = 10
leaderl.etcd_pool.max_age_seconds = 60
leaderl.etcd_pool.max_connection_duration_seconds = 300
leaderl.etcd_pool.max_count = 10
ssl.certificate = nil
ssl.certificate_key = nil
ssl.ciphers = 'ECDHE-RSA-AES256-GCM-SHA384:!aNULL'
ssl.company_name = 'YouCorp'
ssl.country_name = 'US'
ssl.data_dir = '/var/opt/chef-backend/ssl/'
ssl.duration = 3650
ssl.key_length = 2048
ssl.organizational_unit_name = 'Operations'
"""


def test_the_originals_own_sample_loads_with_meaning_kept() -> None:
    s = load_text(ORIGINAL_SAMPLE)
    assert s["postgresql.md5_auth_cidr_addresses"] == ["samehost", "samenet"]
    assert s["leaderl.health_check.interval_seconds"] == 2  # the pre-1.2 key
    assert s["leaderl.leader_ttl_seconds"] == 10
    assert s["elasticsearch.java_opts"] == ""  # jvm_opts
    assert s["publish_address"] == "10.0.2.15"


def test_the_originals_sample_warns_once_per_key_without_effect() -> None:
    warnings = load_text(ORIGINAL_SAMPLE).warnings
    warned = sorted(w.split(": ", 1)[1].split(" is accepted")[0] for w in warnings)
    assert warned == sorted([
        "vip", "vip_interface", "postgresql.data_dir", "postgresql.shmall", "postgresql.shmmax",
        "elasticsearch.data_dir", "elasticsearch.plugins_directory", "elasticsearch.scripts_directory",
        "elasticsearch.temp_directory", "leaderl.status_internal_update_interval_seconds",
        "leaderl.log_rotation.max_messages_per_second", "leaderl.etcd_pool.cull_interval_seconds",
        "leaderl.etcd_pool.ibrowse_options", "leaderl.etcd_pool.init_count", "leaderl.etcd_pool.max_age_seconds",
        "leaderl.etcd_pool.max_connection_duration_seconds", "leaderl.etcd_pool.max_count",
    ])
    assert all("has no effect: " in w and w.startswith("chef-backend.rb:") for w in warnings)


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("postgresql.wal_log_hints = true", "postgresql.wal_log_hints", "on"),
        ("postgresql.hot_standby = true", "postgresql.hot_standby", "on"),
        ("postgresql.archive_mode = false", "postgresql.archive_mode", "off"),
        ("postgresql.log_checkpoints = 'on'", "postgresql.log_checkpoints", True),
        ("postgresql.log_checkpoints = 'off'", "postgresql.log_checkpoints", False),
        ("hide_sensitive = 'false'", "hide_sensitive", False),
        ("leaderl.health_check.fatal_system_checks = 'yes'", "leaderl.health_check.fatal_system_checks", True),
        ("elasticsearch.heap_size = '4096'", "elasticsearch.heap_size", 4096),
        ("elasticsearch.heap_size = '4g'", "elasticsearch.heap_size", 4096),
        ("elasticsearch.heap_size = '1.5G'", "elasticsearch.heap_size", 1536),
        ("elasticsearch.new_size = '512m'", "elasticsearch.new_size", 512),
        ("elasticsearch.new_size = '512MB'", "elasticsearch.new_size", 512),
        ("postgresql.archive_timeout = '60s'", "postgresql.archive_timeout", 60),
        ("postgresql.archive_timeout = '5min'", "postgresql.archive_timeout", 300),
        ("postgresql.archive_timeout = '1h'", "postgresql.archive_timeout", 3600),
        ("postgresql.keepalives_idle = '60'", "postgresql.keepalives_idle", 60),
        ("leaderl.db_timeout = '2s'", "leaderl.db_timeout", 2000),
        ("etcd.log_rotation.file_maxbytes = '100m'", "etcd.log_rotation.file_maxbytes", 104857600),
        ("leaderl.health_check.disk_min_space_mb = '1g'", "leaderl.health_check.disk_min_space_mb", 1024),
        ("ssl.duration = '3650'", "ssl.duration", 3650),
        ("postgresql.checkpoint_completion_target = '0.9'", "postgresql.checkpoint_completion_target", 0.9),
        ("postgresql.work_mem = 8192", "postgresql.work_mem", "8192"),
        ("postgresql.checkpoint_timeout = 300", "postgresql.checkpoint_timeout", "300"),
        ("elasticsearch.java_opts = ['-Xss2m', '-Dfoo=a b']", "elasticsearch.java_opts", "-Xss2m '-Dfoo=a b'"),
        ("elasticsearch.java_opts = %w(-Xss2m -XX:+UseG1GC)", "elasticsearch.java_opts", "-Xss2m -XX:+UseG1GC"),
        ("postgresql.md5_auth_cidr_addresses = %w(samehost samenet 10.1.0.0/16)",
         "postgresql.md5_auth_cidr_addresses", ["samehost", "samenet", "10.1.0.0/16"]),
        ("postgresql.md5_auth_cidr_addresses = %w[samehost\n  samenet]",
         "postgresql.md5_auth_cidr_addresses", ["samehost", "samenet"]),
        ("postgresql.md5_auth_cidr_addresses = '[\"samehost\", \"samenet\", \"10.0.0.0/8\"]'",
         "postgresql.md5_auth_cidr_addresses", ["samehost", "samenet", "10.0.0.0/8"]),
        ("postgresql.md5_auth_cidr_addresses = 'samehost, samenet'",
         "postgresql.md5_auth_cidr_addresses", ["samehost", "samenet"]),
        ("postgresql.md5_auth_cidr_addresses = '10.0.0.0/8'", "postgresql.md5_auth_cidr_addresses", ["10.0.0.0/8"]),
        ("leaderl.health_check.disk_paths = %w(/var/opt/chef-backend)", "leaderl.health_check.disk_paths",
         ["/var/opt/chef-backend"]),
        ("leaderl.health_check_interval_seconds = 3", "leaderl.health_check.interval_seconds", 3),
        ("elasticsearch.jvm_opts = '-Xss2m'", "elasticsearch.java_opts", "-Xss2m"),
        ("ip_version :ipv4", "ip_version", "ipv4"),
    ],
)
def test_forms_written_for_the_original_are_mapped(line: str, key: str, value: Any) -> None:
    s = load_text(line + "\n")
    assert s[key] == value
    assert s.warnings == []


@pytest.mark.parametrize(
    "line",
    [
        "leaderl.etcd_pool.ibrowse_options = '{inactivity_timeout, infinity}'",
        "leaderl.etcd_pool.ibrowse_options = [['inactivity_timeout', 'infinity']]",
        "leaderl.http_acceptors = 20",
        "leaderl.health_check.max_etcd_failures = '3'",
        "leaderl.epmd_monitor.check_interval = 1000",
        "epmd.enable = false",
        "postgresql.shmmax = 17179869184",
        "elasticsearch.plugins_directory = '/opt/plugins'",
        "vip_interface 'eth0'",
    ],
)
def test_settings_without_effect_load_with_one_warning(line: str) -> None:
    s = load_text(line + "\n")
    [warning] = s.warnings
    assert warning.startswith("chef-backend.rb:1: ") and "accepted but has no effect: " in warning


def test_no_effect_option_keeps_a_well_typed_value_for_show_config() -> None:
    assert load_text("leaderl.http_acceptors = 20\n")["leaderl.http_acceptors"] == 20
    s = load_text("leaderl.etcd_pool.ibrowse_options = '{inactivity_timeout, infinity}'\n")
    assert s["leaderl.etcd_pool.ibrowse_options"] == []


def test_every_option_without_effect_is_unread_outside_config() -> None:
    """The sample must not claim an effect the code lacks, nor deny one it has."""
    import pathlib
    import re

    src = pathlib.Path(__file__).resolve().parents[2] / "src" / "chef_backend"
    code = "".join(p.read_text() for p in src.rglob("*.py") if p.parent.name != "config")
    for key, opt in OPTIONS.items():
        if opt.no_effect:
            assert not re.search(r"s\[[\"']" + re.escape(key) + r"[\"']\]", code), key


def test_ipv6_publish_address_listens_on_the_ipv6_wildcard() -> None:
    from chef_backend.services import etcd

    s = load_text("publish_address 'fd00::5'\nip_version 'ipv6'\n")
    assert s["leaderl.http_address"] == "::" and s.http_address == "fd00::5"
    assert etcd.client_url(s) == "http://[fd00::5]:2379"
    assert etcd.peer_url(s) == "http://[fd00::5]:2380"
    assert s.warnings == []
    inferred = load_text("publish_address 'fd00::5'\n")
    assert inferred["ip_version"] == "ipv6" and inferred["leaderl.http_address"] == "::"
    mismatched = load_text("publish_address 'fd00::5'\nip_version 'ipv4'\n")
    assert mismatched["ip_version"] == "ipv6" and len(mismatched.warnings) == 1
    kept = load_text("publish_address 'fd00::5'\nleaderl.http_address 'fd00::5'\n")
    assert kept["leaderl.http_address"] == "fd00::5"
    assert load_text("publish_address '10.0.0.5'\n")["leaderl.http_address"] == "0.0.0.0"


def test_sample_prints_this_nodes_values_and_parses_back_silently_for_effective_options() -> None:
    s = Settings.defaults()
    s.values.update({"fqdn": "be1.example.com", "publish_address": "10.0.2.15", "elasticsearch.heap_size": 2048})
    text = sample_config(s)
    assert "\nfqdn = 'be1.example.com'\n" in text and "\npublish_address = '10.0.2.15'\n" in text
    back = load_text(text)
    assert back["elasticsearch.heap_size"] == 2048 and back.publish_address == "10.0.2.15"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("postgresql.data_directory = '/x'", "unknown option 'postgresql.data_directory'; did you mean"),
        ("leaderl.health_check_interval = 2", "unknown option 'leaderl.health_check_interval'; did you mean"),
        ("postgresql.md5_auth_cidr_addresses = '[\"a\" \"b\"'", "must be an array, not a string"),
    ],
)
def test_keys_no_version_knew_are_errors(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^chef-backend\.rb:1: ") as exc:
        load_text(line + "\n")
    assert message in str(exc.value)
