"""Schema migrations, run once per cluster: every frontend calls `migrate` at start, under an advisory lock."""

from __future__ import annotations

import psycopg

from .schema import MIGRATIONS

# Any fixed number: the session-level advisory lock that serialises frontends migrating together.
MIGRATION_LOCK = 0x43686566  # "Chef"


def migrate(conninfo: str) -> list[int]:
    """Apply the migrations this database lacks; returns the versions applied. Safe to run concurrently."""
    applied = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied
