"""`chef-server-ctl reindex`: rebuild organizations' search documents from PostgreSQL (after a restore or a
quorum loss) by queueing them in the search outbox, which the running frontends' indexers drain."""

from __future__ import annotations

import time

import psycopg

from ..search_index import REINDEX_SQL


class NoSuchOrg(Exception):
    pass


def reindex(conninfo: str, org: str | None = None, wait: bool = True) -> None:
    """Queue every organization's (or `org`'s) searchable objects, then, with `wait`, follow the indexers
    until they are done."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if org is None:
            orgs = conn.execute("SELECT id, name FROM orgs ORDER BY name").fetchall()
        else:
            orgs = conn.execute("SELECT id, name FROM orgs WHERE name = %s", (org,)).fetchall()
            if not orgs:
                raise NoSuchOrg(f"no organization named {org}")
        total = 0
        for org_id, org_name in orgs:
            with conn.transaction():  # the org's removal first, then its objects (REINDEX_SQL's order)
                queued = sum(conn.execute(sql, {"org": org_id}).rowcount for sql in REINDEX_SQL) - 1
            total += queued + 1
            print(f"{org_name}: {queued} objects queued for indexing")
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM search_outbox").fetchone()[0]
        while True:  # rows queued before ours (ordinary writes) are counted as left too, so done = all gone
            left = conn.execute("SELECT count(*) FROM search_outbox WHERE seq <= %s", (last,)).fetchone()[0]
            print(f"indexed {total - min(left, total)}/{total}", flush=True)
            if left == 0 or not wait:
                return
            time.sleep(1)
