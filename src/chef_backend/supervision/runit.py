"""Supervision with runit, as in the original: one runsvdir per node, one runsv per service.

A service is a directory `<opt>/sv/<name>` with a `run` script, a `log/run` script running svlogd
(which rotates by `<service>.log_rotation.*`), and optional `control/` overrides. Linking it into
`<opt>/service` lets runsvdir pick it up. `sv` then gives omnibus-ctl's familiar answers
(`ok: run: etcd: (pid 123) 1s`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from chef_backend.host import fsutil
from chef_backend.host.paths import NodePaths

SV = "/usr/bin/sv"
RUNSVDIR = "/usr/bin/runsvdir"
SVLOGD = "/usr/bin/svlogd"
CHPST = "/usr/bin/chpst"

_STATUS_RE = re.compile(r"^(run|down|finish|fail): ([^:]+): (?:\(pid (\d+)\) )?(\d+)s")


@dataclass(frozen=True)
class ServiceSpec:
    """What to supervise: the run script and where its log goes."""

    name: str
    run_script: str
    log_dir: Path
    log_user: str
    file_maxbytes: int
    num_to_keep: int
    start_down: bool = False
    control: dict[str, str] | None = None  # runit control overrides, e.g. {"d": "#!/bin/sh ..."}
    environment: dict[str, str] | None = None  # <service>.environment, read by `chpst -e ./env`
    log_drop: tuple[str, ...] = ()  # svlogd patterns of lines not worth keeping
    finish_script: str | None = None  # runsv runs it after `run` exits, before it starts it again


@dataclass(frozen=True)
class ServiceStatus:
    """One service's state as runsv reports it."""

    name: str
    state: str  # run, down, finish, fail, or "unsupervised" when runsv is not running
    pid: int | None
    seconds: int
    raw: str


class Supervisor:
    """The runit tree of one node."""

    def __init__(self, paths: NodePaths) -> None:
        self.paths = paths

    # -- definitions -------------------------------------------------------------------------
    def install(self, spec: ServiceSpec) -> None:
        """Write (or update) a service definition and link it into the service directory."""
        sv = self.paths.sv_dir / spec.name
        fsutil.write_file(sv / "run", spec.run_script, mode=0o755)
        if spec.finish_script is not None:
            fsutil.write_file(sv / "finish", spec.finish_script, mode=0o755)
        else:
            (sv / "finish").unlink(missing_ok=True)
        down = sv / "down"
        if spec.start_down:
            down.touch()
        else:
            down.unlink(missing_ok=True)
        for letter, script in (spec.control or {}).items():
            fsutil.write_file(sv / "control" / letter, script, mode=0o755)
        env_dir = sv / "env"
        env_dir.mkdir(parents=True, exist_ok=True)
        wanted = {str(k): str(v) for k, v in (spec.environment or {}).items()}
        for old in env_dir.iterdir():
            if old.name not in wanted:
                old.unlink()
        for key, value in wanted.items():
            fsutil.write_file(env_dir / key, value + "\n")
        fsutil.make_dir(spec.log_dir, spec.log_user, 0o750)
        fsutil.write_file(
            spec.log_dir / "config",
            f"s{spec.file_maxbytes}\nn{spec.num_to_keep}\n" + "".join(f"-{p}\n" for p in spec.log_drop),
            owner=spec.log_user,
            group=spec.log_user,
        )
        log_run = f"#!/bin/sh\nexec {CHPST} -u {spec.log_user} {SVLOGD} -tt {spec.log_dir}\n"
        fsutil.write_file(sv / "log" / "run", log_run, mode=0o755)
        link = self.paths.service_dir / spec.name
        self.paths.service_dir.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(sv)

    def installed(self) -> list[str]:
        """Names of the services linked into the service directory, sorted."""
        if not self.paths.service_dir.is_dir():
            return []
        return sorted(p.name for p in self.paths.service_dir.iterdir())

    def remove(self, name: str) -> None:
        """Stop a service, take it out of supervision and delete its definition."""
        link = self.paths.service_dir / name
        if link.is_symlink():
            if self._supervised(name):
                self.sv("force-stop", name, wait=15)
                self.sv("exit", name, wait=15)
            link.unlink()

    # -- runsvdir ------------------------------------------------------------------------------
    def runsvdir_pid(self) -> int | None:
        try:
            pid = int(self.paths.runsvdir_pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            return None
        if cmdline and cmdline[0].endswith(b"runsvdir") and str(self.paths.service_dir).encode() in cmdline:
            return pid
        return None

    def ensure_running(self, timeout: float = 15.0) -> None:
        """Start this node's runsvdir if it is not running, and wait until every runsv is up."""
        if self.runsvdir_pid() is None:
            self.paths.service_dir.mkdir(parents=True, exist_ok=True)
            proc = subprocess.Popen(
                [RUNSVDIR, "-P", str(self.paths.service_dir), "log: " + "." * 250],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
            fsutil.write_file(self.paths.runsvdir_pidfile, f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._supervised(name) for name in self.installed()):
                return
            time.sleep(0.1)
        missing = [n for n in self.installed() if not self._supervised(n)]
        raise RuntimeError(f"runsv did not start for {', '.join(missing)} within {timeout:.0f}s")

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop the whole supervision tree (services must already be down)."""
        # runsvdir first: it TERMs every runsv (each exits, its service being down) and exits. Told one
        # by one with `sv exit` while runsvdir runs, a runsv that exited was started again at its next
        # scan, and sv waited out its whole timeout for it now and then (20 s a stop).
        pid = self.runsvdir_pid()
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.runsvdir_pid() is not None:
            time.sleep(0.1)
        for name in self.installed():  # a runsv left without its runsvdir
            if self._supervised(name):
                self.sv("exit", name, wait=max(1, int(deadline - time.monotonic())))
        self.paths.runsvdir_pidfile.unlink(missing_ok=True)

    # -- sv ------------------------------------------------------------------------------------
    def _supervised(self, name: str) -> bool:
        ok = self.paths.sv_dir / name / "supervise" / "ok"
        try:
            fd = os.open(ok, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return False
        os.close(fd)
        return True

    def sv(self, command: str, name: str, wait: int = 7) -> subprocess.CompletedProcess[str]:
        """Run `sv -w WAIT COMMAND NAME`; the answer is sv's own line (`ok: run: ...`)."""
        return subprocess.run(
            [SV, "-w", str(wait), command, name],
            capture_output=True,
            text=True,
            env={"SVDIR": str(self.paths.service_dir), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            cwd=self.paths.service_dir,
        )

    def status(self, name: str) -> ServiceStatus:
        """The service's runit state; `unsupervised` when its runsv is not running."""
        if not self._supervised(name):
            return ServiceStatus(name, "unsupervised", None, 0, f"down: {name}: not supervised")
        result = self.sv("status", name)
        line = result.stdout.strip()
        m = _STATUS_RE.match(line)
        if not m:
            return ServiceStatus(name, "unknown", None, 0, line or result.stderr.strip())
        return ServiceStatus(name, m.group(1), int(m.group(3)) if m.group(3) else None, int(m.group(4)), line)

    def wait_state(self, name: str, state: str | tuple[str, ...], timeout: float) -> bool:
        """Wait until the service reports `state` (e.g. "run"), or one of several; True if it did."""
        states = (state,) if isinstance(state, str) else state
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(name).state in states:
                return True
            time.sleep(0.05)
        return False
