"""The leader manager's own configuration file (the original's leaderl sys.config).

Rendered by chef-backend-ctl at create/join/reconfigure from chef-backend.rb and the secrets, so
that a change to chef-backend.rb takes effect only through `reconfigure`. It holds passwords:
owner chef_pgsql, mode 0600 (seed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from chef_backend.cluster.identity import NodeIdentity
from chef_backend.config.settings import Settings
from chef_backend.host import fsutil
from chef_backend.secrets import Secrets


@dataclass(frozen=True)
class ManagerConfig:
    settings: Settings
    secrets: Secrets
    identity: NodeIdentity
    etcd_endpoints: tuple[str, ...]

    def save(self, path: Path, owner: str) -> None:
        doc = {
            "settings": self.settings.values,
            "secrets": json.loads(self.secrets.to_json()),
            "identity": asdict(self.identity),
            "etcd_endpoints": list(self.etcd_endpoints),
        }
        fsutil.write_file(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", mode=0o600, owner=owner, group=owner)

    @classmethod
    def load(cls, path: Path) -> ManagerConfig:
        doc = json.loads(path.read_text())
        return cls(
            settings=Settings(dict(doc["settings"])),
            secrets=Secrets.parse(json.dumps(doc["secrets"]), str(path)),
            identity=NodeIdentity(**doc["identity"]),
            etcd_endpoints=tuple(doc["etcd_endpoints"]),
        )
