"""What one authorization check costs: the one query (storage/acls.CHECK_OBJECT) against a populated database.

    python bench/authz_check.py --dsn "host=127.0.0.35 dbname=authz_bench user=postgres" [--groups 200 --depth 5]

Makes (in the given, scratch, database: it is migrated first) an org with `--groups` groups nested `--depth`
deep with the requestor at the bottom, `--objects` objects each with a container-like ACL granting `read` to
the topmost group, then times the check from a client on the same host. Prints JSON: round-trip latency
percentiles (ms, one query per check, prepared), and PostgreSQL's own execution time (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

import psycopg

from chef_server.storage.acls import CHECK_OBJECT
from chef_server.storage.migrate import migrate


def _id() -> str:
    return uuid.uuid4().hex


def populate(conn: psycopg.Connection, groups: int, depth: int, objects: int) -> tuple[dict, list[str]]:
    """(the requestor's parameters, object authz ids) of a fresh org."""
    org = _id()
    conn.execute("INSERT INTO orgs (id, authz_id, name, full_name) VALUES (%s, %s, %s, 'bench')", (org, _id(), org))
    user, user_authz = _id(), _id()
    conn.execute("INSERT INTO users (id, authz_id, username) VALUES (%s, %s, %s)", (user, user_authz, user))
    ids = [(_id(), _id()) for _ in range(groups)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO groups (id, org_id, authz_id, name) VALUES (%s, %s, %s, %s)",
                        [(gid, org, authz, f"g{i}") for i, (gid, authz) in enumerate(ids)])
        # a chain of `depth` groups, the user in the first; the other groups are members of random chains' links
        chain = ids[:depth]
        rows = [(chain[0][0], "user", user)] + [(chain[i + 1][0], "group", chain[i][0]) for i in range(depth - 1)]
        rows += [(ids[i % depth][0], "group", gid) for i, (gid, _) in enumerate(ids[depth:])]
        cur.executemany("INSERT INTO group_members (group_id, member_type, member_id) VALUES (%s, %s, %s)", rows)
        objs = [_id() for _ in range(objects)]
        top = chain[-1][1]
        cur.executemany("INSERT INTO aces (authz_id, perm, member) VALUES (%s, %s, %s)",
                        [(o, p, m) for o in objs for p, m in (("read", top), ("update", ids[-1][1]),
                                                                 ("grant", _id()), ("create", _id()))])
    return {"type": "user", "id": user, "me": user_authz}, objs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--checks", type=int, default=3000)
    args = parser.parse_args()
    migrate(args.dsn)
    with psycopg.connect(args.dsn, autocommit=True, prepare_threshold=0) as conn:
        subject, objs = populate(conn, args.groups, args.depth, args.objects)
        conn.execute("ANALYZE")
        latencies = []
        for i in range(args.checks):
            start = time.perf_counter()
            row = conn.execute(CHECK_OBJECT, {**subject, "object": objs[i % len(objs)]}).fetchone()
            latencies.append(time.perf_counter() - start)
            assert "read" in row[2], row  # granted through `depth` nested groups
        plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + CHECK_OBJECT, {**subject, "object": objs[0]}) \
            .fetchone()[0][0]
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    print(json.dumps({
        "groups": args.groups, "depth": args.depth, "objects": args.objects, "ace_rows": args.objects * 4,
        "checks": args.checks, "mean_ms": round(statistics.fmean(ms), 3), "p50_ms": round(ms[len(ms) // 2], 3),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 3), "server_execution_ms": plan["Execution Time"],
    }))


if __name__ == "__main__":
    main()
