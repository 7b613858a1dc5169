"""Waiting, with a deadline, for the cluster to reach a state."""

from __future__ import annotations

import time

from chef_backend.cluster.store import Store, StoreError
from chef_backend.cluster.view import ClusterView
from chef_backend.config.settings import Settings
from chef_backend.ctl.context import CtlError
from chef_backend.host.httpcheck import http_status
from chef_backend.host.netloc import host_port


def etcd_healthy(store: Store, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if store.health():
                return
        except (StoreError, OSError) as exc:
            last = str(exc)
        time.sleep(0.3)
    raise CtlError(f"etcd did not become healthy within {timeout:.0f}s {last}; see chef-backend-ctl tail etcd")


def leader_ready(settings: Settings, timeout: float) -> None:
    """Wait until this node's /leader answers 200."""
    url = f"http://{host_port(settings.http_address, settings['leaderl.http_port'])}/leader"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_status(url, 2) == 200:
            return
        time.sleep(0.3)
    raise CtlError(f"this node did not become leader within {timeout:.0f}s; see chef-backend-ctl tail leaderl")


def node_synced(store: Store, guid: str, timeout: float) -> None:
    """Wait until the node reports itself a follower streaming from the leader."""
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        try:
            view = ClusterView.from_snapshot(store.snapshot())
        except (StoreError, OSError):
            time.sleep(0.5)
            continue
        node = next((n for n in view.nodes if n.guid == guid), None)
        if node is not None:
            state = node.pg_state
            if state == "synced":
                return
        time.sleep(0.3)
    raise CtlError(
        f"this node did not finish syncing within {timeout:.0f}s (PostgreSQL {state}); "
        "see chef-backend-ctl tail leaderl"
    )
