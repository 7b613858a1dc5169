"""Carrying out a plan's actions: I/O only. Each handler returns whether it did what it was asked;
the step function (step.py) decides what that means."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from chef_backend.cluster import store as keys
from chef_backend.cluster.store import Store
from chef_backend.config.settings import Settings
from chef_backend.host.paths import NodePaths
from chef_backend.leader import records
from chef_backend.leader.pg import LocalPg
from chef_backend.leader.state import REFUSED, Action, Kind, Position, SyncSet
from chef_backend.leader.timing import clock
from chef_backend.secrets import Secrets
from chef_backend.services import postgresql
from chef_backend.supervision.runit import Supervisor

log = logging.getLogger(__name__)



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
    lease: int = 0  # set by the daemon before each plan runs
    deadline: float = 0.0  # the lease is ours until then by timing.clock() (set with `lease`)

    def __post_init__(self) -> None:
        self.layout = postgresql.PgLayout.of(self.settings, self.paths)
        self.markers = Markers(self.paths.leaderl_data)

    def run(self, action: Action, reason: str) -> bool:
        handler = getattr(self, f"_do_{action.kind.value}")
        return handler(action, reason) is not False

    # -- leadership ----------------------------------------------------------------------------
    def _my_record(self, action: Action) -> dict[str, object]:
        return records.encode_leader(self.guid, self.settings.publish_address, time.time(), self.settings.node_name,
                                     fork=action.position)

    def _history(self, reason: str, guid: str | None = None,
                 address: str | None = None) -> tuple[dict[str, object], dict[str, object]]:
        """(compare, put) that append a leadership change to the history in a transaction, so that
        the last leader recorded is always the node that last took the key."""
        entry = self.store.get(keys.HISTORY)
        history = records.appended_history(entry.value if entry else None, {
            "at": time.time(),
            "guid": guid or self.guid,
            "address": address or self.settings.publish_address,
            "reason": reason,
        })
        return Store.cmp_mod(keys.HISTORY, entry.mod_revision if entry else 0), Store.op_put(keys.HISTORY, history)

    @staticmethod
    def _guards(action: Action) -> list[dict[str, object]]:
        """The statuses the decision counted must be unchanged: a report retracted meanwhile (its
        node re-attached to a leader) no longer vouches for anything. So must the synchronous set
        they were counted against: one a leader published since may hold members that were not
        counted and can acknowledge its commits (simulation seed 28534)."""
        guards = [Store.cmp_mod(keys.STATUS + guid, revision) for guid, revision in action.guards]
        if action.sync_revision is not None:
            guards.append(Store.cmp_revision(keys.SYNC, action.sync_revision))
        return guards

    def _do_acquire(self, action: Action, reason: str) -> bool:
        cmp_history, put_history = self._history(reason)
        if self.store.txn([Store.cmp_absent(keys.LEADER), cmp_history, *self._guards(action)],
                          [Store.op_put(keys.LEADER, self._my_record(action), lease=self.lease), put_history]):
            log.warning("took leadership (%s)", reason)
            self.store.delete(keys.CONTROL_FORCE)
            return True
        log.info("another node took leadership first, or a counted report changed")
        return False

    def _do_takeover(self, action: Action, reason: str) -> bool:
        old = action.leader
        assert old is not None
        # Only if the key is still the dead leader's, unchanged since we judged it.
        cmp_history, put_history = self._history(f"took over from {old.guid}: {reason}")
        if not self.store.txn([Store.cmp_mod(keys.LEADER, old.mod_revision), cmp_history, *self._guards(action)],
                              [Store.op_put(keys.LEADER, self._my_record(action), lease=self.lease), put_history]):
            log.info("the leader key or a counted report changed meanwhile; not taking over")
            return False
        log.warning("took over from %s (%s)", old.guid, reason)
        try:
            self.store.revoke(old.lease)  # its holder, if alive, learns at its next renewal
        except Exception as exc:
            log.warning("could not revoke the old leader's lease: %s", exc)
        return True

    def _do_handover(self, action: Action, reason: str) -> bool:
        """Switchover: a clean (fast) shutdown waits until every streaming standby has flushed all
        WAL, so the heir holds every commit; only then does the key move to it, bound to its lease."""
        heir = action.leader
        assert heir is not None
        self.stop_pg(immediate=False)
        position = self._checkpoint_position()
        record = records.encode_leader(heir.guid, heir.address, time.time(), handover=position)
        # Only while the key is ours and unchanged since the decision: a handover held up in etcd
        # (no answer: we went on leading, and claimed the key again to promote) must not land later.
        compare = [Store.cmp_lease(keys.LEADER, self.lease), Store.cmp_mod(keys.LEADER, action.leader_revision or 0)]
        if self.store.txn(compare, [Store.op_put(keys.LEADER, record, heir.lease)]):
            # The heir records itself in the history when it promotes (CLAIM): until then
            # this node, which holds every commit, stays the last leader.
            log.warning("handed leadership to %s at %s (%s)", heir.guid, position, reason)
            return True
        log.error("could not hand leadership to %s: the leader key changed", heir.guid)
        return False

    def _checkpoint_position(self) -> Position:
        out = self._pg_user_run([self.layout.bin("pg_controldata"), str(self.layout.data)])
        fields = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
        hi, lo = fields["Latest checkpoint location"].strip().split("/")
        return Position(int(fields["Latest checkpoint's TimeLineID"]), (int(hi, 16) << 32) + int(lo, 16))

    def _do_end_switchover(self, action: Action, reason: str) -> None:
        if action.target == REFUSED:
            # The promote/demote command waiting on the request tells the operator why.
            self.store.txn([], [Store.op_put(keys.CONTROL_SWITCHOVER_REFUSED, records.encode_refusal(reason)),
                                Store.op_delete(keys.CONTROL_SWITCHOVER)])
        else:
            self.store.delete(keys.CONTROL_SWITCHOVER)
        log.info("switchover request closed: %s", reason)

    def _do_claim(self, action: Action, reason: str) -> bool:
        """Rewrite our key under our lease before promoting (and record us as the last leader)."""
        compare = [Store.cmp_lease(keys.LEADER, self.lease)]
        put = [Store.op_put(keys.LEADER, self._my_record(action), lease=self.lease)]
        if action.target == "history":
            cmp_history, put_history = self._history(f"{self.guid} promotes: {reason}")
            compare.append(cmp_history)
            put.append(put_history)
        if not self.store.txn(compare, put):
            log.info("the leader key is no longer ours (or the history changed): not promoting")
            return False
        return True

    def _do_release(self, action: Action, reason: str) -> None:
        compare = [Store.cmp_lease(keys.LEADER, self.lease)]
        if action.leader_revision is not None:  # None: the manager is stopping, no decision saw the key
            compare.append(Store.cmp_revision(keys.LEADER, action.leader_revision))
        if self.store.txn(compare, [Store.op_delete(keys.LEADER)]):
            log.warning("released leadership: %s", reason)

    def _do_promote(self, action: Action, reason: str) -> bool:
        self.markers.was_leader.touch()
        self._do_apply_sync(action, reason)
        if clock() >= self.deadline:
            # This process was paused (SIGSTOP, a VM pause) after it claimed the key, long enough for the
            # lease to run out and another member to take over and promote: promoting now would make a
            # second primary without that member's commits (simulation seed 1599).
            log.error("not promoting: the lease ran out while this plan waited")
            return False
        self.pg.promote()
        return True

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
        # "finish": it exited by itself and runit waits before starting it again (services/postgresql.py).
        if not self.supervisor.wait_state("postgresql", ("down", "finish"), 30):
            self.supervisor.sv("kill", "postgresql", wait=5)

    def _do_restart_pg(self, action: Action, reason: str) -> None:
        log.warning("restarting PostgreSQL: its WAL receiver outlived the detachment")
        self.stop_pg(immediate=False)
        self.supervisor.sv("up", "postgresql", wait=0)

    def _do_start_pg(self, action: Action, reason: str) -> None:
        self.supervisor.sv("up", "postgresql", wait=0)

    def _do_follow(self, action: Action, reason: str) -> None:
        content = postgresql.render_standby_conf(self.settings, self.layout, action.target, self.guid)
        postgresql.write_replication_passfile(self.settings, self.layout, self.secrets)  # a node from before it
        postgresql.write_standby_conf(self.layout, content)
        try:
            self.pg.reload()
        except Exception:  # not running yet: it reads standby.conf when it starts
            pass
        log.info("now %s", f"following {action.target}" if action.target else "detached (following no one)")

    def _do_rewind(self, action: Action, reason: str) -> bool:
        return self._resync(action, reason, rebuild=False)

    def _do_rebuild(self, action: Action, reason: str) -> bool:
        return self._resync(action, reason, rebuild=True)

    def _resync(self, action: Action, reason: str, rebuild: bool) -> bool:
        leader = action.target
        assert leader is not None
        log.warning("re-syncing from %s (%s): %s", leader, "base backup" if rebuild else "pg_rewind", reason)
        self.markers.unsynced.write_text(f"re-sync from {leader} in progress\n")
        self.stop_pg(immediate=False)
        try:
            if rebuild:
                self._rebuild(leader)
            else:
                self._recover_crashed()
                if not self._rewind(leader):
                    return False  # the step function asks for a base backup next
        except Exception as exc:  # reported through the unsynced marker
            log.error("re-sync from %s failed: %s", leader, exc)
            self.markers.unsynced.write_text(f"re-sync from {leader} failed: {exc}\n")
            return False
        self.markers.was_leader.unlink(missing_ok=True)
        self.markers.unsynced.unlink(missing_ok=True)
        self._do_follow(Action(Kind.FOLLOW, leader), reason)
        self._do_start_pg(action, reason)
        log.warning("re-synced from %s; following it", leader)
        return True

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
        one_timeline = rewind_saw_one_timeline(out.stdout + out.stderr)
        if out.returncode == 0 and one_timeline and self.markers.was_leader.exists():
            # We promoted, and so did the leader, to a timeline of the same number: two histories that
            # pg_rewind, comparing timeline IDs, takes for one. It changed nothing; our WAL still diverges.
            log.warning("pg_rewind found us on the new leader's timeline number after we led: another history, "
                        "re-copying")
            return False
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
    def _do_publish_sync(self, action: Action, reason: str) -> bool:
        """Publish only while the key is ours: a set published after another node took over would
        let us apply it and acknowledge commits through members that node never counted. And only
        over the set the decision saw: a publication held up in etcd must not land over a later one."""
        compare = [Store.cmp_lease(keys.LEADER, self.lease), Store.cmp_revision(keys.SYNC, action.sync_revision or 0)]
        return self.store.txn(compare, [Store.op_put(keys.SYNC, records.encode_sync(action.sync or SyncSet()))])

    def _do_apply_sync(self, action: Action, reason: str) -> None:
        sync = action.sync or SyncSet()
        postgresql.write_managed_conf(self.layout, sync_standby_names(sync))
        self.pg.reload()
        log.info("synchronous standbys now %s", sync_standby_names(sync) or "(none)")


def rewind_saw_one_timeline(output: str) -> bool:
    """Whether pg_rewind's output says it did nothing because both control files name the same
    timeline ID (whatever the histories behind that number)."""
    return "source and target cluster are on the same timeline" in output


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
