"""Find the backend members as a Chef server frontend does (facts §4.3).

For each configured member in order, `GET http://MEMBER:2379/v2/members`; the first non-empty
answer wins, and each etcd member becomes (its name, the host of its first peer URL). Member
names are the nodes' GUIDs. If no member answers, the static list is used, named backend0, ...
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from chef_backend.host.netloc import host_port


@dataclass(frozen=True)
class Backend:
    name: str
    address: str


@dataclass(frozen=True)
class Discovery:
    backends: list[Backend]
    source: str  # the member that answered, or "static"
    warnings: list[str]


def parse_members(doc: object) -> list[Backend]:
    """Backends from a `/v2/members` answer. A member added but not started yet has no name: it
    is named after its etcd id (Chef's frontend would render an empty, invalid server name)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("members"), list):
        raise ValueError("not an etcd /v2/members answer")
    backends = []
    for member in doc["members"]:
        if not isinstance(member, dict):
            raise ValueError("a member is not an object")
        peers = member.get("peerURLs") or []
        host = urlsplit(peers[0]).hostname if peers and isinstance(peers[0], str) else None
        if not host:
            continue
        name = str(member.get("name") or f"member-{member.get('id', host)}")
        backends.append(Backend(name, host))
    return backends


def discover(members: list[str], etcd_port: int = 2379, timeout: float = 5.0) -> Discovery:
    """The backends to route to, from the first member whose etcd answers."""
    warnings = []
    for member in members:
        url = f"http://{host_port(member, etcd_port)}/v2/members"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                backends = parse_members(json.loads(resp.read()))
        except (OSError, ValueError, urllib.error.URLError) as exc:
            warnings.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if backends:
            return Discovery(backends, member, warnings)
        warnings.append(f"{url}: no members")
    return Discovery([Backend(f"backend{i}", m) for i, m in enumerate(members)], "static", warnings)
