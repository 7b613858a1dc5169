"""Checks made before create-cluster and join-cluster change anything."""

from __future__ import annotations

import errno
import json
import shutil
import socket
import time
import urllib.request
from pathlib import Path

from chef_backend.ctl.context import CtlError
from chef_backend.host import addresses as hostaddr

MAX_CLOCK_DRIFT_SECONDS = 1.5  # seed


def local_addresses() -> list[str]:
    """This host's IPv4 addresses other than loopback, for the publish-address prompt."""
    return [a for a in hostaddr.addresses() if ":" not in a and not a.startswith("127.")]


def check_address_is_local(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, 0))
        except OSError:
            raise CtlError(
                f"publish address {address} is not an address of this host; "
                "set publish_address in chef-backend.rb to one of this host's addresses"
            ) from None


def check_ports_free(address: str, ports: dict[str, int]) -> None:
    """Refuse when a service's port is already taken on its address."""
    for what, port in ports.items():
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CtlError(
                        f"port {port} ({what}) is already in use on {address}; "
                        "stop whatever listens there or change the port in chef-backend.rb"
                    ) from None
                raise


def check_disk(paths: list[Path], min_mb: int) -> None:
    for path in paths:
        probe = path
        while not probe.exists():
            probe = probe.parent
        free_mb = shutil.disk_usage(probe).free // (1024 * 1024)
        if free_mb < min_mb:
            raise CtlError(
                f"only {free_mb} MB free for {path} (at least {min_mb} MB needed); "
                "free some space or lower leaderl.health_check.disk_min_space_mb"
            )


def clock_offset(url: str, timeout: float = 3.0) -> float:
    """This host's clock minus the peer's, estimated from one round trip to its /status."""
    t0 = time.time()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        remote = float(json.loads(resp.read())["time"])
    t1 = time.time()
    return (t0 + t1) / 2 - remote


def check_clock_drift(peers: dict[str, str]) -> None:
    """Refuse when this host's clock is 1.5 s or more away from any reachable peer's (seed)."""
    for name, url in peers.items():
        try:
            offset = clock_offset(url)
        except (OSError, ValueError, KeyError):
            continue  # an unreachable peer is reported by the membership checks, not here
        if abs(offset) >= MAX_CLOCK_DRIFT_SECONDS:
            raise CtlError(
                f"clock differs from {name} by {offset:+.2f}s (limit {MAX_CLOCK_DRIFT_SECONDS}s); "
                "synchronise time (NTP) on every backend node first"
            )
