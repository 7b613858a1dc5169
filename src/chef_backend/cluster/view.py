"""The whole cluster as `status` and `cluster-status` show it, read from etcd."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Snapshot, Store


@dataclass
class NodeView:
    guid: str
    name: str
    address: str
    joined_at: float
    http_port: int
    status: dict[str, Any] | None = None
    in_sync_set: bool = True  # in synchronous mode: acknowledges commits (published by the leader)

    @property
    def role(self) -> str:
        if self.status is None:
            return "offline"
        return str(self.status.get("role", "waiting_for_leader"))

    @property
    def pg_state(self) -> str:
        """leader, synced, syncing, unsynced or offline (the PG column and counts)."""
        st = self.status
        if st is None or not st.get("pg", {}).get("running"):
            return "offline"
        if any(r.startswith("unsynced") for r in st.get("ineligible", [])):
            return "unsynced"
        if self.role == "leader" and not st["pg"].get("in_recovery", True):
            return "leader"
        behind = any("behind the leader" in r for r in st.get("ineligible", []))
        if self.role == "follower" and st["pg"].get("streaming") and not behind and self.in_sync_set:
            return "synced"
        return "syncing"

    @property
    def eligible(self) -> bool:
        return bool(self.status and self.status.get("eligible"))

    @property
    def reasons(self) -> list[str]:
        if self.status is None:
            return ["no status posted (node down or its leader manager stopped)"]
        return list(self.status.get("ineligible", []))


@dataclass
class ClusterView:
    nodes: list[NodeView]
    leader: dict[str, Any] | None
    cluster: dict[str, Any] | None
    etcd_members: list[dict[str, Any]] = field(default_factory=list)
    etcd_healthy: dict[str, bool] = field(default_factory=dict)
    sync: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    failover: str = "on"
    blocked: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, store: Store, with_etcd_health: bool = True) -> ClusterView:
        snap = store.snapshot()
        view = cls.from_snapshot(snap)
        if with_etcd_health:
            view.etcd_members = store.members()
            view.etcd_healthy = store.member_health(view.etcd_members)
        return view

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> ClusterView:
        statuses = {g: e.value for g, e in snap.under(keys.STATUS).items()}
        nodes = []
        for guid, entry in snap.under(keys.NODES).items():
            reg = entry.value
            nodes.append(
                NodeView(
                    guid,
                    reg.get("name", guid),
                    reg.get("address", ""),
                    float(reg.get("joined_at", 0)),
                    int(reg.get("http_port", 7331)),
                    statuses.get(guid),
                )
            )
        nodes.sort(key=lambda n: (n.joined_at, n.guid))
        sync = snap.value(keys.SYNC)
        if isinstance(sync, dict) and sync.get("members"):
            for n in nodes:
                n.in_sync_set = n.guid in sync["members"]
        return cls(
            nodes=nodes,
            leader=snap.value(keys.LEADER),
            cluster=snap.value(keys.CLUSTER),
            sync=sync,
            history=snap.value(keys.HISTORY) or [],
            failover=snap.value(keys.CONTROL_FAILOVER, "on"),
            blocked=snap.value(keys.CONTROL_BLOCKED) or [],
        )

    def node(self, name_or_address: str) -> NodeView | None:
        for n in self.nodes:
            if name_or_address in (n.guid, n.name, n.address):
                return n
        return None
