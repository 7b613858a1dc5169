"""An address as the host part of a URL or of `host:port` (IPv6 literals go in brackets)."""

from __future__ import annotations


def url_host(address: str) -> str:
    """`address` ready for `scheme://HOST:port` or `HOST:port`: an IPv6 literal in brackets (RFC 3986),
    anything else (IPv4, a host name, an already bracketed literal) as it is."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def host_port(address: str, port: int) -> str:
    """`address:port`, with an IPv6 literal in brackets."""
    return f"{url_host(address)}:{port}"
