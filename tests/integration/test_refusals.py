"""Every refusal of create-cluster and join-cluster: one clear line, non-zero exit, nothing changed."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.harness import CTL, Cluster, Node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster():
    with Cluster.running("refusals") as c:
        yield c


def assert_refused(result, message: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ERROR: ") and message in lines[0], lines[0]


def assert_untouched(cluster: Cluster, newcomer: Node | None = None) -> None:
    doc = cluster.cluster_status()
    assert len(doc["nodes"]) == 3 and doc["leader"]
    members = json.loads(__import__("urllib.request").request.urlopen(
        "http://127.0.0.11:2379/v2/members", timeout=3).read())["members"]
    assert len(members) == 3
    if newcomer is not None:
        assert newcomer.processes() == set()
        assert not (newcomer.root / "var/opt/chef-backend/node.json").exists()
        assert not newcomer.secrets_file.exists()


def join(node: Node, *extra: str, secrets: str | None = None):
    args = ["join-cluster", "127.0.0.11", "--yes", *extra]
    if secrets is not None:
        args += ["-s", secrets]
    return node.ctl(*args, check=False)


def test_create_cluster_on_a_member_is_refused(cluster: Cluster) -> None:
    assert_refused(cluster.nodes[1].ctl("create-cluster", "--yes", check=False), "already a member of cluster")
    assert_untouched(cluster)


def test_join_on_a_member_is_refused(cluster: Cluster) -> None:
    result = join(cluster.nodes[2], secrets=str(cluster.secrets_copy))
    assert_refused(result, "already a member of cluster")
    assert_untouched(cluster)


def test_unreachable_peer(cluster: Cluster, newcomer: Node) -> None:
    result = newcomer.ctl("join-cluster", "127.0.0.99", "-s", str(cluster.secrets_copy), "--yes", check=False)
    assert_refused(result, "cannot reach etcd at 127.0.0.99:2379")
    assert_untouched(cluster, newcomer)


def test_missing_secrets_file(cluster: Cluster, newcomer: Node) -> None:
    assert_refused(join(newcomer, secrets="/nonexistent/secrets.json"), "does not exist")
    assert_untouched(cluster, newcomer)


def test_relative_secrets_path(cluster: Cluster, newcomer: Node) -> None:
    assert_refused(join(newcomer, secrets="secrets.json"), "give an absolute path")


def test_truncated_secrets_file(cluster: Cluster, newcomer: Node) -> None:
    bad = cluster.base / "truncated.json"
    bad.write_text(cluster.secrets_copy.read_text()[:120])
    assert_refused(join(newcomer, secrets=str(bad)), "is not valid JSON")
    assert_untouched(cluster, newcomer)


def test_wrong_password(cluster: Cluster, newcomer: Node) -> None:
    doc = json.loads(cluster.secrets_copy.read_text())
    doc["postgresql"]["db_superuser_password"] = "0" * 100
    bad = cluster.base / "wrong.json"
    bad.write_text(json.dumps(doc))
    assert_refused(join(newcomer, secrets=str(bad)), "does not belong to this cluster")
    assert_untouched(cluster, newcomer)


def test_secrets_of_another_cluster(cluster: Cluster, newcomer: Node) -> None:
    from chef_backend.secrets import Secrets

    other = cluster.base / "other.json"
    other.write_text(Secrets.generate().to_json())
    assert_refused(join(newcomer, secrets=str(other)), "does not belong to this cluster")
    assert_untouched(cluster, newcomer)


def test_client_networks_that_shut_out_the_members_are_refused(cluster: Cluster, newcomer: Node) -> None:
    newcomer.extra_config = 'postgresql.md5_auth_cidr_addresses = ["10.0.0.0/8"]\n'
    newcomer.write_config()
    result = join(newcomer, secrets=str(cluster.secrets_copy))
    assert_refused(result, "postgresql.md5_auth_cidr_addresses ['10.0.0.0/8'] does not let in the cluster's own "
                           "members 127.0.0.11, 127.0.0.12, 127.0.0.13, 127.0.0.14")
    assert_untouched(cluster, newcomer)


def test_publish_address_not_on_this_host(cluster: Cluster, newcomer: Node) -> None:
    newcomer.config_file.write_text(newcomer.config_file.read_text().replace("127.0.0.14", "192.0.2.1"))
    assert_refused(join(newcomer, secrets=str(cluster.secrets_copy)), "is not an address of this host")
    assert_untouched(cluster, newcomer)


def test_publish_address_already_a_member(cluster: Cluster, newcomer: Node) -> None:
    newcomer.config_file.write_text(newcomer.config_file.read_text().replace("127.0.0.14", "127.0.0.12"))
    assert_refused(join(newcomer, secrets=str(cluster.secrets_copy)), "127.0.0.12 is already a member")
    assert_untouched(cluster, newcomer)


def test_publish_address_flag_never_overwrites_config(cluster: Cluster, newcomer: Node) -> None:
    before = newcomer.config_file.read_text()
    result = join(newcomer, "-p", "127.0.0.14", secrets=str(cluster.secrets_copy))
    assert_refused(result, "already sets publish_address")
    assert newcomer.config_file.read_text() == before


def test_no_publish_address_without_a_terminal(cluster: Cluster, newcomer: Node) -> None:
    newcomer.write_config(publish=False)
    assert_refused(join(newcomer, secrets=str(cluster.secrets_copy)), "no publish address")
    assert_untouched(cluster, newcomer)


def test_malformed_config_names_file_and_line(cluster: Cluster, newcomer: Node) -> None:
    newcomer.config_file.write_text(newcomer.config_file.read_text() + "postgresql.prot = 5432\n")
    result = join(newcomer, secrets=str(cluster.secrets_copy))
    assert_refused(result, "chef-backend.rb:")
    assert "did you mean 'postgresql.port'" in result.stderr
    assert_untouched(cluster, newcomer)


def test_clock_drift_is_refused(cluster: Cluster, newcomer: Node) -> None:
    if not shutil.which("faketime"):
        pytest.skip("faketime is not installed (scripts/setup installs it)")
    import os
    import subprocess

    env = dict(os.environ, CHEF_BACKEND_ROOT=str(newcomer.root))
    result = subprocess.run(["faketime", "-f", "+5s", CTL, "join-cluster", "127.0.0.11", "-s",
                             str(cluster.secrets_copy), "--yes"], env=env, text=True, capture_output=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert_refused(result, "clock differs from")
    assert_untouched(cluster, newcomer)


def test_reconfigure_before_create_or_join_checks_the_file_and_changes_nothing(newcomer: Node) -> None:
    # Deployment cookbooks run reconfigure right after installing, as the original allowed.
    result = newcomer.ctl("reconfigure", "--accept-license")
    assert "not part of a cluster yet" in result.stdout
    assert newcomer.processes() == set()
    assert not newcomer.secrets_file.exists()


def test_create_without_yes_and_without_a_terminal_goes_ahead_as_the_original(newcomer: Node) -> None:
    # Deployment scripts run `chef-backend-ctl create-cluster --accept-license` with no terminal.
    try:
        result = newcomer.ctl("--accept-license", "--quiet", "create-cluster", "--verbose")
        assert "No terminal to ask: going ahead" in result.stdout
        assert newcomer.leader_code() == 200
    finally:
        newcomer.ctl("cleanse", "--yes", check=False)
    assert newcomer.processes() == set()


def test_commands_on_a_node_outside_any_cluster(newcomer: Node) -> None:
    for args in (["status"], ["cluster-status"], ["gen-server-config", "fe1.example.com"]):
        assert_refused(newcomer.ctl(*args, check=False), "not part of a cluster")


def test_a_join_after_all_these_refusals_still_works(cluster: Cluster, newcomer: Node) -> None:
    join(newcomer, secrets=str(cluster.secrets_copy))  # sanity: the newcomer is fine once inputs are
    doc = cluster.cluster_status()
    try:
        assert len(doc["nodes"]) == 4
    finally:
        removed = next(n for n in doc["nodes"] if n["ip"] == "127.0.0.14")
        newcomer.ctl("stop", check=False)
        _forget(cluster, removed["guid"])


def _forget(cluster: Cluster, guid: str) -> None:
    """Take the extra node out again (remove-node comes with the operations issue)."""
    from chef_backend.cluster import store as keys
    from chef_backend.cluster.store import Store

    store = Store(["http://127.0.0.11:2379"])
    member = next(m for m in store.members() if m.get("name") == guid)
    store.member_remove(member["ID"])
    store.delete(keys.NODES + guid)
    cluster.wait_healthy()
