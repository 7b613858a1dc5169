"""Real backend nodes on one host: each with its own CHEF_BACKEND_ROOT and loopback address."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from chef_backend.host.httpcheck import http_status
from chef_backend.host.netloc import host_port

BASE = Path(os.environ.get("CHEF_BACKEND_TEST_BASE", "/tmp/chef-backend-tests"))
CTL = os.environ.get("CHEF_BACKEND_CTL", "/usr/local/bin/chef-backend-ctl")
LOGS = Path(os.environ.get("CHEF_BACKEND_TEST_LOGS", "/tmp/chef-backend-test-logs"))

DEFAULT_CONFIG = """\
postgresql.shared_buffers = '64MB'
postgresql.max_connections = 60
leaderl.leader_ttl_seconds = 10
leaderl.health_check.disk_min_space_mb = 10
elasticsearch.enable = false
"""


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def node_pids(root: Path) -> set[int]:
    """Every process of a node: its runsvdir's whole tree, plus strays naming the root."""
    pids: set[int] = set()
    marker = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            pids.add(int(entry.name))
    tree = _proc_children()
    stack = list(pids)
    while stack:
        for child in tree.get(stack.pop(), []):
            if child not in pids:
                pids.add(child)
                stack.append(child)
    pids.discard(os.getpid())
    return pids


def kill_node(root: Path, sig: int = signal.SIGKILL) -> None:
    """kill -9 every process of a node (a node crash), and wait until they are gone."""
    for _ in range(50):
        pids = node_pids(root)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"processes of {root} survived SIGKILL: {node_pids(root)}")


