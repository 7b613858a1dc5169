"""Carrying out the decisions: the thin I/O layer around decide()."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Store
from chef_backend.config.settings import Settings
from chef_backend.host.httpcheck import http_status
from chef_backend.host.paths import NodePaths
from chef_backend.leader.pg import LocalPg
from chef_backend.leader.state import Action, Kind, Position, SyncSet
from chef_backend.secrets import Secrets
from chef_backend.services import postgresql
from chef_backend.supervision.runit import Supervisor

log = logging.getLogger(__name__)

REJOIN_BACKOFF_SECONDS = 15.0
# After a takeover the old leader may still answer 200 until it has seen its standbys go quiet
# (pg.STANDBY_STALE_SECONDS, noticed on its next tick) and its last "ready" has lapsed
# (daemon.READY_VALIDITY_SECONDS): 2 + 1 + 2.5, plus a margin.
FENCE_WAIT_SECONDS = 6.5
HISTORY_LENGTH = 100


@dataclass
class Markers:
    """Files in leaderl/data that outlive the process."""

    data: Path

    @property
    def was_leader(self) -> Path:
        """Present from promotion until a successful re-sync: the data may hold unreplicated WAL."""
        return self.data / "was_leader"

    @property
    def unsynced(self) -> Path:
        """Present while a (re-)sync runs, and kept with the reason when it failed (seed)."""
        return self.data / "unsynced"


@dataclass
class Executor:
    settings: Settings
    secrets: Secrets
    paths: NodePaths
    guid: str
    store: Store
    pg: LocalPg
    supervisor: Supervisor
    lease: int = 0
    applied_sync: SyncSet = field(default_factory=SyncSet)
    hold_until: float = 0.0  # after a takeover: no 200 before this (time.monotonic())
    hold_probe: str = ""  # the old leader's /leader URL; once it refuses or says 503 the hold ends
    following: str | None = None  # the host standby.conf streams from; None = detached
    promoted_at: float = -1e9  # time.monotonic() of our last promotion
    _last_rejoin: float = 0.0

    def __post_init__(self) -> None:
        self.layout = postgresql.PgLayout.of(self.settings, self.paths)
        self.markers = Markers(self.paths.leaderl_data)
        self.following = postgresql.configured_upstream(self.layout)

    def run(self, action: Action, reason: str) -> None:
        handler = getattr(self, f"_do_{action.kind.value}")
        handler(action, reason)

    # -- leadership ----------------------------------------------------------------------------
    def _do_acquire(self, action: Action, reason: str) -> None:
        record = {
            "guid": self.guid,
            "address": self.settings.publish_address,
            "name": self.settings.node_name,
            "since": time.time(),
        }
        if self.store.create(keys.LEADER, record, lease=self.lease):
            log.warning("took leadership (%s)", reason)
            self.record_history(reason)
            self.store.delete(keys.CONTROL_FORCE)
        else:
            log.info("another node took leadership first")

    def _do_takeover(self, action: Action, reason: str) -> None:
        old = action.leader
        assert old is not None
        record = {
            "guid": self.guid,
            "address": self.settings.publish_address,
            "name": self.settings.node_name,
            "since": time.time(),
        }
        # Only if the key is still the dead leader's, unchanged since we judged it.
        if not self.store.txn([Store.cmp_mod(keys.LEADER, old.mod_revision)],
                              [Store.op_put(keys.LEADER, record, lease=self.lease)]):
            log.info("the leader key changed meanwhile; not taking over")
            return
        self.hold_until = time.monotonic() + FENCE_WAIT_SECONDS
        self.hold_probe = f"http://{old.address}:{self.settings['leaderl.http_port']}/leader"
        log.warning("took over from %s (%s)", old.guid, reason)
        try:
            self.store.revoke(old.lease)  # its holder, if alive, learns at its next renewal
        except Exception as exc:
            log.warning("could not revoke the old leader's lease: %s", exc)
        self.record_history(f"took over from {old.guid}: {reason}")

    def _do_handover(self, action: Action, reason: str) -> None:
        """Switchover: a clean (fast) shutdown waits until every streaming standby has flushed all
        WAL, so the heir holds every commit; only then does the key move to it, bound to its lease."""
        heir = action.leader
        assert heir is not None
        self.stop_pg(immediate=False)
        position = self._checkpoint_position()
        record = {
            "guid": heir.guid,
            "address": heir.address,
            "since": time.time(),
            "handover": {"timeline": position.timeline, "lsn": position.lsn},
        }
        if self.store.txn([Store.cmp_lease(keys.LEADER, self.lease)], [Store.op_put(keys.LEADER, record, heir.lease)]):
            log.warning("handed leadership to %s at %s (%s)", heir.guid, position, reason)
            self.record_history(f"switchover from {self.guid} to {heir.guid}", guid=heir.guid, address=heir.address)
        else:
            log.error("could not hand leadership to %s: the leader key changed", heir.guid)

    def _checkpoint_position(self) -> Position:
        out = self._pg_user_run([self.layout.bin("pg_controldata"), str(self.layout.data)])
        fields = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
        hi, lo = fields["Latest checkpoint location"].strip().split("/")
        return Position(int(fields["Latest checkpoint's TimeLineID"]), (int(hi, 16) << 32) + int(lo, 16))

    def _do_end_switchover(self, action: Action, reason: str) -> None:
        self.store.delete(keys.CONTROL_SWITCHOVER)
        log.info("switchover request closed: %s", reason)

    def release_hold_if_fenced(self) -> None:
        """End the post-takeover hold early once the old leader provably cannot answer 200."""
        if time.monotonic() >= self.hold_until or not self.hold_probe:
            return
        code = http_status(self.hold_probe, 0.5)
        if code is None:
            return  # no answer (frozen or cut off): wait the hold out
        if code != 200:
            log.info("old leader %s answers %s: serving now", self.hold_probe, code or "connection refused")
            self.hold_until = 0.0

    def record_history(self, reason: str, guid: str | None = None, address: str | None = None) -> None:
        """Append a leadership change (by default: this node became leader)."""
        entry = self.store.get(keys.HISTORY)
        history = list(entry.value) if entry and isinstance(entry.value, list) else []
        history.append(
            {
                "at": time.time(),
                "guid": guid or self.guid,
                "address": address or self.settings.publish_address,
                "reason": reason,
            }
        )
        self.store.put(keys.HISTORY, history[-HISTORY_LENGTH:])

    def _do_release(self, action: Action, reason: str) -> None:
        if self.store.delete_if_lease(keys.LEADER, self.lease):
            log.warning("released leadership: %s", reason)

    def _do_promote(self, action: Action, reason: str) -> None:
        self.markers.was_leader.touch()
        self.apply_sync(action.sync or SyncSet())
        self.pg.promote()
        self.promoted_at = time.monotonic()

    # -- PostgreSQL ----------------------------------------------------------------------------
    def _do_fence(self, action: Action, reason: str) -> None:
        log.error("fencing PostgreSQL: %s", reason)
        self.stop_pg(immediate=True)

    def stop_pg(self, immediate: bool) -> None:
        """Stop PostgreSQL and keep it down. Immediate (SIGQUIT) when fencing: no waiting for
        clients or a checkpoint; otherwise a fast shutdown that leaves a clean data directory."""
        self.pg.close()
        if immediate:
            self.supervisor.sv("down", "postgresql", wait=0)
            self.supervisor.sv("quit", "postgresql", wait=0)
        else:
            self.supervisor.sv("down", "postgresql", wait=0)
        if not self.supervisor.wait_state("postgresql", "down", 30):
            self.supervisor.sv("kill", "postgresql", wait=5)

    def _do_start_pg(self, action: Action, reason: str) -> None:
        self.supervisor.sv("up", "postgresql", wait=0)

    def _do_follow(self, action: Action, reason: str) -> None:
        content = postgresql.render_standby_conf(self.settings, self.layout, action.target, self.guid)
        postgresql.write_replication_passfile(self.settings, self.layout, self.secrets)  # a node from before it
        postgresql.write_standby_conf(self.layout, content)
        self.following = action.target
        try:
            self.pg.reload()
        except Exception:  # not running yet: it reads standby.conf when it starts
            pass
        log.info("now %s", f"following {action.target}" if action.target else "detached (following no one)")

    def _do_rejoin(self, action: Action, reason: str) -> None:
        if time.monotonic() - self._last_rejoin < REJOIN_BACKOFF_SECONDS:
            return
        self._last_rejoin = time.monotonic()
        leader = action.target
        assert leader is not None
        log.warning("re-syncing from %s: %s", leader, reason)
        self.markers.unsynced.write_text(f"re-sync from {leader} in progress\n")
        self.stop_pg(immediate=False)
        try:
            self._recover_crashed()
            if not self._rewind(leader):
                self._rebuild(leader)
        except Exception as exc:  # reported through the unsynced marker
            log.error("re-sync from %s failed: %s", leader, exc)
            self.markers.unsynced.write_text(f"re-sync from {leader} failed: {exc}\n")
            return
        self.markers.was_leader.unlink(missing_ok=True)
        self.markers.unsynced.unlink(missing_ok=True)
        self._do_follow(Action(Kind.FOLLOW, leader), reason)
        self._do_start_pg(action, reason)
        log.warning("re-synced from %s; following it", leader)

    def _pg_user_run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            postgresql.as_pg_user(self.layout, argv),
            text=True,
            input="",
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", **(env or {})},
            timeout=timeout,
        )

    def _recover_crashed(self) -> None:
        """pg_rewind needs a cleanly shut down target: replay a crashed one in single-user mode."""
        out = self._pg_user_run([self.layout.bin("pg_controldata"), str(self.layout.data)])
        state = next(
            (
                line.split(":", 1)[1].strip()
                for line in out.stdout.splitlines()
                if line.startswith("Database cluster state:")
            ),
            "",
        )
        if state in ("shut down", "shut down in recovery"):
            return
        (self.layout.data / "standby.signal").unlink(missing_ok=True)
        out = self._pg_user_run(
            [self.layout.bin("postgres"), "--single", "-D", str(self.layout.data), "-c",
             f"config_file={self.layout.conf}", "postgres"],
            timeout=300,
        )
        if out.returncode != 0:
            raise RuntimeError(f"crash recovery failed: {(out.stderr or out.stdout).strip()[-300:]}")

    def _rewind(self, leader: str) -> bool:
        # pg_rewind reads the source's timeline from its control file, which a fresh promotion only
        # updates at its next checkpoint; without one it could wrongly find nothing to rewind.
        with psycopg.connect(postgresql.conninfo(self.settings, leader, self.secrets.db_superuser_password, "postgres",
                                                 5), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        source = (
            f"host={leader} port={self.settings['postgresql.port']} "
            f"user={self.settings['postgresql.db_superuser']} dbname=postgres sslmode=prefer connect_timeout=5"
        )
        out = self._pg_user_run(
            [
                self.layout.bin("pg_rewind"),
                f"--target-pgdata={self.layout.data}",
                f"--source-server={source}",
                "--no-ensure-shutdown",
            ],
            env={"PGPASSWORD": self.secrets.db_superuser_password},
            timeout=600,
        )
        if out.returncode == 0:
            log.info("pg_rewind: %s", out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "done")
            (self.layout.data / "postgresql.auto.conf").unlink(missing_ok=True)
            return True
        log.warning("pg_rewind failed, falling back to a base backup: %s", out.stderr.strip())
        return False

    def _rebuild(self, leader: str) -> None:
        aside = self.layout.base / "data.failed"
        shutil.rmtree(aside, ignore_errors=True)
        if self.layout.data.exists():
            self.layout.data.rename(aside)
        try:
            postgresql.basebackup(self.settings, self.layout, self.secrets, leader, self.guid)
        except Exception:
            shutil.rmtree(self.layout.data, ignore_errors=True)
            aside.rename(self.layout.data)
            raise
        shutil.rmtree(aside, ignore_errors=True)

    # -- synchronous replication -----------------------------------------------------------------
    def _do_set_sync(self, action: Action, reason: str) -> None:
        """Move to the wanted synchronous set without a moment where a promotable group could
        miss an acknowledged commit: publish the union first (with the smaller quorum), apply,
        and publish the exact set only on a later tick (after PostgreSQL picked it up)."""
        wanted = action.sync
        assert wanted is not None
        current = self.applied_sync
        if current != wanted:
            union = tuple(sorted(set(current.members) | set(wanted.members)))
            quorum = min(current.quorum, wanted.quorum) if current.members else 0
            self.store.put(keys.SYNC, {"members": list(union), "quorum": quorum})
            self.apply_sync(wanted)
            log.info("synchronous standbys now %s", sync_standby_names(wanted) or "(none)")
        else:
            self.store.put(keys.SYNC, {"members": list(wanted.members), "quorum": wanted.quorum})

    def apply_sync(self, sync: SyncSet) -> None:
        postgresql.write_managed_conf(self.layout, sync_standby_names(sync))
        self.pg.reload()
        self.applied_sync = sync


def sync_standby_names(sync: SyncSet) -> str:
    if not sync.members:
        return ""
    return f"ANY {sync.quorum} (" + ", ".join(f'"{g}"' for g in sync.members) + ")"


def parse_sync_standby_names(text: str) -> SyncSet:
    """Read back what managed.conf holds (inverse of sync_standby_names)."""
    text = text.strip()
    if not text.startswith("ANY "):
        return SyncSet()
    quorum_str, rest = text[4:].split(" ", 1)
    members = tuple(m.strip().strip('"') for m in rest.strip().strip("()").split(",") if m.strip())
    return SyncSet(members, int(quorum_str))
