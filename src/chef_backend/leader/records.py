"""Reading what the nodes publish in etcd (leader key, statuses, synchronous set, history,
switchover), tolerating malformed values: a bad record written by a buggy or hostile client makes
that record count as absent, and never stops a leader manager's loop."""

from __future__ import annotations

from typing import Any

from chef_backend.leader.state import LeaderKey, Peer, Position, Switchover, SyncSet


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def position(value: Any) -> Position | None:
    if not isinstance(value, dict):
        return None
    timeline, lsn = _int(value.get("timeline")), _int(value.get("lsn"))
    return Position(timeline, lsn) if timeline is not None and lsn is not None else None


def leader_key(value: Any, mod_revision: int, lease: int) -> LeaderKey | None:
    if not isinstance(value, dict):
        return None
    guid, address = _str(value.get("guid")), _str(value.get("address"))
    return LeaderKey(guid, address, mod_revision, lease) if guid and address else None


def handover_position(value: Any) -> Position | None:
    """The position a switchover's old leader stopped at, if the leader key carries one."""
    return position(value.get("handover")) if isinstance(value, dict) else None


def peer(guid: str, value: Any, fresh: bool, lease: int) -> Peer | None:
    if not isinstance(value, dict):
        return None
    pos = position(value.get("position"))
    address = _str(value.get("address"))
    if pos is None or address is None:
        return None
    return Peer(guid=guid, address=address, role=str(value.get("role", "")), eligible=value.get("eligible") is True,
                position=pos, detached=value.get("detached") is True, fresh=fresh, lease=lease,
                storage_full=bool(value.get("storage_full")))


def sync_set(value: Any) -> SyncSet:
    if not isinstance(value, dict):
        return SyncSet()
    members = value.get("members")
    quorum = _int(value.get("quorum"))
    if not isinstance(members, list) or not all(_str(m) for m in members) or quorum is None:
        return SyncSet()
    return SyncSet(tuple(members), quorum)


def last_leader(history: Any) -> str | None:
    if isinstance(history, list) and history and isinstance(history[-1], dict):
        return _str(history[-1].get("guid"))
    return None


def switchover(value: Any) -> Switchover | None:
    if not isinstance(value, dict):
        return None
    source, target = _str(value.get("source")), _str(value.get("target"))
    return Switchover(source, target) if source and target else None


def guid_list(value: Any) -> tuple[str, ...]:
    """A list of node GUIDs (e.g. the nodes whose failover is turned off)."""
    return tuple(v for v in value if _str(v)) if isinstance(value, list) else ()
