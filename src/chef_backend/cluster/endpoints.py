"""The etcd client URLs this node knows besides its own member, kept in `<var>/etcd_endpoints.json`.

Written by create-cluster, join-cluster and quorum recovery; read by the renderer (for the leader
manager's configuration) and by the ctl (for its store), so that neither reads a rendered file back.
"""

from __future__ import annotations

import json

from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths


def save(paths: NodePaths, endpoints: list[str]) -> None:
    fsutil.write_file(paths.etcd_endpoints_file, json.dumps(sorted(set(endpoints)), indent=2) + "\n", mode=0o644)


def load(paths: NodePaths) -> list[str]:
    """The known endpoints; none when the file is absent or unreadable (the local member is always tried)."""
    try:
        doc = json.loads(paths.etcd_endpoints_file.read_text())
    except (OSError, ValueError):
        return []
    return [e for e in doc if isinstance(e, str) and e] if isinstance(doc, list) else []
