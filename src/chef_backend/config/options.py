"""Every chef-backend.rb option: its type, its default and what it does.

The list follows the seed's "chef-backend.rb Options" section (plus `vip`, `vip_interface` and the
etcd ionice keys from the original's docs). Options we added are marked `ours=True`; they cover what
the original hard-coded (binary locations, replication mode). Options kept only so that the
original's files load are marked with `no_effect` and the reason; compat.py holds the original's
keys that we have no option for at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Types a value may have. "number" accepts integers and floats; "path" is a string that
# CHEF_BACKEND_ROOT relocates; "string_or_int" accepts either (PostgreSQL sizes like 64 or '1GB').
TYPES = ("string", "integer", "number", "boolean", "array", "hash", "path", "string_or_int")

PG_MAJOR = 15


@dataclass(frozen=True)
class Option:
    """One setting of chef-backend.rb."""

    key: str
    type: str
    default: Any
    doc: str
    nullable: bool = False
    ours: bool = False
    # Why the option, accepted for the original's files, changes nothing here ("" when it does).
    no_effect: str = ""


_NO_VIP = "frontends reach the leader through their own HAProxy (Chef Server 12.6 and later); no VIP is bound"
_NO_POOL = "the leader manager keeps one HTTP session to etcd rather than a pool (http_timeout_ms does apply)"


def _runit_options(service: str, log_directory: str) -> list[Option]:
    return [
        Option(f"{service}.enable", "boolean", True, "Sets up and runs this service."),
        Option(f"{service}.environment", "hash", {}, "Environment variables for the service."),
        Option(f"{service}.log_directory", "path", log_directory, "Where svlogd writes the service's log."),
        Option(
            f"{service}.log_rotation.file_maxbytes",
            "integer",
            104857600,
            "Size at which the current log file is rotated.",
        ),
        Option(f"{service}.log_rotation.num_to_keep", "integer", 10, "Rotated log files to keep."),
    ]


_OPTIONS: list[Option] = [
    Option("fqdn", "string", None, "Host name of this node (defaults to the system's FQDN).", nullable=True),
    Option("hide_sensitive", "boolean", True, "Hide secrets in reconfigure diffs and output."),
    Option("ip_version", "string", "ipv4", "'ipv4' or 'ipv6': the family of publish_address and of the wildcard "
           "address the leader manager listens on (0.0.0.0 or ::) when leaderl.http_address is not set."),
    Option("publish_address", "string", None, "Address of this node that the others reach.", nullable=True),
    Option("vip", "string", None, "Legacy backend VIP.", nullable=True,
           no_effect=_NO_VIP),
    Option("vip_interface", "string", None, "Legacy interface for the VIP.", nullable=True,
           no_effect=_NO_VIP),
    # --- postgresql ---
    *_runit_options("postgresql", f"/var/log/chef-backend/postgresql/{PG_MAJOR}"),
    Option(
        "postgresql.bin_dir",
        "string",
        f"/usr/lib/postgresql/{PG_MAJOR}/bin",
        "Directory of the PostgreSQL server binaries.",
        ours=True,
    ),
    Option(
        "postgresql.synchronous_replication",
        "boolean",
        True,
        "Acknowledge a commit only once a follower has it (no loss on failover). "
        "false restores the original's asynchronous mode.",
        ours=True,
    ),
    Option("postgresql.db_superuser", "string", "chef_pgsql", "Database superuser to create."),
    Option("postgresql.password_encryption", "string", "md5",
           "How PostgreSQL stores (and so checks) passwords: 'md5', which every Chef Infra Server frontend "
           "speaks, or 'scram-sha-256', which only frontends from mid-2025 on speak (docs/operations.md).",
           ours=True),
    Option(
        "postgresql.md5_auth_cidr_addresses",
        "array",
        ["samehost", "samenet"],
        "Addresses allowed to connect with a password; two pg_hba.conf lines each.",
    ),
    Option("postgresql.replication_user", "string", "replicator", "User for streaming replication."),
    Option("postgresql.username", "string", "chef_pgsql", "System user that runs PostgreSQL."),
    Option("postgresql.archive_command", "string", "", "archive_command"),
    Option("postgresql.archive_mode", "string", "off", "archive_mode"),
    Option("postgresql.archive_timeout", "integer", 0, "archive_timeout"),
    Option("postgresql.checkpoint_completion_target", "number", 0.5, "checkpoint_completion_target"),
    Option("postgresql.checkpoint_timeout", "string", "5min", "checkpoint_timeout"),
    Option("postgresql.checkpoint_warning", "string", "30s", "checkpoint_warning"),
    Option(
        "postgresql.effective_cache_size",
        "string_or_int",
        None,
        "effective_cache_size (computed from memory when nil).",
        nullable=True,
    ),
    Option("postgresql.hot_standby", "string", "on", "hot_standby"),
    Option("postgresql.keepalives_count", "integer", 2, "tcp_keepalives_count"),
    Option("postgresql.keepalives_idle", "integer", 60, "tcp_keepalives_idle"),
    Option("postgresql.keepalives_interval", "integer", 15, "tcp_keepalives_interval"),
    Option("postgresql.log_checkpoints", "boolean", True, "log_checkpoints"),
    Option("postgresql.log_min_duration_statement", "integer", -1, "log_min_duration_statement"),
    Option("postgresql.max_connections", "integer", 350, "max_connections"),
    Option("postgresql.max_replication_slots", "integer", 12, "max_replication_slots"),
    Option("postgresql.max_wal_senders", "integer", 12, "max_wal_senders"),
    Option(
        "postgresql.max_wal_size",
        "string_or_int",
        64,
        "max_wal_size; an integer counts 16 MB segments, as in the original's PostgreSQL 9.5.",
    ),
    Option(
        "postgresql.min_wal_size",
        "string_or_int",
        5,
        "min_wal_size; an integer counts 16 MB segments, as in the original's PostgreSQL 9.5.",
    ),
    Option("postgresql.port", "integer", 5432, "port"),
    Option(
        "postgresql.shared_buffers",
        "string_or_int",
        None,
        "shared_buffers (computed from memory when nil).",
        nullable=True,
    ),
    Option("postgresql.wal_keep_segments", "integer", 32, "WAL segments kept for followers (wal_keep_size)."),
    Option("postgresql.wal_level", "string", "hot_standby", "wal_level ('hot_standby' means 'replica')."),
    Option("postgresql.wal_log_hints", "string", "on", "wal_log_hints (needed by pg_rewind)."),
    Option("postgresql.work_mem", "string", "8MB", "work_mem"),
    # --- etcd ---
    *_runit_options("etcd", "/var/log/chef-backend/etcd"),
    Option("etcd.binary", "string", "/usr/bin/etcd", "The etcd server binary.", ours=True),
    Option("etcd.client_port", "integer", 2379, "Port for client URLs."),
    Option("etcd.peer_port", "integer", 2380, "Port for peer URLs."),
    Option("etcd.heartbeat_interval", "integer", 500, "Raft heartbeat interval in ms."),
    Option("etcd.election_timeout", "integer", 5000, "Raft election timeout in ms."),
    Option("etcd.snapshot_count", "integer", 5000, "Committed transactions between snapshots."),
    Option("etcd.tls", "boolean", False, "Serve etcd's client and peer ports over TLS, requiring certificates from "
           "a cluster CA kept in the secrets file; chosen for the whole cluster at create-cluster.", ours=True),
    Option("etcd.ionice.class", "integer", 2, "ionice class of the etcd process."),
    Option("etcd.ionice.level", "integer", 0, "ionice level of the etcd process."),
    # --- elasticsearch ---
    *_runit_options("elasticsearch", "/var/log/chef-backend/elasticsearch"),
    Option("elasticsearch.heap_size", "integer", None, "JVM heap in MB ('4g' and the like also read); nil: a third "
           "of the memory, at least 1024 and at most 31744 (compressed pointers).", nullable=True),
    Option("elasticsearch.java_opts", "string", "", "Extra JVM flags (a string or an array); they come last, so "
           "a heap flag here wins."),
    Option("elasticsearch.new_size", "integer", None, "JVM new generation size in MB.", nullable=True),
    Option("elasticsearch.plugins_directory", "path", "/var/opt/chef-backend/elasticsearch/plugins", "path.plugins",
           no_effect="the search node loads its plugins from elasticsearch.lib_dir (or the distribution's plugins/)"),
    Option("elasticsearch.port", "integer", 9200, "http.port"),
    Option("elasticsearch.scripts_directory", "path", "/var/opt/chef-backend/elasticsearch/scripts", "path.scripts",
           no_effect="Elasticsearch 6 removed path.scripts and Chef's searches use no stored scripts"),
    Option("elasticsearch.java", "string", "/usr/bin/java", "The Java 17 runtime of the search service.", ours=True),
    Option("elasticsearch.lib_dir", "string", "/opt/chef-backend/embedded/lib/opensearch",
           "Where scripts/setup installed OpenSearch's jars and the launcher.", ours=True),
    Option("elasticsearch.distribution_dir", "string", None,
           "An operator-installed OpenSearch 2.x, Elasticsearch 7.x or Elasticsearch 6.8 distribution to run "
           "(its bin/opensearch or bin/elasticsearch) instead of the embedded node.", nullable=True, ours=True),
    # --- leaderl ---
    *_runit_options("leaderl", "/var/log/chef-backend/leaderl"),
    Option(
        "leaderl.start_down",
        "boolean",
        True,
        "Leave the leader manager down when the supervisor starts; ctl start brings it up.",
    ),
    Option("leaderl.db_timeout", "integer", 2000, "PostgreSQL connect timeout in ms."),
    Option("leaderl.http_acceptors", "integer", 10, "Concurrent /leader requests served at once.",
           no_effect="/leader is answered from a cache by one event loop; there is no acceptor pool to size"),
    Option("leaderl.http_address", "string", "0.0.0.0", "Address of the /leader HTTP endpoint."),
    Option("leaderl.http_port", "integer", 7331, "Port of the /leader HTTP endpoint."),
    Option("leaderl.leader_ttl_seconds", "integer", 30, "TTL of the leader key's lease."),
    Option(
        "leaderl.required_active_followers",
        "integer",
        0,
        "Followers that must stream from a new leader before it answers 200.",
    ),
    Option("leaderl.runsv_group", "string", "chef_pgsql", "Group of files holding passwords."),
    Option("leaderl.status_internal_update_interval_seconds", "integer", 5, "How often the local status is refreshed.",
           no_effect="the leader manager refreshes its status on every pass of its loop (each second)"),
    Option(
        "leaderl.status_post_update_interval_seconds", "integer", 10, "How often the node posts its status to etcd."
    ),
    Option("leaderl.username", "string", "chef_pgsql", "System user that runs the leader manager."),
    Option("leaderl.control_worker_timeout_seconds", "integer", 30, "Time allowed for promote/demote."),
    Option("leaderl.log_rotation.max_messages_per_second", "integer", 1000, "Log rate limit.",
           no_effect="there is no Erlang error_logger to rate-limit; svlogd rotates the log by size"),
    Option("leaderl.etcd_pool.ibrowse_options", "array", [], "Erlang HTTP client options.",
           no_effect=_NO_POOL),
    Option("leaderl.epmd_monitor.check_interval", "integer", 60000, "How often to check epmd, in ms.",
           no_effect="there is no Erlang runtime here, so no epmd"),
    Option("leaderl.health_check.interval_seconds", "integer", 5, "Seconds between health checks."),
    Option(
        "leaderl.health_check.max_bytes_behind_leader",
        "integer",
        52428800,
        "A follower further behind than this is unhealthy.",
    ),
    Option("leaderl.health_check.max_elasticsearch_failures", "integer", 5, "Consecutive search failures tolerated."),
    Option("leaderl.health_check.max_etcd_failures", "integer", 5, "Consecutive etcd failures tolerated.",
           no_effect="losing etcd costs the leader its lease at the next renewal, so there is no separate etcd check "
           "(the original dropped it in 2.2.0 for the same reason)"),
    Option("leaderl.health_check.max_pgsql_failures", "integer", 5, "Consecutive PostgreSQL failures tolerated."),
    Option(
        "leaderl.health_check.fatal_system_checks",
        "boolean",
        False,
        "Whether failed disk checks make the node ineligible.",
    ),
    Option(
        "leaderl.health_check.disk_paths",
        "array",
        ["/var/log/chef-backend", "/var/opt/chef-backend"],
        "Paths checked for free space.",
    ),
    Option("leaderl.health_check.disk_min_space_mb", "integer", 250, "Free space each disk path needs."),
    Option("leaderl.etcd_pool.cull_interval_seconds", "integer", 60, "Connection pool setting.", no_effect=_NO_POOL),
    Option("leaderl.etcd_pool.http_timeout_ms", "integer", 5000, "Timeout of one etcd request in ms."),
    Option("leaderl.etcd_pool.init_count", "integer", 10, "Connection pool setting.", no_effect=_NO_POOL),
    Option("leaderl.etcd_pool.max_age_seconds", "integer", 60, "Connection pool setting.", no_effect=_NO_POOL),
    Option("leaderl.etcd_pool.max_connection_duration_seconds", "integer", 300, "Connection pool setting.",
           no_effect=_NO_POOL),
    Option("leaderl.etcd_pool.max_count", "integer", 10, "Connection pool setting.", no_effect=_NO_POOL),
    # --- ssl ---
    Option("ssl.certificate", "path", None, "Operator-provided certificate (PEM).", nullable=True),
    Option("ssl.certificate_key", "path", None, "Operator-provided private key (PEM).", nullable=True),
    Option(
        "ssl.ciphers",
        "string",
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
        "ECDHE-RSA-AES128-GCM-SHA256:!aNULL:!MD5:!DSS",
        "Allowed SSL ciphers, in order.",
    ),
    Option("ssl.company_name", "string", "Chef Software", "Certificate subject O."),
    Option("ssl.country_name", "string", "US", "Certificate subject C."),
    Option("ssl.data_dir", "path", "/var/opt/chef-backend/ssl/", "Where certificates are kept."),
    Option("ssl.duration", "integer", 3650, "Certificate lifetime in days."),
    Option("ssl.key_length", "integer", 2048, "RSA key length."),
    Option("ssl.organizational_unit_name", "string", "Chef Backend", "Certificate subject OU."),
]

OPTIONS: dict[str, Option] = {o.key: o for o in _OPTIONS}

# Service names in the order `status` prints them.
SERVICES = ("elasticsearch", "etcd", "leaderl", "postgresql")