@dataclass
class Node:
    index: int
    base: Path
    extra_config: str = ""

    @property
    def name(self) -> str:
        return f"backend-{self.index}"

    @property
    def address(self) -> str:
        return f"127.0.0.{10 + self.index}"

    @property
    def http_listen(self) -> str | None:
        """leaderl.http_address in this node's chef-backend.rb (nodes sharing a host each need their own)."""
        return self.address

    @property
    def root(self) -> Path:
        return self.base / f"n{self.index}"

    @property
    def config_file(self) -> Path:
        return self.root / "etc/chef-backend/chef-backend.rb"

    @property
    def secrets_file(self) -> Path:
        return self.root / "etc/chef-backend/chef-backend-secrets.json"

    def write_config(self, publish: bool = True) -> None:
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"fqdn '{self.name}'"]
        if self.http_listen:
            lines.append(f"leaderl.http_address = '{self.http_listen}'")
        if publish:
            lines.insert(0, f"publish_address '{self.address}'")
        self.config_file.write_text("\n".join(lines) + "\n" + DEFAULT_CONFIG + self.extra_config)

    @property
    def command_prefix(self) -> list[str]:
        """How to run a command on this node's host (nothing: it is this host)."""
        return []

    def ctl(self, *args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, CHEF_BACKEND_ROOT=str(self.root))
        result = subprocess.run([*self.command_prefix, CTL, *args], env=env, text=True, capture_output=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"chef-backend-ctl {' '.join(args)} on {self.name} failed "
                                 f"({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def leader_code(self) -> int:
        return http_status(f"http://{host_port(self.address, 7331)}/leader", 2) or 0

    def status_doc(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{host_port(self.address, 7331)}/status", timeout=2) as resp:
            return json.loads(resp.read())

    def password(self) -> str:
        return json.loads(self.secrets_file.read_text())["postgresql"]["db_superuser_password"]

    def connect(self, password: str, timeout: int = 3) -> psycopg.Connection:
        return psycopg.connect(host=self.address, port=5432, user="chef_pgsql", password=password,
                               dbname="postgres", connect_timeout=timeout, autocommit=True)

    def processes(self) -> set[int]:
        return node_pids(self.root)

    def pids_of(self, program: str) -> list[int]:
        """This node's processes running `program`: the etcd binary, or the chef-backend-leaderl
        script under its interpreter (not `runsv etcd`)."""
        pids = []
        for pid in self.processes():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            names = [arg.rsplit(b"/", 1)[-1] for arg in argv[:2]]
            if names[0] == program.encode() or (names[0].startswith(b"python") and names[1:] == [program.encode()]):
                pids.append(pid)
        return pids

    def postgresql_pids(self) -> list[int]:
        """This node's PostgreSQL: the postmaster and every child (their titles start "postgres:")."""
        pids = []
        for pid in self.processes():
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if argv0.rsplit(b"/", 1)[-1] == b"postgres" or argv0.startswith(b"postgres:"):
                pids.append(pid)
        return pids

    def signal(self, program: str, sig: int) -> list[int]:
        """Send `sig` to this node's `program` processes; returns their pids."""
        pids = self.pids_of(program)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def crash(self) -> None:
        kill_node(self.root)


@dataclass
class Cluster:
    base: Path
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def fresh(cls, name: str, size: int = 3, extra_config: str = "") -> Cluster:
        base = BASE / name
        cleanup(base)
        shutil.rmtree(LOGS / name, ignore_errors=True)
        base.mkdir(parents=True)
        os.chmod(BASE, 0o755)
        cluster = cls(base, [Node(i, base, extra_config) for i in range(1, size + 1)])
        for node in cluster.nodes:
            node.write_config()
        return cluster

    @classmethod
    @contextmanager
    def running(cls, name: str, extra_config: str = "", timeout: float = 90) -> Iterator[Cluster]:
        """A fresh cluster, created and healthy for the duration of the block, then torn down."""
        cluster = cls.fresh(name, extra_config=extra_config)
        try:
            cluster.create()
            cluster.wait_healthy(timeout)
            yield cluster
        finally:
            cluster.teardown()

    def create(self) -> None:
        first = self.nodes[0]
        first.ctl("create-cluster", "--yes")
        shutil.copy(first.secrets_file, self.base / "secrets.json")
        for node in self.nodes[1:]:
            node.ctl("join-cluster", first.address, "-s", str(self.base / "secrets.json"), "--yes")

    @property
    def logs(self) -> Path:
        """The run's history: client-side logs as they happen, node logs copied at teardown."""
        return LOGS / self.base.name

    @property
    def secrets_copy(self) -> Path:
        return self.base / "secrets.json"

    def password(self) -> str:
        return self.nodes[0].password()

    def cluster_status(self, via: Node | None = None) -> dict[str, Any]:
        node = via or self.nodes[0]
        return json.loads(node.ctl("cluster-status", "--json").stdout)

    def leaders(self) -> list[Node]:
        return [n for n in self.nodes if n.leader_code() == 200]

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except Exception as exc:  # a node may be down meanwhile
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def wait_leader(self, timeout: float = 60) -> Node:
        return self.wait_for(lambda: (ls := self.leaders()) and len(ls) == 1 and ls[0], timeout, "one leader")

    def wait_healthy(self, timeout: float = 90) -> dict[str, Any]:
        """One leader and every other node a synced follower."""

        def healthy() -> dict[str, Any] | None:
            live = [n for n in self.nodes if n.processes()]
            doc = self.cluster_status(live[0])
            pg = sorted(n["pg"] for n in doc["nodes"])
            want = sorted(["leader"] + ["synced"] * (len(self.nodes) - 1))
            return doc if pg == want else None

        return self.wait_for(healthy, timeout, "a healthy cluster")

    def lose_all_but(self, survivor: Node) -> list[Node]:
        """Destroy every other node for good (processes and files), leaving each a fresh
        chef-backend.rb to join again with; returns them."""
        lost = [n for n in self.nodes if n is not survivor]
        for node in lost:
            node.crash()
            shutil.rmtree(node.root)
            node.write_config()
        return lost

    def teardown(self) -> None:
        """Keep every node's logs beside the client's (for reading after a failure), then remove
        the cluster."""
        for node in self.nodes:
            src = node.root / "var/log/chef-backend"
            if src.exists():
                shutil.copytree(src, self.logs / node.name, ignore_dangling_symlinks=True, dirs_exist_ok=True)
        cleanup(self.base)


def cleanup(base: Path) -> None:
    """Remove a test cluster, killing whatever an earlier (perhaps crashed) run left behind."""
    if base.exists():
        for root in sorted(base.glob("n*")):
            kill_node(root)
        kill_node(base)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def unmount_under(base: Path) -> None:
    """Unmount the small filesystems a test mounted inside `base` (deepest first)."""
    prefix = f"{base}/"
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
