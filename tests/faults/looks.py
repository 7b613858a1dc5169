"""What the issue-14 path tests look at while a fault runs: a node's WAL receiver and posted status,
the leader's synchronous set (applied and published) and its standbys' flush positions, each
sampled on a thread of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Store
from chef_backend.leader.actions import parse_sync_standby_names
from chef_backend.leader.records import sync_set
from chef_backend.leader.state import SyncSet
from tests.support.harness import Cluster, Node


def etcd(cluster: Cluster) -> Store:
    """A client of the cluster's etcd, from the test's side of the bridge."""
    return Store([f"http://{n.address}:2379" for n in cluster.nodes], timeout=2)


def guid_of(store: Store, node: Node) -> str:
    for guid, entry in store.snapshot().under(keys.NODES).items():
        if isinstance(entry.value, dict) and entry.value.get("name") == node.name:
            return guid
    raise AssertionError(f"{node.name} is not registered")


def receiver_runs(node: Node, password: str) -> bool:
    """Whether the node's PostgreSQL has a WAL receiver process (a server that does not answer has none)."""
    try:
        with node.connect(password, timeout=1) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_wal_receiver").fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def posted_status(store: Store, guid: str) -> dict[str, Any]:
    entry = store.get(keys.STATUS + guid)
    return entry.value if entry is not None and isinstance(entry.value, dict) else {}


@dataclass(frozen=True)
class SyncLook:
    """One look at the leader: its applied and published synchronous sets, each standby's
    replication state and flush LSN (bytes), in that order of reading."""

    published: SyncSet
    applied: SyncSet
    standbys: dict[str, tuple[str, int]]  # GUID -> (state, flush LSN)


def look_at_sync(store: Store, leader: Node, password: str) -> SyncLook:
    published = sync_set(getattr(store.get(keys.SYNC), "value", None))
    with leader.connect(password, timeout=1) as conn:
        text = conn.execute("SHOW synchronous_standby_names").fetchone()
        rows = conn.execute("SELECT application_name, state, coalesce(flush_lsn - '0/0', 0)::bigint"
                            " FROM pg_stat_replication").fetchall()
    return SyncLook(published, parse_sync_standby_names(str(text[0]) if text else ""),
                    {str(g): (str(s), int(f)) for g, s, f in rows})


class Sampler:
    """Calls `look` every `every` seconds on a thread of its own until stopped, keeping what it
    returns (a look that raises is skipped: a node may be restarting)."""

    def __init__(self, look: Callable[[], Any], every: float = 0.1) -> None:
        self.look = look
        self.every = every
        self.seen: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.seen.append(self.look())
            except Exception:  # a look at a restarting node: the next one counts
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
