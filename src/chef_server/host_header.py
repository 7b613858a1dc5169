"""The Host header as erchef reads it: clients such as Ruby's send "host:443", which names the same
server as "host" (in the URLs we hand out, and in the host a bookshelf URL's signature covers)."""

from __future__ import annotations


def without_default_port(host: str) -> str:
    """`host` with port 80 or 443 left out, any other port kept."""
    name, sep, port = host.rpartition(":")
    if sep and port in ("80", "443") and (not name.startswith("[") or name.endswith("]")):
        return name
    return host
