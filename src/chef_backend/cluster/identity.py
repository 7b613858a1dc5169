"""This node's identity in its cluster, kept in `<var>/node.json`.

The GUID (32 hex characters) names the node everywhere: its etcd member, its replication slot,
its application_name on the leader and its keys in etcd.
"""

from __future__ import annotations

import json
import secrets as _random
import time
from dataclasses import asdict, dataclass

from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths


@dataclass(frozen=True)
class NodeIdentity:
    guid: str
    cluster_id: str
    name: str
    address: str
    created_at: float

    @staticmethod
    def new_guid() -> str:
        return _random.token_hex(16)

    @classmethod
    def new(cls, cluster_id: str, name: str, address: str) -> NodeIdentity:
        return cls(cls.new_guid(), cluster_id, name, address, time.time())

    def save(self, paths: NodePaths) -> None:
        fsutil.write_file(paths.node_file, json.dumps(asdict(self), indent=2) + "\n", mode=0o644)

    @classmethod
    def load(cls, paths: NodePaths) -> NodeIdentity | None:
        """The identity, or None when this node has not created or joined a cluster."""
        try:
            doc = json.loads(paths.node_file.read_text())
        except FileNotFoundError:
            return None
        return cls(**doc)

    def registration(self, settings_http_port: int, pg_port: int) -> dict[str, object]:
        """What the node publishes about itself under nodes/<guid>."""
        return {
            "guid": self.guid,
            "name": self.name,
            "address": self.address,
            "http_port": settings_http_port,
            "pg_port": pg_port,
            "joined_at": self.created_at,
        }
