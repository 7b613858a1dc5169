"""This host's IP addresses."""

from __future__ import annotations

import ipaddress
import subprocess


def addresses() -> list[str]:
    """Every IPv4 and IPv6 address of this host's interfaces, loopback included (`ip -o addr`)."""
    return [str(i.ip) for i in interfaces()]


def interfaces() -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    """Every address of this host with its network (what pg_hba's samehost and samenet mean)."""
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True)
    found = []
    for line in out.stdout.splitlines():
        parts = line.split()
        for family in ("inet", "inet6"):
            if family in parts:
                found.append(ipaddress.ip_interface(parts[parts.index(family) + 1]))
    return found
