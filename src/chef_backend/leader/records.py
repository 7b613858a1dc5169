"""Every record the leader managers keep in etcd, in one place: reading them (tolerating malformed
values: a bad record written by a buggy or hostile client counts as absent and never stops a
leader manager's loop) and writing them. The policy only ever sees the typed values of state.py."""

from __future__ import annotations

import math
from typing import Any

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Snapshot
from chef_backend.leader.state import EtcdView, History, LeaderKey, Peer, Position, Report, Switchover, SyncSet

HISTORY_LENGTH = 100


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _seconds(value: Any) -> float:
    """A duration a node reported; 0 (claiming nothing) when absent, as from an older version, or malformed."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) if ok else 0.0


def position(value: Any) -> Position | None:
    if not isinstance(value, dict):
        return None
    timeline, lsn = _int(value.get("timeline")), _int(value.get("lsn"))
    return Position(timeline, lsn) if timeline is not None and lsn is not None else None


def leader_key(value: Any, mod_revision: int, lease: int) -> LeaderKey | None:
    if not isinstance(value, dict):
        return None
    guid, address = _str(value.get("guid")), _str(value.get("address"))
    if not (guid and address):
        return None
    return LeaderKey(guid, address, mod_revision, lease, handover_position(value), position(value.get("fork")))


def handover_position(value: Any) -> Position | None:
    """The position a switchover's old leader stopped at, if the leader key carries one."""
    return position(value.get("handover")) if isinstance(value, dict) else None


def peer(guid: str, value: Any, fresh: bool, lease: int, mod_revision: int = 0) -> Peer | None:
    if not isinstance(value, dict):
        return None
    pos = position(value.get("position"))
    address = _str(value.get("address"))
    if pos is None or address is None:
        return None
    return Peer(guid=guid, address=address, role=str(value.get("role", "")), eligible=value.get("eligible") is True,
                position=pos, detached=value.get("detached") is True, fresh=fresh, lease=lease,
                storage_full=bool(value.get("storage_full")), mod_revision=mod_revision,
                final=value.get("final") is True, receiver_gone_for=_seconds(value.get("receiver_gone_for")))


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


def etcd_view(snapshot: Snapshot) -> EtcdView:
    """The typed records of one snapshot (peers' freshness is for the step function to judge)."""
    entry = snapshot.get(keys.LEADER)
    leader = leader_key(entry.value, entry.mod_revision, entry.lease) if entry else None
    peers = {}
    statuses = snapshot.under(keys.STATUS)
    for guid, st in statuses.items():
        if (p := peer(guid, st.value, False, st.lease, st.mod_revision)) is not None:
            peers[guid] = p
    history = snapshot.get(keys.HISTORY)
    force = snapshot.value(keys.CONTROL_FORCE)
    return EtcdView(
        revision=snapshot.revision,
        leader=leader,
        members=tuple(sorted(snapshot.under(keys.NODES))),
        peers=peers,
        sync=sync_set(snapshot.value(keys.SYNC)),
        sync_revision=sync_entry.mod_revision if (sync_entry := snapshot.get(keys.SYNC)) else 0,
        status_revisions={guid: st.mod_revision for guid, st in statuses.items()},
        history=History(last_leader(history.value) if history else None, history.mod_revision if history else 0),
        switchover=switchover(snapshot.value(keys.CONTROL_SWITCHOVER)),
        failover_enabled=snapshot.value(keys.CONTROL_FAILOVER, "on") != "off",
        blocked=guid_list(snapshot.value(keys.CONTROL_BLOCKED)),
        force_leader=force if isinstance(force, str) else None,
    )


def encode_position(pos: Position) -> dict[str, int]:
    return {"timeline": pos.timeline, "lsn": pos.lsn}


def encode_leader(guid: str, address: str, since: float, name: str | None = None,
                  handover: Position | None = None, fork: Position | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"guid": guid, "address": address, "since": since}
    if fork is not None:
        doc["fork"] = encode_position(fork)
    if name is not None:
        doc["name"] = name
    if handover is not None:
        doc["handover"] = encode_position(handover)
    return doc


def encode_sync(sync: SyncSet) -> dict[str, Any]:
    return {"members": list(sync.members), "quorum": sync.quorum}


def encode_status(report: Report, guid: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The status document a node posts: the policy's report plus the daemon's `extra` facts
    (name, disks, failure counts, search, version, time)."""
    return {
        "guid": guid,
        "role": report.role.value,
        "ready": report.ready,
        "reason": report.reason,
        "cause": report.cause.value,
        "eligible": report.eligible,
        "ineligible": list(report.ineligible),
        "storage_full": report.storage_full,
        "leader": report.leader,
        "position": encode_position(report.position),
        "detached": report.detached,
        "final": report.final,
        "receiver_gone_for": round(report.receiver_gone_for, 3),
        "pg": {
            "running": report.pg_running,
            "in_recovery": report.pg_in_recovery,
            "streaming": report.pg_streaming,
            "upstream": report.upstream,
            "standbys": list(report.standbys),
        },
        **extra,
    }


def appended_history(value: Any, entry: dict[str, Any]) -> list[Any]:
    """The history list with `entry` appended, at most HISTORY_LENGTH long."""
    history = list(value) if isinstance(value, list) else []
    history.append(entry)
    return history[-HISTORY_LENGTH:]


def encode_refusal(reason: str) -> dict[str, str]:
    """Why a switchover request was refused (read by the promote/demote command waiting on it)."""
    return {"reason": reason}
