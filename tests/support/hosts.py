"""Test hosts in network namespaces: each backend node and the client on its own host.

    root namespace ── bridge cbf-br0 (10.99.0.1, used only by the test to look at nodes)
        ├── cbf-n1 (10.99.0.11)   backend nodes: their own network stack, standard ports
        ├── cbf-n2 (10.99.0.12)
        ├── cbf-n3 (10.99.0.13)
        └── cbf-client (10.99.0.20)  HAProxy and the workload

Faults are nftables rules inside a host's namespace. Everything here is created by the suite and
removed by it, including what a crashed earlier run left.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.harness import Cluster, Node
from tests.support.workload import HAProxy, LeaderProber, Writer

PREFIX = "cbf"
BRIDGE = f"{PREFIX}-br0"
NET = "10.99.0"
NET6 = "fd00:cb::"  # the same hosts on IPv6 only (setup_network(ipv6=True)): fd00:cb::1, ::11, ::12, ::13, ::20
CLIENT_NS = f"{PREFIX}-client"
CLIENT_ADDR = f"{NET}.20"
# Each node's PostgreSQL on a filesystem this large, so that a fault can fill it: room for the data,
# wal_keep_size (8 segments above) and max_wal_size, so that only the fault does (tmpfs: memory is
# only taken as it is used).
PG_DISK_MB = 1536
# Room for the fault that fills PostgreSQL's disk (above), whatever the TTL.
PG_CONFIG = """\
postgresql.wal_keep_segments = 8
"""
# TTL 10 (harness default) needs etcd elections shorter than the lease deadline: see docs/failover.md.
FAULT_CONFIG = PG_CONFIG + """\
leaderl.health_check.interval_seconds = 1
etcd.heartbeat_interval = 250
etcd.election_timeout = 2500
"""
# The defaults an operator runs: TTL 30 and every other leaderl and etcd setting as shipped.
DEFAULTS_CONFIG = PG_CONFIG + """\
leaderl.leader_ttl_seconds = 30
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def _add_host(ns: str, address: str) -> None:
    """A host on the bridge with one address, IPv4 (/24) or IPv6 (/64, usable at once: no duplicate
    address detection)."""
    short = ns.removeprefix(f"{PREFIX}-")
    host_end, bridge_end = f"{PREFIX}-{short}-h", f"{PREFIX}-{short}-b"
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", bridge_end)
    sh("ip", "link", "set", host_end, "netns", ns)
    sh("ip", "netns", "exec", ns, "ip", "link", "set", host_end, "name", "eth0")
    sh("ip", "netns", "exec", ns, "ip", "addr", "add", *_with_prefix(address), "dev", "eth0")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "set", bridge_end, "master", BRIDGE)
    sh("ip", "link", "set", bridge_end, "up")


def teardown_network() -> None:
    """Remove every namespace and link of the suite (also after a crashed run)."""
    for ns in sh("ip", "netns", "list", check=False).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(f"{PREFIX}-"):
            sh("ip", "netns", "del", name, check=False)
    # A namespace that a leftover process still holds keeps existing after `ip netns del`: remove
    # our links from this side too, so that the next run can create them again.
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(f"{PREFIX}-"):
            sh("ip", "link", "del", name, check=False)


def _with_prefix(address: str) -> list[str]:
    return [f"{address}/64", "nodad"] if ":" in address else [f"{address}/24"]


