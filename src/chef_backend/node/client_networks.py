"""Which changes of postgresql.md5_auth_cidr_addresses a running cluster can take, node by node.

Each entry becomes two pg_hba.conf lines (the seed). PostgreSQL re-reads that file whole at reload,
so a node that widens its list never refuses a client it let in before, and the seed's procedure
(widen the list in chef-backend.rb on every backend, reconfigure each) needs no cluster-wide step.

What is really dangerous is a list that would not let in the cluster's own members: replication
to this node once it leads, and each node's leader manager, connect to it with a password over
TCP, so after a failover to this node its followers could not stream from it (writes would stop
in synchronous mode) and its own manager could not check it. That is refused. A list narrower
than the one the cluster last applied is the operator's choice, and is warned about: the clients
it drops are refused by this node whenever it leads.
"""

from __future__ import annotations

import ipaddress
import re

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

_HOSTNAME = re.compile(r"^\.?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*$")


def invalid_entry(entry: str) -> str | None:
    """Why PostgreSQL would reject `entry` as a pg_hba.conf address, or None if it takes it."""
    if entry in ("all", "samehost", "samenet"):
        return None
    if "/" in entry or re.fullmatch(r"[0-9.]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*", entry):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"{entry!r} is not an IP address or a CIDR network"
        return None
    if _HOSTNAME.match(entry):
        return None  # a host name, or a .domain suffix
    return f"{entry!r} is neither an address, a CIDR network, a host name, all, samehost nor samenet"


def hba_address(entry: str) -> str:
    """`entry` as pg_hba.conf's address column: a single IP address gets its host mask (/32, /128),
    since PostgreSQL would read the next column (the method) as its netmask; all else as it is."""
    try:
        ip = ipaddress.ip_address(entry)
    except ValueError:
        return entry
    return f"{ip}/{ip.max_prefixlen}"


def admits(entry: str, address: str, local: list[Interface]) -> bool | None:
    """Whether a pg_hba entry lets in a client at `address` on a host with interfaces `local`; None
    when that depends on name resolution."""
    ip = ipaddress.ip_address(address)
    if entry == "all":
        return True
    if entry == "samehost":
        return any(i.ip == ip for i in local)
    if entry == "samenet":
        return any(ip in i.network for i in local)
    try:
        return ip in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def refused_members(entries: list[str], members: list[str], local: list[Interface]) -> list[str]:
    """The members' addresses that `entries` certainly do not let in."""
    out = []
    for address in members:
        verdicts = [admits(e, address, local) for e in entries]
        if not any(verdicts) and None not in verdicts:
            out.append(address)
    return out


def refusal(entries: list[str], members: list[str], local: list[Interface]) -> str | None:
    """Why this node may not apply `entries`, or None."""
    refused = refused_members(entries, members, local)
    if not refused:
        return None
    return (f"postgresql.md5_auth_cidr_addresses {entries} does not let in the cluster's own members "
            f"{', '.join(refused)}: replication to this node when it leads, and its leader manager, connect "
            "with a password, so a failover to it would stop replication; add them (samehost and samenet "
            "cover nodes on this host's networks)")


def dropped(entries: list[str], applied: list[str] | None) -> list[str]:
    """Entries of the list the cluster last applied that `entries` no longer has."""
    return [e for e in (applied or []) if e not in entries]