def setup_network(nodes: int, ipv6: bool = False) -> None:
    """The bridge and the hosts; with `ipv6`, every host has only its IPv6 address (the bridge,
    this side's view of them, has both)."""
    teardown_network()
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
    if ipv6:
        sh("ip", "addr", "add", *_with_prefix(f"{NET6}1"), "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for i in range(1, nodes + 1):
        _add_host(f"{PREFIX}-n{i}", f"{NET6}{10 + i}" if ipv6 else f"{NET}.{10 + i}")
    _add_host(CLIENT_NS, f"{NET6}20" if ipv6 else CLIENT_ADDR)


@contextlib.contextmanager
def client_workload(cluster: Cluster) -> Iterator[tuple[Writer, LeaderProber]]:
    """HAProxy, the insert workload and the /leader prober, all on the client host."""
    haproxy = HAProxy(cluster.logs / "haproxy", CLIENT_ADDR, [n.address for n in cluster.nodes], netns=CLIENT_NS)
    haproxy.start()
    writer = prober = None
    try:
        haproxy.wait_one_up()
        writer = Writer(CLIENT_ADDR, cluster.password(), log=cluster.logs / "workload.log")
        writer.setup()
        writer.start(netns=CLIENT_NS)
        prober = LeaderProber([f"http://{n.address}:7331/leader" for n in cluster.nodes], password=cluster.password(),
                              log=cluster.logs / "prober.log", haproxy=CLIENT_ADDR,
                              writer=writer).start(netns=CLIENT_NS)
        yield writer, prober
    finally:
        for stoppable in (prober, writer):
            if stoppable is not None:
                stoppable.stop()
        haproxy.stop()


@dataclass
class NsNode(Node):
    """A backend node on its own host (network namespace)."""

    delayer: subprocess.Popen[str] | None = field(default=None, repr=False)

    @property
    def namespace(self) -> str:
        return f"{PREFIX}-n{self.index}"

    @property
    def address(self) -> str:
        return f"{NET}.{10 + self.index}"

    @property
    def command_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]

    def cut_from(self, *others: NsNode, direction: str = "both") -> None:
        """Drop packets between this host and `others`: "both" ways, only "input" (this host can
        still send to them but hears nothing back) or only "output" (they hear nothing from it)."""
        addrs = ", ".join(o.address for o in others)
        chains = []
        if direction in ("both", "input"):
            chains.append(f"  chain input {{ type filter hook input priority -10; policy accept;"
                          f" ip saddr {{ {addrs} }} drop; }}")
        if direction in ("both", "output"):
            chains.append(f"  chain output {{ type filter hook output priority -10; policy accept;"
                          f" ip daddr {{ {addrs} }} drop; }}")
        self._nft("table inet cbfault {\n" + "\n".join(chains) + "\n}\n")

    def drop_randomly(self, percent: int) -> None:
        """Drop `percent` % of every packet this host sends or receives (nftables numgen)."""
        rule = f"numgen random mod 100 < {percent} drop"
        self._nft("table inet cbfault {\n"
                  f"  chain input {{ type filter hook input priority -10; policy accept; iifname eth0 {rule}; }}\n"
                  f"  chain output {{ type filter hook output priority -10; policy accept; oifname eth0 {rule}; }}\n"
                  "}\n")

    def delay_output(self, ms: int) -> None:
        """Hold every packet this host sends for `ms` ms (an NFQUEUE and a user-space delayer,
        since this kernel has no netem). Adds to drop_randomly when both are on. The queue rule is
        iptables' (through nft_compat): this kernel lacks nftables' own queue expression."""
        self.delayer = subprocess.Popen(
            [*self.command_prefix, sys.executable, str(Path(__file__).with_name("delay_queue.py")),
             "--queue", "0", "--ms", str(ms)], stdout=subprocess.PIPE, text=True)
        assert self.delayer.stdout is not None and self.delayer.stdout.readline().strip() == "ready"
        sh(*self.command_prefix, "iptables", "-A", "OUTPUT", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", "0",
           "--queue-bypass")

    def _nft(self, rules: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.namespace, "nft", "-f", "-"], input=rules, text=True,
                       check=True, capture_output=True)

    def heal(self) -> None:
        sh("ip", "netns", "exec", self.namespace, "nft", "delete", "table", "inet", "cbfault", check=False)
        if self.delayer is not None:
            sh(*self.command_prefix, "iptables", "-F", "OUTPUT")
            self.delayer.terminate()  # after the rules are gone: it releases what it still holds
            self.delayer.wait(10)
            self.delayer = None

    @property
    def pg_disk(self) -> Path:
        return self.root / "var/opt/chef-backend/postgresql"

    def mount_small_pg_disk(self, size_mb: int) -> None:
        """Put PostgreSQL's data and WAL on a filesystem of its own, `size_mb` large."""
        self.pg_disk.mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(self.pg_disk))

    def fill_pg_disk(self) -> None:
        """Take every free byte of PostgreSQL's filesystem (dd stops at ENOSPC)."""
        sh("dd", "if=/dev/zero", f"of={self.pg_disk / 'filler'}", "bs=64k", check=False)

    def free_pg_disk(self) -> None:
        (self.pg_disk / "filler").unlink(missing_ok=True)


@dataclass
class V6NsNode(NsNode):
    """A backend node on its own IPv6-only host (setup_network(ipv6=True)). Its leader manager
    listens where ip_version 'ipv6' puts it (::), not on a configured address."""

    @property
    def address(self) -> str:
        return f"{NET6}{10 + self.index}"

    @property
    def http_listen(self) -> str | None:
        return None


def ns_cluster(name: str, size: int = 3, extra_config: str = "", pg_disk_mb: int | None = None,
               node: type[NsNode] = NsNode) -> Cluster:
    """A fresh cluster whose nodes live on their own hosts (`node`: NsNode, or V6NsNode on an IPv6
    network); with `pg_disk_mb`, each node's PostgreSQL on a small filesystem of its own (removed
    with the cluster)."""
    cluster = Cluster.fresh(name, size=size, extra_config=extra_config)
    cluster.nodes = [node(n.index, n.base, n.extra_config) for n in cluster.nodes]
    for node in cluster.nodes:
        node.write_config()
        if pg_disk_mb is not None:
            node.mount_small_pg_disk(pg_disk_mb)
    return cluster
